"""Plotly figures of the compare page: one metric's curves overlaid (a trace per run) and a
parallel-coordinates chart of the runs' params against a metric.

Pure functions, no Django: each returns a figure as a plain JSON dict ({"data", "layout"}) that
`partials/plotly_chart.html` renders.
"""

from __future__ import annotations

import math
from typing import Any

from training.charts.metrics import _finite

COMPARE_CHART_HEIGHT_PX = 280
PARCOORDS_HEIGHT_PX = 360
MAX_PARCOORDS_PARAMS = 12  # beyond this the axes are too close to read
MISSING = "(none)"
# plotly's default qualitative palette (D3 category10): 10 colours for the at most 10 runs compared.
RUN_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def _layout(title: str, height_px: int) -> dict[str, Any]:
    return {
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 13},
        },
        "height": height_px,
        "font": {"size": 11},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
    }


def overlay_figure(key: str, histories: list[dict[str, Any]]) -> dict[str, Any]:
    """One metric's curves by step, a trace per run.

    `histories`: `training.selectors.compare_metric_histories`'s answer (each a `metric_history` plus
    `run_id`, `run_name` and optionally `color_index`, so that a run keeps its colour on every chart).
    """
    traces = []
    downsampled = False
    for index, history in enumerate(histories):
        color = run_color(history.get("color_index", index))
        downsampled = downsampled or bool(history.get("downsampled"))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if len(history["steps"]) <= 50 else "lines",
                "name": f"{history['run_name']} #{history['run_id']}",
                "x": list(history["steps"]),
                "y": _finite(list(history["values"])),
                "line": {"color": color, "width": 2},
                "marker": {"color": color, "size": 4},
                "hovertemplate": "step %{x}<br>%{y:.6g}<extra>%{fullData.name}</extra>",
            }
        )
    axis = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True}
    layout = {
        **_layout(key + (" (downsampled)" if downsampled else ""), COMPARE_CHART_HEIGHT_PX),
        "margin": {"l": 48, "r": 12, "t": 30, "b": 36},
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.2, "font": {"size": 10}},
        "hovermode": "closest",
        "xaxis": {**axis, "title": {"text": "step"}},
        "yaxis": axis,
    }
    return {"data": traces, "layout": layout}


def number_or_none(text: Any) -> float | None:
    """The finite float a param (a string, as in MLflow) reads as, else None."""
    if isinstance(text, bool) or text is None:
        return None
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parcoords_dimension(label: str, values: list[Any]) -> dict[str, Any]:
    """One axis: numeric when every run's value reads as a number, else categories as tick labels.

    A param some run lacks is categorical too (with a '(none)' tick): a numeric axis has no place
    for a missing value, and plotly drops a line with one.
    """
    numbers = [number_or_none(value) for value in values]
    if values and all(number is not None for number in numbers):
        return {"label": label, "values": numbers}
    texts = [MISSING if value is None else str(value) for value in values]
    categories = sorted(set(texts), key=lambda text: (text == MISSING, text))
    position = {category: index for index, category in enumerate(categories)}
    dimension = {
        "label": label,
        "values": [position[text] for text in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": [category[:24] for category in categories],
    }
    if len(categories) == 1:  # plotly needs a range that is not a point
        dimension["range"] = [-0.5, 0.5]
    return dimension


def parcoords_dimensions(
    runs: list[dict[str, Any]], param_keys: list[str], metric_key: str
) -> list[dict[str, Any]]:
    """The axes: one per param (at most 12), then the metric. `runs`: [{"params": {...}, "metric": v}].

    Runs without a finite value of the metric are left out by the caller (`parcoords_figure`).
    """
    dimensions = [
        parcoords_dimension(f"params.{key}", [run["params"].get(key) for run in runs])
        for key in param_keys[:MAX_PARCOORDS_PARAMS]
    ]
    dimensions.append({"label": f"metrics.{metric_key}", "values": [run["metric"] for run in runs]})
    return dimensions


def parcoords_figure(
    runs: list[dict[str, Any]], param_keys: list[str], metric_key: str, *, lower_is_better: bool = False
) -> dict[str, Any]:
    """A parallel-coordinates chart of the runs' params and one metric, lines coloured by the metric
    (the better the value, the brighter the line).

    `runs`: [{"name", "params": {key: str}, "metric": float | None}]; runs without the metric are left
    out (named in the title).
    """
    drawn = [run for run in runs if run["metric"] is not None and math.isfinite(run["metric"])]
    left_out = len(runs) - len(drawn)
    dimensions = parcoords_dimensions(drawn, param_keys, metric_key)
    metric_values = dimensions[-1]["values"]
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": metric_values,
            "colorscale": "Viridis",
            "reversescale": lower_is_better,
            "showscale": True,
            "colorbar": {"title": {"text": metric_key}, "thickness": 12},
        },
        "labelangle": -20,
        "labelfont": {"size": 11},
    }
    title = f"params → {metric_key}"
    if left_out:
        title += f" ({left_out} run{'s' if left_out > 1 else ''} without {metric_key} left out)"
    layout = {**_layout(title, PARCOORDS_HEIGHT_PX), "margin": {"l": 60, "r": 60, "t": 80, "b": 30}}
    return {"data": [trace], "layout": layout}
