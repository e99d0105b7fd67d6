from django.db.models import Count, OuterRef, QuerySet, Subquery

from studio.audit.models import AuditEvent
from studio.projects.models import Membership, Project


def project_list(*, user, token=None, include_archived: bool = False) -> QuerySet[Project]:
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    projects = Project.objects.filter(memberships__user=user).annotate(
        role=Subquery(role), member_count=Count("memberships", distinct=True)
    )
    if token is not None and token.project_id is not None:
        projects = projects.filter(pk=token.project_id)
    if not include_archived:
        projects = projects.filter(is_archived=False)
    return projects.order_by("name", "pk")


def project_get_by_slug(*, user, slug: str, token=None) -> Project | None:
    return project_list(user=user, token=token, include_archived=True).filter(slug=slug).first()


def membership_list(*, project) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(project=project)
        .select_related("user", "added_by")
        .order_by("user__username")
    )


def project_counts(*, project) -> dict[str, int]:
    """Counts shown on the project home. Later stages add their own (datasets, runs, models, …)."""
    return {
        "members": Membership.objects.filter(project=project).count(),
        "events": AuditEvent.objects.filter(project=project).count(),
    }
