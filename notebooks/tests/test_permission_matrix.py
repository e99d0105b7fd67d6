"""Every notebooks API route × every role, plus outsiders (404) and anonymous callers (401)."""

import pytest
from rest_framework.test import APIClient

from notebooks.models import NotebookServer
from notebooks.spawners import get_spawner
from notebooks.tests.factories import NotebookServerFactory
from studio.core.testing import UserFactory, api_call, assert_follows_matrix, project_with_roles
from studio.projects.permissions import Role

SERVER = "projects/<int:project_id>/notebook-servers/<int:server_id>"

# (method, route, url template, action, body)
ROUTES = [
    (
        "GET",
        "projects/<int:project_id>/notebook-servers",
        "/api/v1/projects/{p}/notebook-servers",
        "notebook.use",
        None,
    ),
    (
        "POST",
        "projects/<int:project_id>/notebook-servers",
        "/api/v1/projects/{p}/notebook-servers",
        "notebook.use",
        {"is_shared": False},
    ),
    ("GET", SERVER, "/api/v1/projects/{p}/notebook-servers/{s}", "notebook.use", None),
    ("POST", SERVER + "/stop", "/api/v1/projects/{p}/notebook-servers/{s}/stop", "notebook.use", None),
]


@pytest.fixture
def world(db, settings, tmp_path):
    settings.STUDIO_NOTEBOOK_DIR = tmp_path / "notebooks"
    project, users = project_with_roles()
    users["outsider"] = UserFactory(username=f"outsider-{project.slug}")
    shared = NotebookServerFactory(project=project, user=users["owner"], is_shared=True)
    yield {"project": project, "users": users, "s": shared}
    # Servers an allowed role started for real: end them with the test.
    for server in NotebookServer.objects.exclude(pid__isnull=True):
        get_spawner().stop(pid=server.pid, process_started_at=server.process_started_at)


@pytest.mark.parametrize("principal", [*Role.values, "outsider"])
@pytest.mark.parametrize(("method", "route", "template", "action", "body"), ROUTES)
def test_notebook_routes_follow_the_matrix(world, principal, method, route, template, action, body):
    client = APIClient()
    client.force_authenticate(world["users"][principal])
    url = template.format(p=world["project"].pk, s=world["s"].pk)
    response = api_call(client, method, url, body)
    assert_follows_matrix(response, principal=principal, action=action)


@pytest.mark.parametrize(("method", "route", "template", "action", "body"), ROUTES)
def test_anonymous_callers_get_401(world, method, route, template, action, body):
    url = template.format(p=world["project"].pk, s=world["s"].pk)
    assert api_call(APIClient(), method, url, body).status_code == 401
