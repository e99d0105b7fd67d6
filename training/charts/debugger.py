"""Plotly figures of the run page's Debugger tab: confusion matrix, gradient norms, learning rate, losses,
system metrics.

Pure functions, no Django. Every line trace carries its metric key in `meta`, so the page can extend
the trace live from `run_metrics` events (frontend/static/studio/training/debugger.js).
"""

from __future__ import annotations

import math
from typing import Any

DEBUGGER_CHART_HEIGHT_PX = 280
CONFUSION_CHART_MIN_HEIGHT_PX = 320
CONFUSION_CELL_PX = 36  # enough for a 4-digit count in the cell's text
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
AXIS = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True}


def _finite(values) -> list[float | None]:
    return [value if value is not None and math.isfinite(value) else None for value in values]


def _positive(values) -> list[float | None]:
    """Values for a log axis: zero and negative norms cannot be drawn there."""
    return [value if value is not None and math.isfinite(value) and value > 0 else None for value in values]


def _layout(title: str, *, y_title: str = "", x_title: str = "epoch", log_y: bool = False) -> dict:
    y_axis = {**AXIS, "title": {"text": y_title}}
    if log_y:
        y_axis["type"] = "log"
    return {
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 13},
        },
        "height": DEBUGGER_CHART_HEIGHT_PX,
        "margin": {"l": 56, "r": 12, "t": 30, "b": 40},
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.25, "font": {"size": 10}},
        "font": {"size": 11},
        "hovermode": "x unified",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {**AXIS, "title": {"text": x_title}},
        "yaxis": y_axis,
    }


def _line(
    key: str, name: str, history: dict | None, index: int, *, log_y: bool = False, dash: str = "solid"
) -> dict:
    steps = list(history["steps"]) if history else []
    values = list(history["values"]) if history else []
    color = PALETTE[index % len(PALETTE)]
    return {
        "type": "scatter",
        "mode": "lines+markers" if len(steps) <= 50 else "lines",
        "name": name,
        "meta": key,
        "x": steps,
        "y": _positive(values) if log_y else _finite(values),
        "line": {"color": color, "width": 2, "dash": dash},
        "marker": {"color": color, "size": 4},
    }


def confusion_matrix_figure(payload: dict[str, Any]) -> dict[str, Any]:
    """A heatmap of one epoch's confusion matrix: rows are true labels, columns predicted ones."""
    labels = [str(label) for label in payload["labels"]]
    matrix = [[int(count) for count in row] for row in payload["matrix"]]
    totals = [sum(row) for row in matrix]
    # Colour by the share of each true class, so a small class's errors show as well as a large one's.
    shares = [
        [count / total if total else 0.0 for count in row] for row, total in zip(matrix, totals, strict=True)
    ]
    size = max(CONFUSION_CHART_MIN_HEIGHT_PX, 120 + CONFUSION_CELL_PX * len(labels))
    trace = {
        "type": "heatmap",
        "x": labels,
        "y": labels,
        "z": shares,
        "zmin": 0,
        "zmax": 1,
        "text": matrix,
        "texttemplate": "%{text}",
        "colorscale": "Blues",
        "reversescale": True,  # plotly's Blues runs dark to light; a larger share should be darker
        "colorbar": {"title": {"text": "share of row"}, "thickness": 12},
        "hovertemplate": "true %{y}<br>predicted %{x}<br>%{text} samples (%{z:.1%})<extra></extra>",
    }
    step = payload.get("step")
    layout = {
        "title": {
            "text": f"Confusion matrix{f' · epoch {step}' if step is not None else ''}",
            "x": 0.01,
            "xanchor": "left",
            "font": {"size": 13},
        },
        "height": size,
        "margin": {"l": 80, "r": 12, "t": 36, "b": 60},
        "font": {"size": 11},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"title": {"text": "predicted"}, "type": "category", "automargin": True, "side": "bottom"},
        "yaxis": {"title": {"text": "true"}, "type": "category", "automargin": True, "autorange": "reversed"},
    }
    return {"data": [trace], "layout": layout}


def gradient_norms_figure(histories: dict[str, dict]) -> dict[str, Any]:
    """One line per layer (metric key → history), on a log axis: norms span many decades."""
    traces = [
        _line(key, key.removeprefix("debug/grad_norm/"), history, index, log_y=True)
        for index, (key, history) in enumerate(sorted(histories.items()))
    ]
    return {"data": traces, "layout": _layout("Gradient norm per layer", y_title="L2 norm", log_y=True)}


def learning_rate_figure(history: dict | None, key: str = "learning_rate") -> dict[str, Any]:
    figure = {"data": [_line(key, key, history, 0)], "layout": _layout("Learning rate")}
    figure["layout"]["showlegend"] = False
    return figure


def loss_figure(train: tuple[str, dict | None], validation: tuple[str, dict | None]) -> dict[str, Any]:
    """Training and validation loss overlaid; each is (metric key, history or None)."""
    (train_key, train_history), (validation_key, validation_history) = train, validation
    return {
        "data": [
            _line(train_key, "train", train_history, 0),
            _line(validation_key, "validation", validation_history, 1, dash="dash"),
        ],
        "layout": _layout("Loss: train vs validation", y_title="loss"),
    }


def system_figure(histories: dict[str, dict], *, title: str, y_title: str) -> dict[str, Any]:
    """Sampled system metrics (x is seconds since the job started) on one chart, one line per key."""
    traces = [
        _line(key, key.removeprefix("system/"), history, index)
        for index, (key, history) in enumerate(sorted(histories.items()))
    ]
    return {"data": traces, "layout": _layout(title, y_title=y_title, x_title="seconds")}
