"""Plotly figures of a study page: optimisation history, parallel coordinates, intermediate values and
hyperparameter importance.

Pure functions, no Django: they take plain dicts (`trials`: number, state, value, params,
pruned_at_step) and return figures as JSON dicts for `partials/plotly_chart.html`.
"""

from __future__ import annotations

import math
from typing import Any

CHART_HEIGHT_PX = 300
STATE_COLORS = {"complete": "#4c78a8", "pruned": "#e45756", "failed": "#9d9d9d", "running": "#f58518"}
BEST_COLOR = "#54a24b"
AXIS = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 13}},
        "height": CHART_HEIGHT_PX,
        "margin": {"l": 56, "r": 16, "t": 36, "b": 44},
        "font": {"size": 11},
        "hovermode": "closest",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        **extra,
    }


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def history_figure(trials: list[dict], *, direction: str, objective: str) -> dict[str, Any]:
    """Each ended trial's value by trial number, and the best value so far as a step line."""
    data = []
    for state in ("complete", "pruned"):
        points = [trial for trial in trials if trial["state"] == state and _finite(trial["value"])]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": state,
                "x": [trial["number"] for trial in points],
                "y": [trial["value"] for trial in points],
                "marker": {
                    "color": STATE_COLORS[state],
                    "size": 8,
                    "symbol": "circle" if state == "complete" else "x",
                },
                "hovertemplate": "trial %{x}<br>%{y:.6g}<extra>" + state + "</extra>",
            }
        )
    best_x, best_y, best = [], [], None
    for trial in sorted(trials, key=lambda item: item["number"]):
        if trial["state"] != "complete" or not _finite(trial["value"]):
            continue
        value = trial["value"]
        if best is None or (value > best if direction == "maximize" else value < best):
            best = value
        best_x.append(trial["number"])
        best_y.append(best)
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": best_x,
            "y": best_y,
            "line": {"color": BEST_COLOR, "width": 2, "shape": "hv"},
            "hovertemplate": "best after trial %{x}: %{y:.6g}<extra></extra>",
        }
    )
    layout = _layout(
        "Optimisation history",
        xaxis={**AXIS, "title": {"text": "trial"}, "dtick": 1 if len(trials) <= 20 else None},
        yaxis={**AXIS, "title": {"text": f"{objective} ({direction})"}},
        legend={"orientation": "h", "y": -0.25},
    )
    return {"data": data, "layout": layout}


def parallel_coordinates_figure(
    trials: list[dict], *, search_space: list[dict], objective: str
) -> dict[str, Any]:
    """One line per complete trial through its hyperparameters to its value (log ranges on a log10 axis)."""
    complete = [trial for trial in trials if trial["state"] == "complete" and _finite(trial["value"])]
    dimensions = []
    for item in search_space:
        name = item["name"]
        values = [trial["params"].get(name) for trial in complete]
        if item["type"] == "categorical":
            labels = [str(choice) for choice in item["choices"]]
            dimensions.append(
                {
                    "label": name,
                    "values": [
                        labels.index(str(value)) if str(value) in labels else None for value in values
                    ],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                    "range": [0, max(1, len(labels) - 1)],
                }
            )
        elif item.get("log"):
            dimensions.append(
                {
                    "label": f"log10 {name}",
                    "values": [math.log10(value) if value and value > 0 else None for value in values],
                    "range": [math.log10(item["low"]), math.log10(item["high"])],
                }
            )
        else:
            dimensions.append({"label": name, "values": values, "range": [item["low"], item["high"]]})
    objective_values = [trial["value"] for trial in complete]
    dimensions.append({"label": objective, "values": objective_values})
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": objective_values,
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": objective}},
        },
    }
    return {
        "data": [trace],
        "layout": _layout(
            "Parallel coordinates (complete trials)", margin={"l": 60, "r": 60, "t": 60, "b": 30}
        ),
    }


def intermediate_figure(
    curves: dict[int, dict[int, float]], trials: list[dict], *, objective: str
) -> dict[str, Any]:
    """Each trial's reported objective by step; pruned trials dashed, with an ✕ where they were pruned."""
    states = {trial["number"]: trial for trial in trials}
    data = []
    for number in sorted(curves):
        points = sorted((step, value) for step, value in curves[number].items() if _finite(value))
        if not points:
            continue
        trial = states.get(number, {"state": "running", "pruned_at_step": None})
        state = trial["state"]
        color = STATE_COLORS.get(state, STATE_COLORS["running"])
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"trial {number}",
                "legendgroup": f"trial {number}",
                "x": [step for step, _ in points],
                "y": [value for _, value in points],
                "line": {"color": color, "width": 1.5, "dash": "dash" if state == "pruned" else "solid"},
                "marker": {"color": color, "size": 4},
                "hovertemplate": f"trial {number} ({state})<br>step %{{x}}: %{{y:.6g}}<extra></extra>",
            }
        )
        if state == "pruned":
            step = trial.get("pruned_at_step") or points[-1][0]
            value = curves[number].get(step, points[-1][1])
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"trial {number} pruned",
                    "legendgroup": f"trial {number}",
                    "showlegend": False,
                    "x": [step],
                    "y": [value],
                    "marker": {"color": STATE_COLORS["pruned"], "size": 12, "symbol": "x"},
                    "hovertemplate": f"trial {number} pruned at step %{{x}}<extra></extra>",
                }
            )
    layout = _layout(
        "Intermediate values",
        xaxis={**AXIS, "title": {"text": "step (epoch)"}},
        yaxis={**AXIS, "title": {"text": objective}},
        showlegend=len(data) <= 30,
    )
    return {"data": data, "layout": layout}


def importance_figure(importances: dict[str, float]) -> dict[str, Any]:
    """A horizontal bar per hyperparameter, most important on top."""
    ranked = sorted(importances.items(), key=lambda item: item[1])
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": [value for _, value in ranked],
        "y": [name for name, _ in ranked],
        "marker": {"color": "#4c78a8"},
        "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
    }
    layout = _layout(
        "Hyperparameter importance (fANOVA)",
        xaxis={**AXIS, "title": {"text": "importance"}, "range": [0, 1]},
        yaxis={**AXIS},
    )
    return {"data": [trace], "layout": layout}
