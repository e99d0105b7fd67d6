"""The training pages, one module per page family (runs, debugger, compare, launch)."""
