"""The run page's Debugger tab (views and fragments), the debugger charts, and the insights API."""

import io
import json
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training import insights, tracking
from training.charts.debugger import confusion_matrix_figure, gradient_norms_figure


@pytest.fixture
def project(db):
    return ProjectFactory(name="Debugger")


@pytest.fixture
def scientist(project):
    user = UserFactory(username="debugging")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return user


def confusion(step, matrix, labels=("cat", "dog")):
    return json.dumps({"kind": "confusion_matrix", "step": step, "labels": list(labels), "matrix": matrix})


@pytest.fixture
def run(project, scientist):
    """A classification run as a job records it: metrics per epoch and a confusion matrix artifact each."""
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="pets")
    run = tracking.run_create(user=scientist, project=project, experiment=experiment)
    metrics = []
    for epoch, (train, validation) in enumerate(
        [(1.0, 1.0), (0.7, 0.8), (0.5, 0.7), (0.4, 0.72), (0.3, 0.75), (0.25, 0.8)], start=1
    ):
        metrics += [
            {"key": "train_loss", "value": train, "step": epoch},
            {"key": "val_loss", "value": validation, "step": epoch},
            {"key": "learning_rate", "value": 0.01, "step": epoch},
            {"key": "debug/grad_norm/layers.0", "value": 0.5 / epoch, "step": epoch},
            {"key": "debug/grad_norm/head", "value": 0.2 / epoch, "step": epoch},
        ]
    metrics += [{"key": "system/cpu_percent", "value": 95.0, "step": 2}]
    tracking.run_log_metrics(user=scientist, run=run, metrics=metrics)
    for step, matrix in ((1, [[3, 2], [4, 1]]), (2, [[5, 0], [1, 4]])):
        body = confusion(step, matrix).encode()
        tracking.artifact_upload(
            user=scientist,
            run=run,
            path=f"debugger/confusion_matrix/step-{step:06d}.json",
            stream=io.BytesIO(body),
        )
    return run


def page_client(user):
    client = Client()
    client.force_login(user)
    return client


def figure_of(html: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}-figure" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no figure for {chart_id}"
    return json.loads(match.group(1))


# --- pages ---------------------------------------------------------------------------------------


def test_the_run_page_has_overview_and_debugger_tabs(scientist, run, project):
    response = page_client(scientist).get(f"/projects/{project.pk}/training/runs/{run.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="debugger-tab"' in html
    assert 'href="#debugger"' in html
    assert f'data-url="/projects/{project.pk}/training/runs/{run.pk}/debugger/"' in html
    assert "studio/training/debugger.js" in html


def test_the_debugger_tab_shows_the_latest_confusion_matrix_and_the_charts(scientist, run, project):
    # given: the rules found overfitting (validation loss 0.7 → 0.8 while the training loss fell)
    insights.run_insights_evaluate(run=run)

    response = page_client(scientist).get(f"/projects/{project.pk}/training/runs/{run.pk}/debugger/")

    html = response.content.decode()
    assert response.status_code == 200
    heatmap = figure_of(html, "confusion-matrix-chart")["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["text"] == [[5, 0], [1, 4]]  # epoch 2, the latest
    assert heatmap["x"] == ["cat", "dog"]
    assert 'data-steps="[1, 2]"' in html
    gradients = figure_of(html, "debugger-gradient-chart")
    assert gradients["layout"]["yaxis"]["type"] == "log"
    assert sorted(trace["name"] for trace in gradients["data"]) == ["head", "layers.0"]
    loss = figure_of(html, "debugger-loss-chart")
    assert [trace["meta"] for trace in loss["data"]] == ["train_loss", "val_loss"]
    assert loss["data"][1]["y"] == [1.0, 0.8, 0.7, 0.72, 0.75, 0.8]
    system = figure_of(html, "debugger-system-percent-chart")
    assert [trace["name"] for trace in system["data"]] == ["cpu_percent"]
    assert 'id="run-insights"' in html
    assert 'data-rule="overfitting"' in html
    assert 'data-insight-count="1"' in html


def test_the_slider_fragment_gives_an_earlier_epoch(scientist, run, project):
    url = f"/projects/{project.pk}/training/runs/{run.pk}/debugger/confusion-matrix/"

    response = page_client(scientist).get(url, {"step": "1"})

    assert response.status_code == 200
    heatmap = figure_of(response.content.decode(), "confusion-matrix-chart")["data"][0]
    assert heatmap["text"] == [[3, 2], [4, 1]]


@pytest.mark.parametrize(
    ("step", "status", "words"),
    [("x1", 400, "step: expected an epoch number"), ("7", 404, "no confusion matrix at step 7")],
)
def test_a_bad_step_gets_a_message(scientist, run, project, step, status, words):
    url = f"/projects/{project.pk}/training/runs/{run.pk}/debugger/confusion-matrix/"

    response = page_client(scientist).get(url, {"step": step})

    assert response.status_code == status
    assert words in response.content.decode()


def test_a_run_without_a_confusion_matrix_says_so(scientist, project):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="regression")
    run = tracking.run_create(user=scientist, project=project, experiment=experiment)

    response = page_client(scientist).get(f"/projects/{project.pk}/training/runs/{run.pk}/debugger/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="confusion-matrix-empty"' in html
    assert "No insights" in html


def test_an_outsider_gets_404_for_the_debugger(run, project):
    outsider = UserFactory(username="stranger")

    client = page_client(outsider)

    assert client.get(f"/projects/{project.pk}/training/runs/{run.pk}/debugger/").status_code == 404
    url = f"/projects/{project.pk}/training/runs/{run.pk}/debugger/confusion-matrix/?step=1"
    assert client.get(url).status_code == 404


def test_a_run_of_another_project_is_404_in_this_one(scientist, run):
    other = ProjectFactory(name="Other")
    MembershipFactory(project=other, user=scientist, role=Role.SCIENTIST)

    response = page_client(scientist).get(f"/projects/{other.pk}/training/runs/{run.pk}/debugger/")

    assert response.status_code == 404


# --- API -----------------------------------------------------------------------------------------


def api_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_insights_api_lists_the_stored_insights(scientist, run, project):
    insights.run_insights_evaluate(run=run)

    response = api_client(scientist).get(f"/api/v1/projects/{project.pk}/runs/{run.pk}/insights")

    assert response.status_code == 200
    [insight] = response.json()["insights"]
    assert insight["rule"] == "overfitting"
    assert insight["severity"] == "warning"
    assert insight["step"] == 6


def test_the_insights_api_is_404_for_an_outsider(run, project):
    response = api_client(UserFactory(username="nosy")).get(
        f"/api/v1/projects/{project.pk}/runs/{run.pk}/insights"
    )

    assert response.status_code == 404


def test_the_confusion_matrix_api_gives_an_epoch_and_the_epochs(scientist, run, project):
    url = f"/api/v1/projects/{project.pk}/runs/{run.pk}/confusion-matrix"

    latest = api_client(scientist).get(url).json()
    first = api_client(scientist).get(url, {"step": 1}).json()

    assert latest == {"step": 2, "steps": [1, 2], "labels": ["cat", "dog"], "matrix": [[5, 0], [1, 4]]}
    assert first["matrix"] == [[3, 2], [4, 1]]


def test_the_confusion_matrix_api_names_a_bad_step(scientist, run, project):
    url = f"/api/v1/projects/{project.pk}/runs/{run.pk}/confusion-matrix"

    bad = api_client(scientist).get(url, {"step": "last"})
    missing = api_client(scientist).get(url, {"step": 9})

    assert bad.status_code == 400
    assert "step" in json.dumps(bad.json())
    assert missing.status_code == 404


def test_a_malformed_confusion_artifact_is_a_400_naming_it(scientist, run, project):
    tracking.artifact_upload(
        user=scientist,
        run=run,
        path="debugger/confusion_matrix/step-000003.json",
        stream=io.BytesIO(b'{"labels": ["a"], "matrix": [[1, 2]]}'),
    )

    response = api_client(scientist).get(
        f"/api/v1/projects/{project.pk}/runs/{run.pk}/confusion-matrix", {"step": 3}
    )

    assert response.status_code == 400
    assert "debugger/confusion_matrix/step-000003.json" in response.json()["error"]["message"]


# --- charts --------------------------------------------------------------------------------------


def test_the_confusion_heatmap_colours_by_row_share():
    figure = confusion_matrix_figure({"step": 3, "labels": ["a", "b"], "matrix": [[3, 1], [0, 0]]})

    assert figure["data"][0]["z"] == [[0.75, 0.25], [0.0, 0.0]]
    assert figure["layout"]["title"]["text"] == "Confusion matrix · epoch 3"


def test_the_gradient_chart_leaves_out_what_a_log_axis_cannot_draw():
    history = {"steps": [1, 2, 3], "values": [0.5, 0.0, None]}

    figure = gradient_norms_figure({"debug/grad_norm/layers.0": history})

    assert figure["data"][0]["y"] == [0.5, None, None]
    assert figure["data"][0]["meta"] == "debug/grad_norm/layers.0"
