"""Plotly figures of a run's metrics: one line chart per metric key, from its downsampled history.

Pure functions, no Django: each returns a figure as a plain JSON dict ({"data", "layout"}) that
`partials/plotly_chart.html` renders; the run page extends trace 0 live (Plotly.extendTraces).
"""

from __future__ import annotations

import math
from typing import Any

METRIC_CHART_HEIGHT_PX = 240
LINE_COLOR = "#4c78a8"
SYSTEM_COLOR = "#72b7b2"
SYSTEM_PREFIX = "system/"


def _finite(values: list[float | None]) -> list[float | None]:
    return [value if value is not None and math.isfinite(value) else None for value in values]


def metric_figure(history: dict[str, Any]) -> dict[str, Any]:
    """A line chart of one metric's history (`training.selectors.metric_history`'s answer) by step."""
    key = history["key"]
    title = key
    if history.get("downsampled"):
        title += f" ({history.get('total_points', 0):,} points, downsampled)"
    color = SYSTEM_COLOR if key.startswith(SYSTEM_PREFIX) else LINE_COLOR
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(history["steps"]) <= 50 else "lines",
        "name": key,
        "x": list(history["steps"]),
        "y": _finite(list(history["values"])),
        "line": {"color": color, "width": 2},
        "marker": {"color": color, "size": 4},
        "hovertemplate": "step %{x}<br>%{y:.6g}<extra></extra>",
    }
    axis = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True}
    layout = {
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 13},
        },
        "height": METRIC_CHART_HEIGHT_PX,
        "margin": {"l": 48, "r": 12, "t": 30, "b": 36},
        "showlegend": False,
        "font": {"size": 11},
        "hovermode": "closest",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {**axis, "title": {"text": "step"}},
        "yaxis": axis,
    }
    return {"data": [trace], "layout": layout}


def split_system(keys: list[str]) -> tuple[list[str], list[str]]:
    """The keys as (model metrics, system/* metrics), each in the given order."""
    return (
        [key for key in keys if not key.startswith(SYSTEM_PREFIX)],
        [key for key in keys if key.startswith(SYSTEM_PREFIX)],
    )
