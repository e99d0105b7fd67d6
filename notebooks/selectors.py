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
