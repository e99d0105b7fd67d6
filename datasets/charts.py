"""Plotly figures of a dataset version's profile (the dict `datasets.profiling.profile_parquet` returns).

Pure functions, no Django: each returns a figure as a plain JSON dict ({"data", "layout"}) that
`json.dumps` writes and `partials/plotly_chart.html` renders. The layouts are compact, for a grid
of small charts: plotly_white, small margins, a one-line title, no legend.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import cache
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

COLUMN_CHART_HEIGHT_PX = 240
BAR_COLOR = "#4c78a8"
OTHER_COLOR = "#bab0ac"
MISSING_COLOR = "#e45756"
MAX_LABEL_CHARS = 28

# The parts of plotly_white that 2-D bar and heatmap charts use: the whole template (3D scenes,
# maps, polar axes, every trace type) would add ~5 KB to every figure on a page of dozens.
_TEMPLATE_LAYOUT_KEYS = (
    "autotypenumbers",
    "colorway",
    "font",
    "hovermode",
    "hoverlabel",
    "paper_bgcolor",
    "plot_bgcolor",
    "coloraxis",
    "colorscale",
    "xaxis",
    "yaxis",
    "title",
    "annotationdefaults",
)


@cache
def _template() -> dict[str, Any]:
    white = pio.templates["plotly_white"].to_plotly_json()
    layout = {key: value for key, value in white["layout"].items() if key in _TEMPLATE_LAYOUT_KEYS}
    data = {key: value for key, value in white["data"].items() if key in ("bar", "heatmap")}
    return json.loads(json.dumps({"layout": layout, "data": data}, cls=_PlotlyEncoder))


class _PlotlyEncoder(json.JSONEncoder):
    def default(self, value: Any) -> Any:
        return value.to_plotly_json() if hasattr(value, "to_plotly_json") else super().default(value)


def _figure(traces: list[go.BaseTraceType], *, title: str, height: int, **layout: Any) -> dict[str, Any]:
    """Return the figure as plain JSON (NaN as null), laid out for a small chart."""
    figure = go.Figure(data=traces)
    figure.update_layout(
        title={
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "font": {"size": 13},
        },
        height=height,
        margin={"l": 48, "r": 12, "t": 30, "b": 36},
        showlegend=False,
        bargap=0.05,
        font={"size": 11},
        hoverlabel={"font": {"size": 11}},
        **layout,
    )
    result = json.loads(figure.to_json())
    result["layout"]["template"] = _template()
    return result


def _column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    for column in profile.get("columns", []):
        if column["name"] == name:
            return column
    raise KeyError(f"no column {name!r} in the profile")


def _short(label: Any) -> str:
    text = str(label)
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def _empty_note() -> dict[str, Any]:
    return {
        "annotations": [
            {
                "text": "No values",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"color": "#888"},
            }
        ]
    }


def column_histogram(profile: dict[str, Any], column: str) -> dict[str, Any]:
    """Return the histogram of a numeric or datetime column as bars over their bins."""
    data = _column(profile, column)
    if data["type"] not in ("numeric", "datetime"):
        raise ValueError(
            f"column {column!r} is {data['type']}: only numeric and datetime columns have histograms"
        )
    histogram = data.get("histogram") or {"edges": [], "counts": []}
    edges, counts = histogram["edges"], histogram["counts"]
    if data["type"] == "datetime":
        starts = [datetime.fromisoformat(edge) for edge in edges]
        # Plotly measures bar widths on a date axis in milliseconds.
        widths = [
            (end - start).total_seconds() * 1000 for start, end in zip(starts, starts[1:], strict=False)
        ]
        ranges = [f"{a} – {b}" for a, b in zip(edges, edges[1:], strict=False)]
        x_title = f"{column} (per {histogram.get('interval')})" if histogram.get("interval") else column
    else:
        widths = [end - start for start, end in zip(edges, edges[1:], strict=False)]
        ranges = [f"{a:.6g} – {b:.6g}" for a, b in zip(edges, edges[1:], strict=False)]
        x_title = column
    bar = go.Bar(
        x=edges[:-1],
        y=counts,
        width=widths,
        offset=0,  # each bar starts at its bin's left edge
        customdata=ranges,
        hovertemplate="%{customdata}<br>%{y:,} rows<extra></extra>",
        marker={"color": BAR_COLOR, "line": {"width": 0}},
    )
    extra = {} if counts else _empty_note()
    return _figure(
        [bar],
        title=_short(column),
        height=COLUMN_CHART_HEIGHT_PX,
        xaxis={"title": {"text": _short(x_title), "font": {"size": 11}}},
        yaxis={"title": {"text": "rows", "font": {"size": 11}}, "rangemode": "tozero"},
        **extra,
    )


def top_values_bar(profile: dict[str, Any], column: str) -> dict[str, Any]:
    """Return the most frequent values of a column as horizontal bars, the rest as one '(other)' bar.

    Image columns show their file extensions.
    """
    data = _column(profile, column)
    top = data.get("top_values") or data.get("top_extensions")
    if top is None:
        raise ValueError(f"column {column!r} is {data['type']}: it has no top values")
    labels = [_short(item["value"]) for item in top["values"]]
    counts = [item["count"] for item in top["values"]]
    colors = [BAR_COLOR] * len(counts)
    if top.get("other_count"):
        labels.append("(other)")
        counts.append(top["other_count"])
        colors.append(OTHER_COLOR)
    rows = profile.get("row_count") or 0
    percents = [100.0 * count / rows if rows else 0.0 for count in counts]
    bar = go.Bar(
        x=counts,
        y=labels,
        orientation="h",
        customdata=percents,
        hovertemplate="%{y}<br>%{x:,} rows (%{customdata:.1f} %)<extra></extra>",
        marker={"color": colors, "line": {"width": 0}},
    )
    what = "extensions" if "top_extensions" in data else "top values"
    extra = {} if counts else _empty_note()
    return _figure(
        [bar],
        title=f"{_short(column)} · {what}",
        height=max(COLUMN_CHART_HEIGHT_PX, 60 + 18 * len(labels)),
        # The first value at the top, labels as categories even when they look like numbers.
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
        xaxis={"title": {"text": "rows", "font": {"size": 11}}, "rangemode": "tozero"},
        **extra,
    )


def missing_bar(profile: dict[str, Any]) -> dict[str, Any]:
    """Return the share of missing values per column, in percent."""
    columns = profile.get("columns", [])
    names = [_short(column["name"]) for column in columns]
    bar = go.Bar(
        x=names,
        y=[column["missing_percent"] for column in columns],
        customdata=[column["missing_count"] for column in columns],
        hovertemplate="%{x}<br>%{y:.2f} % missing (%{customdata:,} rows)<extra></extra>",
        marker={"color": MISSING_COLOR, "line": {"width": 0}},
    )
    return _figure(
        [bar],
        title="Missing values (%)",
        height=COLUMN_CHART_HEIGHT_PX,
        xaxis={"type": "category", "tickangle": -45 if len(names) > 8 else 0, "automargin": True},
        yaxis={"range": [0, 100], "ticksuffix": " %"},
    )


def correlation_heatmap(profile: dict[str, Any]) -> dict[str, Any]:
    """Return the Pearson correlation matrix of the numeric columns (red positive, blue negative)."""
    correlation = profile.get("correlation") or {"columns": [], "matrix": []}
    names = [_short(name) for name in correlation["columns"]]
    matrix = correlation["matrix"]
    show_values = len(names) <= 12
    heatmap = go.Heatmap(
        z=matrix,
        x=names,
        y=names,
        zmin=-1,
        zmax=1,
        colorscale="RdBu",
        reversescale=True,
        colorbar={"thickness": 10, "len": 0.9, "tickfont": {"size": 10}},
        hovertemplate="%{y} × %{x}<br>r = %{z:.3f}<extra></extra>",
        texttemplate="%{z:.2f}" if show_values else None,
        textfont={"size": 10},
        hoverongaps=False,
    )
    fraction = correlation.get("sample_fraction")
    title = "Correlation (Pearson)"
    if fraction is not None and fraction < 1:
        title += f" · sample of {fraction:.0%} of rows" if fraction >= 0.01 else " · sampled rows"
    size = max(COLUMN_CHART_HEIGHT_PX, min(900, 90 + 22 * len(names)))
    extra = {} if names else _empty_note()
    return _figure(
        [heatmap],
        title=title,
        height=size,
        xaxis={
            "type": "category",
            "tickangle": -45 if len(names) > 6 else 0,
            "automargin": True,
            "showgrid": False,
        },
        yaxis={"type": "category", "autorange": "reversed", "automargin": True, "showgrid": False},
        **extra,
    )


def profile_figures(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return every chart of a profile keyed by a stable id, in page order.

    "missing" and "correlation" first (the latter only with two or more numeric columns), then per
    column "histogram: <name>" (numeric, datetime) or "top values: <name>" (the others), skipping
    columns without a single value.
    """
    figures: dict[str, dict[str, Any]] = {}
    if not profile or not profile.get("columns"):
        return figures
    figures["missing"] = missing_bar(profile)
    correlation = profile.get("correlation")
    if correlation and len(correlation.get("columns", [])) >= 2 and _has_value(correlation["matrix"]):
        figures["correlation"] = correlation_heatmap(profile)
    for column in profile["columns"]:
        if column["type"] in ("numeric", "datetime"):
            if sum((column.get("histogram") or {}).get("counts", [])):
                figures[f"histogram: {column['name']}"] = column_histogram(profile, column["name"])
        elif (column.get("top_values") or column.get("top_extensions") or {}).get("values"):
            figures[f"top values: {column['name']}"] = top_values_bar(profile, column["name"])
    return figures


def _has_value(matrix: list[list[float | None]]) -> bool:
    return any(value is not None and not math.isnan(value) for row in matrix for value in row)
