"""Uploads as a browser sends them: session cookie + CSRF header, the file as the raw body."""

import pytest
from django.test import Client

from datasets.models import DatasetJob
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_like():
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(project=project, user=user, role="scientist")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/tokens/")  # any page sets the CSRF cookie
    return project, client


def _post(client, project, body: bytes, *, csrf: str | None, name="sales", filename="sales.csv", **headers):
    extra = {"HTTP_X_CSRFTOKEN": csrf} if csrf else {}
    return client.generic(
        "POST",
        f"/api/v1/projects/{project.pk}/datasets/upload?name={name}&filename={filename}",
        body,
        content_type="text/csv",
        **extra,
        **headers,
    )


def test_session_upload_with_csrf_token_is_accepted(browser_like):
    project, client = browser_like
    response = _post(client, project, b"a,b\n1,2\n", csrf=client.cookies["csrftoken"].value)
    assert response.status_code == 202, response.content
    job = DatasetJob.objects.get(pk=response.json()["id"])
    assert (job.dataset_name, job.params["original_name"], job.params["size_bytes"]) == (
        "sales",
        "sales.csv",
        8,
    )


def test_session_upload_without_csrf_token_is_refused(browser_like):
    project, client = browser_like
    response = _post(client, project, b"a,b\n1,2\n", csrf=None)
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not DatasetJob.objects.exists()


def test_empty_upload_names_the_problem(browser_like):
    project, client = browser_like
    response = _post(client, project, b"", csrf=client.cookies["csrftoken"].value)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "file: the file is empty."


def test_upload_without_a_filename_names_the_parameter(browser_like):
    project, client = browser_like
    response = _post(client, project, b"a\n1\n", csrf=client.cookies["csrftoken"].value, filename="")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("filename:")
