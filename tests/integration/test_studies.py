"""Hyperparameter studies with real Celery workers: a pruned 6-trial study, and a worker killed mid-trial."""

import os
import signal
import subprocess
import uuid

import optuna
import pytest

from datasets.tests.factories import make_iris_version
from studio.core.testing import member, start_worker, wait_for
from training import studies
from training.job_models import TrainingJob
from training.jobs import training_jobs_reap
from training.models import LatestMetric, Metric
from training.study_models import Study, StudyStatus, TrialState

pytestmark = [pytest.mark.integration]
OPTUNA_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


@pytest.fixture
def iris_version(transactional_db):
    version = make_iris_version()
    return member(version.dataset.project, username_prefix="tuner"), version


@pytest.fixture
def queue(process_env, settings):
    """A queue of this test's own, served only by the workers this test starts (steps run there too)."""
    name = f"study-{uuid.uuid4().hex[:6]}"
    settings.STUDIO_TRAINING_QUEUES = ["default", "gpu", name]
    env = dict(process_env, STUDIO_TRAINING_QUEUES=f"default,gpu,{name}")
    return name, env


def _stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def _create(user, version, queue_name, **overrides):
    options = {
        "name": f"iris search {uuid.uuid4().hex[:4]}",
        "objective_metric": "val_loss",
        "direction": "minimize",
        "search_space": [{"name": "lr", "type": "float", "low": 1e-6, "high": 0.1, "log": True}],
        "trainer": "tabular_classification",
        "dataset_version": version,
        "target": "species",
        "hyperparameters": {"epochs": 6, "batch_size": 16, "seed": 5},
        "sampler": "tpe",
        "seed": 3,
        "n_trials": 6,
        "parallelism": 2,
        "queue": queue_name,
    }
    options.update(overrides)
    return studies.study_create(user=user, project=version.dataset.project, **options)


def _finished(study_id):
    return Study.objects.filter(pk=study_id, status__in=["finished", "failed", "stopped"]).first()


def test_a_pruned_study_reaches_its_budget_with_consistent_trials(iris_version, queue):
    user, version = iris_version
    queue_name, env = queue
    worker = start_worker(queue_name, env, concurrency=3)
    try:
        # given: three good learning rates first (the median pruner needs two complete trials), then
        # two that cannot learn in 6 epochs: the pruner should stop those early
        study = _create(
            user,
            version,
            queue_name,
            pruner="median",
            enqueue=[{"lr": 0.05}, {"lr": 0.04}, {"lr": 0.03}, {"lr": 1e-6}, {"lr": 2e-6}],
        )
        done = wait_for(lambda: _finished(study.pk), timeout_s=420)
    finally:
        _stop_worker(worker)
    assert done is not None, "the study never finished"
    assert done.status == StudyStatus.FINISHED, done.message
    trials = list(done.trials.select_related("job").order_by("number"))
    assert [trial.number for trial in trials] == [0, 1, 2, 3, 4, 5]
    assert {trial.state for trial in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    handle = optuna.load_study(study_name=done.optuna_study_name, storage=studies.optuna_storage())
    assert [OPTUNA_STATES[trial.state.name] for trial in handle.get_trials()] == [
        trial.state for trial in trials
    ]
    for trial in trials:
        steps = list(
            Metric.objects.filter(run=trial.job.run_id, key="val_loss").values_list("step", flat=True)
        )
        if trial.state == TrialState.COMPLETE:
            assert trial.job.status == "finished"
            last = LatestMetric.objects.get(run=trial.job.run_id, key="val_loss").value
            assert trial.value == last
            assert sorted(steps) == [1, 2, 3, 4, 5, 6]
        else:
            assert (trial.job.status, trial.job.error_code) == ("stopped", "pruned")
            assert trial.pruned_at_step is not None
            assert max(steps) < 6, "a pruned trial stops before its last epoch"
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned, [(trial.params, trial.value) for trial in trials]
    # the learning rates that cannot learn are among those pruned
    assert {1e-6, 2e-6} & {trial.params["lr"] for trial in pruned}
    best = min(
        (trial for trial in trials if trial.state == TrialState.COMPLETE), key=lambda trial: trial.value
    )
    assert handle.best_trial.number == best.number


def test_a_worker_killed_mid_trial_is_retried_and_the_study_reaches_its_budget(iris_version, queue):
    user, version = iris_version
    queue_name, env = queue
    first = start_worker(queue_name, env, concurrency=2)
    try:
        study = _create(
            user,
            version,
            queue_name,
            n_trials=2,
            parallelism=1,
            hyperparameters={"epochs": 25, "batch_size": 4, "seed": 5},
        )
        trial = wait_for(lambda: study.trials.filter(number=0, job__isnull=False).first(), timeout_s=120)
        assert trial is not None, "the study never asked for a trial"
        run_id = trial.job.run_id
        # when: the worker dies hard in the middle of the trial
        assert wait_for(lambda: Metric.objects.filter(run=run_id, key="val_loss").count() >= 2, timeout_s=180)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # then: the reaper queues the job again and another worker resumes it
        assert wait_for(lambda: training_jobs_reap(heartbeat_timeout_s=2) == 1, timeout_s=30, every_s=1)
        assert TrainingJob.objects.get(pk=trial.job_id).status == "queued"
        trial.refresh_from_db()
        assert trial.state == TrialState.RUNNING
        second = start_worker(queue_name, env, concurrency=2)
        try:
            done = wait_for(lambda: _finished(study.pk), timeout_s=420)
        finally:
            _stop_worker(second)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert done is not None, "the study never finished"
    assert done.status == StudyStatus.FINISHED, done.message
    trials = list(done.trials.select_related("job").order_by("number"))
    assert len(trials) == 2
    assert all(trial.state in (TrialState.COMPLETE, TrialState.FAILED) for trial in trials)
    killed = trials[0]
    assert killed.job.attempts == 2
    assert killed.state == TrialState.COMPLETE, killed.message
    assert trials[1].state == TrialState.COMPLETE, trials[1].message
