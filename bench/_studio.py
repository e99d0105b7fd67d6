"""Run a real Studio for a benchmark: Django in this process, uvicorn and a Celery worker as children.

The benchmarks that measure Studio end to end (`preview_latency`, `upload_memory`) need what a
deployment runs: the database migrated, a user with a project and an API token, the ASGI web process
(`studio.asgi:application` under uvicorn, as the Procfile starts it) and, for jobs, a prefork Celery
worker. They talk to it over real HTTP. PostgreSQL and Redis come from the environment
(DATABASE_URL, REDIS_URL), as `make bench` provides them through `scripts/test-services.sh`; the
root conftest.py starts the same processes for the integration tests.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 15

_django_ready = False


def setup_django() -> None:
    """Set Django up in this process (once) and migrate the database; refuse to run on the defaults.

    Without DATABASE_URL, Studio would use (and the benchmark fill) the developer's own SQLite file.
    """
    global _django_ready  # noqa: PLW0603 (once per process: django.setup() cannot run twice)
    if _django_ready:
        return
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not set: this benchmark runs a real Studio against a throw-away "
            "PostgreSQL and Redis; run it with `make bench` (scripts/test-services.sh)."
        )
    if not os.environ.get("STUDIO_DATA_DIR"):
        data_dir = tempfile.mkdtemp(prefix="studio-bench-data-")
        os.environ["STUDIO_DATA_DIR"] = data_dir
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    _django_ready = True


@dataclass
class Studio:
    """A running Studio: its URL, a project, and an API token for the project's owner."""

    url: str
    token: str
    user: Any
    project: Any
    web: subprocess.Popen
    worker: subprocess.Popen | None = None
    worker_name: str = ""
    log_dir: Path = field(default_factory=Path)

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1/projects/{self.project.pk}"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def log_tail(self, name: str, characters: int = 4000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""


@contextmanager
def running_studio(*, worker: bool = False, prefix: str = "bench", concurrency: int = 1) -> Iterator[Studio]:
    """Start uvicorn (and a Celery worker, prefork, `concurrency` processes) for a fresh user and project.

    On exit the processes are stopped and the project's datasets deleted with their files.
    """
    setup_django()
    user, project, token = _owner_with_project(prefix)
    log_dir = Path(tempfile.mkdtemp(prefix=f"studio-{prefix}-logs-"))
    environment = _child_environment()
    started: list[subprocess.Popen] = []
    try:
        port = _free_port()
        web = _start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "studio.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-server-header",
                "--log-level",
                "warning",
            ],
            environment,
            log_dir / "web.log",
        )
        started.append(web)
        studio = Studio(
            url=f"http://127.0.0.1:{port}", token=token, user=user, project=project, web=web, log_dir=log_dir
        )
        probe = studio.session()
        _wait_until(
            lambda: _answers(probe, f"{studio.api}/datasets"),
            what="uvicorn",
            process=web,
            log=log_dir / "web.log",
        )
        if worker:
            from studio.celery import app

            studio.worker_name = f"bench-{uuid.uuid4().hex[:8]}@localhost"
            studio.worker = _start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "studio",
                    "worker",
                    "-Q",
                    "default",
                    "--pool",
                    "prefork",
                    "-c",
                    str(concurrency),
                    "-n",
                    studio.worker_name,
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel",
                    "INFO",
                ],
                environment,
                log_dir / "worker.log",
            )
            started.append(studio.worker)
            _wait_until(
                lambda: bool(app.control.ping(destination=[studio.worker_name], timeout=0.5)),
                what="celery worker",
                process=studio.worker,
                log=log_dir / "worker.log",
            )
        yield studio
    finally:
        for process in reversed(started):
            stop_process_tree(process)
        _delete_datasets(user, project)
        shutil.rmtree(log_dir, ignore_errors=True)


def _owner_with_project(prefix: str) -> tuple[Any, Any, str]:
    from studio.accounts.services import api_token_create, user_create
    from studio.projects.services import project_create

    suffix = uuid.uuid4().hex[:8]
    user = user_create(actor=None, username=f"{prefix}-{suffix}", password=secrets.token_urlsafe(24))
    project = project_create(user=user, name=f"{prefix} {suffix}")
    _, token = api_token_create(user=user, name="benchmark", project=project)
    return user, project, token


def _delete_datasets(user: Any, project: Any) -> None:
    """Delete the project's datasets; if the service fails, at least their files (the database is throw-away).

    A failure here must not cost the measurements already taken, so it is reported, not raised.
    """
    from datasets import files
    from datasets.models import Dataset
    from datasets.services import dataset_delete

    for dataset in Dataset.objects.filter(project=project):
        prefix = dataset.storage_prefix
        try:
            dataset_delete(user=user, dataset=dataset)
        except Exception as error:  # noqa: BLE001 (cleanup: report and carry on)
            print(
                f"   could not delete dataset {dataset.pk} ({error!r}); deleting its files.", file=sys.stderr
            )
            files.delete_prefix(prefix)


def _child_environment() -> dict[str, str]:
    from django.conf import settings

    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studio.settings",
        STUDIO_DATA_DIR=str(settings.STUDIO_DATA_DIR),
        PYTHONUNBUFFERED="1",
    )


def _start(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(session: requests.Session, url: str) -> bool:
    try:
        return session.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _wait_until(check: Callable[[], bool], *, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready after {READY_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def stop_process_tree(process: subprocess.Popen) -> None:
    """Stop a process we started and its children (a prefork worker's pool), by their ids."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.kill()


class MemorySampler:
    """Sample the memory of some process trees every `interval_s`, in a background thread.

    Each tree is a root pid and, if `with_children`, its descendants at each sample (a prefork
    worker's pool children). Peaks are kept per phase (`phase(name)` switches), per tree: the largest
    single process's RSS, the tree's RSS summed, and, every `pss_every`-th sample (reading smaps costs
    about 2 ms a process), the tree's PSS summed. RSS counts pages shared between processes (a forked
    pool child shares its parent's) in each of them, so the RSS sum is an upper bound; PSS splits each
    shared page among its sharers, so the PSS sum is the tree's own footprint.
    """

    KEYS = ("largest_process_bytes", "tree_bytes", "tree_pss_bytes")

    def __init__(self, trees: dict[str, tuple[int, bool]], interval_s: float = 0.05, pss_every: int = 5):
        self.trees = trees
        self.interval_s = interval_s
        self.pss_every = pss_every
        self.samples = 0
        self.current_phase = "start"
        self.peaks: dict[str, dict[str, dict[str, int]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def phase(self, name: str) -> None:
        self.sample(with_pss=True)  # close the last phase with a fresh reading
        with self._lock:
            self.current_phase = name
        self.sample(with_pss=True)

    def sample(self, *, with_pss: bool = False) -> None:
        readings = {
            tree: _tree_memory(pid, children, with_pss) for tree, (pid, children) in self.trees.items()
        }
        with self._lock:
            phase = self.peaks.setdefault(self.current_phase, {})
            for tree, reading in readings.items():
                peak = phase.setdefault(tree, dict.fromkeys(self.KEYS, 0))
                for key, value in reading.items():
                    peak[key] = max(peak[key], value)
            self.samples += 1

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(self.interval_s):
            count += 1
            self.sample(with_pss=count % self.pss_every == 0)


def _tree_memory(pid: int, with_children: bool, with_pss: bool) -> dict[str, int]:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)] if with_children else [root]
    except psutil.NoSuchProcess:
        return {}
    rss, pss = [], []
    for process in processes:
        try:
            if with_pss:
                info = process.memory_full_info()
                pss.append(info.pss)
            else:
                info = process.memory_info()
            rss.append(info.rss)
        except psutil.NoSuchProcess:
            continue
    reading = {"largest_process_bytes": max(rss, default=0), "tree_bytes": sum(rss)}
    if with_pss:
        reading["tree_pss_bytes"] = sum(pss)
    return reading


def register_version(*, user, project, path: Path, name: str):
    """Create a dataset and its version 1 from a Parquet file, as an import job stores one."""
    import pyarrow.parquet as pq

    from datasets import files
    from datasets.ingest import infer_schema
    from datasets.models import Dataset, DatasetVersion

    dataset = Dataset(project=project, name=name, created_by=user)
    dataset.full_clean()
    dataset.save()
    sha256 = files.sha256_of(path)
    storage_name = files.store_file(f"{dataset.storage_prefix}/v1-{sha256[:12]}/data.parquet", path)
    version = DatasetVersion(
        dataset=dataset,
        number=1,
        sha256=sha256,
        source_format="parquet",
        source_name=path.name,
        schema=infer_schema(path),
        row_count=pq.ParquetFile(path).metadata.num_rows,
        size_bytes=path.stat().st_size,
        storage_name=storage_name,
        created_by=user,
    )
    version.full_clean()
    version.save()
    return version
