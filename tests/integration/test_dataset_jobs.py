"""Dataset jobs end to end with a real Celery worker: upload → version → profile; recipe → derived version."""

import io
import time
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from datasets import files
from datasets.models import DatasetJob, DatasetVersion
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.errors import ApplicationError

pytestmark = [pytest.mark.integration]

CSV = b"id,city,amount,returned\n" + b"".join(
    f"{n},{['Paris', 'Lyon', 'Nice'][n % 3]},{n * 1.5},{'true' if n % 4 == 0 else 'false'}\n".encode()
    for n in range(1, 201)
)


def _wait(predicate, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    return predicate()


@pytest.fixture
def scientist_client():
    project = ProjectFactory(name="Data team")
    user = UserFactory(username="sci")
    MembershipFactory(project=project, user=user, role="scientist")
    client = APIClient()
    client.force_authenticate(user)
    return project, client


def _upload(client, project, body: bytes, *, name: str, filename: str) -> dict:
    response = client.generic(
        "POST",
        f"/api/v1/projects/{project.pk}/datasets/upload?name={name}&filename={filename}",
        body,
        content_type="application/octet-stream",
    )
    assert response.status_code == 202, response.content
    return response.json()


def _finished(project, job_id):
    return _wait(lambda: DatasetJob.objects.filter(pk=job_id, status__in=["done", "failed"]).first())


def test_upload_becomes_a_profiled_version(transactional_db, celery_worker_name, scientist_client):
    project, client = scientist_client
    job = _upload(client, project, CSV, name="orders", filename="orders.csv")
    finished = _finished(project, job["id"])
    assert finished.status == "done", finished.error
    version = finished.version
    assert version.row_count == 200
    assert {column["name"]: column["type"] for column in version.schema} == {
        "id": "numeric",
        "city": "categorical",
        "amount": "numeric",
        "returned": "boolean",
    }
    assert files.local_path(version.storage_name).is_file()
    # the upload's temporary file is gone
    assert not Path(finished.params["upload_path"]).exists()
    profiled = _wait(
        lambda: DatasetVersion.objects.filter(pk=version.pk, profile_status__in=["done", "failed"]).first()
    )
    assert profiled.profile_status == "done", profiled.profile_error
    profile = client.get(f"/api/v1/projects/{project.pk}/dataset-versions/{version.pk}/profile").json()[
        "profile"
    ]
    assert profile["row_count"] == 200
    # the same bytes again are recognised: same version, nothing stored twice
    again = _finished(project, _upload(client, project, CSV, name="orders", filename="orders.csv")["id"])
    assert again.status == "done"
    assert again.is_duplicate is True
    assert again.version_id == version.pk
    assert DatasetVersion.objects.filter(dataset=version.dataset).count() == 1


def test_recipe_applied_by_a_worker_creates_a_derived_version(
    transactional_db, celery_worker_name, scientist_client
):
    project, client = scientist_client
    source = _finished(
        project, _upload(client, project, CSV, name="orders", filename="orders.csv")["id"]
    ).version
    steps = [
        {"type": "drop", "columns": ["returned"]},
        {"type": "filter", "expression": "amount > 150"},
        {"type": "derive", "name": "amount_k", "expression": "amount / 1000"},
    ]
    preview = client.post(
        f"/api/v1/projects/{project.pk}/recipes/preview",
        {"version_id": source.pk, "steps": steps, "upto": 2},
        format="json",
    )
    assert preview.status_code == 200, preview.content
    assert "returned" not in preview.json()["columns"]
    assert "amount_k" not in preview.json()["columns"]
    response = client.post(
        f"/api/v1/projects/{project.pk}/recipes/apply",
        {"version_id": source.pk, "steps": steps},
        format="json",
    )
    assert response.status_code == 202, response.content
    finished = _finished(project, response.json()["id"])
    assert finished.status == "done", finished.error
    derived = finished.version
    assert derived.parent_id == source.pk
    assert derived.number == 2
    assert derived.row_count == sum(1 for n in range(1, 201) if n * 1.5 > 150)
    assert [column["name"] for column in derived.schema] == ["id", "city", "amount", "amount_k"]
    detail = client.get(f"/api/v1/projects/{project.pk}/dataset-versions/{source.pk}").json()
    assert [child["id"] for child in detail["lineage"]["children"]] == [derived.pk]
    csv_download = client.get(
        f"/api/v1/projects/{project.pk}/dataset-versions/{derived.pk}/download?format=csv"
    )
    text = b"".join(csv_download.streaming_content).decode()
    assert text.splitlines()[0].replace('"', "") == "id,city,amount,amount_k"
    assert len(text.splitlines()) == derived.row_count + 1


def test_a_ragged_csv_fails_with_the_line_number_and_leaves_no_version(
    transactional_db, celery_worker_name, scientist_client
):
    project, client = scientist_client
    body = b"a,b,c\n1,2,3\n4,5,6\n7,8\n"
    finished = _finished(project, _upload(client, project, body, name="broken", filename="broken.csv")["id"])
    assert finished.status == "failed"
    assert "line 4" in finished.error
    assert not DatasetVersion.objects.filter(dataset__name="broken").exists()
    job = client.get(f"/api/v1/projects/{project.pk}/dataset-jobs/{finished.pk}").json()
    assert job["status"] == "failed"
    assert "line 4" in job["error"]


def test_an_interrupted_upload_leaves_nothing(transactional_db):
    before = set(files.work_dir().glob("upload-*"))
    with pytest.raises(ApplicationError, match="interrupted"):
        files.receive_upload(io.BytesIO(b"a,b\n1,2\n"), expected_bytes=1000, max_bytes=10_000)
    assert set(files.work_dir().glob("upload-*")) == before
