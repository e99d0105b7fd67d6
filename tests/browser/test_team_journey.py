"""A team's first steps in a real browser: sign in, create a project, invite a member, watch live activity."""

import re

import pytest
from playwright.sync_api import expect

from studio.core.testing import TEST_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser]


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#user-menu")).to_contain_text(username)


def test_sign_in_create_project_invite_and_see_live_activity(transactional_db, studio_server, open_context):
    UserFactory(username="alice")
    UserFactory(username="bob")
    UserFactory(username="carol", email="carol@example.com")

    # Alice signs in and creates a project
    alice = open_context().new_page()
    sign_in(alice, studio_server, "alice")
    alice.goto(studio_server + "/projects/")
    alice.get_by_role("button", name="New project").click()
    alice.get_by_label("Name").fill("Fraud detection")
    alice.get_by_label("Description").fill("Card transactions, 2026")
    alice.get_by_role("button", name="Create project").click()
    expect(alice.get_by_role("heading", name="Fraud detection")).to_be_visible()
    project_url = alice.url
    assert re.search(r"/projects/\d+/$", project_url)

    # …invites Bob as a scientist
    alice.get_by_role("link", name="Members", exact=True).first.click()
    alice.get_by_label("Username or e-mail").fill("bob")
    alice.get_by_label("Role", exact=True).select_option("scientist")
    alice.get_by_role("button", name="Add member").click()
    expect(alice.get_by_role("alert")).to_contain_text("bob joined as scientist")
    expect(alice.locator('#members-table tr[data-username="bob"]')).to_be_visible()

    # Bob, in another browser, opens the project home and sees its activity
    bob = open_context().new_page()
    sign_in(bob, studio_server, "bob")
    bob.goto(project_url)
    expect(bob.locator("#live-state")).to_have_attribute("data-state", "live")
    feed = bob.locator("#activity-feed")
    expect(feed).to_contain_text("member.add")
    items_before = feed.locator("li").count()

    # Alice invites Carol by e-mail; Bob's feed grows without a reload
    bob.evaluate("window.__noReload = true")
    alice.get_by_label("Username or e-mail").fill("carol@example.com")
    alice.get_by_label("Role", exact=True).select_option("annotator")
    alice.get_by_role("button", name="Add member").click()
    expect(alice.get_by_role("alert")).to_contain_text("carol joined as annotator")

    expect(feed.locator("li").first).to_contain_text("alice")
    expect(feed.locator("li").first).to_contain_text("member.add")
    expect(feed.locator("li")).to_have_count(items_before + 1)
    assert bob.evaluate("window.__noReload") is True, "Bob's page reloaded"

    # Bad input gets a clear message, and nothing is added
    alice.get_by_label("Username or e-mail").fill("nobody-by-that-name")
    alice.get_by_role("button", name="Add member").click()
    expect(alice.get_by_role("alert")).to_contain_text("no single active user")
    expect(alice.locator("#members-table tbody tr")).to_have_count(3)


def test_roles_shape_what_the_ui_offers(transactional_db, studio_server, open_context):
    from studio.core.testing import MembershipFactory, ProjectFactory

    project = ProjectFactory(name="Shared")
    viewer = UserFactory(username="vera")
    MembershipFactory(project=project, user=viewer, role="viewer")
    outsider = UserFactory(username="otto")
    open_context.expected_statuses = {403, 404}  # this test visits forbidden pages on purpose

    page = open_context().new_page()
    sign_in(page, studio_server, viewer.username)
    page.goto(f"{studio_server}/projects/{project.pk}/settings/members/")
    expect(page.locator("#invite-form")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    response = page.goto(f"{studio_server}/projects/{project.pk}/settings/audit/")
    assert response.status == 403

    other = open_context().new_page()
    sign_in(other, studio_server, outsider.username)
    response = other.goto(f"{studio_server}/projects/{project.pk}/")
    assert response.status == 404
