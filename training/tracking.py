"""Every write of experiment tracking: experiments, runs, params, tags, metric batches and artifacts.

Services take `user=None` only when called by Studio itself (a job runner, a beat task); every API
view passes the caller, who is checked with `projects.access.require` like anywhere else.
"""

import hashlib
import math
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from studio.audit.services import audit_record
from studio.errors import ApplicationError, NotFound
from studio.projects import events
from studio.projects.access import require
from studio.storage import clean_artifact_name
from training.models import (
    VALUE_PREFIX_CHARS,
    Artifact,
    Experiment,
    LatestMetric,
    Metric,
    Run,
    RunParam,
    RunSource,
    RunStatus,
    RunTag,
)

WRITE = "training.run"
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-./: ]+")  # MLflow's characters, plus ':'
MAX_KEY_CHARS = 250
MAX_PARAM_VALUE_CHARS = 6000
MAX_TAG_VALUE_CHARS = 5000
MAX_KEYS_PER_CALL = 1000
MAX_POINTS_PER_BATCH = 10_000
LIVE_POINTS_PER_EVENT = 500  # one websocket message stays small even for a 10k-point batch
INSERT_BATCH_ROWS = 2000
MAX_STEP = 2**62
MAX_NAME_CHARS = 200
ARTIFACT_CHUNK_BYTES = 1024 * 1024

_NON_FINITE_IN = {
    "nan": math.nan,
    "NaN": math.nan,
    "inf": math.inf,
    "Infinity": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "-Infinity": -math.inf,
}

# Which status may follow which. Terminal statuses never change; a lost run may be picked up again.
TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.STOPPED}),
    RunStatus.RUNNING: frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.LOST}),
    RunStatus.LOST: frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.STOPPED}),
    RunStatus.FINISHED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.STOPPED: frozenset(),
}


def _require(user, project) -> None:
    if user is not None:
        require(user=user, project=project, action=WRITE)


def _invalid(message: str, field: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": field})


def clean_key(key: Any, *, field: str = "key") -> str:
    """Return `key` if it is a valid param, tag or metric key, else raise naming the field."""
    if not isinstance(key, str) or not key:
        raise _invalid(f"{field}: a key must be a non-empty string.", field)
    if len(key) > MAX_KEY_CHARS:
        raise _invalid(f"{field}: a key has at most {MAX_KEY_CHARS} characters.", field)
    if not KEY_PATTERN.fullmatch(key):
        raise _invalid(f"{field}: {key[:60]!r} may use only letters, digits, spaces and _ - . / :", field)
    if key != key.strip() or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise _invalid(
            f"{field}: {key[:60]!r} must not start/end with spaces or have empty or dot parts.", field
        )
    return key


def _clean_name(name: Any, *, field: str = "name", required: bool = True) -> str:
    name = (name or "").strip() if isinstance(name, str) or name is None else None
    if name is None:
        raise _invalid(f"{field}: expected a string.", field)
    if required and not name:
        raise _invalid(f"{field}: give it a name.", field)
    if len(name) > MAX_NAME_CHARS:
        raise _invalid(f"{field}: at most {MAX_NAME_CHARS} characters.", field)
    if any(character in name for character in "\x00\r\n"):
        raise _invalid(f"{field}: a name cannot contain NUL or line breaks.", field)
    return name


def stringify(value: Any) -> str:
    """Params and tags are strings, as in MLflow: 0.01 → '0.01', True → 'True'."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    import json

    return json.dumps(value, sort_keys=True, default=str)


def number_or_none(text: str) -> float | None:
    """The float a param reads as ('0.01', '1e-5', '32'), None for anything else or non-finite."""
    if not text or len(text) > 64 or "_" in text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def json_number(value: float | None) -> float | str | None:
    """A float for JSON: NaN (stored as NULL) → None, ±inf → 'Infinity' / '-Infinity'."""
    if value is None or value != value:
        return None
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _lock(run: Run) -> Run:
    """Lock the run's row: batches, params and status changes of one run go one at a time."""
    locked = Run.objects.select_for_update().filter(pk=run.pk).first()
    if locked is None:
        raise NotFound("No such run.")
    return locked


# --- experiments ---------------------------------------------------------------------------------


@transaction.atomic
def experiment_create(
    *, user, project, name: str, description: str = "", ip: str | None = None
) -> Experiment:
    _require(user, project)
    name = _clean_name(name)
    if Experiment.objects.filter(project=project, name=name).exists():
        raise ApplicationError(
            f"name: an experiment called {name!r} exists already.",
            code="name_taken",
            status=409,
            extra={"field": "name"},
        )
    experiment = Experiment(
        project=project, name=name, description=description or "", created_by=_user_or_none(user)
    )
    experiment.full_clean()
    experiment.save()
    audit_record(user=user, project=project, action="experiment.create", target=experiment, ip=ip)
    return experiment


def experiment_get_or_create(*, user, project, name: str, ip: str | None = None) -> Experiment:
    """The project's experiment called `name`, created (and audited) when it does not exist yet."""
    _require(user, project)
    name = _clean_name(name, field="experiment")
    existing = Experiment.objects.filter(project=project, name=name).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return experiment_create(user=user, project=project, name=name, ip=ip)
    except (ApplicationError, IntegrityError):  # created meanwhile by a concurrent run
        existing = Experiment.objects.filter(project=project, name=name).first()
        if existing is None:
            raise
        return existing


def _user_or_none(user):
    return user if getattr(user, "pk", None) else None


# --- runs ----------------------------------------------------------------------------------------


@transaction.atomic
def run_create(
    *,
    user,
    project,
    experiment: Experiment | str,
    name: str = "",
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    dataset_version=None,
    parent: Run | None = None,
    source: str = RunSource.SDK,
    trainer: str = "",
    device: str = "",
    worker_host: str = "",
    status: str = RunStatus.RUNNING,
    ip: str | None = None,
) -> Run:
    """Create a run (queued for a job, running for the SDK), with its first params and tags.

    `experiment` is an Experiment or a name (the experiment is made, in the same transaction, if new).
    """
    _require(user, project)
    if isinstance(experiment, str):
        experiment = experiment_get_or_create(user=user, project=project, name=experiment, ip=ip)
    if experiment.project_id != project.pk:
        raise NotFound("No such experiment in this project.")
    if dataset_version is not None and dataset_version.dataset.project_id != project.pk:
        raise NotFound("No such dataset version in this project.")
    if parent is not None and parent.project_id != project.pk:
        raise NotFound("No such parent run in this project.")
    if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise _invalid("status: a new run is queued or running.", "status")
    if source not in RunSource.values:
        raise _invalid(f"source: choose one of {', '.join(RunSource.values)}.", "source")
    now = timezone.now()
    run = Run(
        project=project,
        experiment=experiment,
        name=_clean_name(name, required=False),
        status=status,
        dataset_version=dataset_version,
        parent=parent,
        source=source,
        trainer=trainer or "",
        device=device or "",
        worker_host=worker_host or "",
        started_at=now if status == RunStatus.RUNNING else None,
        created_by=_user_or_none(user),
        created_at=now,
    )
    run.full_clean()
    run.save()
    if not run.name:
        run.name = f"run-{run.pk}"
        Run.objects.filter(pk=run.pk).update(name=run.name)
    if params:
        _params_add(run, params)
    if tags:
        _tags_set(run, tags)
    audit_record(
        user=user,
        project=project,
        action="run.create",
        target=run,
        ip=ip,
        data={"experiment": experiment.name, "source": source},
    )
    _publish_status(run)
    return run


@transaction.atomic
def run_log_params(*, user, run: Run, params: Mapping[str, Any]) -> dict[str, str]:
    """Log params; a key logged before keeps its value (a different one is refused, as in MLflow)."""
    _require(user, run.project)
    run = _lock(run)
    _params_add(run, params)
    return run.params


def _params_add(run: Run, params: Mapping[str, Any]) -> None:
    if not isinstance(params, Mapping):
        raise _invalid("params: expected an object of key → value.", "params")
    if len(params) > MAX_KEYS_PER_CALL:
        raise _invalid(f"params: at most {MAX_KEYS_PER_CALL} per call.", "params")
    new: dict[str, str] = {}
    for key, value in params.items():
        clean_key(key, field=f"params.{key}")
        text = stringify(value)
        if len(text) > MAX_PARAM_VALUE_CHARS:
            raise _invalid(f"params.{key}: a value has at most {MAX_PARAM_VALUE_CHARS} characters.", "params")
        if "\x00" in text:
            raise _invalid(f"params.{key}: a value cannot contain NUL.", "params")
        logged = run.params.get(key)
        if logged is None:
            new[key] = text
        elif logged != text:
            raise ApplicationError(
                f"params.{key}: params cannot change once logged; it is {logged[:100]!r}, "
                f"not {text[:100]!r}. Start a new run to try another value.",
                code="param_immutable",
                status=409,
                extra={"field": f"params.{key}", "logged": logged[:1000]},
            )
    if not new:
        return
    RunParam.objects.bulk_create(
        [
            RunParam(
                run=run,
                key=key,
                value=text,
                value_prefix=text[:VALUE_PREFIX_CHARS],
                value_number=number_or_none(text),
            )
            for key, text in new.items()
        ]
    )
    run.params = {**run.params, **new}
    Run.objects.filter(pk=run.pk).update(params=run.params)


@transaction.atomic
def run_set_tags(*, user, run: Run, tags: Mapping[str, Any]) -> dict[str, str]:
    """Set tags (a value of None removes the tag); tags may change, unlike params."""
    _require(user, run.project)
    run = _lock(run)
    _tags_set(run, tags)
    return run.tags


def _tags_set(run: Run, tags: Mapping[str, Any]) -> None:
    if not isinstance(tags, Mapping):
        raise _invalid("tags: expected an object of key → value.", "tags")
    if len(tags) > MAX_KEYS_PER_CALL:
        raise _invalid(f"tags: at most {MAX_KEYS_PER_CALL} per call.", "tags")
    merged = dict(run.tags)
    changed: dict[str, str | None] = {}
    for key, value in tags.items():
        clean_key(key, field=f"tags.{key}")
        text = None if value is None else stringify(value)
        if text is not None and len(text) > MAX_TAG_VALUE_CHARS:
            raise _invalid(f"tags.{key}: a value has at most {MAX_TAG_VALUE_CHARS} characters.", "tags")
        if text is not None and "\x00" in text:
            raise _invalid(f"tags.{key}: a value cannot contain NUL.", "tags")
        if merged.get(key) != text:
            changed[key] = text
            if text is None:
                merged.pop(key, None)
            else:
                merged[key] = text
    if not changed:
        return
    RunTag.objects.filter(run=run, key__in=list(changed)).delete()
    RunTag.objects.bulk_create(
        [
            RunTag(run=run, key=key, value=text, value_prefix=text[:VALUE_PREFIX_CHARS])
            for key, text in changed.items()
            if text is not None
        ]
    )
    run.tags = merged
    Run.objects.filter(pk=run.pk).update(tags=merged)


@transaction.atomic
def run_update(
    *,
    user,
    run: Run,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    status: str | None = None,
    device: str | None = None,
    worker_host: str | None = None,
    ip: str | None = None,
) -> Run:
    """Rename, retag, record where it runs and/or move the run to another status (guarded)."""
    _require(user, run.project)
    run = _lock(run)
    fields = []
    if name is not None:
        run.name = _clean_name(name)
        fields.append("name")
    for field, value in (("device", device), ("worker_host", worker_host)):
        if value is not None:
            setattr(run, field, value)
            fields.append(field)
    if fields:
        run.full_clean(exclude=["params", "tags"])
        run.save(update_fields=fields)
    if tags is not None:
        _tags_set(run, tags)
    if status is not None:
        run = run_update_status(user=user, run=run, status=status, ip=ip)
    elif fields:
        _publish_status(run)
    return run


@transaction.atomic
def run_update_status(*, user, run: Run, status: str, error: str = "", ip: str | None = None) -> Run:
    """Move a run to `status` if its current one allows it; the same status again is a no-op.

    Starting sets `started_at` (once); finishing, failing or stopping sets `ended_at` and is audited.
    """
    _require(user, run.project)
    if status not in RunStatus.values:
        raise _invalid(f"status: choose one of {', '.join(RunStatus.values)}.", "status")
    run = _lock(run)
    if run.status == status:
        return run
    if status not in TRANSITIONS[run.status]:
        raise ApplicationError(
            f"status: a {run.status} run cannot become {status}.",
            code="bad_transition",
            status=409,
            extra={"field": "status", "from": run.status, "to": status},
        )
    now = timezone.now()
    previous = run.status
    run.status = status
    if status == RunStatus.RUNNING:
        run.started_at = run.started_at or now
        run.ended_at = None
    elif status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED):
        run.ended_at = now
    run.save(update_fields=["status", "started_at", "ended_at"])
    if run.is_terminal:
        data = {"status": status, "from": previous, "duration_s": run.duration_s}
        if error:
            data["error"] = error[:1000]
        audit_record(user=user, project=run.project, action="run.finish", target=run, ip=ip, data=data)
        _evaluate_insights_after_commit(run)
    _publish_status(run)
    return run


def _evaluate_insights_after_commit(run: Run) -> None:
    # After the commit and robust: a fault in the debugger's rules must not undo the run's end.
    from training.insights import run_insights_evaluate

    transaction.on_commit(lambda: run_insights_evaluate(run=run), robust=True)


@transaction.atomic
def run_delete(*, user, run: Run, ip: str | None = None) -> None:
    """Delete a run with its metrics and artifacts (files removed after commit)."""
    from datasets import files

    _require(user, run.project)
    project, prefix, label = run.project, run.storage_prefix, str(run)
    run_id = run.pk
    audit_record(
        user=user,
        project=project,
        action="run.delete",
        target=run,
        ip=ip,
        data={"run": label, "experiment": run.experiment.name},
    )
    run.delete()  # metrics go by a fast DELETE … WHERE run_id (no row is loaded)
    transaction.on_commit(lambda: files.delete_prefix(prefix))
    transaction.on_commit(
        lambda: events.publish(
            project_id=project.pk, kind="run_status", payload={"id": run_id, "status": "deleted"}
        )
    )


def run_payload(run: Run) -> dict:
    return {
        "id": run.pk,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "duration_s": run.duration_s,
        "device": run.device,
        "worker_host": run.worker_host,
    }


def _publish_status(run: Run) -> None:
    payload = run_payload(run)
    project_id = run.project_id
    transaction.on_commit(lambda: events.publish(project_id=project_id, kind="run_status", payload=payload))


# --- metrics -------------------------------------------------------------------------------------


def _point_value(value: Any, index: int) -> float:
    if type(value) is float or (type(value) is int):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE_IN:
        return _NON_FINITE_IN[value]
    raise _invalid(
        f"metrics[{index}].value: expected a number (or 'NaN', 'Infinity', '-Infinity'), got {value!r:.40}.",
        "metrics",
    )


def _clean_points(points: Any, default_ms: int) -> list[tuple[str, int, float | None, int]]:
    """Validate a batch; return (key, step, value or None for NaN, timestamp_ms) tuples."""
    if not isinstance(points, list):
        raise _invalid("metrics: expected a list of {key, value, step, timestamp} objects.", "metrics")
    if len(points) > MAX_POINTS_PER_BATCH:
        raise _invalid(
            f"metrics: at most {MAX_POINTS_PER_BATCH} points per batch, got {len(points)}.", "metrics"
        )
    checked_keys: set[str] = set()
    rows = []
    for index, point in enumerate(points):
        if not isinstance(point, dict):
            raise _invalid(f"metrics[{index}]: expected an object with key and value.", "metrics")
        key = point.get("key")
        if key not in checked_keys:
            clean_key(key, field=f"metrics[{index}].key")
            checked_keys.add(key)
        value = _point_value(point.get("value"), index)
        step = point.get("step", 0)
        if step is None:
            step = 0
        if type(step) is not int or not -MAX_STEP <= step <= MAX_STEP:
            raise _invalid(f"metrics[{index}].step: expected an integer, got {step!r:.40}.", "metrics")
        timestamp = point.get("timestamp")
        if timestamp is None:
            timestamp = default_ms
        elif type(timestamp) is not int or not 0 <= timestamp <= MAX_STEP:
            raise _invalid(
                f"metrics[{index}].timestamp: expected milliseconds since 1970 (an integer), "
                f"got {timestamp!r:.40}.",
                "metrics",
            )
        rows.append((key, step, None if value != value else value, timestamp))
    return rows


def run_log_metrics(*, user, run: Run, metrics: list[dict]) -> int:
    """Store a batch of metric points in one transaction and send one live event; return the count.

    Each point is {key, value, step (default 0), timestamp (ms, default now)}. `LatestMetric` keeps
    the value at the highest step of every key current for search and ordering. A run in any status
    takes points: late points of a stopped job are kept rather than lost.
    """
    _require(user, run.project)
    rows = _clean_points(metrics, _now_ms())
    if not rows:
        return 0
    with transaction.atomic():
        locked = _lock(run)
        _insert_points(locked.pk, rows)
        _merge_latest(locked.pk, rows)
        _publish_points(run, rows)
    return len(rows)


_INSERT_METRIC_SQL = (
    'INSERT INTO "training_metric" ("run_id", "key", "step", "value", "timestamp_ms") '
    "VALUES (%s, %s, %s, %s, %s)"
)
_COPY_METRIC_SQL = 'COPY "training_metric" ("run_id", "key", "step", "value", "timestamp_ms") FROM STDIN'


def _insert_points(run_id: int, rows: list[tuple]) -> None:
    # Plain SQL, measured: bulk_create spends 5× the database's own time building model instances and
    # SQL. SQLite reuses one prepared statement (executemany); PostgreSQL takes the rows by COPY
    # (psycopg's client-side executemany makes a round trip per row, a long VALUES list is slow to bind).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(_COPY_METRIC_SQL) as copy:
                for row in rows:
                    copy.write_row((run_id, *row))
            return
        for start in range(0, len(rows), INSERT_BATCH_ROWS):
            chunk = rows[start : start + INSERT_BATCH_ROWS]
            cursor.executemany(_INSERT_METRIC_SQL, [(run_id, *row) for row in chunk])


def _merge_latest(run_id: int, rows: list[tuple]) -> None:
    summary: dict[str, list] = {}  # key → [latest row, min step, count]
    for row in rows:
        key, step, _value, ts = row
        entry = summary.get(key)
        if entry is None:
            summary[key] = [row, step, 1]
            continue
        latest = entry[0]
        if (step, ts) >= (latest[1], latest[3]):
            entry[0] = row
        if step < entry[1]:
            entry[1] = step
        entry[2] += 1
    existing = {item.key: item for item in LatestMetric.objects.filter(run_id=run_id, key__in=list(summary))}
    created, updated = [], []
    for key, ((_key, step, value, ts), min_step, count) in summary.items():
        current = existing.get(key)
        if current is None:
            created.append(
                LatestMetric(
                    run_id=run_id,
                    key=key,
                    value=value,
                    step=step,
                    timestamp_ms=ts,
                    min_step=min_step,
                    point_count=count,
                )
            )
            continue
        if (step, ts) >= (current.step, current.timestamp_ms):
            current.value, current.step, current.timestamp_ms = value, step, ts
        current.min_step = min(current.min_step, min_step)
        current.point_count += count
        updated.append(current)
    if created:
        LatestMetric.objects.bulk_create(created)
    if updated:
        LatestMetric.objects.bulk_update(
            updated, ["value", "step", "timestamp_ms", "min_step", "point_count"]
        )


def live_points(rows: list[tuple], cap: int = LIVE_POINTS_PER_EVENT) -> list[dict]:
    """At most `cap` points for the live chart, spread evenly per key; each key's last point is kept."""
    if len(rows) > cap:
        by_key: dict[str, list[tuple]] = {}
        for row in rows:
            by_key.setdefault(row[0], []).append(row)
        share = max(1, cap // len(by_key))
        kept = []
        for key_rows in list(by_key.values())[:cap]:
            if len(key_rows) > share:
                stride = (len(key_rows) - 1) / max(1, share - 1) if share > 1 else 0
                picks = (
                    sorted({round(i * stride) for i in range(share)}) if share > 1 else [len(key_rows) - 1]
                )
                key_rows = [key_rows[i] for i in picks]
            kept.extend(key_rows)
        rows = kept
    return [
        {"key": key, "step": step, "value": json_number(value), "timestamp": ts}
        for key, step, value, ts in rows
    ]


def _publish_points(run: Run, rows: list[tuple]) -> None:
    payload = {"run_id": run.pk, "count": len(rows), "points": live_points(rows)}
    project_id = run.project_id
    transaction.on_commit(lambda: events.publish(project_id=project_id, kind="run_metrics", payload=payload))


@transaction.atomic
def run_metrics_truncate(*, user, run: Run, after_step: int) -> int:
    """Delete the points above `after_step` (a job resumed from the checkpoint of that step).

    Returns how many points were removed; the latest values of the affected keys are recomputed.
    """
    _require(user, run.project)
    run = _lock(run)
    doomed = Metric.objects.filter(run=run, step__gt=after_step)
    keys = list(doomed.order_by().values_list("key", flat=True).distinct())
    removed, _by_model = doomed.delete() if keys else (0, {})
    for key in keys:
        points = Metric.objects.filter(run=run, key=key)
        last = points.order_by("-step", "-timestamp_ms", "-id").first()
        if last is None:
            LatestMetric.objects.filter(run=run, key=key).delete()
            continue
        extent = points.aggregate(count=Count("id"), min_step=Min("step"), max_step=Max("step"))
        LatestMetric.objects.filter(run=run, key=key).update(
            value=last.value,
            step=last.step,
            timestamp_ms=last.timestamp_ms,
            min_step=extent["min_step"],
            point_count=extent["count"],
        )
    return removed


# --- artifacts -----------------------------------------------------------------------------------


def clean_artifact_path(path: Any) -> str:
    if not isinstance(path, str) or not path.strip():
        raise _invalid("path: say where the artifact goes (e.g. ?path=model/weights.safetensors).", "path")
    try:
        cleaned = clean_artifact_name(path)
    except SuspiciousFileOperation as error:
        raise _invalid(f"path: {error}", "path") from None
    if len(cleaned) > 500:
        raise _invalid("path: at most 500 characters.", "path")
    return cleaned


def _receive(stream, *, expected_bytes: int | None, max_bytes: int) -> tuple[Path, str, int]:
    """Stream a body to a work file, hashing it; an oversized or interrupted body leaves nothing."""
    from datasets.files import work_dir

    if expected_bytes is not None and expected_bytes > max_bytes:
        raise ApplicationError(
            f"The artifact ({expected_bytes} bytes) is over the limit of {max_bytes} bytes.",
            code="too_large",
            status=413,
        )
    target = work_dir() / f"artifact-{uuid.uuid4().hex}"
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(ARTIFACT_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise ApplicationError(
                        f"The artifact is over the limit of {max_bytes} bytes.", code="too_large", status=413
                    )
                digest.update(chunk)
                out.write(chunk)
        if expected_bytes is not None and size != expected_bytes:
            raise ApplicationError(
                f"The upload was interrupted ({size} of {expected_bytes} bytes arrived); nothing was kept.",
                code="incomplete_upload",
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target, digest.hexdigest(), size


def artifact_upload(
    *, user, run: Run, path: str, stream, expected_bytes: int | None = None, ip: str | None = None
) -> Artifact:
    """Store a file under the run (`projects/<p>/runs/<run>/artifacts/<path>`), replacing one at that path.

    The body is streamed to disk before any transaction starts, so a slow upload holds no lock.
    """
    from datasets import files

    _require(user, run.project)
    path = clean_artifact_path(path)
    received, sha256, size = _receive(
        stream, expected_bytes=expected_bytes, max_bytes=settings.STUDIO_MAX_UPLOAD_BYTES
    )
    try:
        storage_name = files.store_file(f"{run.storage_prefix}/artifacts/{path}", received)
    finally:
        received.unlink(missing_ok=True)
    with transaction.atomic():
        _lock(run)
        artifact, _created = Artifact.objects.update_or_create(
            run=run,
            path=path,
            defaults={
                "size_bytes": size,
                "sha256": sha256,
                "storage_name": storage_name,
                "created_by": _user_or_none(user),
                "created_at": timezone.now(),
            },
        )
    payload = {"run_id": run.pk, "path": path, "size_bytes": size}
    transaction.on_commit(
        lambda: events.publish(project_id=run.project_id, kind="run_artifact", payload=payload)
    )
    return artifact


def artifact_store_file(*, user, run: Run, path: str, local_path: Path) -> Artifact:
    """Store a local file as an artifact of the run (for trainers writing their model in the worker)."""
    with Path(local_path).open("rb") as handle:
        return artifact_upload(
            user=user, run=run, path=path, stream=handle, expected_bytes=Path(local_path).stat().st_size
        )
