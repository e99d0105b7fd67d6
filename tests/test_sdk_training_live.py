"""The SDK's training jobs against a real Studio web process and a real Celery worker."""

import pytest

from datasets.tests.factories import make_iris_version
from studio.accounts.services import api_token_create
from studio.core.testing import member
from studio.projects.permissions import Role
from studio_sdk import Client, TrainingJob, ValidationError
from studio_sdk.training import TrainingJobFailedError

pytestmark = [pytest.mark.integration]


@pytest.fixture
def iris_version(transactional_db):
    return make_iris_version()


@pytest.fixture
def client(iris_version, studio_server):
    user = member(iris_version.dataset.project, username="sdk-trainer", role=Role.SCIENTIST)
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


TRAIN_SCRIPT = """\
import argparse, json, os

import pandas as pd

import studio_sdk

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--optimizer", required=True)
args = parser.parse_args()
# The worker's secrets stay behind: user code sees only what the job gives it.
leaked = [name for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL") if name in os.environ]
print("leaked:", leaked)
frame = pd.read_parquet(os.path.join(os.environ["STUDIO_DATASET_DIR"], "data.parquet"))
with studio_sdk.start_run() as run:
    for epoch in range(args.epochs):
        run.log_metric("loss", args.lr / (epoch + 1), step=epoch)
    run.log_metric("rows", len(frame), step=0)
with open(os.path.join(os.environ["STUDIO_MODEL_DIR"], "model.json"), "w") as handle:
    json.dump({"optimizer": args.optimizer}, handle)
print("hyperparameters:", os.environ["STUDIO_HYPERPARAMETERS"])
"""


def test_a_script_runs_as_a_job_and_logs_through_the_sdk_with_a_job_token(
    client, iris_version, celery_worker_name, tmp_path
):
    from studio.accounts.models import ApiToken

    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)

    job = client.training.submit_script(
        script,
        dataset=iris_version.pk,
        hyperparameters={"lr": 0.5, "epochs": 3, "optimizer": "adam"},
        experiment="scripts",
    )
    assert (job.kind, job.filename) == ("script", "train.py")
    job.wait(timeout_s=180, progress=False)

    assert job.status == "finished", job.error + job.logs()
    run = job.run
    assert run.params["optimizer"] == "adam"
    history = run.metric_history("loss")
    assert history["value"].round(4).tolist() == [0.5, 0.25, 0.1667]
    assert run.metrics["rows"] == 150
    assert {"code/train.py", "model/model.json"} <= {artifact["path"] for artifact in run.artifacts()}
    logs = job.logs()
    assert "leaked: []" in logs
    assert '"optimizer": "adam"' in logs
    token = ApiToken.objects.get(name=f"training job {job.id}")
    assert token.revoked_at is not None
    assert token.project_id == iris_version.dataset.project_id


def test_a_script_that_fails_at_import_fails_its_job_with_the_exception(client, celery_worker_name, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import numpy\nimport studio_no_such_module\n")

    job = client.training.submit_script(script)
    with pytest.raises(TrainingJobFailedError, match="studio_no_such_module"):
        job.wait(timeout_s=120, progress=False)

    assert job.status == "failed"
    assert job.error_code == "script_failed"
    assert "ModuleNotFoundError: No module named 'studio_no_such_module'" in job.error
    assert "Traceback" in job.logs()


def test_a_notebook_runs_as_a_job_with_parameters_and_keeps_its_executed_copy(
    client, celery_worker_name, tmp_path
):
    import json

    import nbformat

    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("epochs = 1\nlabel = 'default'")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import studio_sdk\n"
            "with studio_sdk.start_run() as run:\n"
            "    for epoch in range(epochs):\n"
            "        run.log_metric('accuracy', 0.5 + epoch / 10, step=epoch)\n"
            "print('label is', label)"
        ),
    ]
    path = tmp_path / "explore.ipynb"
    path.write_text(nbformat.writes(notebook))

    job = client.training.submit_script(
        path, hyperparameters={"epochs": 4, "label": "tuned"}, wait=True, timeout_s=180, progress=False
    )

    assert job.status == "finished", job.error + job.logs()
    run = job.run
    assert run.metric_history("accuracy")["value"].round(2).tolist() == [0.5, 0.6, 0.7, 0.8]
    executed = run.download_artifact("output/executed-explore.ipynb", tmp_path / "executed.ipynb")
    outputs = [
        output for cell in json.loads(executed.read_text())["cells"] for output in cell.get("outputs", [])
    ]
    assert any("label is tuned" in "".join(output.get("text", "")) for output in outputs)


def test_bad_scripts_are_refused_with_the_reason(client, tmp_path):
    broken = tmp_path / "train.py"
    broken.write_text("def main(:\n    pass\n")
    with pytest.raises(ValidationError, match=r"train.py line 1: SyntaxError"):
        client.training.submit_script(broken)
    text = tmp_path / "notes.txt"
    text.write_text("print(1)")
    with pytest.raises(ValidationError, match=r"neither a Python script"):
        client.training.submit_script(text)
    fine = tmp_path / "fine.py"
    fine.write_text("print(1)")
    with pytest.raises(ValidationError, match=r"'learning-rate' is not a valid name"):
        client.training.submit_script(fine, hyperparameters={"learning-rate": 0.1})
    with pytest.raises(ValidationError, match=r"hyperparameters: lr must be"):
        client.training.submit_script(fine, hyperparameters={"lr": [0.1, 0.2]})
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text('{"cells": 3}')
    with pytest.raises(ValidationError, match=r"broken.ipynb is not a valid notebook"):
        client.training.submit_script(notebook)


def test_a_notebook_of_the_notebook_workspace_runs_as_a_job(
    client, iris_version, celery_worker_name, settings
):
    import nbformat

    from studio.accounts.models import User

    user = User.objects.get(username="sdk-trainer")
    project_id = iris_version.dataset.project_id
    folder = settings.STUDIO_NOTEBOOK_DIR / "users" / str(user.pk) / "projects" / str(project_id) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("rows = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import os, pandas\n"
            "frame = pandas.read_parquet(os.path.join(os.environ['STUDIO_DATASET_DIR'], 'data.parquet'))\n"
            "print('rows', len(frame), 'asked', rows)"
        ),
    ]
    (folder / "count.ipynb").write_text(nbformat.writes(notebook))

    job = client.training.submit_workspace_notebook(
        "reports/count.ipynb", dataset=iris_version.pk, hyperparameters={"rows": 7}
    )
    job.wait(timeout_s=180, progress=False)

    assert (job.kind, job.filename, job.status) == ("notebook", "count.ipynb", "finished")
    paths = {artifact["path"] for artifact in job.run.artifacts()}
    assert {"code/count.ipynb", "output/executed-count.ipynb"} <= paths
    assert "rows 150 asked 7" in job.logs()
