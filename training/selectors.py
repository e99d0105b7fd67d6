"""Reads of experiment tracking, always scoped to a project the caller belongs to."""

import json
import math
import re

from django.db import connection, transaction
from django.db.models import Count, Max, Prefetch, QuerySet

from studio.errors import ApplicationError, NotFound
from training import search
from training.job_models import RunLogChunk, TrainingJob
from training.models import Artifact, Experiment, LatestMetric, Metric, Run, RunInsight

MAX_COMPARE_RUNS = 100
MIN_HISTORY_POINTS = 10
MAX_HISTORY_POINTS = 10_000


def experiment_list(*, project) -> QuerySet[Experiment]:
    return (
        Experiment.objects.filter(project=project)
        .annotate(run_count=Count("runs"), last_run_at=Max("runs__created_at"))
        .order_by("-created_at", "-id")
    )


def experiment_get(*, project, experiment_id: int | None = None, name: str | None = None) -> Experiment:
    experiments = experiment_list(project=project)
    experiment = (
        experiments.filter(pk=experiment_id).first()
        if experiment_id is not None
        else experiments.filter(name=name).first()
    )
    if experiment is None:
        raise NotFound("No such experiment in this project.")
    return experiment


def experiment_by_reference(*, project, reference: str) -> Experiment:
    """An experiment by id ('12') or by exact name ('churn')."""
    reference = reference.strip()
    if reference.isdigit():
        return experiment_get(project=project, experiment_id=int(reference))
    return experiment_get(project=project, name=reference)


def run_list(
    *, project, filter: str = "", order_by: str = "", experiment: Experiment | None = None
) -> QuerySet:
    """Ids of the project's runs matching the filter language of `training.search`, in `order_by` order.

    Ids only: sorting narrow rows and then loading one page by id (`runs_by_ids`) is measured 2-3×
    faster than sorting whole runs (their params JSON) on PostgreSQL.
    """
    runs = Run.objects.filter(project=project)
    if experiment is not None:
        runs = runs.filter(experiment=experiment)
    runs = runs.filter(search.parse_filter(filter))
    return search.apply_order(runs, order_by).values_list("id", flat=True)


def runs_by_ids(*, project, ids: list[int]) -> list[Run]:
    """The runs with these ids, in this order, each with `metric_values` ({key: latest value})."""
    found = Run.objects.filter(project=project, pk__in=ids).select_related("experiment", "created_by")
    by_id = {run.pk: run for run in found}
    runs = [by_id[run_id] for run_id in ids if run_id in by_id]
    values: dict[int, dict[str, float | None]] = {run.pk: {} for run in runs}
    # Plain rows rather than a prefetch: model instances for 100 runs × 10 metrics cost more than the
    # search itself.
    rows = LatestMetric.objects.filter(run_id__in=list(values)).order_by("key")
    for run_id, key, value in rows.values_list("run_id", "key", "value"):
        values[run_id][key] = value
    for run in runs:
        run.metric_values = values[run.pk]
    return runs


def run_get(*, project, run_id: int) -> Run:
    """The run (with its project and experiment), for views that act on it or read one of its parts."""
    run = Run.objects.select_related("project", "experiment").filter(pk=run_id, project=project).first()
    if run is None:
        raise NotFound("No such run in this project.")
    return run


def run_detail(*, project, run_id: int) -> Run:
    """The run with its lineage and `metric_values`/`latest_metrics` for its page or API answer."""
    run = (
        Run.objects.select_related("experiment", "dataset_version__dataset", "parent", "created_by")
        .prefetch_related(Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")))
        .filter(pk=run_id, project=project)
        .first()
    )
    if run is None:
        raise NotFound("No such run in this project.")
    run.metric_values = {item.key: item.value for item in run.latest_metrics.all()}
    return run


def run_metric_keys(*, run: Run) -> QuerySet[LatestMetric]:
    return LatestMetric.objects.filter(run=run).order_by("key")


def metric_history(*, run: Run, key: str, max_points: int = 1000) -> dict:
    """A metric's points for a chart, at most `max_points` of them.

    Longer series are downsampled in SQL: the steps are cut into `max_points / 2` equal buckets and each
    bucket gives its minimum and its maximum, so a spike survives however long the run. One aggregate
    over the covering index (run, key, step, value): ~25 ms for 100k points on SQLite and PostgreSQL.
    """
    if not MIN_HISTORY_POINTS <= max_points <= MAX_HISTORY_POINTS:
        raise ApplicationError(
            f"max_points: between {MIN_HISTORY_POINTS} and {MAX_HISTORY_POINTS}.",
            extra={"field": "max_points"},
        )
    latest = LatestMetric.objects.filter(run=run, key=key).first()
    if latest is None:
        raise NotFound(f"Run {run.pk} has no metric {key!r}.")
    body = {"key": key, "total_points": latest.point_count, "downsampled": False}
    if latest.point_count <= max_points:
        points = Metric.objects.filter(run=run, key=key).order_by("step", "timestamp_ms", "id")
        steps, values, stamps = [], [], []
        for step, value, stamp in points.values_list("step", "value", "timestamp_ms"):
            steps.append(step)
            values.append(value)
            stamps.append(stamp)
        return {**body, "steps": steps, "values": values, "timestamps": stamps}
    return {**body, "downsampled": True, **_min_max_buckets(run.pk, key, latest, max_points)}


# Static SQL (ANSI-quoted, the same on SQLite and PostgreSQL); both databases divide integers exactly.
_BUCKETS_SQL = (
    'SELECT ("step" - %s) / %s AS bucket, MIN("value"), MAX("value"), MIN("step"), MAX("step"), '
    'MIN("timestamp_ms"), MAX("timestamp_ms") FROM "training_metric" '
    'WHERE "run_id" = %s AND "key" = %s GROUP BY bucket ORDER BY bucket'
)


def _min_max_buckets(run_id: int, key: str, latest: LatestMetric, max_points: int) -> dict:
    buckets = max(1, max_points // 2)
    width = max(1, math.ceil((latest.step - latest.min_step + 1) / buckets))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Sorting 100k rows for GROUP BY spills to disk at the default work_mem, and a large
            # estimated cost would switch on JIT compiling (+100-200 ms): measured, both off here.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(_BUCKETS_SQL, [latest.min_step, width, run_id, key])
        rows = cursor.fetchall()
    middles = [None if low is None else (low + high) / 2 for _b, low, high, *_rest in rows]
    steps, values, stamps = [], [], []
    for index, (_bucket, low, high, first_step, last_step, first_ms, last_ms) in enumerate(rows):
        if low is None or low == high or first_step == last_step:
            steps.append(first_step)
            values.append(low)
            stamps.append(first_ms)
            continue
        # The bucket's two extremes, in the order the curve runs through them: rising → min first.
        before = next((m for m in reversed(middles[max(0, index - 2) : index]) if m is not None), None)
        after = next((m for m in middles[index + 1 : index + 3] if m is not None), None)
        rising = (after if after is not None else high) >= (before if before is not None else low)
        steps.extend((first_step, last_step))
        values.extend((low, high) if rising else (high, low))
        stamps.extend((first_ms, last_ms))
    return {"steps": steps, "values": values, "timestamps": stamps, "bucket_steps": width}


def artifact_list(*, run: Run) -> QuerySet[Artifact]:
    return Artifact.objects.filter(run=run).order_by("path")


def artifact_get(*, run: Run, path: str) -> Artifact:
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        raise NotFound(f"Run {run.pk} has no artifact {path!r}.")
    return artifact


def runs_compare(*, project, run_ids: list[int]) -> dict:
    """Params, tags and latest metrics of the runs side by side; `differs` marks what sets them apart."""
    if not run_ids:
        raise ApplicationError("ids: name the runs to compare (e.g. ?ids=3,4).", extra={"field": "ids"})
    if len(run_ids) > MAX_COMPARE_RUNS:
        raise ApplicationError(f"ids: at most {MAX_COMPARE_RUNS} runs.", extra={"field": "ids"})
    found = {
        run.pk: run
        for run in Run.objects.filter(project=project, pk__in=run_ids)
        .select_related("experiment")
        .prefetch_related("latest_metrics")
    }
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise NotFound(f"No run {missing[0]} in this project.")
    runs = [found[run_id] for run_id in dict.fromkeys(run_ids)]
    metrics = {run.pk: {item.key: item.value for item in run.latest_metrics.all()} for run in runs}
    return {
        "runs": runs,
        "params": _side_by_side(runs, {run.pk: run.params for run in runs}),
        "metrics": _side_by_side(runs, metrics),
        "tags": _side_by_side(runs, {run.pk: run.tags for run in runs}),
    }


def _side_by_side(runs: list[Run], values_by_run: dict[int, dict]) -> list[dict]:
    keys = sorted({key for values in values_by_run.values() for key in values})
    rows = []
    for key in keys:
        values = {run.pk: values_by_run[run.pk].get(key) for run in runs}
        distinct = {repr(value) for value in values.values()}
        rows.append({"key": key, "values": values, "differs": len(distinct) > 1})
    return rows


# --- training jobs -------------------------------------------------------------------------------

MAX_LOG_CHUNKS = 1000


def training_job_list(*, project) -> QuerySet[TrainingJob]:
    return (
        TrainingJob.objects.filter(project=project)
        .select_related("run", "created_by")
        .order_by("-created_at", "-id")
    )


def training_job_get(*, project, job_id: int) -> TrainingJob:
    job = training_job_list(project=project).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such training job in this project.")
    return job


def run_log_chunks(*, run: Run, after: int = 0, limit: int = MAX_LOG_CHUNKS) -> list[RunLogChunk]:
    """The run's log chunks after chunk id `after`, oldest first (for tailing a log)."""
    return list(RunLogChunk.objects.filter(run=run, pk__gt=after).order_by("id")[:limit])


# Compare ------------------------------------------------------------------------------------------
# The compare page (training/views/compare.py) reads through these; the comparison itself is
# `runs_compare` above, shared with the API (`runs/compare?ids=`).

COMPARE_PAGE_MAX_RUNS = 10  # a table or a chart with more columns/traces stops being readable
COMPARE_MAX_CHARTS = 12
# The direction rule, kept simple and stated on the page: a metric whose key names a loss or an
# error is better lower; every other metric (accuracy, f1, auc, r2, ...) is better higher.
LOWER_IS_BETTER_WORDS = ("loss", "error", "mse", "mae", "rmse")


def metric_is_lower_better(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    return any(word in name for word in LOWER_IS_BETTER_WORDS)


def compare_best_run_ids(values: dict[int, float | None], *, lower_is_better: bool) -> set[int]:
    """The run(s) holding the best value; none when fewer than two runs have a value or all are equal."""
    finite = {run_id: value for run_id, value in values.items() if value is not None and math.isfinite(value)}
    if len(finite) < 2 or len(set(finite.values())) == 1:
        return set()
    best = min(finite.values()) if lower_is_better else max(finite.values())
    return {run_id for run_id, value in finite.items() if value == best}


def compare_page(*, project, run_ids: list[int]) -> dict:
    """`runs_compare` shaped for the page: rows with one cell per run (in run order), best metrics marked.

    System metrics (`system/*`) are left out: they describe the machine, not the model.
    `shared_metric_keys` are the model metrics every run has, the ones worth overlaying.
    """
    comparison = runs_compare(project=project, run_ids=run_ids)
    runs = comparison["runs"]

    def cells(row: dict, best: set[int] = frozenset()) -> list[dict]:
        return [{"value": row["values"][run.pk], "is_best": run.pk in best} for run in runs]

    metrics = []
    for row in comparison["metrics"]:
        if row["key"].startswith("system/"):
            continue
        lower = metric_is_lower_better(row["key"])
        best = compare_best_run_ids(row["values"], lower_is_better=lower)
        metrics.append({**row, "lower_is_better": lower, "cells": cells(row, best)})
    shared = [row["key"] for row in metrics if all(value is not None for value in row["values"].values())]
    return {
        "runs": runs,
        "params": [{**row, "cells": cells(row)} for row in comparison["params"]],
        "metrics": metrics,
        "tags": [{**row, "cells": cells(row)} for row in comparison["tags"]],
        "shared_metric_keys": _preferred_first(shared),
    }


def _preferred_first(keys: list[str]) -> list[str]:
    """Validation metrics first (what people compare runs on), then the rest, each alphabetically."""
    return sorted(keys, key=lambda key: (not key.startswith("val"), key))


def compare_metric_histories(*, runs: list[Run], key: str, max_points: int = 1000) -> list[dict]:
    """Each run's downsampled history of `key` (runs without it are left out), for an overlaid chart."""
    histories = []
    for run in runs:
        try:
            history = metric_history(run=run, key=key, max_points=max_points)
        except NotFound:  # deleted since the table was read
            continue
        histories.append({**history, "run_id": run.pk, "run_name": str(run)})
    return histories


# Debugger

CONFUSION_MATRIX_PATH = re.compile(r"^debugger/confusion_matrix/step-(\d{1,18})\.json$")
MAX_CONFUSION_MATRIX_BYTES = 8 * 1024 * 1024  # a 500-class matrix of counts is ~2 MB of JSON


def run_insight_list(*, run: Run) -> list[RunInsight]:
    """The run's insights, the most severe first."""
    from training.insights import sorted_insights

    return sorted_insights(RunInsight.objects.filter(run=run))


def confusion_matrix_steps(*, run: Run) -> list[int]:
    """The steps (epochs) that have a confusion matrix artifact, in order."""
    paths = Artifact.objects.filter(run=run, path__startswith="debugger/confusion_matrix/").values_list(
        "path", flat=True
    )
    return sorted(int(match.group(1)) for path in paths if (match := CONFUSION_MATRIX_PATH.match(path)))


def confusion_matrix_get(*, run: Run, step: int | None = None) -> dict:
    """One epoch's confusion matrix ({step, labels, matrix}); the latest when `step` is None."""
    from datasets import files

    steps = confusion_matrix_steps(run=run)
    if not steps:
        raise NotFound(f"Run {run.pk} has no confusion matrix.")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise NotFound(f"Run {run.pk} has no confusion matrix at step {step}.")
    artifact = artifact_get(run=run, path=f"debugger/confusion_matrix/step-{step:06d}.json")
    if artifact.size_bytes > MAX_CONFUSION_MATRIX_BYTES:
        raise ApplicationError(f"The confusion matrix of step {step} is larger than 8 MB.", code="too_large")
    try:
        body = json.loads(files.local_path(artifact.storage_name).read_text())
    except (OSError, ValueError):
        body = None
    labels = body.get("labels") if isinstance(body, dict) else None
    matrix = body.get("matrix") if isinstance(body, dict) else None
    is_valid = (
        isinstance(labels, list)
        and isinstance(matrix, list)
        and len(matrix) == len(labels)
        and all(isinstance(row, list) and len(row) == len(labels) for row in matrix)
        and all(type(count) is int and count >= 0 for row in matrix for count in row)
    )
    if not is_valid:
        raise ApplicationError(
            f"{artifact.path}: expected JSON with `labels` (n names) and `matrix` (n rows of n counts).",
            code="invalid_artifact",
            extra={"field": "step"},
        )
    return {"step": step, "labels": [str(label) for label in labels], "matrix": matrix, "steps": steps}


def metric_histories(*, run: Run, keys: list[str], max_points: int = 1000) -> dict[str, dict]:
    """The downsampled histories of those of `keys` the run has (missing keys are left out)."""
    histories = {}
    for key in keys:
        try:
            histories[key] = metric_history(run=run, key=key, max_points=max_points)
        except NotFound:
            continue
    return histories


# Studies ------------------------------------------------------------------------------------------


def study_list(*, project) -> QuerySet:
    from training.study_models import Study

    return (
        Study.objects.filter(project=project)
        .select_related("created_by")
        .annotate(trial_count=Count("trials"))
        .order_by("-created_at", "-id")
    )


def study_get(*, project, study_id: int):
    study = study_list(project=project).filter(pk=study_id).first()
    if study is None:
        raise NotFound("No such study in this project.")
    return study


def study_trials(*, study) -> list:
    return list(study.trials.select_related("job", "job__run").order_by("number"))


def study_best_trial(*, study, trials: list | None = None):
    """The complete trial with the best value (lowest or highest by the study's direction), or None."""
    from training.study_models import StudyDirection, TrialState

    trials = trials if trials is not None else study_trials(study=study)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE and trial.value is not None]
    if not complete:
        return None
    sign = -1 if study.direction == StudyDirection.MAXIMIZE else 1
    return min(complete, key=lambda trial: (sign * trial.value, trial.number))  # ties: the earliest


def study_intermediate_values(*, study) -> dict[int, dict[int, float]]:
    """Each trial's reported objective per step, from Optuna's tables: {trial number: {step: value}}."""
    from training.studies import optuna_study

    handle = optuna_study(study)
    return {trial.number: dict(trial.intermediate_values) for trial in handle.get_trials(deepcopy=False)}
