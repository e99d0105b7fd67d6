"""Plotly figures of the training pages, one module per page family (metrics, debugger, compare).

Pure functions, no Django: each returns a figure as a plain JSON dict ({"data", "layout"}) that
`partials/plotly_chart.html` renders.
"""

from training.charts.metrics import metric_figure, split_system

__all__ = ["metric_figure", "split_system"]
