"""The compare page: runs side by side (params, tags, latest metrics), their curves overlaid and a
parallel-coordinates chart, for 2 to 10 runs picked on the runs list (`?runs=3,4,5`).

The comparison is `selectors.runs_compare` (the API's `runs/compare?ids=` answer too), shaped for the
page by `selectors.compare_page`; the figures come from `training/charts/compare.py`.
"""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from studio.core.pages import page
from studio.errors import ApplicationError
from training import selectors
from training.charts.compare import overlay_figure, parcoords_figure

CHART_POINTS = 1000


def parse_run_ids(text: str) -> list[int]:
    """The run ids of `?runs=3,4,5`: 2 to 10 distinct integers, in the order given."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not all(part.isdigit() and len(part) <= 18 for part in parts):
        raise ApplicationError(
            "runs: a comma-separated list of run ids, e.g. ?runs=3,4,5.", extra={"field": "runs"}
        )
    run_ids = list(dict.fromkeys(int(part) for part in parts))
    if len(run_ids) > selectors.COMPARE_PAGE_MAX_RUNS:
        raise ApplicationError(
            f"runs: at most {selectors.COMPARE_PAGE_MAX_RUNS} runs can be compared at a time "
            f"({len(run_ids)} were given).",
            extra={"field": "runs"},
        )
    if len(run_ids) < 2:
        raise ApplicationError(
            "Select at least two runs on the runs list to compare them.", extra={"field": "runs"}
        )
    return run_ids


@page("training.view")
@require_GET
def run_compare(request, project_id):
    project = request.access.project
    try:
        comparison = selectors.compare_page(
            project=project, run_ids=parse_run_ids(request.GET.get("runs", ""))
        )
    except ApplicationError as error:  # NotFound (another project's run) included: 404, same message
        return render(request, "training/compare.html", {"error": error.message}, status=error.status_code)
    runs = comparison["runs"]
    shared_keys = comparison["shared_metric_keys"]
    chart_keys = shared_keys[: selectors.COMPARE_MAX_CHARTS]
    # A run keeps its colour (its column's) on every chart, also where another run lacks a metric.
    color_index = {run.pk: index for index, run in enumerate(runs)}
    curve_charts = []
    for index, key in enumerate(chart_keys):
        histories = selectors.compare_metric_histories(runs=runs, key=key, max_points=CHART_POINTS)
        for history in histories:
            history["color_index"] = color_index[history["run_id"]]
        curve_charts.append(
            {"key": key, "id": f"compare-curve-{index}", "figure": overlay_figure(key, histories)}
        )

    differing_params = [row["key"] for row in comparison["params"] if row["differs"]]
    param_keys = differing_params or [row["key"] for row in comparison["params"]]
    values_by_key = {row["key"]: row["values"] for row in comparison["metrics"]}
    parcoords_charts = [
        {
            "key": key,
            "id": f"compare-parcoords-{index}",
            "figure": parcoords_figure(
                [
                    {"name": str(run), "params": run.params, "metric": values_by_key[key][run.pk]}
                    for run in runs
                ],
                param_keys,
                key,
                lower_is_better=selectors.metric_is_lower_better(key),
            ),
        }
        for index, key in enumerate(chart_keys)
    ]
    context = {
        "runs": runs,
        "params": comparison["params"],
        "metrics": comparison["metrics"],
        "tags": comparison["tags"],
        "curve_charts": curve_charts,
        "parcoords_charts": parcoords_charts,
        "hidden_chart_count": len(shared_keys) - len(chart_keys),
        "run_ids": ",".join(str(run.pk) for run in runs),
    }
    return render(request, "training/compare.html", context)
