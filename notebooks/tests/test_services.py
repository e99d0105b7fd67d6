"""Services and selectors of the notebooks app that need no running server."""

import json

import pytest

from notebooks import selectors, services
from notebooks.getting_started import GETTING_STARTED_NAME
from notebooks.models import NotebookServer, ServerState
from notebooks.spawners import ServerSpec, jupyter_config
from notebooks.tests.factories import NotebookServerFactory
from studio.core.testing import MembershipFactory, UserFactory, project_with_roles
from studio.errors import NotFound, PermissionDenied


@pytest.fixture(autouse=True)
def notebook_dir(settings, tmp_path):
    settings.STUDIO_NOTEBOOK_DIR = tmp_path / "notebooks"
    return settings.STUDIO_NOTEBOOK_DIR


def test_the_shared_folder_gets_the_getting_started_notebook_once(db):
    project, _users = project_with_roles()
    shared = services.project_notebooks_prepare(project_id=project.pk)
    notebook = json.loads((shared / GETTING_STARTED_NAME).read_text())
    code = "\n".join(cell["source"] for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "studio_sdk.Client()" in code
    assert "client.datasets.upload(" in code
    assert "client.runs.start(" in code
    assert "client.training.submit(" in code
    assert "run.log_metrics(" in code
    # a member who deletes it does not get it back
    (shared / GETTING_STARTED_NAME).unlink()
    services.project_notebooks_prepare(project_id=project.pk)
    assert not (shared / GETTING_STARTED_NAME).exists()


def test_a_member_server_sees_the_project_folder_as_shared(db):
    server = NotebookServerFactory()
    root = services._prepare_root(server)
    assert (root / "shared").resolve() == services.project_shared_dir(server.project_id).resolve()
    assert (root / "shared" / GETTING_STARTED_NAME).exists()


def test_server_tokens_are_derived_per_start_and_never_stored(db):
    server = NotebookServerFactory(token_salt="a" * 32)
    first = services.server_token(server)
    server.token_salt = "b" * 32
    assert services.server_token(server) != first
    assert len(first) == 64
    assert first not in json.dumps(list(NotebookServer.objects.values()), default=str)


def test_jupyter_config_keeps_the_server_local_quiet_and_read_only(tmp_path):
    spec = ServerSpec(
        server_id=3, base_url="/notebooks/1/3/", token="t" * 64, root_dir=tmp_path, home_dir=tmp_path
    )
    config = jupyter_config(spec)
    assert config["ServerApp"]["ip"] == "127.0.0.1"
    assert config["ServerApp"]["base_url"] == "/notebooks/1/3/"
    assert "token" not in json.dumps(config["ServerApp"]).lower().replace("identity_provider", "")
    assert config["LabApp"]["news_url"] is None
    assert config["LabApp"]["extension_manager"] == "readonly"
    assert config["LabApp"]["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
    assert config["MappingKernelManager"]["cull_idle_timeout"] == spec.kernel_idle_timeout_s
    assert config["YDocExtension"]["disable_rtc"] is True


def test_roles_that_may_not_run_code_cannot_start_a_server(db):
    project, users = project_with_roles()
    for role in ("viewer", "annotator"):
        with pytest.raises(PermissionDenied):
            services.notebook_server_start(user=users[role], project=project)
    with pytest.raises(NotFound):
        services.notebook_server_start(user=UserFactory(), project=project)
    assert not NotebookServer.objects.exists()


def test_a_member_cannot_stop_another_members_own_server(db):
    project, users = project_with_roles()
    server = NotebookServerFactory(project=project, user=users["scientist"], state=ServerState.RUNNING)
    with pytest.raises(NotFound):
        services.notebook_server_stop(user=users["owner"], server=server)


def test_the_proxy_selector_finds_running_servers_of_the_caller_only(db):
    project, users = project_with_roles()
    bob = UserFactory()
    MembershipFactory(project=project, user=bob, role="scientist")
    own = NotebookServerFactory(project=project, user=users["scientist"], state=ServerState.RUNNING, port=1)
    shared = NotebookServerFactory(
        project=project, user=bob, is_shared=True, state=ServerState.RUNNING, port=2
    )

    def find(user, server):
        return selectors.notebook_server_for_proxy(user=user, project_id=project.pk, server_id=server.pk)

    assert find(users["scientist"], own) == own
    assert find(bob, own) is None
    assert find(users["scientist"], shared) == shared
    assert find(users["viewer"], shared) is None
    assert (
        selectors.notebook_server_for_proxy(
            user=users["scientist"], project_id=project.pk + 1, server_id=own.pk
        )
        is None
    )
    NotebookServer.objects.filter(pk=own.pk).update(state=ServerState.STOPPED)
    assert find(users["scientist"], own) is None


def test_a_members_own_server_is_never_the_shared_one_they_started(db):
    project, users = project_with_roles()
    scientist = users["scientist"]
    shared = NotebookServerFactory(project=project, user=scientist, is_shared=True)
    # when
    own = services.notebook_server_start(user=scientist, project=project, studio_url="http://127.0.0.1:1")
    try:
        # then
        assert own.pk != shared.pk
        assert own.is_shared is False
        assert own.state == ServerState.STARTING
        assert own.pid is not None
        assert own.base_url == f"/notebooks/{project.pk}/{own.pk}/"
    finally:
        services.notebook_server_stop(user=scientist, server=own)
    own.refresh_from_db()
    assert own.state == ServerState.STOPPED
    assert own.api_token.revoked_at is not None
