"""The SDK's hyperparameter studies against a real Studio web process and a real Celery worker."""

import pytest

from datasets.tests.factories import make_iris_version
from studio.accounts.services import api_token_create
from studio.core.testing import member
from studio.projects.permissions import Role
from studio_sdk import Client, Study, StudyFailedError, ValidationError

pytestmark = [pytest.mark.integration]
WAIT_S = 300  # a bound for a few jobs on a cold worker, not a speed assertion


@pytest.fixture
def iris_version(transactional_db):
    return make_iris_version()


@pytest.fixture
def client(iris_version, studio_server):
    user = member(iris_version.dataset.project, username="sdk-tuner", role=Role.SCIENTIST)
    _token, raw = api_token_create(user=user, name="sdk hpo test")
    with Client(url=studio_server, token=raw, project=iris_version.dataset.project_id) as client:
        yield client


def test_a_study_runs_through_the_sdk_and_extends(client, celery_worker_name):
    study = client.hpo.create_study(
        name="iris lr",
        trainer="tabular_classification",
        dataset="iris",
        target="species",
        objective_metric="val_accuracy",
        direction="maximize",
        search_space={
            "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
            "batch_size": {"type": "categorical", "choices": [16, 32]},
        },
        hyperparameters={"epochs": 2},
        sampler="random",
        seed=4,
        n_trials=2,
        parallelism=1,
        enqueue=[{"lr": 0.05, "batch_size": 16}],
    )
    assert isinstance(study, Study)
    assert study.wait(timeout_s=WAIT_S, progress=False) is study
    assert study.status == "finished", study.message
    frame = study.trials_dataframe()
    assert list(frame["number"]) == [0, 1]
    assert set(frame["state"]) == {"complete"}
    assert frame.loc[0, "params_lr"] == 0.05
    assert frame.loc[0, "params_batch_size"] == 16
    best = study.best_trial
    assert best["value"] == frame["value"].max()
    assert client.runs.get(best["run_id"]).metrics["val_accuracy"] == best["value"]
    # extend: one more trial, then finished again
    study.extend(1)
    assert study.status == "running"
    study.wait(timeout_s=WAIT_S, progress=False)
    assert len(study.trials) == 3
    assert client.hpo.study(study.id).n_trials == 3


def test_bad_studies_and_a_missing_objective_are_reported(client, iris_version, celery_worker_name):
    with pytest.raises(ValidationError, match="inverted range"):
        client.hpo.create_study(
            name="bad",
            trainer="tabular_classification",
            dataset=iris_version.pk,
            target="species",
            objective_metric="val_loss",
            search_space={"lr": {"type": "float", "low": 0.1, "high": 0.01}},
            n_trials=2,
        )
    study = client.hpo.create_study(
        name="wrong metric",
        trainer="tabular_classification",
        dataset=iris_version.pk,
        target="species",
        objective_metric="val_auc",
        search_space={"lr": {"type": "float", "low": 0.001, "high": 0.1}},
        hyperparameters={"epochs": 1},
        n_trials=5,
        parallelism=1,
    )
    with pytest.raises(StudyFailedError, match="'val_auc' was never logged by trial 0") as raised:
        study.wait(timeout_s=WAIT_S, progress=False)
    assert "val_accuracy" in str(raised.value)
    assert len(study.trials) == 1  # stopped at the first trial, not the whole budget


SEARCH_SCRIPT = """\
import argparse

import studio_sdk

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True)
parser.add_argument("--rounds", type=int, required=True)
args = parser.parse_args()
with studio_sdk.start_run() as run:
    for step in range(1, args.rounds + 1):
        run.log_metric("score", -((args.alpha - 1.0) ** 2) - 1.0 / step, step=step)
"""


def test_a_study_searches_a_script_s_arguments(client, iris_version, celery_worker_name, tmp_path):
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    study = client.hpo.create_study(
        name="script search",
        script=script,
        dataset=iris_version.pk,
        objective_metric="score",
        direction="maximize",
        search_space={"alpha": {"type": "float", "low": 0.0, "high": 2.0}},
        hyperparameters={"rounds": 2},
        sampler="random",
        seed=1,
        n_trials=2,
        parallelism=1,
        enqueue=[{"alpha": 1.0}],
    )
    assert study.kind == "script"
    study.wait(timeout_s=WAIT_S, progress=False)
    assert study.status == "finished", study.message
    for trial in study.trials:
        assert trial["state"] == "complete", trial["message"]
        # the last logged value: the one at the highest step
        assert trial["value"] == pytest.approx(-((trial["params"]["alpha"] - 1.0) ** 2) - 0.5)
    assert study.best_trial["number"] == 0
    assert study.best_trial["value"] == pytest.approx(-0.5)
