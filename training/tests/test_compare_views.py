"""The compare page: the table, the charts, and clear messages for bad or foreign run ids."""

import json
import re

import pytest

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training import tracking


@pytest.fixture
def user(db):
    return UserFactory(username="viewer")


@pytest.fixture
def project(user):
    project = ProjectFactory(name="Compare page")
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    return project


def make_run(project, name, params, curves):
    owner = UserFactory(username=f"owner-{project.pk}")
    if not project.memberships.filter(user=owner).exists():
        MembershipFactory(project=project, user=owner, role=Role.SCIENTIST)
    experiment = tracking.experiment_get_or_create(user=owner, project=project, name="sweep")
    run = tracking.run_create(user=owner, project=project, experiment=experiment, name=name, params=params)
    for key, values in curves.items():
        batch = [{"key": key, "value": value, "step": step} for step, value in enumerate(values)]
        tracking.run_log_metrics(user=owner, run=run, metrics=batch)
    return run


@pytest.fixture
def two_runs(project):
    first = make_run(project, "small-lr", {"lr": 0.01, "optimizer": "adam"}, {"val_loss": [0.9, 0.4]})
    second = make_run(project, "big-lr", {"lr": 0.1, "optimizer": "adam"}, {"val_loss": [0.8, 0.6]})
    return first, second


def url(project, runs: str) -> str:
    return f"/projects/{project.pk}/training/runs/compare/?runs={runs}"


def figure(content: str, chart_id: str) -> dict:
    match = re.search(
        rf'<script id="{chart_id}-figure" type="application/json">(.*?)</script>', content, re.S
    )
    assert match, f"no figure {chart_id}"
    return json.loads(match.group(1))


def test_the_page_compares_runs(client, user, project, two_runs):
    first, second = two_runs
    client.force_login(user)

    response = client.get(url(project, f"{first.pk},{second.pk}"))

    assert response.status_code == 200
    content = response.content.decode()
    # the differing param is highlighted, the shared one is a "same" row (hidden by default)
    assert re.search(r'<tr data-key="params.lr" class="compare-differs">', content)
    assert re.search(r'<tr data-key="params.optimizer" class="compare-same">', content)
    assert 'id="compare-only-differing" checked' in content
    # val_loss: lower is better, so the first run's 0.4 is the best
    row = re.search(r'<tr data-key="metrics.val_loss".*?</tr>', content, re.S).group(0)
    assert re.search(r'compare-best" data-best="true"><span title="0.4">', row)
    assert row.count("data-best") == 1
    # one overlaid trace per run and a parcoords chart over lr → val_loss
    curves = figure(content, "compare-curve-0")
    assert [trace["name"] for trace in curves["data"]] == [f"small-lr #{first.pk}", f"big-lr #{second.pk}"]
    parcoords = figure(content, "compare-parcoords-0")["data"][0]
    assert [dimension["label"] for dimension in parcoords["dimensions"]] == ["params.lr", "metrics.val_loss"]


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ("1,x", "runs: a comma-separated list of run ids"),
        ("-1,2", "runs: a comma-separated list of run ids"),
        (",".join(str(number) for number in range(1, 12)), "runs: at most 10 runs can be compared at a time"),
        ("", "Select at least two runs"),
    ],
)
def test_bad_ids_get_a_message(client, user, project, runs, message):
    client.force_login(user)
    response = client.get(url(project, runs))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_one_run_asks_for_two(client, user, project, two_runs):
    client.force_login(user)
    response = client.get(url(project, f"{two_runs[0].pk},{two_runs[0].pk}"))
    assert response.status_code == 400
    assert "Select at least two runs" in response.content.decode()


def test_a_run_of_another_project_is_404(client, user, project, two_runs):
    other_project = ProjectFactory(name="Elsewhere")
    MembershipFactory(project=other_project, user=user, role=Role.SCIENTIST)
    foreign = make_run(other_project, "foreign", {}, {})
    client.force_login(user)

    response = client.get(url(project, f"{two_runs[0].pk},{foreign.pk}"))

    assert response.status_code == 404
    assert f"No run {foreign.pk} in this project." in response.content.decode()
    assert "foreign" not in response.content.decode()


def test_outsiders_get_404(client, project, two_runs):
    client.force_login(UserFactory(username="stranger"))
    response = client.get(url(project, f"{two_runs[0].pk},{two_runs[1].pk}"))
    assert response.status_code == 404
    assert "small-lr" not in response.content.decode()
