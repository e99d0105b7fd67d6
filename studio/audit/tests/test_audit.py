import pytest
from rest_framework.test import APIClient

from studio.audit.models import AuditEvent
from studio.core.testing import UserFactory, project_with_roles
from studio.projects.services import membership_add, project_create, project_update

pytestmark = pytest.mark.django_db


def test_service_writes_are_recorded_with_actor_target_project_and_ip():
    owner = UserFactory(username="olga")
    UserFactory(username="pete")
    project = project_create(user=owner, name="Vision", ip="10.1.2.3")
    membership_add(user=owner, project=project, invitee="pete", role="viewer", ip="10.1.2.3")
    project_update(user=owner, project=project, name="Vision 2", ip="10.1.2.4")
    events = list(AuditEvent.objects.filter(project=project).order_by("id"))
    assert [e.action for e in events] == ["project.create", "member.add", "project.update"]
    assert {e.actor_username for e in events} == {"olga"}
    assert events[1].data == {"user": "pete", "role": "viewer"}
    assert events[2].ip == "10.1.2.4"
    assert events[2].data == {"name": ["Vision", "Vision 2"]}


def test_audit_api_is_filterable_and_paged():
    project, users = project_with_roles()
    owner = users["owner"]
    for number in range(7):
        UserFactory(username=f"guest{number}")
        membership_add(user=owner, project=project, invitee=f"guest{number}", role="viewer")
    project_update(user=owner, project=project, name="Renamed")
    client = APIClient()
    client.force_authenticate(owner)
    url = f"/api/v1/projects/{project.pk}/audit"
    page = client.get(url, {"action": "member.", "page_size": 5}).json()
    assert page["count"] == 7
    assert len(page["results"]) == 5
    assert {e["action"] for e in page["results"]} == {"member.add"}
    assert page["next"]
    assert client.get(url, {"action": "project.update"}).json()["results"][0]["data"]["name"][1] == "Renamed"
    assert client.get(url, {"actor": "nobody"}).json()["count"] == 0


def test_bad_audit_filter_names_the_field():
    project, users = project_with_roles()
    client = APIClient()
    client.force_authenticate(users["owner"])
    response = client.get(f"/api/v1/projects/{project.pk}/audit", {"since": "last tuesday"})
    assert response.status_code == 400
    assert "since" in response.json()["error"]["message"]


def test_audit_page_for_maintainers_only(client):
    project, users = project_with_roles()
    client.force_login(users["maintainer"])
    page = client.get(f"/projects/{project.pk}/settings/audit/")
    assert page.status_code == 200
    assert b"Audit log" in page.content
    client.force_login(users["scientist"])
    assert client.get(f"/projects/{project.pk}/settings/audit/").status_code == 403


def test_project_pages_of_other_projects_are_404(client):
    project, _users = project_with_roles()
    client.force_login(UserFactory(username="stranger"))
    for path in ["", "settings/", "settings/members/", "settings/audit/"]:
        assert client.get(f"/projects/{project.pk}/{path}").status_code == 404, path
