"""Experiment tracking from any Python process: runs with params, tags, metrics and artifacts.

with client.runs.start(experiment="churn", params={"lr": 0.01}) as run:
    for epoch in range(10):
        run.log_metrics({"loss": loss, "val_accuracy": accuracy}, step=epoch)
    run.log_artifact("model.safetensors")
frame = client.runs.list(experiment="churn", filter="metrics.val_accuracy > 0.9",
                         order_by="metrics.val_accuracy desc")   # params.*, metrics.*, tags.* columns

Metrics are buffered and sent by a background thread (every second, or at once when 5,000 points wait);
`flush()` and the end of the run wait until every point is stored. A run started by `start()` ends as
finished, or failed when the block raises (stopped on Ctrl-C).

Configured by the environment alone: STUDIO_URL, STUDIO_TOKEN and STUDIO_PROJECT make the client, and
STUDIO_RUN_ID makes `start()` attach to that run (a training job's) instead of creating one; the job,
not the script, then decides how the run ends.
"""

from __future__ import annotations

import atexit
import copy
import logging
import math
import os
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from studio_sdk._http import Transport
from studio_sdk.datasets import ProjectScope, _Context, _pandas
from studio_sdk.exceptions import StudioConnectionError, StudioError

if TYPE_CHECKING:
    import pandas

logger = logging.getLogger("studio_sdk")

RUN_ID_ENV = "STUDIO_RUN_ID"
DEFAULT_EXPERIMENT = "Default"
FLUSH_INTERVAL_S = 1.0
FLUSH_POINTS = 5_000
MAX_BATCH_POINTS = 10_000  # the server's limit per request
MAX_BUFFERED_POINTS = 1_000_000  # past this, log_metric waits for the sender (bounded memory)
SEND_ATTEMPTS = 5  # transient failures (connection, 5xx) are retried within one send: ~8 s in all
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0
LIST_PAGE_SIZE = 500
_KEY = re.compile(r"[A-Za-z0-9_\-./: ]+")
_RETRIED_STATUSES = {429, 502, 503, 504}
_TERMINAL = {"finished", "failed", "stopped"}


class MetricsNotSentError(StudioError):
    """Some metric points could not be stored; `unsent` says how many (they are kept for a retry)."""

    def __init__(self, message: str, *, unsent: int, cause: StudioError | None = None) -> None:
        super().__init__(
            message,
            getattr(cause, "status", None),
            getattr(cause, "code", None) or "metrics_not_sent",
            {"unsent": unsent},
        )
        self.unsent = unsent
        self.cause = cause


def _clean_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > 250 or not _KEY.fullmatch(key):
        raise ValueError(
            f"metric key {key!r}: 1-250 letters, digits, spaces or _ - . / : (e.g. 'val_loss', 'train/acc')"
        )
    return key


def _wire_number(value: Any) -> float | str:
    """A float as the API takes it: NaN and infinities travel as strings (strict JSON has neither)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric value {value!r} is not a number") from None
    if math.isfinite(number):
        return number
    if number != number:
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _from_wire(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return {"Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return float(value)


def _param_value(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


# --- the background sender ---------------------------------------------------------------------------


class _MetricSender:
    """Buffers points and posts them from a daemon thread in batches; a failed batch is kept and retried.

    A failure never reaches the training loop that logs (it is logged as a warning); `flush()` raises
    MetricsNotSentError when points are still unsent after a real attempt, and so does `add()` once a
    million points are waiting on a server that keeps refusing them.
    """

    def __init__(self, transport: Transport, path: str) -> None:
        # A session of its own: requests' Session is not meant to be shared between threads.
        self._http = copy.copy(transport)
        self._http.session = requests.Session()
        self._http.session.headers.update(transport.session.headers)
        self._path = path
        self._pending: list[dict] = []
        self._in_flight = 0
        self._attempts = 0
        self._retry_s = FLUSH_INTERVAL_S
        self._condition = threading.Condition()
        self._flush_wanted = False
        self._closing = False
        self.error: StudioError | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._loop, name=f"studio-metrics {path}", daemon=True)
        self._thread.start()

    def add(self, points: list[dict]) -> None:
        with self._condition:
            while len(self._pending) >= MAX_BUFFERED_POINTS:
                if self.error is not None:
                    raise MetricsNotSentError(
                        f"{len(self._pending)} metric points wait unsent: {self.error}",
                        unsent=len(self._pending),
                        cause=self.error,
                    )
                self._condition.wait(0.5)
            self._pending.extend(points)
            if len(self._pending) >= FLUSH_POINTS:
                self._condition.notify_all()

    @property
    def unsent(self) -> int:
        with self._condition:
            return len(self._pending) + self._in_flight

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every buffered point is stored; raise MetricsNotSentError when some cannot be."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._condition:
            self._flush_wanted = True
            attempts_before = self._attempts + (1 if self._in_flight else 0)
            self._condition.notify_all()
            while self._pending or self._in_flight:
                if self.error is not None and self._attempts > attempts_before and not self._in_flight:
                    break  # one more real try failed: say so rather than wait forever
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._condition.wait(0.5 if remaining is None else min(0.5, remaining))
            unsent = len(self._pending) + self._in_flight
            error = self.error
        if unsent:
            reason = f": {error}" if error is not None else f" after {timeout_s} s"
            raise MetricsNotSentError(
                f"{unsent} metric points are not stored yet{reason}; they are kept, flush() tries again.",
                unsent=unsent,
                cause=error,
            )

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then stop the thread (it keeps trying in the background if points are left)."""
        self.flush(timeout_s)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._http.close()

    def _ready(self) -> bool:
        if self._closing or self._flush_wanted:
            return True
        return self.error is None and len(self._pending) >= FLUSH_POINTS

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(self._ready, timeout=self._retry_s)
                if self._closing and not self._pending:
                    return
                batch = self._pending[:MAX_BATCH_POINTS]
                del self._pending[:MAX_BATCH_POINTS]
                self._in_flight = len(batch)
            error = self._send(batch) if batch else None
            with self._condition:
                self._in_flight = 0
                if batch:
                    self._attempts += 1
                if error is None:
                    self.sent += len(batch)
                    self.error, self._retry_s = None, FLUSH_INTERVAL_S
                    if not self._pending:
                        self._flush_wanted = False
                else:
                    self._pending[:0] = batch  # nothing is dropped: back at the front, in order
                    if self.error is None:
                        logger.warning(
                            "Studio did not store %d metric points (kept, retried): %s", len(batch), error
                        )
                    self.error = error
                    self._flush_wanted = False
                    self._retry_s = min(self._retry_s * 2, MAX_RETRY_S)
                self._condition.notify_all()

    def _send(self, batch: list[dict]) -> StudioError | None:
        delay_s = FIRST_RETRY_S
        for attempt in range(SEND_ATTEMPTS):
            try:
                self._http.request("POST", self._path, json={"metrics": batch})
                return None
            except StudioError as error:
                transient = isinstance(error, StudioConnectionError) or (error.status or 0) >= 500
                if not (transient or error.status in _RETRIED_STATUSES) or attempt == SEND_ATTEMPTS - 1:
                    return error
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 8.0)
        return None  # not reached


_LIVE_RUNS: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _finish_live_runs() -> None:
    """At interpreter exit: store what is buffered and end the runs `start()` made (as MLflow does)."""
    for run in list(_LIVE_RUNS):
        try:
            run.flush(timeout_s=30)
            if run._owns_status and run.status not in _TERMINAL:
                run.end("finished")
        except Exception as error:  # exiting anyway: say what was lost instead of a traceback
            print(f"studio_sdk: run {run.id} could not be finished: {error}", file=sys.stderr)


# --- runs ----------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Run:
    """A run: its params, tags, latest metrics and status, and the methods that log to it."""

    id: int
    name: str = ""
    experiment_id: int | None = None
    experiment: str = ""
    status: str = ""
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    dataset_version_id: int | None = None
    parent_id: int | None = None
    source: str = ""
    trainer: str = ""
    device: str = ""
    worker_host: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    created_by: str | None = None
    created_at: str | None = None
    _context: _Context | None = field(default=None, compare=False)
    _sender: _MetricSender | None = field(default=None, compare=False)
    _owns_status: bool = field(default=False, compare=False)
    _steps: dict[str, int] = field(default_factory=dict, compare=False)
    _keys: set[str] = field(default_factory=set, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    _FIELDS = (
        "name",
        "experiment_id",
        "experiment",
        "status",
        "params",
        "tags",
        "dataset_version_id",
        "parent_id",
        "source",
        "trainer",
        "device",
        "worker_host",
        "started_at",
        "ended_at",
        "duration_s",
        "created_by",
        "created_at",
    )

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> Run:
        return cls(id=data["id"], _context=context)._update(data)

    def _update(self, data: dict) -> Run:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        if "metrics" in data:
            self.metrics = {key: _from_wire(value) for key, value in data["metrics"].items()}
        return self

    @property
    def _path(self) -> str:
        return f"runs/{self.id}"

    def refresh(self) -> Run:
        """Reload the run's fields (status, params, tags, latest metrics) from the server."""
        return self._update(self._context.call("GET", self._path))

    # params and tags

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params (stored as strings); a param cannot change once logged (ConflictError)."""
        if not params:
            return
        body = {"params": {str(key): _param_value(value) for key, value in params.items()}}
        self.params = self._context.call("POST", f"{self._path}/params", json=body)["params"]

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set tags (they may change, unlike params); a value of None removes the tag."""
        body = {"tags": {str(key): None if value is None else str(value) for key, value in tags.items()}}
        self._update(self._context.call("PATCH", self._path, json=body))

    def delete_tag(self, key: str) -> None:
        self.set_tags({key: None})

    # metrics

    def log_metric(
        self, key: str, value: Any, step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Buffer one point, sent in the background; `step` defaults to the key's next step (0, 1, …)."""
        self.log_metrics({key: value}, step=step, timestamp_ms=timestamp_ms)

    def log_metrics(
        self, metrics: dict[str, Any], step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Buffer several metrics at one step (each key's next step when `step` is None)."""
        stamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        if step is not None and (isinstance(step, bool) or int(step) != step):
            raise TypeError(f"step must be an integer, not {step!r}")
        points = []
        with self._lock:
            for key, value in metrics.items():
                if key not in self._keys:
                    self._keys.add(_clean_key(key))
                point_step = self._steps.get(key, 0) if step is None else int(step)
                self._steps[key] = point_step + 1
                points.append(
                    {"key": key, "value": _wire_number(value), "step": point_step, "timestamp": stamp}
                )
            sender = self._sender
            if sender is None:
                sender = self._sender = _MetricSender(
                    self._context.http, self._context.path(f"{self._path}/metrics")
                )
                _LIVE_RUNS.add(self)
        sender.add(points)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every buffered metric point is stored (MetricsNotSentError when some cannot be)."""
        if self._sender is not None:
            self._sender.flush(timeout_s)

    @property
    def unsent_points(self) -> int:
        return 0 if self._sender is None else self._sender.unsent

    def latest_metrics(self) -> list[dict]:
        """Each metric's latest value, step, time and point count (fetched fresh)."""
        rows = list(self._context.paginate(f"{self._path}/metrics"))
        for row in rows:
            row["value"] = _from_wire(row["value"])
        return rows

    def metric_history(self, key: str, max_points: int = 10_000) -> pandas.DataFrame:
        """A metric's points as a DataFrame (step, value, timestamp).

        Up to `max_points` (10,000 at most) points come back exactly; a longer series comes back as the
        minimum and maximum of each bucket of steps, spikes kept (`frame.attrs["downsampled"]`).
        """
        pandas = _pandas()
        body = self._context.call(
            "GET", f"{self._path}/metrics/{quote(key, safe='/')}", params={"max_points": max_points}
        )
        frame = pandas.DataFrame(
            {
                "step": pandas.Series(body["steps"], dtype="int64"),
                "value": pandas.Series([_from_wire(value) for value in body["values"]], dtype="float64"),
                "timestamp": pandas.to_datetime(
                    pandas.Series(body["timestamps"], dtype="int64"), unit="ms", utc=True
                ),
            }
        )
        frame.attrs.update(
            {name: body.get(name) for name in ("key", "total_points", "downsampled", "bucket_steps")}
        )
        return frame

    # artifacts

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> dict:
        """Upload a file (streamed) into the run's artifacts, under the folder `artifact_path` if given."""
        path = Path(local_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {str(path)!r}")
        name = f"{artifact_path.strip('/')}/{path.name}" if artifact_path else path.name
        with path.open("rb") as handle:
            return self._context.http.upload(
                self._context.path(f"{self._path}/artifacts"), handle, params={"path": name}
            )

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[dict]:
        """Upload every file under a folder, keeping the folder's layout."""
        root = Path(local_dir).expanduser()
        if not root.is_dir():
            raise NotADirectoryError(f"No such folder: {str(root)!r}")
        stored = []
        for path in sorted(root.rglob("*")):
            if path.is_file():
                folder = path.parent.relative_to(root).as_posix()
                parts = [
                    part
                    for part in (artifact_path and artifact_path.strip("/"), folder)
                    if part and part != "."
                ]
                stored.append(self.log_artifact(path, "/".join(parts) or None))
        return stored

    def artifacts(self) -> list[dict]:
        """The run's artifacts: path, size_bytes, sha256, created_at."""
        return list(self._context.paginate(f"{self._path}/artifacts"))

    def download_artifact(self, path: str, destination: str | os.PathLike = ".") -> Path:
        """Stream an artifact to `destination` (a folder, or a file path); return the written file."""
        target = Path(destination).expanduser()
        if target.is_dir():
            target = target / path.rsplit("/", 1)[-1]
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as out:
                self._context.http.download(self._context.path(f"{self._path}/artifacts/{quote(path)}"), out)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # lifecycle

    def set_status(self, status: str) -> Run:
        return self._update(self._context.call("PATCH", self._path, json={"status": status}))

    def end(self, status: str = "finished", *, timeout_s: float | None = None) -> Run:
        """Store every buffered point, then set the final status (finished, failed or stopped)."""
        try:
            if self._sender is not None:
                self._sender.close(timeout_s)
                self._sender = None
        finally:
            _LIVE_RUNS.discard(self)
            if self.status != status:
                self.set_status(status)
        return self

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if not self._owns_status:
            try:
                self.flush()
            except StudioError:
                if exc_type is None:
                    raise  # a failing block's own error matters more than ours
            return
        status = "finished" if exc_type is None else "stopped" if exc_type is KeyboardInterrupt else "failed"
        try:
            self.end(status)
        except StudioError:
            if exc_type is None:
                raise  # a failing block's own error matters more than ours

    def __repr__(self) -> str:
        return f"<Run id={self.id} name={self.name!r} experiment={self.experiment!r} status={self.status!r}>"


class Runs:
    """`client.runs`: the runs of the client's project (see `Client(project=...)`)."""

    def __init__(self, transport: Transport, scope: ProjectScope) -> None:
        self._http = transport
        self._scope = scope

    def start(
        self,
        experiment: str | None = None,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        dataset_version: Any = None,
        *,
        parent: Run | int | None = None,
        run_id: int | None = None,
    ) -> Run:
        """Start a run (use it as a context manager), or attach to `run_id` / STUDIO_RUN_ID.

        A new run ends as finished when the `with` block ends, failed when it raises; an attached run is
        only flushed (whoever made it, e.g. a training job, ends it).
        """
        context = self._scope.context()
        attach_to = run_id if run_id is not None else os.environ.get(RUN_ID_ENV) or None
        if attach_to is not None:
            run = Run._from_api(context.call("GET", f"runs/{int(attach_to)}"), context)
            if params:
                run.log_params(params)
            if tags:
                run.set_tags(tags)
            return run
        body: dict[str, Any] = {
            "experiment": experiment or DEFAULT_EXPERIMENT,
            "name": name or "",
            "params": {str(key): _param_value(value) for key, value in (params or {}).items()},
            "tags": {str(key): str(value) for key, value in (tags or {}).items()},
            "source": "notebook" if "ipykernel" in sys.modules else "sdk",
            "status": "running",
        }
        if dataset_version is not None:
            body["dataset_version"] = _id_of(dataset_version, "dataset_version")
        if parent is not None:
            body["parent"] = _id_of(parent, "parent")
        run = Run._from_api(context.call("POST", "runs", json=body), context)
        run._owns_status = True
        _LIVE_RUNS.add(run)
        return run

    def get(self, run_id: int) -> Run:
        context = self._scope.context()
        return Run._from_api(context.call("GET", f"runs/{int(run_id)}"), context)

    def iter(
        self, *, experiment: str | int | None = None, filter: str | None = None, order_by: str | None = None
    ):
        """Yield matching runs (as `Run`s), fetching pages as needed."""
        context = self._scope.context()
        params = {"page_size": LIST_PAGE_SIZE}
        for name, value in (("experiment", experiment), ("filter", filter), ("order_by", order_by)):
            if value not in (None, ""):
                params[name] = str(value)
        for item in context.paginate("runs", params=params):
            yield Run._from_api(item, context)

    def list(
        self,
        *,
        experiment: str | int | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        max_results: int | None = None,
    ) -> pandas.DataFrame:
        """Search runs: a row per run, with params.*, metrics.* and tags.* columns (as MLflow's search_runs).

        `filter`: e.g. "metrics.val_accuracy > 0.9 and params.lr = '0.01' and status = 'finished'";
        `order_by`: e.g. "metrics.val_accuracy desc, created_at".
        """
        pandas = _pandas()
        rows = []
        for run in self.iter(experiment=experiment, filter=filter, order_by=order_by):
            rows.append(_row(run))
            if max_results is not None and len(rows) >= max_results:
                break
        frame = pandas.DataFrame.from_records(rows, columns=_columns(rows))
        for column in ("start_time", "end_time", "created_at"):
            frame[column] = pandas.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def compare(self, runs: list[Run | int]) -> pandas.DataFrame:
        """Params, metrics and tags of the runs side by side: one row per key, one column per run id,
        and `differs` (True where the runs disagree)."""
        pandas = _pandas()
        ids = ",".join(str(_id_of(run, "runs")) for run in runs)
        body = self._scope.context().call("GET", "runs/compare", params={"ids": ids})
        order = [str(run["id"]) for run in body["runs"]]
        records = []
        for section in ("params", "metrics", "tags"):
            for row in body[section]:
                values = row["values"]
                if section == "metrics":
                    values = {run_id: _from_wire(value) for run_id, value in values.items()}
                records.append({"key": f"{section}.{row['key']}", **values, "differs": row["differs"]})
        frame = pandas.DataFrame.from_records(records, columns=["key", *order, "differs"])
        return frame.set_index("key")

    def experiments(self) -> list[dict]:
        """The project's experiments: id, name, description, run_count, last_run_at, created_at."""
        return list(self._scope.context().paginate("experiments"))

    def create_experiment(self, name: str, description: str = "") -> dict:
        return self._scope.context().call(
            "POST", "experiments", json={"name": name, "description": description}
        )

    def __repr__(self) -> str:
        return "<studio_sdk.Runs>"


def _id_of(value: Any, what: str) -> int:
    if isinstance(getattr(value, "id", None), int):
        return value.id
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{what}: expected an id (int) or an object with an id, not {type(value).__name__}")


_BASE_COLUMNS = [
    "run_id",
    "run_name",
    "experiment_id",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "source",
    "trainer",
    "device",
    "dataset_version_id",
    "parent_id",
    "created_by",
    "created_at",
]


def _row(run: Run) -> dict:
    row = {
        "run_id": run.id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "experiment": run.experiment,
        "status": run.status,
        "start_time": run.started_at,
        "end_time": run.ended_at,
        "duration_s": run.duration_s,
        "source": run.source,
        "trainer": run.trainer,
        "device": run.device,
        "dataset_version_id": run.dataset_version_id,
        "parent_id": run.parent_id,
        "created_by": run.created_by,
        "created_at": run.created_at,
    }
    row.update({f"metrics.{key}": value for key, value in run.metrics.items()})
    row.update({f"params.{key}": value for key, value in run.params.items()})
    row.update({f"tags.{key}": value for key, value in run.tags.items()})
    return row


def _columns(rows: list[dict]) -> list[str]:
    extra = sorted({key for row in rows for key in row if key not in _BASE_COLUMNS})
    ordered = sorted(
        extra, key=lambda key: ("metrics.", "params.", "tags.").index(key.split(".", 1)[0] + ".")
    )
    return _BASE_COLUMNS + ordered


def start_run(experiment: str | None = None, **kwargs: Any) -> Run:
    """`studio_sdk.start_run(...)`: a run from a client configured by the environment alone.

    The client is made from STUDIO_URL, STUDIO_TOKEN and STUDIO_PROJECT; STUDIO_RUN_ID attaches to an
    existing run. Same arguments as `client.runs.start`.
    """
    from studio_sdk.client import Client

    return Client().runs.start(experiment, **kwargs)
