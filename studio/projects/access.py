"""Resolve a caller's access to a project: not a member (or outside the token's scope) is a 404."""

from dataclasses import dataclass

from studio.errors import ApplicationError, NotFound, PermissionDenied
from studio.projects import permissions
from studio.projects.models import Membership, Project


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: str

    def allows(self, action: str) -> bool:
        return permissions.role_allows(self.role, action)


def member_role(*, user, project_id) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()


def project_access(*, user, project_id, action: str, token=None) -> ProjectAccess:
    """Return the caller's access to the project, raising NotFound/PermissionDenied as the matrix says."""
    if token is not None and token.project_id is not None and str(token.project_id) != str(project_id):
        raise NotFound("No such project.")
    membership = (
        Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    if membership is None:
        raise NotFound("No such project.")
    access = ProjectAccess(project=membership.project, role=membership.role)
    _check(access, action)
    return access


def require(*, user, project: Project, action: str) -> ProjectAccess:
    """Raise unless `user` may perform `action` in `project` (the services' own guard)."""
    role = member_role(user=user, project_id=project.pk)
    if role is None:
        raise NotFound("No such project.")
    access = ProjectAccess(project=project, role=role)
    _check(access, action)
    return access


def _check(access: ProjectAccess, action: str) -> None:
    if not access.allows(action):
        raise PermissionDenied(f"A {access.role} may not do '{action}' in this project.")
    is_read = action.endswith(".view")
    if access.project.is_archived and not is_read and action != "project.archive":
        raise ApplicationError(
            "This project is archived and read-only; an owner can unarchive it.", code="archived", status=409
        )
