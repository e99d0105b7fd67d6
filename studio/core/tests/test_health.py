import pytest

from studio.core.testing import UserFactory

pytestmark = pytest.mark.django_db


def test_health_json_reports_each_part(client):
    response = client.get("/health", HTTP_ACCEPT="application/json")
    report = response.json()
    assert set(report) == {"web", "database", "redis", "workers", "status"}
    assert report["database"]["ok"] is True
    assert report["database"]["engine"] in {"postgresql", "sqlite"}
    assert report["redis"]["ok"] is True
    assert isinstance(report["workers"]["count"], int)
    # without a worker answering, Studio is degraded and says so with a 503
    expected_status = 200 if report["workers"]["count"] else 503
    assert response.status_code == expected_status
    assert report["status"] == ("ok" if expected_status == 200 else "degraded")


def test_health_reports_redis_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    report = client.get("/health").json()
    assert report["redis"]["ok"] is False
    assert "Error" in report["redis"]["error"]
    assert report["workers"]["ok"] is False
    assert report["status"] == "degraded"


def test_health_page_for_browsers(client):
    response = client.get("/health", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert b"Health" in response.content
    assert b'data-part="database"' in response.content


def test_api_errors_have_one_shape(client):
    response = client.get("/api/v1/no-such-route")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    client.force_login(UserFactory())
    response = client.post("/api/v1/projects", {}, content_type="application/json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert "name" in body["message"]
    assert "name" in body["detail"]
    response = client.post("/api/v1/projects", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_content_security_policy_is_enforced(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_openapi_schema_and_local_swagger(client):
    client.force_login(UserFactory())
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/projects" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content


def test_openapi_schema_is_valid_and_complete(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "bearerAuth" in text
    assert "PaginatedProjectOutputList" in text
