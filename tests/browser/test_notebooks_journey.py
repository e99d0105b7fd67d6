"""A scientist opens Notebooks, starts their server, and JupyterLab renders inside the studio's page with
a connected kernel in which `studio_sdk.Client()` works with no arguments."""

import uuid

import pytest
from playwright.sync_api import expect

from notebooks.models import NotebookServer
from notebooks.services import notebook_server_stop
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from tests.browser.test_team_journey import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

START_TIMEOUT_MS = 120_000
KERNEL_TIMEOUT_MS = 90_000


@pytest.fixture
def member(transactional_db):
    project = ProjectFactory(name=f"Lab project {uuid.uuid4().hex[:6]}")
    user = UserFactory(username=f"nb-{uuid.uuid4().hex[:6]}")
    MembershipFactory(project=project, user=user, role="scientist")
    yield project, user
    for server in NotebookServer.objects.filter(project=project):
        notebook_server_stop(user=user, server=server)


def test_the_lab_opens_in_the_studio_with_the_sdk_ready(member, studio_server, open_context):
    project, user = member
    page = open_context().new_page()
    sign_in(page, studio_server, user.username)

    # the Build stage leads to the notebooks page
    page.goto(f"{studio_server}/projects/{project.pk}/")
    page.get_by_role("link", name="Notebooks").click()
    expect(page.locator("#server-state")).to_have_text("stopped")
    page.locator("#server-start").click()
    expect(page.locator("#lab-frame")).to_be_visible(timeout=START_TIMEOUT_MS)
    expect(page.locator("#server-state")).to_have_text("running")
    assert page.locator("#lab-frame").get_attribute("src").endswith("/lab")
    assert "token" not in page.locator("#lab-frame").get_attribute("src")

    # the lab renders in the frame; a new notebook gets a connected kernel
    lab = page.frame_locator("#lab-frame")
    lab.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=START_TIMEOUT_MS)
    expect(lab.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_be_visible(
        timeout=KERNEL_TIMEOUT_MS
    )
    expect(lab.locator(".jp-StatusBar-TextItem", has_text="| Idle")).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    editor = lab.locator(".jp-Cell .cm-content").first
    editor.fill(
        "import studio_sdk\nprint('projects:', [p.name for p in studio_sdk.Client().projects.list()])"
    )
    expect(editor).to_contain_text("import studio_sdk")
    editor.press("Shift+Enter")
    expect(lab.locator(".jp-OutputArea-output").first).to_contain_text(
        f"projects: ['{project.name}']", timeout=KERNEL_TIMEOUT_MS
    )

    # the shared folder with the getting-started notebook is in the file browser
    expect(lab.locator(".jp-DirListing-item", has_text="shared")).to_be_visible()

    # stopping takes the lab away
    page.locator("#server-stop").click()
    expect(page.locator("#server-state")).to_have_text("stopped")
    expect(page.locator("#lab-frame")).to_be_hidden()


def _open_getting_started(page, studio_server, project):
    page.goto(f"{studio_server}/projects/{project.pk}/notebooks/?server=shared")
    expect(page.locator("#lab-frame")).to_be_visible(timeout=START_TIMEOUT_MS)
    lab = page.frame_locator("#lab-frame")
    lab.locator('.jp-DirListing-item[data-isdir="true"]', has_text="shared").dblclick(
        timeout=START_TIMEOUT_MS
    )
    lab.locator('.jp-DirListing-item[data-file-type="notebook"]', has_text="getting-started.ipynb").dblclick()
    expect(lab.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    return lab


def test_two_scientists_co_edit_a_notebook_on_the_project_server(member, studio_server, open_context):
    project, alice = member
    bob = UserFactory(username=f"nb-bob-{uuid.uuid4().hex[:6]}")
    MembershipFactory(project=project, user=bob, role="scientist")
    alice_page = open_context().new_page()
    bob_page = open_context().new_page()
    sign_in(alice_page, studio_server, alice.username)
    sign_in(bob_page, studio_server, bob.username)

    # alice starts the project server; the page says what sharing it means
    alice_page.goto(f"{studio_server}/projects/{project.pk}/notebooks/?server=shared")
    expect(alice_page.get_by_text("Sharing a server means sharing code execution")).to_be_visible()
    alice_page.locator("#server-start").click()
    expect(alice_page.locator("#server-state")).to_have_text("running", timeout=START_TIMEOUT_MS)
    alice_lab = _open_getting_started(alice_page, studio_server, project)
    bob_lab = _open_getting_started(bob_page, studio_server, project)

    # bob's edit shows up in alice's notebook, live
    marker = f"edited by bob {uuid.uuid4().hex[:6]}"
    bob_editor = bob_lab.locator(".jp-CodeCell .cm-content").first
    bob_editor.click()
    bob_editor.press("Control+End")
    bob_editor.type(f"\n# {marker}")
    expect(alice_lab.locator(".jp-CodeCell .cm-content").first).to_contain_text(marker, timeout=30_000)
