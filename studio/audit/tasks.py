from celery import shared_task


@shared_task(name="audit.export", acks_late=True, reject_on_worker_lost=True, time_limit=600)
def audit_export_task(*, export_id: int) -> None:
    from studio.audit.services import audit_export_execute

    audit_export_execute(export_id=export_id)
