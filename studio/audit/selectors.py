from django.db.models import QuerySet

from studio.audit.models import AuditEvent, AuditExport
from studio.errors import NotFound

FILTER_FIELDS = ("action", "actor", "target_type", "since", "until")


def audit_event_queryset(*, project, filters: dict) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(project=project)
    if filters.get("action"):
        events = events.filter(action__startswith=filters["action"])
    if filters.get("actor"):
        events = events.filter(actor_username=filters["actor"])
    if filters.get("target_type"):
        events = events.filter(target_type=filters["target_type"])
    if filters.get("since"):
        events = events.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(created_at__lt=filters["until"])
    return events.order_by("-created_at", "-id")


def activity_list(*, project, limit: int = 20) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(project=project).order_by("-created_at", "-id")[:limit])


def audit_export_get(*, project, export_id: int) -> AuditExport:
    export = AuditExport.objects.filter(project=project, pk=export_id).first()
    if export is None:
        raise NotFound("No such audit export in this project.")
    return export


def audit_export_list(*, project, limit: int = 10) -> list[AuditExport]:
    return list(AuditExport.objects.filter(project=project)[:limit])
