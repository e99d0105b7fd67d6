"""The SDK's training jobs against a real Studio web process and a real Celery worker."""

import pytest
from sklearn.datasets import load_iris

from datasets.tests.factories import DatasetFactory, make_version
from studio.accounts.services import api_token_create
from studio.core.testing import MembershipFactory, UserFactory
from studio.projects.permissions import Role
from studio_sdk import Client, TrainingJob, ValidationError

pytestmark = [pytest.mark.integration]


@pytest.fixture
def iris_version(transactional_db):
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [iris.target_names[index] for index in frame.pop("target")]
    table = {column: frame[column].tolist() for column in frame.columns}
    schema = [{"name": column, "type": "numeric", "arrow_type": "double"} for column in frame.columns[:-1]]
    schema.append({"name": "species", "type": "categorical", "arrow_type": "string"})
    return make_version(dataset=DatasetFactory(name="iris"), table=table, schema=schema)


@pytest.fixture
def client(iris_version, studio_server):
    user = UserFactory(username="sdk-trainer")
    MembershipFactory(project=iris_version.dataset.project, user=user, role=Role.SCIENTIST)
    _token, raw = api_token_create(user=user, name="sdk training test")
    with Client(url=studio_server, token=raw, project=iris_version.dataset.project_id) as client:
        yield client


def test_a_tabular_classifier_trains_on_iris_through_the_sdk(client, celery_worker_name):
    job = client.training.submit(
        trainer="tabular_classification",
        dataset="iris",
        target="species",
        hyperparameters={"epochs": 4, "batch_size": 16, "seed": 7},
        experiment="iris",
    )
    assert isinstance(job, TrainingJob)
    assert job.status in ("queued", "running")

    assert job.wait(timeout_s=180, progress=False) is job
    assert job.status == "finished", job.error
    run = job.run
    assert run.id == job.run_id
    assert "val_accuracy" in run.metrics
    assert "training tabular_classification" in job.logs()
    assert job.refresh().status == "finished"


def test_the_trainers_and_bad_submissions_are_described(client, iris_version):
    names = {trainer["name"] for trainer in client.training.trainers()}
    assert "tabular_classification" in names
    with pytest.raises(ValidationError, match="specis"):
        client.training.submit(trainer="tabular_classification", dataset=iris_version.pk, target="specis")
    with pytest.raises(ValidationError, match="epochs"):
        client.training.submit(
            trainer="tabular_classification",
            dataset=iris_version.pk,
            target="species",
            hyperparameters={"epochs": "ten"},
        )


def test_a_queued_job_can_be_stopped(client, iris_version):
    # no worker listens on this queue, so the job stays queued until it is stopped
    job = client.training.submit(
        trainer="tabular_classification", dataset=iris_version.pk, target="species", queue="gpu"
    )
    assert job.stop().status == "stopped"
    assert client.training.job(job.id).status == "stopped"
