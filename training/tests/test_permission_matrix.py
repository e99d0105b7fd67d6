"""Every training API route × every role, plus outsiders (404) and anonymous callers (401)."""

import io

import pytest
from rest_framework.test import APIClient

from datasets.tests.factories import DatasetFactory, make_version
from studio.core.testing import UserFactory, api_call, assert_follows_matrix, project_with_roles
from studio.projects.permissions import Role
from training import tracking
from training.job_models import RunLogChunk
from training.jobs import training_job_submit
from training.studies import study_create, study_pause

RUN = "projects/<int:project_id>/runs/<int:run_id>"
JOB = "projects/<int:project_id>/training-jobs/<int:job_id>"
STUDY = "projects/<int:project_id>/studies/<int:study_id>"

# (method, route, url template, action, body); bodies are valid so an allowed role gets a 2xx.
ROUTES = [
    (
        "GET",
        "projects/<int:project_id>/experiments",
        "/api/v1/projects/{p}/experiments",
        "training.view",
        None,
    ),
    (
        "POST",
        "projects/<int:project_id>/experiments",
        "/api/v1/projects/{p}/experiments",
        "training.run",
        {"name": "new experiment"},
    ),
    (
        "GET",
        "projects/<int:project_id>/experiments/<int:experiment_id>",
        "/api/v1/projects/{p}/experiments/{e}",
        "training.view",
        None,
    ),
    ("GET", "projects/<int:project_id>/trainers", "/api/v1/projects/{p}/trainers", "training.view", None),
    (
        "GET",
        "projects/<int:project_id>/training-jobs",
        "/api/v1/projects/{p}/training-jobs",
        "training.view",
        None,
    ),
    (
        "POST",
        "projects/<int:project_id>/training-jobs",
        "/api/v1/projects/{p}/training-jobs",
        "training.run",
        {
            "trainer": "tabular_classification",
            "dataset_version_id": "{v}",
            "target": "label",
            "hyperparameters": {"epochs": 2},
        },
    ),
    (
        "POST",
        "projects/<int:project_id>/training-jobs/script",
        "/api/v1/projects/{p}/training-jobs/script",
        "training.run",
        {"filename": "train.py", "source": "print('hello')\n", "hyperparameters": {"lr": 0.1}},
    ),
    (
        "GET",
        JOB,
        "/api/v1/projects/{p}/training-jobs/{j}",
        "training.view",
        None,
    ),
    ("POST", JOB + "/stop", "/api/v1/projects/{p}/training-jobs/{j}/stop", "training.run", None),
    ("GET", RUN + "/logs", "/api/v1/projects/{p}/runs/{r}/logs?after=0", "training.view", None),
    (
        "GET",
        "projects/<int:project_id>/runs",
        "/api/v1/projects/{p}/runs?filter=metrics.loss%20%3E%200&order_by=metrics.loss%20desc",
        "training.view",
        None,
    ),
    (
        "POST",
        "projects/<int:project_id>/runs",
        "/api/v1/projects/{p}/runs",
        "training.run",
        {"experiment": "churn", "params": {"lr": 0.1}},
    ),
    (
        "GET",
        "projects/<int:project_id>/runs/compare",
        "/api/v1/projects/{p}/runs/compare?ids={r},{r2}",
        "training.view",
        None,
    ),
    ("GET", RUN, "/api/v1/projects/{p}/runs/{r}", "training.view", None),
    ("PATCH", RUN, "/api/v1/projects/{p}/runs/{r}", "training.run", {"tags": {"team": "b"}}),
    ("DELETE", RUN, "/api/v1/projects/{p}/runs/{r}", "training.run", None),
    (
        "POST",
        RUN + "/params",
        "/api/v1/projects/{p}/runs/{r}/params",
        "training.run",
        {"params": {"seed": 1}},
    ),
    ("GET", RUN + "/metrics", "/api/v1/projects/{p}/runs/{r}/metrics", "training.view", None),
    (
        "POST",
        RUN + "/metrics",
        "/api/v1/projects/{p}/runs/{r}/metrics",
        "training.run",
        {"metrics": [{"key": "loss", "value": 0.1, "step": 9}]},
    ),
    (
        "GET",
        RUN + "/metrics/<path:key>",
        "/api/v1/projects/{p}/runs/{r}/metrics/loss",
        "training.view",
        None,
    ),
    ("GET", RUN + "/artifacts", "/api/v1/projects/{p}/runs/{r}/artifacts", "training.view", None),
    (
        "POST",
        RUN + "/artifacts",
        "/api/v1/projects/{p}/runs/{r}/artifacts?path=notes.txt",
        "training.run",
        "raw",
    ),
    (
        "GET",
        RUN + "/artifacts/<path:path>",
        "/api/v1/projects/{p}/runs/{r}/artifacts/model/card.json",
        "training.view",
        None,
    ),
    ("GET", RUN + "/insights", "/api/v1/projects/{p}/runs/{r}/insights", "training.view", None),
    (
        "GET",
        RUN + "/confusion-matrix",
        "/api/v1/projects/{p}/runs/{r}/confusion-matrix?step=1",
        "training.view",
        None,
    ),
    ("GET", "projects/<int:project_id>/studies", "/api/v1/projects/{p}/studies", "training.view", None),
    (
        "POST",
        "projects/<int:project_id>/studies",
        "/api/v1/projects/{p}/studies",
        "training.run",
        {
            "name": "lr search",
            "objective_metric": "val_accuracy",
            "direction": "maximize",
            "search_space": [{"name": "lr", "type": "float", "low": 0.001, "high": 0.1, "log": True}],
            "trainer": "tabular_classification",
            "dataset_version_id": "{v}",
            "target": "label",
            "n_trials": 2,
        },
    ),
    ("GET", STUDY, "/api/v1/projects/{p}/studies/{s}", "training.view", None),
    ("GET", STUDY + "/trials", "/api/v1/projects/{p}/studies/{s}/trials", "training.view", None),
    ("POST", STUDY + "/pause", "/api/v1/projects/{p}/studies/{s}/pause", "training.run", None),
    ("POST", STUDY + "/resume", "/api/v1/projects/{p}/studies/{s2}/resume", "training.run", None),
    ("POST", STUDY + "/stop", "/api/v1/projects/{p}/studies/{s}/stop", "training.run", None),
    ("POST", STUDY + "/extend", "/api/v1/projects/{p}/studies/{s}/extend", "training.run", {"n_trials": 2}),
]


@pytest.fixture
def world(db):
    project, users = project_with_roles()
    users["outsider"] = UserFactory(username="training-outsider")
    owner = users[Role.OWNER]
    experiment = tracking.experiment_get_or_create(user=owner, project=project, name="churn")
    run = tracking.run_create(user=owner, project=project, experiment=experiment, tags={"team": "a"})
    other = tracking.run_create(user=owner, project=project, experiment=experiment)
    tracking.run_log_metrics(user=owner, run=run, metrics=[{"key": "loss", "value": 0.5, "step": 1}])
    tracking.artifact_upload(user=owner, run=run, path="model/card.json", stream=io.BytesIO(b"{}"))
    tracking.artifact_upload(
        user=owner,
        run=run,
        path="debugger/confusion_matrix/step-000001.json",
        stream=io.BytesIO(b'{"labels": ["a", "b"], "matrix": [[2, 0], [1, 1]]}'),
    )
    RunLogChunk.objects.create(run=run, text="epoch 1\n")
    dataset = DatasetFactory(project=project, name="points")
    version = make_version(
        dataset=dataset,
        table={"x": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b", "a", "b"]},
        schema=[
            {"name": "x", "type": "numeric", "arrow_type": "double"},
            {"name": "label", "type": "categorical", "arrow_type": "string"},
        ],
    )
    job = training_job_submit(
        user=owner, project=project, trainer="tabular_classification", dataset_version=version, target="label"
    )
    study_options = {
        "user": owner,
        "project": project,
        "objective_metric": "val_accuracy",
        "direction": "maximize",
        "search_space": [{"name": "lr", "type": "float", "low": 0.001, "high": 0.1}],
        "trainer": "tabular_classification",
        "dataset_version": version,
        "target": "label",
        "n_trials": 2,
    }
    study = study_create(name="running study", **study_options)
    paused = study_pause(user=owner, study=study_create(name="paused study", **study_options))
    return {
        "project": project,
        "users": users,
        "e": experiment,
        "r": run,
        "r2": other,
        "v": version,
        "j": job,
        "s": study,
        "s2": paused,
    }


def _ids(world):
    return {
        "p": world["project"].pk,
        "e": world["e"].pk,
        "r": world["r"].pk,
        "r2": world["r2"].pk,
        "v": world["v"].pk,
        "j": world["j"].pk,
        "s": world["s"].pk,
        "s2": world["s2"].pk,
    }


def _url(template, world):
    return template.format(**_ids(world))


def _body(body, world):
    """Fill "{v}"-style placeholders in a body with the world's ids (as integers)."""
    if isinstance(body, dict):
        ids = _ids(world)
        return {
            key: ids[value[1:-1]]
            if isinstance(value, str) and value[1:-1] in ids and value[0] == "{"
            else value
            for key, value in body.items()
        }
    return body


@pytest.mark.parametrize("principal", [*Role.values, "outsider"])
@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES]
)
def test_training_routes_follow_the_matrix(world, principal, method, route, template, action, body):
    client = APIClient()
    client.force_authenticate(world["users"][principal])
    response = api_call(client, method, _url(template, world), _body(body, world), raw_body=b"some notes")
    assert_follows_matrix(response, principal=principal, action=action)


@pytest.mark.parametrize(
    ("method", "route", "template", "action", "body"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES]
)
def test_anonymous_callers_get_401(world, method, route, template, action, body):
    response = api_call(
        APIClient(), method, _url(template, world), _body(body, world), raw_body=b"some notes"
    )
    assert response.status_code == 401, response.content
