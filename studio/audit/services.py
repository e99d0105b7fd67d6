import csv
import io
import json

from django.db import transaction
from django.utils import timezone

from studio.audit.models import AuditEvent, AuditExport
from studio.projects import events
from studio.storage import artifact_storage


def audit_record(
    *, user, action: str, project=None, target=None, ip: str | None = None, data=None
) -> AuditEvent:
    """Record a write made through a service, and push it to the project's live activity feed."""
    event = AuditEvent(
        project=project,
        actor=user if getattr(user, "pk", None) else None,
        actor_username=getattr(user, "username", "") or "",
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        ip=ip,
        data=data or {},
    )
    event.full_clean()
    event.save()
    if project is not None:
        payload = activity_payload(event)
        project_id = project.pk
        transaction.on_commit(lambda: events.publish(project_id=project_id, kind="activity", payload=payload))
    return event


def activity_payload(event: AuditEvent) -> dict:
    return {
        "id": event.pk,
        "action": event.action,
        "actor": event.actor_username,
        "target_type": event.target_type,
        "target": event.target_repr,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


@transaction.atomic
def audit_export_start(*, user, project, filters: dict, ip: str | None = None) -> AuditExport:
    from studio.audit.tasks import audit_export_task
    from studio.projects.access import require

    require(user=user, project=project, action="audit.export")
    export = AuditExport(project=project, requested_by=user, filters=filters)
    export.full_clean()
    export.save()
    audit_record(user=user, project=project, action="audit.export", target=export, ip=ip, data=filters)
    transaction.on_commit(lambda: audit_export_task.delay(export_id=export.pk))
    return export


CSV_COLUMNS = ["time", "actor", "action", "target_type", "target_id", "target", "ip", "data"]


def audit_export_execute(*, export_id: int) -> None:
    """Write the export's CSV into the artifact store. Safe to run twice: only a queued export is claimed."""
    from studio.audit.selectors import audit_event_queryset

    with transaction.atomic():
        export = AuditExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status != AuditExport.Status.QUEUED:
            return
        export.status = AuditExport.Status.RUNNING
        export.save(update_fields=["status"])
    try:
        rows = audit_event_queryset(project=export.project, filters=export.filters).iterator(chunk_size=2000)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        count = 0
        for event in rows:
            writer.writerow(
                [
                    event.created_at.isoformat(),
                    event.actor_username,
                    event.action,
                    event.target_type,
                    event.target_id,
                    event.target_repr,
                    event.ip or "",
                    json.dumps(event.data, sort_keys=True),
                ]
            )
            count += 1
        name = f"projects/{export.project_id}/audit/audit-{export.pk}.csv"
        storage = artifact_storage()
        if storage.exists(name):
            storage.delete(name)
        storage.save(name, io.BytesIO(buffer.getvalue().encode()))
    except Exception as error:  # the export fails visibly instead of staying "running"
        AuditExport.objects.filter(pk=export.pk).update(
            status=AuditExport.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        events.publish(
            project_id=export.project_id, kind="audit_export", payload={"id": export.pk, "status": "failed"}
        )
        raise
    AuditExport.objects.filter(pk=export.pk).update(
        status=AuditExport.Status.DONE, artifact_name=name, row_count=count, finished_at=timezone.now()
    )
    events.publish(
        project_id=export.project_id,
        kind="audit_export",
        payload={"id": export.pk, "status": "done", "rows": count},
    )
