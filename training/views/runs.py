"""The training pages: the runs list (search, order, paging) and a run (live charts, logs, status).

The pages read through selectors; the browser talks to the JSON API (training/apis.py) for logs and
stopping a job, and follows the project's live events (studio/live.js) for metrics, logs and status.
"""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studio.core.pages import page, paginate
from studio.errors import ApplicationError, NotFound
from training import selectors
from training.charts import metric_figure, split_system
from training.job_models import JobStatus
from training.models import TERMINAL_STATUSES

RUNS_PER_PAGE = 50
LIST_METRIC_COLUMNS = 4
CHART_POINTS = 1000


@page("training.view")
@require_GET
def run_list(request, project_id):
    project = request.access.project
    filter_text = request.GET.get("filter", "").strip()[:4000]
    order_by = request.GET.get("order_by", "").strip()[:1000]
    error = ""
    runs, page_obj = [], None
    try:
        ids = selectors.run_list(project=project, filter=filter_text, order_by=order_by)
        page_obj = paginate(request, ids, per_page=RUNS_PER_PAGE)
        runs = selectors.runs_by_ids(project=project, ids=list(page_obj.object_list))
    except ApplicationError as error_:
        error = error_.message
    metric_keys = _list_metric_keys(runs, filter_text + " " + order_by)
    rows = [{"run": run, "metrics": [run.metric_values.get(key) for key in metric_keys]} for run in runs]
    context = {
        "page_obj": page_obj,
        "rows": rows,
        "metric_keys": metric_keys,
        "filter": filter_text,
        "order_by": order_by,
        "error": error,
    }
    return render(request, "training/runs.html", context)


def _list_metric_keys(runs, query: str) -> list[str]:
    """Up to 4 metric keys for the list's columns: those the query names, then val_*, then plain keys."""
    keys = {key for run in runs for key in run.metric_values if not key.startswith("system/")}

    def rank(key: str) -> tuple:
        return (f"metrics.{key}" not in query, "/" in key, not key.startswith("val_"), key)

    return sorted(keys, key=rank)[:LIST_METRIC_COLUMNS]


@page("training.view")
@require_GET
def run_detail(request, project_id, run_id):
    project = request.access.project
    try:
        run = selectors.run_detail(project=project, run_id=run_id)
    except NotFound:
        raise Http404 from None
    job = selectors.training_job_list(project=project).filter(run=run).first()
    keys = list(run.metric_values)
    figures = {}
    for key in keys:
        try:
            figures[key] = metric_figure(selectors.metric_history(run=run, key=key, max_points=CHART_POINTS))
        except NotFound:  # deleted meanwhile
            continue
    model_keys, system_keys = split_system(list(figures))
    charts = [{"key": key, "id": f"chart-{index}", "figure": figures[key]} for index, key in enumerate(keys)]
    by_key = {chart["key"]: chart for chart in charts if chart["key"] in figures}
    context = {
        "run": run,
        "job": job,
        "job_is_active": job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "run_is_final": run.status in TERMINAL_STATUSES,
        "params": sorted(run.params.items()),
        "tags": sorted(run.tags.items()),
        "artifacts": selectors.artifact_list(run=run),
        "metric_charts": [by_key[key] for key in model_keys],
        "system_charts": [by_key[key] for key in system_keys],
        "metric_values": sorted(run.metric_values.items()),
    }
    return render(request, "training/run.html", context)
