"""Datasets: upload and import, immutable versions, profiles, rows, downloads and the jobs that make them.

client = Client(project="Churn model")            # or STUDIO_PROJECT, or a project-scoped token
version = client.datasets.upload("sales.csv", name="sales")
frame = version.to_pandas()
client.datasets.get("sales").versions              # newest first

pandas (and pyarrow, for Parquet) are imported only by the methods that return or take a DataFrame.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from studio_sdk._http import Transport
from studio_sdk.exceptions import ConfigurationError, NotFoundError, StudioError

if TYPE_CHECKING:
    import pandas

PROJECT_ENV = "STUDIO_PROJECT"
ROWS_PAGE_LIMIT = 1000  # the most rows the server sends per request
_FIRST_POLL_S = 0.2
_MAX_POLL_S = 2.0
_STORED_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".zip",
    ".gz",
    ".parquet",
}


class JobFailedError(StudioError):
    """A dataset job (an import, a recipe or a profile) ended as failed; `message` is the job's own error.

    `code` is the job's error code and `job` the failed `DatasetJob` (None for a failed profile).
    """

    def __init__(
        self, message: str, *, code: str | None = None, job: DatasetJob | None = None, detail: Any = None
    ) -> None:
        super().__init__(message, None, code or None, detail)
        self.job = job


class JobTimeoutError(StudioError, TimeoutError):
    """A wait for a job or a profile ran past its `timeout_s`; the work goes on on the server."""


# --- which project ---------------------------------------------------------------------------------


class ProjectScope:
    """The project that `client.datasets` and `client.recipes` work in, resolved once on first use.

    Asked for by id, by name or as a `Project`; else from STUDIO_PROJECT; else the token's own project
    (a project-scoped token); else the only project the token can see.
    """

    def __init__(self, transport: Transport, project: Any = None) -> None:
        self._http = transport
        self._wanted = project
        self._id: int | None = None

    def use(self, project: Any) -> None:
        self._wanted, self._id = project, None

    @property
    def id(self) -> int:
        if self._id is None:
            self._id = self._resolve()
        return self._id

    def context(self) -> _Context:
        return _Context(self._http, self.id)

    def _resolve(self) -> int:
        wanted = self._wanted if self._wanted is not None else os.environ.get(PROJECT_ENV) or None
        if wanted is not None:
            return self._project_id(wanted)
        token_project = self._http.request("GET", "me").get("token_project_id")
        if token_project is not None:
            return int(token_project)
        page = self._http.request("GET", "projects", params={"page_size": 2})
        if page["count"] == 1:
            return int(page["results"][0]["id"])
        raise ConfigurationError(
            f"Which project? This token sees {page['count']} projects: pass Client(project=...), set the "
            f"{PROJECT_ENV} environment variable or call client.use_project(...)."
        )

    def _project_id(self, wanted: Any) -> int:
        if isinstance(wanted, bool):
            raise TypeError("expected a project id, name or Project, not a bool")
        if isinstance(getattr(wanted, "id", None), int):
            return wanted.id
        if isinstance(wanted, int):
            return wanted
        if isinstance(wanted, str) and wanted.strip().isdigit():
            return int(wanted)
        if isinstance(wanted, str):
            page = self._http.request("GET", "projects", params={"name": wanted, "archived": "true"})
            if page["count"] == 1:
                return int(page["results"][0]["id"])
            raise NotFoundError(
                f"No project named {wanted!r} is visible to this token."
                if page["count"] == 0
                else f"{page['count']} projects are named {wanted!r}; use its id instead.",
                status=404,
                code="not_found",
                detail={"name": wanted},
            )
        raise TypeError(f"expected a project id, name or Project, not {type(wanted).__name__}")


@dataclass(frozen=True)
class _Context:
    """A transport bound to one project: the paths of the datasets API are relative to it."""

    http: Transport
    project_id: int

    def path(self, path: str) -> str:
        return f"projects/{self.project_id}/{path}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, self.path(path), **kwargs)

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        return self.http.paginate(self.path(path), params=params)


# --- small helpers ---------------------------------------------------------------------------------


def _pandas(*, parquet: bool = False):
    """Import pandas (and check for pyarrow when Parquet is used); a clear error when either is missing."""
    try:
        import pandas
    except ImportError as error:
        raise ImportError("This needs pandas: `pip install pandas pyarrow`.") from error
    if parquet:
        try:
            import pyarrow  # noqa: F401 (pandas' Parquet engine)
        except ImportError as error:
            raise ImportError("Reading and writing Parquet needs pyarrow: `pip install pyarrow`.") from error
    return pandas


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_parquet")


def _frame(body: dict) -> pandas.DataFrame:
    """Build a DataFrame from a `{columns, rows, ...}` answer; the other keys go to `frame.attrs`."""
    pandas = _pandas()
    names = [column["name"] if isinstance(column, dict) else column for column in body.get("columns") or []]
    rows = body.get("rows") or []
    if rows and isinstance(rows[0], dict):
        frame = pandas.DataFrame.from_records(rows, columns=names or None)
    else:
        frame = pandas.DataFrame(rows, columns=names)
    frame.attrs.update({key: value for key, value in body.items() if key not in ("rows", "columns")})
    return frame


def _version_id(version: Any) -> int:
    if isinstance(version, DatasetVersion):
        return version.id
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    raise TypeError(f"expected a DatasetVersion or a version id (int), not {type(version).__name__}")


def _sort_param(sort: Any) -> str | None:
    """Accept 'age', 'age:desc', 'a,b:desc', ['a', 'b:desc'] or [('a', 'asc'), ('b', 'desc')]."""
    if not sort:
        return None
    if isinstance(sort, str):
        return sort
    items = []
    for item in sort:
        items.append(f"{item[0]}:{item[1]}" if isinstance(item, tuple | list) else str(item))
    return ",".join(items)


class _ProgressBar:
    """A tqdm bar when tqdm is installed and `enabled`; otherwise it does nothing."""

    def __init__(
        self, enabled: bool, *, total: float, desc: str, unit: str, unit_scale: bool = False
    ) -> None:
        self._bar = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=True)

    def to(self, value: float, note: str | None = None) -> None:
        if self._bar is None:
            return
        if value > self._bar.n:
            self._bar.update(value - self._bar.n)
        if note:
            self._bar.set_postfix_str(note, refresh=False)

    def advance(self, amount: float) -> None:
        if self._bar is not None and amount:
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _ReadingWithProgress:
    """A file wrapper that reports each read; requests streams it with a Content-Length (from `__len__`)."""

    def __init__(self, handle: IO[bytes], size_bytes: int, bar: _ProgressBar) -> None:
        self._handle, self._size_bytes, self._bar = handle, size_bytes, bar

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._bar.advance(len(chunk))
        return chunk

    def __len__(self) -> int:
        return self._size_bytes

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(1024 * 1024), b"")


def _zip_directory(root: Path, target: Path) -> int:
    """Zip the files under `root` with paths relative to it (so class-per-folder survives); skip dot files."""
    count = 0
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            compression = (
                zipfile.ZIP_STORED if path.suffix.lower() in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            )
            archive.write(path, arcname=relative.as_posix(), compress_type=compression)
            count += 1
    return count


@contextmanager
def _upload_file(data: Any, name: str | None) -> Iterator[tuple[Path, str, str]]:
    """Yield (file to send, its file name, dataset name); a DataFrame or a folder becomes a temporary file."""
    if _is_dataframe(data):
        if not name:
            raise ValueError("name: say what the dataset is called when uploading a DataFrame.")
        _pandas(parquet=True)
        frame = data if _has_default_index(data) else data.reset_index()
        with tempfile.TemporaryDirectory(prefix="studio-upload-") as directory:
            path = Path(directory) / "dataframe.parquet"
            frame.to_parquet(path, index=False)
            yield path, f"{_file_stem(name)}.parquet", name
        return
    if not isinstance(data, str | os.PathLike):
        raise TypeError(
            f"expected a file path, a folder path or a pandas DataFrame, not {type(data).__name__}"
        )
    path = Path(data).expanduser()
    if path.is_dir():
        with tempfile.TemporaryDirectory(prefix="studio-upload-") as directory:
            archive = Path(directory) / f"{path.resolve().name or 'files'}.zip"
            if _zip_directory(path, archive) == 0:
                raise ValueError(f"The folder {str(path)!r} holds no files to upload.")
            yield archive, archive.name, name or path.resolve().name
        return
    if not path.is_file():
        raise FileNotFoundError(f"No such file or folder: {str(path)!r}")
    yield path, path.name, name or path.stem


def _has_default_index(frame: Any) -> bool:
    index = frame.index
    return (
        type(index).__name__ == "RangeIndex" and index.name is None and index.start == 0 and index.step == 1
    )


def _file_stem(name: str) -> str:
    return (
        "".join(character if character.isalnum() or character in "-_." else "_" for character in name)
        or "data"
    )


# --- jobs ------------------------------------------------------------------------------------------


def poll_job(
    job, *, label: str, timeout_s: float | None, progress: bool, poll_interval_s: float | None, is_finished
) -> None:
    """Refresh `job` until `is_finished(job)` says so (it raises for a job that failed).

    Polls quickly at first, then every 2 s; a tqdm bar follows `job.progress`. Raises JobTimeoutError
    after `timeout_s` (the job goes on on the server).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    delay_s = poll_interval_s or _FIRST_POLL_S
    with _ProgressBar(progress, total=100, desc=label, unit="%") as bar:
        while True:
            job.refresh()
            bar.to(round((job.progress or 0) * 100, 1), job.message)
            if is_finished(job):
                bar.to(100)
                return
            remaining_s = None if deadline is None else deadline - time.monotonic()
            if remaining_s is not None and remaining_s <= 0:
                raise JobTimeoutError(
                    f"The {label} is still {job.status} after {timeout_s} s.",
                    code="timeout",
                    detail={"job_id": job.id},
                )
            time.sleep(delay_s if remaining_s is None else min(delay_s, remaining_s))
            if poll_interval_s is None:
                delay_s = min(delay_s * 1.5, _MAX_POLL_S)


@dataclass(eq=False, repr=False)
class DatasetJob:
    """A worker's job that makes a version: an upload, a URL import or a recipe application."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    id: int
    kind: str = ""
    status: str = "queued"
    dataset_name: str = ""
    progress: float = 0.0
    message: str = ""
    error: str = ""
    error_code: str = ""
    version_id: int | None = None
    dataset_id: int | None = None
    is_duplicate: bool = False
    created_at: str | None = None
    finished_at: str | None = None
    _context: _Context | None = field(default=None, compare=False)
    _version: DatasetVersion | None = field(default=None, compare=False)

    _FIELDS = (
        "kind",
        "status",
        "dataset_name",
        "progress",
        "message",
        "error",
        "error_code",
        "version_id",
        "dataset_id",
        "is_duplicate",
        "created_at",
        "finished_at",
    )

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> DatasetJob:
        return cls(id=data["id"], _context=context)._update(data)

    def _update(self, data: dict) -> DatasetJob:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        return self

    @property
    def is_finished(self) -> bool:
        return self.status in (self.DONE, self.FAILED)

    def refresh(self) -> DatasetJob:
        """Reload the job's status, progress and result from the server."""
        return self._update(self._context.call("GET", f"dataset-jobs/{self.id}"))

    @property
    def version(self) -> DatasetVersion | None:
        """The version the job made (or found, for a duplicate); None until the job is done."""
        if self.status != self.DONE or self.version_id is None:
            return None
        if self._version is None or self._version.id != self.version_id:
            self._version = DatasetVersion._get(self._context, self.version_id)
        return self._version

    def wait(
        self, timeout_s: float | None = None, progress: bool = True, *, poll_interval_s: float | None = None
    ) -> DatasetVersion:
        """Poll until the job ends; return its version, or raise JobFailedError with the job's error.

        Shows a tqdm bar when `progress` and tqdm is installed. Raises JobTimeoutError after `timeout_s`.
        """

        def is_finished(job: DatasetJob) -> bool:
            if job.status == job.FAILED:
                raise JobFailedError(
                    job.error or f"The {job.kind} job {job.id} failed.",
                    code=job.error_code,
                    job=job,
                    detail={"job_id": job.id, "kind": job.kind, "dataset": job.dataset_name},
                )
            return job.status == job.DONE

        poll_job(
            self,
            label=f"{self.kind} job {self.id}",
            timeout_s=timeout_s,
            progress=progress,
            poll_interval_s=poll_interval_s,
            is_finished=is_finished,
        )
        return self.version

    def __repr__(self) -> str:
        duplicate = ", duplicate" if self.is_duplicate else ""
        return (
            f"<DatasetJob id={self.id} kind={self.kind!r} dataset={self.dataset_name!r} "
            f"status={self.status!r} progress={self.progress:.0%}{duplicate}>"
        )


# --- versions --------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class DatasetVersion:
    """One immutable version of a dataset: its schema, row count, content hash and where it came from."""

    id: int
    dataset_id: int
    dataset_name: str
    number: int
    row_count: int = 0
    schema: list[dict] = field(default_factory=list)
    sha256: str = ""
    kind: str = "tabular"
    source_format: str = ""
    source_name: str = ""
    size_bytes: int = 0
    details: dict = field(default_factory=dict)
    recipe_id: int | None = None
    recipe_steps: list = field(default_factory=list)
    profile_status: str = ""
    profile_error: str = ""
    created_by: str | None = None
    created_at: str | None = None
    parent_ref: dict | None = None
    _context: _Context | None = field(default=None, compare=False)

    _FIELDS = (
        "number",
        "row_count",
        "schema",
        "sha256",
        "kind",
        "source_format",
        "source_name",
        "size_bytes",
        "details",
        "recipe_id",
        "recipe_steps",
        "profile_status",
        "profile_error",
        "created_by",
        "created_at",
    )

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> DatasetVersion:
        version = cls(
            id=data["id"],
            dataset_id=data["dataset_id"],
            dataset_name=data.get("dataset", ""),
            number=data["number"],
            _context=context,
        )
        return version._update(data)

    @classmethod
    def _get(cls, context: _Context, version_id: int) -> DatasetVersion:
        return cls._from_api(context.call("GET", f"dataset-versions/{version_id}"), context)

    def _update(self, data: dict) -> DatasetVersion:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        if "dataset" in data:
            self.dataset_name = data["dataset"]
        if "parent" in data:
            self.parent_ref = data["parent"]
        return self

    @property
    def _path(self) -> str:
        return f"dataset-versions/{self.id}"

    @property
    def columns(self) -> list[str]:
        return [column["name"] for column in self.schema]

    @property
    def column_types(self) -> dict[str, str]:
        """Column name → inferred type (numeric, categorical, boolean, datetime, text, image path)."""
        return {column["name"]: column.get("type") for column in self.schema}

    @property
    def parent_id(self) -> int | None:
        return self.parent_ref["id"] if self.parent_ref else None

    @property
    def parent(self) -> DatasetVersion | None:
        """The version this one was derived from (by a recipe), or None for an upload or import."""
        return None if self.parent_id is None else DatasetVersion._get(self._context, self.parent_id)

    @property
    def lineage(self) -> dict[str, Any]:
        """Where this version came from and what was made from it, fetched fresh.

        A dict: `parent` (a reference or None), `inputs` (versions joined in), `children` (versions derived
        from this one) and `consumers` (versions that joined this one); each reference is a dict with
        id, dataset_id, dataset and number.
        """
        data = self._context.call("GET", self._path)
        self._update(data)
        lineage = data.get("lineage") or {}
        return {
            "parent": data.get("parent"),
            "inputs": lineage.get("inputs", []),
            "children": lineage.get("children", []),
            "consumers": lineage.get("consumers", []),
        }

    @property
    def dataset(self) -> Dataset:
        return Dataset._get(self._context, self.dataset_id)

    def refresh(self) -> DatasetVersion:
        return self._update(self._context.call("GET", self._path))

    def delete(self) -> None:
        """Delete this version and its files (refused with ConflictError while a run or model uses it)."""
        self._context.call("DELETE", self._path)

    def download(self, path: str | os.PathLike, format: str = "parquet") -> Path:
        """Stream the version to `path` (a file, or a folder to put `<dataset>-v<number>.<format>` in).

        `format` is "parquet" (the stored file, byte for byte) or "csv". Returns the written file's path;
        nothing is left behind when the download fails.
        """
        if format not in ("parquet", "csv"):
            raise ValueError(f"format: choose 'parquet' or 'csv', not {format!r}.")
        # Parquet is the server's default; leaving `format` out keeps clear of DRF's own `?format=` switch.
        params = {} if format == "parquet" else {"format": format}
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / f"{_file_stem(self.dataset_name)}-v{self.number}.{format}"
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with partial.open("wb") as out:
                self._context.http.download(self._context.path(self._path + "/download"), out, params=params)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target

    def to_pandas(self, columns: Sequence[str] | None = None) -> pandas.DataFrame:
        """Download the version's Parquet (streamed to a temporary file) and read it with pandas."""
        pandas = _pandas(parquet=True)
        with tempfile.TemporaryDirectory(prefix="studio-download-") as directory:
            path = self.download(Path(directory) / "data.parquet")
            return pandas.read_parquet(path, columns=list(columns) if columns is not None else None)

    def profile(
        self,
        wait: bool = True,
        *,
        refresh: bool = False,
        timeout_s: float | None = None,
        poll_interval_s: float | None = None,
    ) -> dict | None:
        """Return the per-column statistics, waiting for the profile job to finish when `wait`.

        `refresh=True` computes the profile again first. Without `wait`, a profile not yet computed is None.
        Raises JobFailedError (with the server's error) when profiling failed.
        """
        if refresh:
            self._context.call("POST", self._path + "/profile")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay_s = poll_interval_s or _FIRST_POLL_S
        started = refresh
        while True:
            body = self._context.call("GET", self._path + "/profile")
            self.profile_status, self.profile_error = body["status"], body.get("error") or ""
            if self.profile_status == "done":
                return body["profile"]
            if self.profile_status == "failed":
                raise JobFailedError(
                    f"Profiling {self.dataset_name} v{self.number} failed: "
                    f"{self.profile_error or 'no message'}",
                    code="profile_failed",
                    detail={"version_id": self.id},
                )
            if not wait:
                return body.get("profile")
            if self.profile_status == "none" and not started:  # never queued (e.g. an older version)
                self._context.call("POST", self._path + "/profile")
                started = True
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeoutError(
                    f"The profile of {self.dataset_name} v{self.number} is still {self.profile_status} "
                    f"after {timeout_s} s.",
                    code="timeout",
                    detail={"version_id": self.id},
                )
            time.sleep(delay_s)
            if poll_interval_s is None:
                delay_s = min(delay_s * 1.5, _MAX_POLL_S)

    def rows(
        self,
        offset: int = 0,
        limit: int = 50,
        sort: str | Sequence[str | tuple[str, str]] | None = None,
        expression: str | None = None,
    ) -> pandas.DataFrame:
        """Return a page of rows as a DataFrame, sorted and filtered by the server (DuckDB).

        `sort`: "age", "age:desc", or a list of those or of (column, "asc"|"desc") pairs. `expression`: a
        filter in Studio's expression language (e.g. `age > 30 and city == "Paris"`). More than 1000 rows
        are fetched page by page. The answer's other keys (e.g. the total) are in `frame.attrs`.
        """
        pandas = _pandas()
        params: dict[str, Any] = {"sort": _sort_param(sort), "expression": expression or None}
        params = {key: value for key, value in params.items() if value is not None}
        frames, fetched = [], 0
        while True:
            page_limit = min(ROWS_PAGE_LIMIT, limit - fetched)
            body = self._context.call(
                "GET",
                self._path + "/rows",
                params={**params, "offset": offset + fetched, "limit": page_limit},
            )
            frame = _frame(body)
            frames.append(frame)
            fetched += len(frame)
            if len(frame) < page_limit or fetched >= limit:
                break
        if len(frames) == 1:
            return frames[0]
        combined = pandas.concat(frames, ignore_index=True)
        combined.attrs.update(frames[0].attrs)
        return combined

    def __repr__(self) -> str:
        return (
            f"<DatasetVersion id={self.id} dataset={self.dataset_name!r} number={self.number} "
            f"rows={self.row_count} columns={len(self.schema)}>"
        )


# --- datasets --------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Dataset:
    """A named dataset of a project: a series of immutable versions."""

    id: int
    name: str
    description: str = ""
    kind: str = "tabular"
    version_count: int | None = None
    latest_version_id: int | None = None
    latest_number: int | None = None
    latest_rows: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    _context: _Context | None = field(default=None, compare=False)

    _FIELDS = (
        "name",
        "description",
        "kind",
        "version_count",
        "latest_version_id",
        "latest_number",
        "latest_rows",
        "created_at",
        "updated_at",
    )

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> Dataset:
        return cls(id=data["id"], name=data["name"], _context=context)._update(data)

    @classmethod
    def _get(cls, context: _Context, dataset_id: int) -> Dataset:
        return cls._from_api(context.call("GET", f"datasets/{dataset_id}"), context)

    def _update(self, data: dict) -> Dataset:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        return self

    @property
    def _path(self) -> str:
        return f"datasets/{self.id}"

    def refresh(self) -> Dataset:
        return self._update(self._context.call("GET", self._path))

    @property
    def versions(self) -> list[DatasetVersion]:
        """Every version, newest first (fetched fresh on each access)."""
        versions = [
            DatasetVersion._from_api(item, self._context)
            for item in self._context.paginate(self._path + "/versions")
        ]
        return sorted(versions, key=lambda version: version.number, reverse=True)

    @property
    def latest(self) -> DatasetVersion:
        """The newest version."""
        self.refresh()
        if self.latest_version_id is None:
            raise NotFoundError(f"Dataset {self.name!r} has no versions yet.", status=404, code="not_found")
        return DatasetVersion._get(self._context, self.latest_version_id)

    def version(self, number: int) -> DatasetVersion:
        """The version with this number (1 is the first upload)."""
        for version in self.versions:
            if version.number == number:
                return version
        raise NotFoundError(
            f"Dataset {self.name!r} has no version {number}.",
            status=404,
            code="not_found",
            detail={"number": number},
        )

    def update(self, *, name: str | None = None, description: str | None = None) -> Dataset:
        changes = {
            key: value for key, value in (("name", name), ("description", description)) if value is not None
        }
        return self._update(self._context.call("PATCH", self._path, json=changes))

    def delete(self) -> None:
        """Delete the dataset with every version and file (refused while a version is in use)."""
        self._context.call("DELETE", self._path)

    def __repr__(self) -> str:
        return (
            f"<Dataset id={self.id} name={self.name!r} kind={self.kind!r} "
            f"versions={self.version_count} latest={self.latest_number}>"
        )


class Datasets:
    """`client.datasets`: the datasets of the client's project (see `Client(project=...)`)."""

    def __init__(self, transport: Transport, scope: ProjectScope) -> None:
        self._http = transport
        self._scope = scope

    @property
    def project_id(self) -> int:
        return self._scope.id

    def in_project(self, project: Any) -> Datasets:
        """The same resource for another project (an id, a name or a Project)."""
        return Datasets(self._http, ProjectScope(self._http, project))

    def upload(
        self,
        data: str | os.PathLike | pandas.DataFrame,
        name: str | None = None,
        *,
        wait: bool = True,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> DatasetVersion | DatasetJob:
        """Upload a file, a folder of images (zipped, class-per-folder kept) or a DataFrame (as Parquet).

        The file is streamed from disk, never read whole into memory. `name` defaults to the file's or the
        folder's name (required for a DataFrame); an existing name adds a version to that dataset. Returns
        the new `DatasetVersion` when `wait` (raising JobFailedError with the server's reason when the file
        cannot be read), else the `DatasetJob` to `.wait()` on. Uploading identical content again gives
        the existing version (the job's `is_duplicate`).
        """
        context = self._scope.context()
        with ExitStack() as stack:
            path, filename, dataset_name = stack.enter_context(_upload_file(data, name))
            size_bytes = path.stat().st_size
            bar = stack.enter_context(
                _ProgressBar(progress, total=size_bytes, desc=f"upload {filename}", unit="B", unit_scale=True)
            )
            handle = stack.enter_context(path.open("rb"))
            body = context.http.upload(
                context.path("datasets/upload"),
                _ReadingWithProgress(handle, size_bytes, bar),
                params={"name": dataset_name, "filename": filename},
            )
        job = DatasetJob._from_api(body, context)
        return job.wait(timeout_s=timeout_s, progress=progress) if wait else job

    def import_url(
        self,
        url: str,
        name: str,
        *,
        wait: bool = True,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> DatasetVersion | DatasetJob:
        """Have the server fetch an http(s) URL into a new version of `name` (private addresses refused)."""
        context = self._scope.context()
        job = DatasetJob._from_api(
            context.call("POST", "datasets/import", json={"name": name, "url": url}), context
        )
        return job.wait(timeout_s=timeout_s, progress=progress) if wait else job

    def list(self, *, search: str | None = None, kind: str | None = None) -> list[Dataset]:
        """Every dataset of the project, most recently changed first."""
        context = self._scope.context()
        params = {key: value for key, value in (("search", search), ("kind", kind)) if value}
        return [Dataset._from_api(item, context) for item in context.paginate("datasets", params=params)]

    def get(self, name_or_id: int | str) -> Dataset:
        """A dataset by id (int) or exact name (str)."""
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, int | str):
            raise TypeError(f"expected a dataset id (int) or name (str), not {type(name_or_id).__name__}")
        context = self._scope.context()
        if isinstance(name_or_id, int):
            return Dataset._get(context, name_or_id)
        page = context.call("GET", "datasets", params={"name": name_or_id})
        if page["count"] == 0:
            raise NotFoundError(
                f"No dataset named {name_or_id!r} in this project.",
                status=404,
                code="not_found",
                detail={"name": name_or_id},
            )
        return Dataset._from_api(page["results"][0], context)

    def version(self, version_id: int) -> DatasetVersion:
        """A dataset version by its id (as shown in the URL of its page)."""
        return DatasetVersion._get(self._scope.context(), version_id)

    def job(self, job_id: int) -> DatasetJob:
        context = self._scope.context()
        return DatasetJob._from_api(context.call("GET", f"dataset-jobs/{job_id}"), context)

    def jobs(self, *, limit: int = 20) -> list[DatasetJob]:
        """The project's newest dataset jobs."""
        context = self._scope.context()
        page = context.call("GET", "dataset-jobs", params={"page_size": limit})
        return [DatasetJob._from_api(item, context) for item in page["results"]]

    def __repr__(self) -> str:
        return "<studio_sdk.Datasets>"
