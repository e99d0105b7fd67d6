"""The Python SDK against a real Studio web process (uvicorn) and the real test database."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from studio.accounts.services import api_token_create
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from studio_sdk import (
    AuthenticationError,
    Client,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Project,
    StudioConnectionError,
    StudioError,
    ValidationError,
    __version__,
)

ROOT = Path(__file__).resolve().parent.parent


def raw_token(user, *, project=None) -> str:
    _token, raw = api_token_create(user=user, name="sdk test", project=project)
    return raw


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="sdk-owner")


@pytest.fixture
def client(owner, studio_server):
    with Client(url=studio_server, token=raw_token(owner)) as client:
        yield client


@pytest.mark.integration
def test_whoami_returns_the_token_user(client, owner):
    # when
    me = client.whoami()

    # then
    assert me["username"] == "sdk-owner"
    assert me["id"] == owner.pk
    assert me["auth"] == "token"
    assert me["token_project_id"] is None


@pytest.mark.integration
def test_create_list_and_get_by_id_and_by_name(client):
    # when
    created = client.projects.create("Churn model", description="Predict who leaves")

    # then
    assert isinstance(created, Project)
    assert (created.name, created.slug, created.description) == (
        "Churn model",
        "churn-model",
        "Predict who leaves",
    )
    assert created.role == "owner"
    assert created.is_archived is False
    assert [project.id for project in client.projects.list()] == [created.id]
    by_id = client.projects.get(created.id)
    by_name = client.projects.get("Churn model")
    assert (by_id.id, by_id.name, by_id.role) == (created.id, "Churn model", "owner")
    assert by_name.id == created.id
    assert repr(by_id) == f"<Project id={created.id} name='Churn model' role='owner'>"


@pytest.mark.integration
def test_list_follows_pagination_to_the_end(client):
    # given
    names = [f"Paged {number}" for number in range(5)]
    for name in names:
        client.projects.create(name)

    # when: two per page, so three pages and two `next` links
    projects = client.projects.list(page_size=2)

    # then
    assert [project.name for project in projects] == names


@pytest.mark.integration
def test_rename_updates_the_object_and_the_server(client):
    # given
    project = client.projects.create("Old name")

    # when
    returned = project.rename("New name")

    # then
    assert returned is project
    assert project.name == "New name"
    assert client.projects.get(project.id).name == "New name"
    with pytest.raises(NotFoundError):
        client.projects.get("Old name")


@pytest.mark.integration
def test_add_member_then_members_lists_both(client):
    # given
    UserFactory(username="sdk-colleague", email="colleague@example.com")
    project = client.projects.create("Shared")

    # when
    membership = project.add_member("sdk-colleague", "scientist")

    # then
    assert (membership["username"], membership["role"]) == ("sdk-colleague", "scientist")
    assert {(member["username"], member["role"]) for member in project.members()} == {
        ("sdk-owner", "owner"),
        ("sdk-colleague", "scientist"),
    }
    assert project.refresh().member_count == 2


@pytest.mark.integration
def test_archive_hides_the_project_and_makes_it_read_only(client):
    # given
    project = client.projects.create("To archive")

    # when
    project.archive()

    # then
    assert project.is_archived is True
    assert client.projects.list() == []
    assert [item.id for item in client.projects.list(archived=True)] == [project.id]
    assert client.projects.get("To archive").is_archived is True  # by name finds archived ones too
    with pytest.raises(ConflictError, match="archived"):
        project.rename("Still writable?")
    assert project.unarchive().is_archived is False
    assert [item.id for item in client.projects.list()] == [project.id]


@pytest.mark.integration
def test_audit_lists_the_project_events_newest_first(client):
    # given
    project = client.projects.create("Audited")
    project.rename("Audited twice")

    # when
    events = project.audit(action="project.")
    every_event = list(project.iter_audit(page_size=1))

    # then
    assert [event["action"] for event in events] == ["project.update", "project.create"]
    assert all(event["actor"] == "sdk-owner" for event in events)
    assert [event["id"] for event in every_event] == [event["id"] for event in project.audit()]


@pytest.mark.integration
def test_a_bad_token_raises_authentication_error(owner, studio_server):
    client = Client(url=studio_server, token="stu_00000000_not-a-real-token")

    with pytest.raises(AuthenticationError) as caught:
        client.whoami()

    assert caught.value.status == 401
    assert str(caught.value) == "Invalid, expired or revoked API token."


@pytest.mark.integration
def test_an_unknown_id_raises_not_found_with_the_server_message(client):
    with pytest.raises(NotFoundError) as caught:
        client.projects.get(987654)

    assert caught.value.status == 404
    assert caught.value.code == "not_found"
    assert str(caught.value) == "No such project."


@pytest.mark.integration
def test_an_unknown_name_raises_not_found(client):
    with pytest.raises(NotFoundError, match="No project named 'Nope'"):
        client.projects.get("Nope")


@pytest.mark.integration
def test_an_empty_name_raises_validation_error_naming_the_field(client):
    with pytest.raises(ValidationError) as caught:
        client.projects.create("")

    assert caught.value.status == 400
    assert caught.value.code == "invalid"
    assert str(caught.value).startswith("name: ")
    assert "name" in caught.value.detail
    assert client.projects.list() == []


@pytest.mark.integration
def test_a_viewer_may_not_rename(client, studio_server):
    # given
    viewer = UserFactory(username="sdk-viewer")
    project = client.projects.create("Read only for some")
    project.add_member("sdk-viewer", Role.VIEWER)
    viewer_client = Client(url=studio_server, token=raw_token(viewer))
    seen_by_viewer = viewer_client.projects.get(project.id)

    # when
    with pytest.raises(PermissionDeniedError) as caught:
        seen_by_viewer.rename("Hijacked")

    # then
    assert caught.value.status == 403
    assert "viewer" in str(caught.value)
    assert seen_by_viewer.role == "viewer"
    assert project.refresh().name == "Read only for some"


@pytest.mark.integration
def test_configuration_from_the_environment(owner, studio_server, monkeypatch):
    monkeypatch.setenv("STUDIO_URL", studio_server + "/")
    monkeypatch.setenv("STUDIO_TOKEN", raw_token(owner))

    client = Client()

    assert client.whoami()["username"] == "sdk-owner"
    assert client._http.session.headers["User-Agent"] == f"studio-sdk/{__version__}"


def test_missing_configuration_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv("STUDIO_URL", raising=False)
    monkeypatch.delenv("STUDIO_TOKEN", raising=False)

    with pytest.raises(ConfigurationError, match="STUDIO_URL"):
        Client()
    with pytest.raises(ConfigurationError, match="STUDIO_TOKEN"):
        Client(url="http://127.0.0.1:8000")


@pytest.mark.integration
def test_a_project_scoped_token_sees_only_its_project(owner, studio_server):
    # given
    mine, other = ProjectFactory(name="Scoped"), ProjectFactory(name="Outside the scope")
    MembershipFactory(project=mine, user=owner, role=Role.OWNER)
    MembershipFactory(project=other, user=owner, role=Role.OWNER)
    client = Client(url=studio_server, token=raw_token(owner, project=mine))

    # when
    visible = client.projects.list()

    # then
    assert [project.id for project in visible] == [mine.pk]
    assert client.whoami()["token_project_id"] == mine.pk
    with pytest.raises(NotFoundError):
        client.projects.get(other.pk)
    with pytest.raises(NotFoundError):
        client.projects.get("Outside the scope")


def test_an_unreachable_server_raises_a_connection_error_naming_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        client = Client(url=f"http://127.0.0.1:{port}", token="stu_x_y", timeout_s=5)

        with pytest.raises(StudioConnectionError) as caught:
            client.whoami()

    assert f"http://127.0.0.1:{port}/api/v1/me" in str(caught.value)
    assert isinstance(caught.value, StudioError)
    assert isinstance(caught.value, ConnectionError)


def test_the_sdk_imports_without_django():
    # Without the settings variable too, so nothing can lean on a configured Django.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    check = "import sys, studio_sdk; assert 'django' not in sys.modules; assert 'studio' not in sys.modules"

    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
