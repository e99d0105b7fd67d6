"""Spawners start, watch and stop JupyterLab servers. `LocalProcessSpawner` (the default) runs each one as
a child process of the web process on 127.0.0.1; a container or Kubernetes spawner implements the same
three methods (see docs/operations.md) and is picked with STUDIO_NOTEBOOK_SPAWNER.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from django.conf import settings
from django.utils.module_loading import import_string

# The folder holding the identity provider that the Jupyter process imports (and nothing else, since
# kernels inherit the server's PYTHONPATH).
JUPYTER_PATH = Path(__file__).resolve().parent / "jupyter_path"
STOP_GRACE_S = 8.0


@dataclass(frozen=True)
class ServerSpec:
    """What a spawner needs to start one server; `token` and `kernel_env` are secrets."""

    server_id: int
    base_url: str
    token: str
    root_dir: Path
    home_dir: Path  # per-server Jupyter config/data/runtime folders live here
    kernel_env: dict[str, str] = field(default_factory=dict)
    is_collaborative: bool = False
    idle_timeout_s: int = 3600
    kernel_idle_timeout_s: int = 1800
    log_path: Path | None = None


@dataclass(frozen=True)
class SpawnedServer:
    host: str
    port: int
    pid: int
    process_started_at: float


class Spawner(ABC):
    @abstractmethod
    def start(self, spec: ServerSpec, *, on_exit: Callable[[int], None] | None = None) -> SpawnedServer:
        """Start the server and return at once (readiness is probed over HTTP by the caller).

        `on_exit(returncode)` is called when the spawner sees the server end, where it can.
        """

    @abstractmethod
    def is_running(self, *, pid: int | None, process_started_at: float | None) -> bool:
        """Whether the server started as (pid, process_started_at) still runs."""

    @abstractmethod
    def stop(self, *, pid: int | None, process_started_at: float | None) -> None:
        """Stop the server and everything it started (kernels, terminals); harmless when already gone."""


def get_spawner() -> Spawner:
    return import_string(settings.STUDIO_NOTEBOOK_SPAWNER)()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def jupyter_config(spec: ServerSpec) -> dict:
    """The server's configuration file: loopback only, culling, no news or update checks, no installs."""
    runtime_dir = spec.home_dir / "runtime"
    return {
        "ServerApp": {
            "ip": "127.0.0.1",
            "open_browser": False,
            "port_retries": 0,
            "base_url": spec.base_url,
            "root_dir": str(spec.root_dir),
            "identity_provider_class": "studio_notebook_auth.StudioIdentityProvider",
            # The proxy checked the Origin; Jupyter only ever sees the proxy.
            "allow_remote_access": False,
            "shutdown_no_activity_timeout": spec.idle_timeout_s,
            "terminals_enabled": True,
            # Containers often run as root; the server is still reachable through the proxy only.
            "allow_root": os.geteuid() == 0,
        },
        "MappingKernelManager": {
            "cull_idle_timeout": spec.kernel_idle_timeout_s,
            "cull_interval": 60,
            "cull_connected": False,
            "cull_busy": False,
        },
        "TerminalManager": {"cull_inactive_timeout": spec.kernel_idle_timeout_s, "cull_interval": 60},
        "ContentsManager": {"allow_hidden": False},
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly",
        },
        "YDocExtension": {"disable_rtc": not spec.is_collaborative},
        "SQLiteYStore": {"db_path": str(runtime_dir / "ystore.db")},
        "BaseFileIdManager": {"db_path": str(runtime_dir / "file_id_manager.db")},
    }


class LocalProcessSpawner(Spawner):
    """Each server is a child process of the process that started it (the web process, in local mode).

    It runs in its own session so that stopping it takes its kernels too, and a thread waits on it so
    that its exit is seen at once (and no zombie is left). Servers outlive a restart of the web process;
    the beat task's reconcile finds them by pid (and start time) then, and ends them when idle.
    """

    host = "127.0.0.1"

    def start(self, spec: ServerSpec, *, on_exit: Callable[[int], None] | None = None) -> SpawnedServer:
        home = spec.home_dir
        for folder in ("config/labconfig", "data", "runtime", "ipython", "lab/settings", "lab/workspaces"):
            (home / folder).mkdir(parents=True, exist_ok=True)
        spec.root_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        (home / "config" / "jupyter_server_config.json").write_text(
            json.dumps(jupyter_config(spec), indent=1)
        )
        # The announcements plugin asks every new user about news; the server answers nothing anyway.
        page_config = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
        (home / "config" / "labconfig" / "page_config.json").write_text(json.dumps(page_config))
        port = free_port(self.host)
        env = {
            key: value
            for key, value in os.environ.items()
            # The web process's own secrets and settings stay out of the kernels.
            if not key.startswith(("STUDIO_", "DJANGO_", "JUPYTER", "DATABASE_", "CELERY_", "REDIS_"))
            and key not in {"SECRET_KEY", "PYTHONPATH"}
        }
        env.update(spec.kernel_env)
        env.update(
            JUPYTER_TOKEN=spec.token,
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(home / "lab" / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "lab" / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
            PYTHONPATH=str(JUPYTER_PATH),
            PYTHONUNBUFFERED="1",
        )
        command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.port={port}"]
        log = open(spec.log_path or os.devnull, "ab")  # noqa: SIM115 (handed to the child)
        try:
            process = subprocess.Popen(
                command,
                cwd=spec.root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            started_at = psutil.Process(process.pid).create_time()
        except psutil.Error:
            started_at = time.time()

        def wait_and_report() -> None:
            returncode = process.wait()
            if on_exit is not None:
                on_exit(returncode)

        threading.Thread(
            target=wait_and_report, name=f"notebook-server-{spec.server_id}", daemon=True
        ).start()
        return SpawnedServer(host=self.host, port=port, pid=process.pid, process_started_at=started_at)

    def _process(self, pid: int | None, process_started_at: float | None) -> psutil.Process | None:
        if not pid:
            return None
        try:
            process = psutil.Process(pid)
            if process_started_at is not None and abs(process.create_time() - process_started_at) > 1.0:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.Error:
            return None

    def is_running(self, *, pid: int | None, process_started_at: float | None) -> bool:
        return self._process(pid, process_started_at) is not None

    def stop(self, *, pid: int | None, process_started_at: float | None) -> None:
        process = self._process(pid, process_started_at)
        if process is None:
            return
        # SIGTERM lets Jupyter shut its kernels down; whatever is left of the session is killed after.
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_GRACE_S)
        except psutil.TimeoutExpired:
            pass
        except psutil.Error:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
