"""Reads of the notebooks app, scoped to what the caller may use."""

from __future__ import annotations

from django.db.models import Q

from notebooks.models import NotebookServer, ServerState
from studio.projects import permissions
from studio.projects.access import member_role


def notebook_server_list(*, user, project) -> list[NotebookServer]:
    """The caller's own server and the project's shared one (those that exist)."""
    return list(
        NotebookServer.objects.filter(project=project)
        .filter(Q(user=user, is_shared=False) | Q(is_shared=True))
        .select_related("user")
    )


def notebook_server_get(*, user, project, server_id: int) -> NotebookServer | None:
    return (
        NotebookServer.objects.filter(project=project, pk=server_id)
        .filter(Q(user=user, is_shared=False) | Q(is_shared=True))
        .select_related("user", "project")
        .first()
    )


def notebook_server_for_proxy(*, user, project_id: int, server_id: int) -> NotebookServer | None:
    """The running server at /notebooks/<project_id>/<server_id>/ if `user` may use it, else None.

    Members whose role may run code (`notebook.use`) reach their own server and the project's shared
    one; nobody else reaches anything, and a server that is not running is as good as missing.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    role = member_role(user=user, project_id=project_id)
    if role is None or not permissions.role_allows(role, "notebook.use"):
        return None
    return (
        NotebookServer.objects.filter(project_id=project_id, pk=server_id, state=ServerState.RUNNING)
        .filter(Q(user=user, is_shared=False) | Q(is_shared=True))
        .exclude(port__isnull=True)
        .first()
    )


def workspace_file_read(*, user, project, path: str, max_bytes: int) -> tuple[str, bytes]:
    """Return (file name, bytes) of a file in the caller's notebook workspace of `project`.

    `path` is relative to the workspace root the user sees in JupyterLab (their own folder, with the
    project's `shared/` folder in it). Anything that resolves outside those two folders (`..`, an
    absolute path, a symlink pointing elsewhere) is refused like a missing file.
    """
    from pathlib import Path, PurePosixPath

    from notebooks.services import notebooks_dir, project_shared_dir
    from studio.errors import ApplicationError
    from studio.projects.access import require

    require(user=user, project=project, action="notebook.use")
    relative = PurePosixPath(str(path or "").strip())
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        raise ApplicationError(
            "workspace_path: a path inside your notebook workspace, like shared/train.ipynb.",
            extra={"field": "workspace_path"},
        )
    root = notebooks_dir() / "users" / str(user.pk) / "projects" / str(project.pk)
    candidate = (root / Path(*relative.parts)).resolve()
    allowed = [root.resolve(), project_shared_dir(project.pk).resolve()]
    inside = any(candidate == base or base in candidate.parents for base in allowed)
    if not inside or not candidate.is_file():
        raise ApplicationError(
            f"workspace_path: no file {str(relative)!r} in your notebook workspace of this project.",
            code="not_found",
            status=404,
            extra={"field": "workspace_path"},
        )
    if candidate.stat().st_size > max_bytes:
        raise ApplicationError(
            f"workspace_path: {relative.name} is over the limit of {max_bytes} bytes.",
            extra={"field": "workspace_path"},
        )
    return relative.name, candidate.read_bytes()
