"""Table-driven: every API route × every role, plus outsiders (404) and anonymous callers (401)."""

import io

import pytest
from rest_framework.test import APIClient

from studio.audit.models import AuditExport
from studio.core.testing import MembershipFactory, UserFactory, project_with_roles
from studio.projects import permissions as matrix
from studio.projects.permissions import Role
from studio.storage import artifact_storage

OK = {200, 201, 202, 204}

# (method, route, url template, required action, body). `victim` is a viewer that member operations target.
ROUTES = [
    ("GET", "projects/<int:project_id>", "/api/v1/projects/{p}", "project.view", None),
    ("PATCH", "projects/<int:project_id>", "/api/v1/projects/{p}", "project.update", {"name": "Renamed"}),
    ("POST", "projects/<int:project_id>/archive", "/api/v1/projects/{p}/archive", "project.archive", None),
    ("DELETE", "projects/<int:project_id>/archive", "/api/v1/projects/{p}/archive", "project.archive", None),
    ("GET", "projects/<int:project_id>/members", "/api/v1/projects/{p}/members", "member.view", None),
    (
        "POST",
        "projects/<int:project_id>/members",
        "/api/v1/projects/{p}/members",
        "member.manage",
        {"user": "newcomer", "role": "viewer"},
    ),
    (
        "PATCH",
        "projects/<int:project_id>/members/<int:user_id>",
        "/api/v1/projects/{p}/members/{victim}",
        "member.manage",
        {"role": "annotator"},
    ),
    (
        "DELETE",
        "projects/<int:project_id>/members/<int:user_id>",
        "/api/v1/projects/{p}/members/{victim}",
        "member.manage",
        None,
    ),
    ("GET", "projects/<int:project_id>/audit", "/api/v1/projects/{p}/audit", "audit.view", None),
    (
        "POST",
        "projects/<int:project_id>/audit/exports",
        "/api/v1/projects/{p}/audit/exports",
        "audit.export",
        {},
    ),
    (
        "GET",
        "projects/<int:project_id>/audit/exports/<int:export_id>",
        "/api/v1/projects/{p}/audit/exports/{export}",
        "audit.view",
        None,
    ),
    (
        "GET",
        "projects/<int:project_id>/audit/exports/<int:export_id>/download",
        "/api/v1/projects/{p}/audit/exports/{export}/download",
        "audit.view",
        None,
    ),
]
# Routes outside any project: who may call them.
GLOBAL_ROUTES = [
    ("GET", "me", "/api/v1/me", matrix.AUTHENTICATED, None),
    ("GET", "projects", "/api/v1/projects", matrix.AUTHENTICATED, None),
    ("POST", "projects", "/api/v1/projects", matrix.AUTHENTICATED, {"name": "Mine"}),
    ("GET", "tokens", "/api/v1/tokens", matrix.AUTHENTICATED, None),
    ("POST", "tokens", "/api/v1/tokens", matrix.AUTHENTICATED, {"name": "ci"}),
    ("DELETE", "tokens/<int:token_id>", "/api/v1/tokens/{token}", matrix.AUTHENTICATED, None),
    ("GET", "users", "/api/v1/users", matrix.STAFF, None),
    ("POST", "users", "/api/v1/users", matrix.STAFF, {"username": "fresh", "password": "a-Long-passw0rd!"}),
]
PRINCIPALS = [*Role.values, "outsider"]


@pytest.fixture
def world(db):
    project, users = project_with_roles()
    victim = UserFactory(username="victim")
    MembershipFactory(project=project, user=victim, role=Role.VIEWER)
    UserFactory(username="newcomer")
    outsider = UserFactory(username="outsider")
    export = AuditExport.objects.create(
        project=project,
        status=AuditExport.Status.DONE,
        artifact_name=f"tests/audit-{project.pk}.csv",
        row_count=0,
    )
    storage = artifact_storage()
    if storage.exists(export.artifact_name):
        storage.delete(export.artifact_name)
    storage.save(export.artifact_name, io.BytesIO(b"time,actor\n"))
    users["outsider"] = outsider
    return {"project": project, "users": users, "victim": victim, "export": export}


def _url(template, world, token_id=None):
    return template.format(
        p=world["project"].pk, victim=world["victim"].pk, export=world["export"].pk, token=token_id
    )


def _call(client, method, url, body):
    return (
        getattr(client, method.lower())(url, body, format="json")
        if body is not None
        else getattr(client, method.lower())(url)
    )


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES]
)
def test_project_routes_follow_the_matrix(world, principal, method, route, template, action, body):
    # given
    client = APIClient()
    client.force_authenticate(world["users"][principal])
    # when
    response = _call(client, method, _url(template, world), body)
    # then
    if principal == "outsider":
        expected = "404 (another project's object)"
        assert response.status_code == 404, (expected, response.content)
    elif matrix.role_allows(principal, action):
        assert response.status_code in OK, (principal, response.status_code, response.content)
    else:
        assert response.status_code == 403, (principal, response.status_code, response.content)
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"),
    ROUTES + GLOBAL_ROUTES,
    ids=[f"{r[0]} {r[1]}" for r in ROUTES + GLOBAL_ROUTES],
)
def test_anonymous_callers_get_401(world, method, route, template, action, body):
    response = _call(APIClient(), method, _url(template, world, token_id=1), body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("is_staff", [False, True])
@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"),
    GLOBAL_ROUTES,
    ids=[f"{r[0]} {r[1]}" for r in GLOBAL_ROUTES],
)
def test_global_routes(world, is_staff, method, route, template, action, body):
    from studio.accounts.services import api_token_create

    user = world["users"]["viewer"]
    user.is_staff = is_staff
    user.save()
    token, _raw = api_token_create(user=user, name="existing")
    client = APIClient()
    client.force_authenticate(user)
    response = _call(client, method, _url(template, world, token_id=token.pk), body)
    if action == matrix.STAFF and not is_staff:
        assert response.status_code == 403
    else:
        assert response.status_code in OK, response.content


def test_maintainer_cannot_grant_or_remove_owner(world):
    client = APIClient()
    client.force_authenticate(world["users"]["maintainer"])
    url = f"/api/v1/projects/{world['project'].pk}/members/{world['victim'].pk}"
    response = client.patch(url, {"role": "owner"}, format="json")
    assert response.status_code == 403
    owner = world["users"]["owner"]
    response = client.delete(f"/api/v1/projects/{world['project'].pk}/members/{owner.pk}")
    assert response.status_code == 403


def test_last_owner_cannot_leave(world):
    client = APIClient()
    owner = world["users"]["owner"]
    client.force_authenticate(owner)
    response = client.delete(f"/api/v1/projects/{world['project'].pk}/members/{owner.pk}")
    assert response.status_code == 409
    assert "at least one owner" in response.json()["error"]["message"]


def test_any_member_may_leave(world):
    client = APIClient()
    viewer = world["users"]["viewer"]
    client.force_authenticate(viewer)
    response = client.delete(f"/api/v1/projects/{world['project'].pk}/members/{viewer.pk}")
    assert response.status_code == 204
    assert client.get(f"/api/v1/projects/{world['project'].pk}").status_code == 404


def test_archived_project_is_read_only(world):
    client = APIClient()
    client.force_authenticate(world["users"]["owner"])
    project_url = f"/api/v1/projects/{world['project'].pk}"
    assert client.post(project_url + "/archive").json()["is_archived"] is True
    assert client.get(project_url).status_code == 200
    response = client.patch(project_url, {"name": "nope"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "archived"
    assert client.delete(project_url + "/archive").json()["is_archived"] is False
    assert client.patch(project_url, {"name": "yes"}, format="json").json()["name"] == "yes"
