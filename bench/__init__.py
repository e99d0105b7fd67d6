"""Benchmarks against the peers each issue names; `make bench` runs them (see bench/README.md)."""
