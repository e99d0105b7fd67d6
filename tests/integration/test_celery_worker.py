"""A real Celery worker (separate process) against real Redis runs a task that a service enqueued."""

import csv
import io
import json
import time

import pytest
from django.test import Client

from studio.audit.models import AuditExport
from studio.audit.services import audit_export_start
from studio.core.testing import UserFactory, project_with_roles
from studio.projects.services import membership_add
from studio.storage import artifact_storage

pytestmark = [pytest.mark.integration]


def _wait_for(predicate, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_worker_runs_the_audit_export_enqueued_by_the_service(transactional_db, celery_worker_name):
    # given: a project with some history
    project, users = project_with_roles()
    owner = users["owner"]
    for number in range(3):
        UserFactory(username=f"worker-guest{number}")
        membership_add(
            user=owner, project=project, invitee=f"worker-guest{number}", role="viewer", ip="10.0.0.9"
        )
    # when: the service enqueues the export after commit
    export = audit_export_start(user=owner, project=project, filters={"action": "member."})
    # then: the worker process claims it and writes the CSV into the artifact store
    finished = _wait_for(
        lambda: AuditExport.objects.filter(pk=export.pk, status__in=["done", "failed"]).first()
    )
    assert finished is not None, "the worker never finished the export"
    assert finished.status == "done", finished.error
    assert finished.row_count == 3
    with artifact_storage().open(finished.artifact_name, "rb") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    assert sorted(json.loads(row["data"])["user"] for row in rows) == [f"worker-guest{n}" for n in range(3)]
    assert {row["ip"] for row in rows} == {"10.0.0.9"}


def test_a_redelivered_export_is_harmless(transactional_db, celery_worker_name):
    from studio.audit.tasks import audit_export_task

    project, users = project_with_roles()
    export = audit_export_start(user=users["owner"], project=project, filters={})
    done = _wait_for(lambda: AuditExport.objects.filter(pk=export.pk, status="done").first())
    assert done is not None
    # the same message again (as after a redelivery) must not redo or break the finished export
    audit_export_task.apply_async(kwargs={"export_id": export.pk}).get(timeout=30)
    again = AuditExport.objects.get(pk=export.pk)
    assert (again.status, again.finished_at, again.row_count) == (
        done.status,
        done.finished_at,
        done.row_count,
    )


def test_health_counts_the_live_worker(transactional_db, celery_worker_name):
    report = Client().get("/health").json()
    assert report["workers"]["count"] >= 1
    assert celery_worker_name in report["workers"]["names"]
    assert report["status"] == "ok"
