from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from studio.audit.services import audit_record
from studio.errors import ApplicationError, NotFound
from studio.projects import permissions
from studio.projects.access import require
from studio.projects.models import Membership, Project
from studio.projects.permissions import Role


def _unique_slug(name: str, *, exclude_pk=None) -> str:
    base = slugify(name)[:80] or "project"
    slug, number = base, 2
    taken = Project.objects.exclude(pk=exclude_pk)
    while taken.filter(slug=slug).exists():
        slug, number = f"{base}-{number}", number + 1
    return slug


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("name: a project needs a name.", code="invalid", extra={"field": "name"})
    if len(name) > 100:
        raise ApplicationError("name: at most 100 characters.", code="invalid", extra={"field": "name"})
    return name


@transaction.atomic
def project_create(*, user, name: str, description: str = "", ip: str | None = None) -> Project:
    name = _clean_name(name)
    project = Project(name=name, slug=_unique_slug(name), description=description, created_by=user)
    project.full_clean()
    project.save()
    membership = Membership(project=project, user=user, role=Role.OWNER, added_by=user)
    membership.full_clean()
    membership.save()
    audit_record(user=user, project=project, action="project.create", target=project, ip=ip)
    return project


@transaction.atomic
def project_update(
    *, user, project: Project, name: str | None = None, description: str | None = None, ip: str | None = None
) -> Project:
    require(user=user, project=project, action="project.update")
    changes = {}
    if name is not None and _clean_name(name) != project.name:
        changes["name"] = [project.name, _clean_name(name)]
        project.name = _clean_name(name)
    if description is not None and description != project.description:
        changes["description"] = True
        project.description = description
    if not changes:
        return project
    project.updated_at = timezone.now()
    project.full_clean()
    project.save()
    audit_record(user=user, project=project, action="project.update", target=project, ip=ip, data=changes)
    return project


@transaction.atomic
def project_set_archived(*, user, project: Project, is_archived: bool, ip: str | None = None) -> Project:
    require(user=user, project=project, action="project.archive")
    if project.is_archived == is_archived:
        return project
    project.is_archived = is_archived
    project.updated_at = timezone.now()
    project.save(update_fields=["is_archived", "updated_at"])
    action = "project.archive" if is_archived else "project.unarchive"
    audit_record(user=user, project=project, action=action, target=project, ip=ip)
    return project


def _find_user(identifier: str):
    identifier = (identifier or "").strip()
    if not identifier:
        raise ApplicationError("user: give a username or an e-mail address.", extra={"field": "user"})
    user_model = get_user_model()
    matches = list(
        user_model.objects.filter(Q(username=identifier) | Q(email__iexact=identifier), is_active=True)[:2]
    )
    if len(matches) != 1:
        raise ApplicationError(
            f"user: no single active user is called or has the e-mail {identifier!r}.",
            code="unknown_user",
            extra={"field": "user"},
        )
    return matches[0]


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise ApplicationError(
            f"role: {role!r} is not a role; choose one of {', '.join(Role.values)}.", extra={"field": "role"}
        )
    return role


@transaction.atomic
def membership_add(*, user, project: Project, invitee: str, role: str, ip: str | None = None) -> Membership:
    access = require(user=user, project=project, action="member.manage")
    role = _check_role(role)
    if not permissions.can_grant(access.role, role):
        raise ApplicationError(
            f"role: a {access.role} cannot grant the {role} role.", code="permission_denied", status=403
        )
    member = _find_user(invitee)
    membership = Membership(project=project, user=member, role=role, added_by=user)
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:
        raise ApplicationError(
            f"user: {member.username} is already a member of this project.",
            code="already_member",
            extra={"field": "user"},
            status=409,
        ) from None
    audit_record(
        user=user,
        project=project,
        action="member.add",
        target=membership,
        ip=ip,
        data={"user": member.username, "role": role},
    )
    return membership


def _membership_for_update(project: Project, member_user_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update().filter(project=project, user_id=member_user_id).first()
    )
    if membership is None:
        raise NotFound("No such member in this project.")
    return membership


def _refuse_last_owner(project: Project, membership: Membership) -> None:
    if (
        membership.role == Role.OWNER
        and Membership.objects.filter(project=project, role=Role.OWNER).count() == 1
    ):
        raise ApplicationError(
            "A project keeps at least one owner; make someone else owner first.",
            code="last_owner",
            status=409,
        )


@transaction.atomic
def membership_change_role(*, user, project: Project, member_user_id: int, role: str, ip: str | None = None):
    access = require(user=user, project=project, action="member.manage")
    role = _check_role(role)
    membership = _membership_for_update(project, member_user_id)
    if not (permissions.can_grant(access.role, role) and permissions.can_grant(access.role, membership.role)):
        raise ApplicationError(
            f"role: a {access.role} cannot change a {membership.role} to {role}.",
            code="permission_denied",
            status=403,
        )
    if membership.role == role:
        return membership
    if role != Role.OWNER:
        _refuse_last_owner(project, membership)
    previous = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit_record(
        user=user,
        project=project,
        action="member.role_change",
        target=membership,
        ip=ip,
        data={"user": membership.user.username, "from": previous, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, user, project: Project, member_user_id: int, ip: str | None = None) -> None:
    is_leaving = member_user_id == user.pk
    access = require(user=user, project=project, action="project.view" if is_leaving else "member.manage")
    membership = _membership_for_update(project, member_user_id)
    if not is_leaving and not permissions.can_grant(access.role, membership.role):
        raise ApplicationError(
            f"A {access.role} cannot remove a {membership.role}.", code="permission_denied", status=403
        )
    _refuse_last_owner(project, membership)
    username = membership.user.username
    audit_record(
        user=user,
        project=project,
        action="member.leave" if is_leaving else "member.remove",
        target=membership,
        ip=ip,
        data={"user": username, "role": membership.role},
    )
    membership.delete()
