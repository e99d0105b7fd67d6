"""The stage navigation shows a member the pages their role may open, and only those."""

import pytest
from django.test import Client
from django.urls import reverse

from studio.core.testing import project_with_roles


@pytest.fixture
def team(db):
    return project_with_roles()


def nav_links(user, project) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("projects:home", kwargs={"project_id": project.pk})).content.decode()


def link(name: str, project) -> str:
    return f'href="{reverse(name, kwargs={"project_id": project.pk})}"'


def test_a_scientist_sees_every_stage_page(team):
    project, users = team
    page = nav_links(users["scientist"], project)
    for name in ("datasets:list", "notebooks:lab", "training:new", "training:runs", "training:studies"):
        assert link(name, project) in page, name


def test_a_viewer_is_not_offered_pages_that_would_refuse_them(team):
    project, users = team
    page = nav_links(users["viewer"], project)
    assert link("training:runs", project) in page
    assert link("datasets:list", project) in page
    for name in ("notebooks:lab", "training:new"):
        assert link(name, project) not in page, name
        # and the page itself does refuse them, so hiding the link hides nothing they could use
        client = Client()
        client.force_login(users["viewer"])
        assert client.get(reverse(name, kwargs={"project_id": project.pk})).status_code == 403
