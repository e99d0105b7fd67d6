"""Writes of the notebooks app: start, stop, reconcile and cull JupyterLab servers.

Servers are spawned by the process that handles the start request (the web process, in local mode; see
docs/architecture.md, Notebooks). A thread there waits for the server to answer and then for it to end,
so that its state follows the process; the beat task reconciles whatever that thread could not see (a
web restart, another host) and stops idle servers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from notebooks.getting_started import GETTING_STARTED_NAME, getting_started_notebook
from notebooks.models import LIVE_STATES, NotebookServer, ServerState
from notebooks.spawners import ServerSpec, get_spawner
from studio.accounts.models import ApiToken
from studio.accounts.services import api_token_create
from studio.audit.services import audit_record
from studio.errors import NotFound
from studio.projects.access import require

logger = logging.getLogger(__name__)
READY_POLL_S = 0.2
STATUS_TIMEOUT_S = 2.0
INITIALIZED_MARKER = ".studio-initialized"


# tokens


def server_token(server: NotebookServer) -> str:
    """The server's token, derived from SECRET_KEY so that it is never stored and any web process knows it."""
    message = f"notebook-server:{server.pk}:{server.token_salt}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# folders


def notebooks_dir() -> Path:
    return Path(settings.STUDIO_NOTEBOOK_DIR)


def project_shared_dir(project_id: int) -> Path:
    return notebooks_dir() / "projects" / str(project_id) / "shared"


def server_root_dir(server: NotebookServer) -> Path:
    if server.is_shared:
        return notebooks_dir() / "projects" / str(server.project_id)
    return notebooks_dir() / "users" / str(server.user_id) / "projects" / str(server.project_id)


def server_home_dir(server: NotebookServer) -> Path:
    return notebooks_dir() / "servers" / str(server.pk)


def project_notebooks_prepare(*, project_id: int) -> Path:
    """Create the project's shared folder with the getting-started notebook, once per project."""
    shared = project_shared_dir(project_id)
    shared.mkdir(parents=True, exist_ok=True)
    marker = shared / INITIALIZED_MARKER
    if not marker.exists():
        notebook = shared / GETTING_STARTED_NAME
        if not notebook.exists():
            notebook.write_text(getting_started_notebook())
        marker.write_text("The getting-started notebook was written here; delete it freely.\n")
    return shared


def _prepare_root(server: NotebookServer) -> Path:
    shared = project_notebooks_prepare(project_id=server.project_id)
    root = server_root_dir(server)
    root.mkdir(parents=True, exist_ok=True)
    if not server.is_shared:
        link = root / "shared"
        if not link.is_symlink() and not link.exists():
            link.symlink_to(shared, target_is_directory=True)
    return root


# permissions


def _require_use(*, user, server: NotebookServer) -> None:
    """A member may use their own server, and the project's shared one if their role may run code."""
    require(user=user, project=server.project, action="notebook.use")
    if not server.is_shared and server.user_id != user.pk:
        raise NotFound("No such notebook server.")


# start


def notebook_server_start(
    *, user, project, is_shared: bool = False, studio_url: str | None = None, ip: str | None = None
) -> NotebookServer:
    """Start the caller's server (or the project's shared one); a live one is returned as it is."""
    require(user=user, project=project, action="notebook.use")
    with transaction.atomic():
        lookup = {"project": project, "is_shared": is_shared}
        if not is_shared:
            lookup["user"] = user
        # get_or_create settles two first starts at once through the unique constraints.
        created, _ = NotebookServer.objects.get_or_create(**lookup, defaults={"user": user})
        server = NotebookServer.objects.select_for_update().get(pk=created.pk)
        if server.state in LIVE_STATES and get_spawner().is_running(
            pid=server.pid, process_started_at=server.process_started_at
        ):
            return server
        spawning_since = timezone.now() - timedelta(seconds=settings.STUDIO_NOTEBOOK_START_TIMEOUT_S)
        if server.state == ServerState.STARTING and server.pid is None and server.started_at > spawning_since:
            return server  # another request is spawning it right now
        old_token_id = server.api_token_id
        api_token, raw_api_token = api_token_create(
            user=user,
            name=f"Notebook server {server.pk}",
            project=project,
            expires_at=timezone.now() + timedelta(seconds=settings.STUDIO_NOTEBOOK_TOKEN_LIFETIME_S),
        )
        if is_shared:
            # Whoever starts the shared server lends it their SDK identity: its kernels act as them.
            server.user = user
        server.state = ServerState.STARTING
        server.message = "Starting JupyterLab…"
        server.token_salt = secrets.token_hex(16)
        server.token_hash = _hash(server_token(server))
        server.api_token = api_token
        server.pid = server.port = server.process_started_at = None
        server.started_at = timezone.now()
        server.ready_at = server.stopped_at = None
        server.last_activity = server.started_at
        server.full_clean()
        server.save()
        _revoke_api_token(old_token_id)
        audit_record(user=user, project=project, action="notebook_server.start", target=server, ip=ip)

    spec = ServerSpec(
        server_id=server.pk,
        base_url=server.base_url,
        token=server_token(server),
        root_dir=_prepare_root(server),
        home_dir=server_home_dir(server),
        kernel_env={
            "STUDIO_URL": studio_url or settings.STUDIO_API_URL,
            "STUDIO_TOKEN": raw_api_token,
            "STUDIO_PROJECT": str(project.pk),
        },
        is_collaborative=is_shared,
        idle_timeout_s=settings.STUDIO_NOTEBOOK_IDLE_TIMEOUT_S,
        kernel_idle_timeout_s=settings.STUDIO_NOTEBOOK_KERNEL_IDLE_TIMEOUT_S,
        log_path=server_home_dir(server) / "server.log",
    )
    spec.home_dir.mkdir(parents=True, exist_ok=True)
    server_id = server.pk
    try:
        spawned = get_spawner().start(
            spec, on_exit=lambda code: _on_exit(server_id=server_id, returncode=code)
        )
    except OSError as error:
        _finish(server_id=server_id, state=ServerState.FAILED, message=f"The server could not start: {error}")
        server.refresh_from_db()
        return server
    claimed = NotebookServer.objects.filter(
        pk=server_id, state=ServerState.STARTING, pid__isnull=True
    ).update(
        host=spawned.host,
        port=spawned.port,
        pid=spawned.pid,
        process_started_at=spawned.process_started_at,
        message="Waiting for JupyterLab to answer…",
    )
    if not claimed:  # stopped while it was being spawned: it must not run on unrecorded
        get_spawner().stop(pid=spawned.pid, process_started_at=spawned.process_started_at)
    threading.Thread(
        target=_await_ready, kwargs={"server_id": server_id}, name=f"notebook-ready-{server_id}", daemon=True
    ).start()
    server.refresh_from_db()
    return server


def _await_ready(*, server_id: int) -> None:
    try:
        deadline = time.monotonic() + settings.STUDIO_NOTEBOOK_START_TIMEOUT_S
        while time.monotonic() < deadline:
            server = NotebookServer.objects.filter(pk=server_id).first()
            if server is None or server.state != ServerState.STARTING:
                return
            if _status(server) is not None:
                _mark_ready(server_id=server_id, pid=server.pid)
                return
            time.sleep(READY_POLL_S)
        server = NotebookServer.objects.filter(pk=server_id, state=ServerState.STARTING).first()
        if server is not None:
            _stop_process(server)
            _finish(
                server_id=server_id,
                state=ServerState.FAILED,
                message=f"JupyterLab did not answer within {settings.STUDIO_NOTEBOOK_START_TIMEOUT_S:g} s.",
            )
    finally:
        connection.close()


def _status(server: NotebookServer) -> dict | None:
    """The server's /api/status (last_activity, kernels, connections), or None when it does not answer."""
    if not server.port:
        return None
    try:
        response = httpx.get(
            server.upstream_url + "api/status",
            headers={"Authorization": f"token {server_token(server)}"},
            timeout=STATUS_TIMEOUT_S,
        )
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _mark_ready(*, server_id: int, pid: int | None) -> None:
    now = timezone.now()
    NotebookServer.objects.filter(pk=server_id, state=ServerState.STARTING, pid=pid).update(
        state=ServerState.RUNNING, message="", ready_at=now, last_activity=now
    )


def _on_exit(*, server_id: int, returncode: int) -> None:
    close_old_connections()
    try:
        server = NotebookServer.objects.filter(pk=server_id).first()
        if server is None or server.state not in LIVE_STATES:
            return
        if server.state == ServerState.STARTING:
            _finish(
                server_id=server_id,
                state=ServerState.FAILED,
                message=f"JupyterLab exited with status {returncode} while starting; see its log.",
            )
        else:
            _finish(server_id=server_id, state=ServerState.STOPPED, message="The server ended.")
    finally:
        connection.close()


# stop, reconcile, cull


def _revoke_api_token(token_id: int | None) -> None:
    if token_id is not None:
        ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


def _finish(*, server_id: int, state: str, message: str) -> None:
    with transaction.atomic():
        server = NotebookServer.objects.select_for_update().filter(pk=server_id).first()
        if server is None:
            return
        server.state = state
        server.message = message[:500]
        server.stopped_at = timezone.now()
        # A new salt: the old token stops working even if the process somehow survived.
        server.token_salt = ""
        server.token_hash = ""
        server.save(update_fields=["state", "message", "stopped_at", "token_salt", "token_hash"])
        _revoke_api_token(server.api_token_id)


def _stop_process(server: NotebookServer) -> None:
    get_spawner().stop(pid=server.pid, process_started_at=server.process_started_at)


def notebook_server_stop(*, user, server: NotebookServer, ip: str | None = None) -> NotebookServer:
    _require_use(user=user, server=server)
    if server.state in LIVE_STATES:
        _stop_process(server)
        _finish(server_id=server.pk, state=ServerState.STOPPED, message="Stopped.")
        audit_record(user=user, project=server.project, action="notebook_server.stop", target=server, ip=ip)
    server.refresh_from_db()
    return server


def notebook_server_reconcile(*, server: NotebookServer) -> NotebookServer:
    """Make the state say what the process does: a dead server is stopped, a ready one running."""
    if server.state not in LIVE_STATES:
        return server
    running = get_spawner().is_running(pid=server.pid, process_started_at=server.process_started_at)
    if server.pid is not None and not running:
        _finish(server_id=server.pk, state=ServerState.STOPPED, message="The server ended.")
    elif server.state == ServerState.STARTING and server.pid is not None and _status(server) is not None:
        _mark_ready(server_id=server.pk, pid=server.pid)
    server.refresh_from_db()
    return server


def notebook_servers_cull() -> dict[str, int]:
    """Reconcile every live server, stop those idle past STUDIO_NOTEBOOK_IDLE_TIMEOUT_S or stuck starting."""
    counts = {"stopped_dead": 0, "culled_idle": 0, "failed_start": 0}
    now = timezone.now()
    idle_after = timedelta(seconds=settings.STUDIO_NOTEBOOK_IDLE_TIMEOUT_S)
    start_after = timedelta(seconds=settings.STUDIO_NOTEBOOK_START_TIMEOUT_S)
    for server in NotebookServer.objects.filter(state__in=LIVE_STATES):
        before = server.state
        server = notebook_server_reconcile(server=server)
        if server.state not in LIVE_STATES:
            counts["stopped_dead"] += before != server.state
            continue
        if server.state == ServerState.STARTING:
            if server.started_at and now - server.started_at > start_after:
                _stop_process(server)
                _finish(server_id=server.pk, state=ServerState.FAILED, message="JupyterLab did not answer.")
                counts["failed_start"] += 1
            continue
        status = _status(server)
        if status is not None:
            last = _parse_time(status.get("last_activity")) or server.last_activity
            if last and (server.last_activity is None or last > server.last_activity):
                NotebookServer.objects.filter(pk=server.pk).update(last_activity=last)
                server.last_activity = last
        if server.last_activity and now - server.last_activity > idle_after:
            _stop_process(server)
            idle_s = int((now - server.last_activity).total_seconds())
            _finish(server_id=server.pk, state=ServerState.STOPPED, message=f"Stopped after {idle_s} s idle.")
            counts["culled_idle"] += 1
    return counts


def _parse_time(value):
    from django.utils.dateparse import parse_datetime

    return parse_datetime(value.replace("Z", "+00:00")) if isinstance(value, str) else None
