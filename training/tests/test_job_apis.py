"""The trainers and training-jobs API: submit with field-naming errors, read, stop, and log tailing."""

import pytest
from rest_framework.test import APIClient

from datasets.tests.factories import DatasetFactory, make_version
from studio.core.testing import MembershipFactory, UserFactory
from studio.projects.permissions import Role
from training.job_models import RunLogChunk, TrainingJob


@pytest.fixture
def version(db):
    dataset = DatasetFactory(name="flowers")
    return make_version(
        dataset=dataset,
        table={"petal": [1.0, 2.0, 3.0, 4.0], "species": ["a", "b", "a", "b"]},
        schema=[
            {"name": "petal", "type": "numeric", "arrow_type": "double"},
            {"name": "species", "type": "categorical", "arrow_type": "string"},
        ],
    )


def _client(version, role):
    user = UserFactory()
    MembershipFactory(project=version.dataset.project, user=user, role=role)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def scientist(version):
    return _client(version, Role.SCIENTIST)


def _jobs_url(version):
    return f"/api/v1/projects/{version.dataset.project_id}/training-jobs"


def _submit(client, version, **overrides):
    body = {
        "trainer": "tabular_classification",
        "dataset_version_id": version.pk,
        "target": "species",
        "hyperparameters": {"epochs": 3, "lr": "0.01"},
        "experiment": "flowers",
        "name": "first",
    }
    body.update(overrides)
    return client.post(_jobs_url(version), body, format="json")


def test_trainers_describe_their_hyperparameters(scientist, version):
    response = scientist.get(f"/api/v1/projects/{version.dataset.project_id}/trainers")
    assert response.status_code == 200
    trainers = {trainer["name"]: trainer for trainer in response.json()}
    tabular = trainers["tabular_classification"]
    assert tabular["task"] == "classification"
    assert tabular["data_kind"] == "tabular"
    epochs = next(item for item in tabular["hyperparameters"] if item["name"] == "epochs")
    assert epochs["type"] == "int"
    assert isinstance(epochs["default"], int)
    assert epochs["min"] is not None


def test_submit_makes_a_queued_job_with_its_run(scientist, version):
    response = _submit(scientist, version)
    assert response.status_code == 201, response.content
    body = response.json()
    job = TrainingJob.objects.get(pk=body["id"])
    assert body["run_id"] == job.run_id
    assert body["status"] == "queued"
    assert body["queue"] == "default"
    assert body["trainer"] == "tabular_classification"
    assert body["hyperparameters"]["epochs"] == 3
    assert body["hyperparameters"]["lr"] == 0.01
    assert job.run.experiment.name == "flowers"
    assert job.run.name == "first"

    detail = scientist.get(f"{_jobs_url(version)}/{job.pk}").json()
    for key in ("status", "progress", "message", "attempts", "error", "error_code", "run_id", "created_at"):
        assert key in detail
    listing = scientist.get(_jobs_url(version)).json()
    assert [item["id"] for item in listing["results"]] == [job.pk]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"trainer": "gradient_magic"}, "trainer", "gradient_magic"),
        ({"target": "specis"}, "target", "specis"),
        ({"hyperparameters": {"epochs": "ten"}}, "epochs", "epochs"),
        ({"hyperparameters": {"epoch": 3}}, "epoch", "epoch"),
        ({"queue": "nowhere"}, "queue", "queue"),
        ({"dataset_version_id": 999_999}, "dataset_version_id", "dataset_version_id"),
    ],
)
def test_a_bad_submission_is_a_400_naming_the_field(scientist, version, overrides, field, words):
    response = _submit(scientist, version, **overrides)
    assert response.status_code == 400, response.content
    body = response.json()
    assert words in str(body)
    assert field in str(body)
    assert not TrainingJob.objects.exists()


def test_a_missing_trainer_is_a_400_naming_the_field(scientist, version):
    response = scientist.post(_jobs_url(version), {"dataset_version_id": version.pk}, format="json")
    assert response.status_code == 400
    assert "trainer" in str(response.json())


def test_a_viewer_may_read_but_not_submit_or_stop(scientist, version):
    job_id = _submit(scientist, version).json()["id"]
    viewer = _client(version, Role.VIEWER)
    assert _submit(viewer, version).status_code == 403
    assert viewer.post(f"{_jobs_url(version)}/{job_id}/stop").status_code == 403
    assert viewer.get(f"{_jobs_url(version)}/{job_id}").status_code == 200
    assert TrainingJob.objects.count() == 1


def test_an_outsider_gets_404(scientist, version):
    job_id = _submit(scientist, version).json()["id"]
    outsider = APIClient()
    outsider.force_authenticate(UserFactory())
    assert outsider.get(f"{_jobs_url(version)}/{job_id}").status_code == 404
    assert _submit(outsider, version).status_code == 404


def test_stopping_a_queued_job_stops_it(scientist, version):
    job_id = _submit(scientist, version).json()["id"]
    response = scientist.post(f"{_jobs_url(version)}/{job_id}/stop")
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"
    assert TrainingJob.objects.get(pk=job_id).run.status == "stopped"
    assert scientist.get(f"{_jobs_url(version)}/12345").status_code == 404


def test_logs_are_read_after_a_chunk_id(scientist, version):
    job = TrainingJob.objects.get(pk=_submit(scientist, version).json()["id"])
    first = RunLogChunk.objects.create(run=job.run, text="epoch 1\n")
    second = RunLogChunk.objects.create(run=job.run, text="epoch 2\n")
    url = f"/api/v1/projects/{version.dataset.project_id}/runs/{job.run_id}/logs"
    body = scientist.get(url).json()
    assert body == {
        "chunks": [{"id": first.pk, "text": "epoch 1\n"}, {"id": second.pk, "text": "epoch 2\n"}],
        "next": second.pk,
    }
    assert scientist.get(url, {"after": first.pk}).json()["chunks"] == [
        {"id": second.pk, "text": "epoch 2\n"}
    ]
    assert scientist.get(url, {"after": second.pk}).json() == {"chunks": [], "next": second.pk}
    assert scientist.get(url, {"after": "x"}).status_code == 400
