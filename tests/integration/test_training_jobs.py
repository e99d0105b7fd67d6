"""Training jobs with real Celery workers: a built-in trainer end to end, stop, and SIGKILL + resume."""

import os
import signal
import time

import psutil
import pytest

from datasets.tests.factories import make_iris_version
from studio.core.testing import member, start_worker, wait_for
from studio.errors import ApplicationError
from training.job_models import RunLogChunk, TrainingJob
from training.jobs import training_job_stop, training_job_submit, training_jobs_reap
from training.models import Metric

pytestmark = [pytest.mark.integration]


@pytest.fixture
def iris_version(transactional_db):
    version = make_iris_version()
    return member(version.dataset.project, username_prefix="trainer"), version


def _submit(user, version, **overrides):
    options = {
        "trainer": "tabular_classification",
        "target": "species",
        "hyperparameters": {"epochs": 4, "batch_size": 16, "seed": 7},
    }
    options.update(overrides)
    return training_job_submit(user=user, project=version.dataset.project, dataset_version=version, **options)


def _steps(run, key):
    return list(Metric.objects.filter(run=run, key=key).order_by("step").values_list("step", flat=True))


def test_a_built_in_trainer_runs_as_a_job(iris_version, celery_worker_name):
    user, version = iris_version
    job = _submit(user, version)
    done = wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["finished", "failed"]).first())
    assert done is not None, "the job never finished"
    assert done.status == "finished", done.error
    run = done.run
    run.refresh_from_db()
    assert run.status == "finished"
    assert run.device == "cpu"
    assert run.dataset_version_id == version.pk
    assert _steps(run, "val_accuracy") == [1, 2, 3, 4]
    assert Metric.objects.filter(run=run, key="system/cpu_percent").exists()
    artifacts = set(run.artifacts.values_list("path", flat=True))
    assert {"model/model.safetensors", "model/model.json"} <= artifacts
    log = "".join(RunLogChunk.objects.filter(run=run).values_list("text", flat=True))
    assert "training tabular_classification" in log


def test_a_job_asking_for_two_processes_trains_with_ddp_on_gloo(iris_version, celery_worker_name):
    # On a machine without GPUs, two processes under torchrun share the training on the gloo backend.
    user, version = iris_version
    job = _submit(user, version, processes=2)
    done = wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["finished", "failed"]).first())
    assert done is not None, "the job never finished"
    assert done.status == "finished", done.error
    log = "".join(RunLogChunk.objects.filter(run=done.run).values_list("text", flat=True))
    assert "x2 processes" in log
    # only rank 0 records: one point per epoch, one model
    assert _steps(done.run, "val_accuracy") == [1, 2, 3, 4]
    assert {"model/model.safetensors", "model/model.json"} <= set(
        done.run.artifacts.values_list("path", flat=True)
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trainer": "gradient_magic"}, "gradient_magic"),
        ({"target": "specis"}, "specis"),
        ({"hyperparameters": {"epochs": "ten"}}, "epochs"),
        ({"queue": "nowhere"}, "queue"),
    ],
)
def test_bad_jobs_are_refused_before_they_are_queued(iris_version, overrides, message):
    user, version = iris_version
    with pytest.raises(ApplicationError, match=message):
        _submit(user, version, **overrides)
    assert not TrainingJob.objects.exists()


def test_stop_ends_a_running_job_within_seconds(iris_version, celery_worker_name):
    user, version = iris_version
    job = _submit(user, version, hyperparameters={"epochs": 500, "batch_size": 4, "seed": 1})
    assert wait_for(
        lambda: TrainingJob.objects.filter(pk=job.pk, status="running", pid__isnull=False).first()
    )
    child_pid = TrainingJob.objects.get(pk=job.pk).pid
    training_job_stop(user=user, job=job)
    stopped = wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status="stopped").first(), timeout_s=30)
    assert stopped is not None
    assert stopped.run.status == "stopped"
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_a_killed_worker_s_job_resumes_from_its_checkpoint(iris_version, process_env, settings):
    user, version = iris_version
    settings.STUDIO_TRAINING_QUEUES = ["default", "gpu", "resume-test"]
    first = start_worker("resume-test", process_env)
    try:
        job = _submit(
            user, version, queue="resume-test", hyperparameters={"epochs": 40, "batch_size": 4, "seed": 3}
        )
        run = job.run
        # when: the worker dies hard in the middle of the job
        assert wait_for(lambda: len(_steps(run, "val_loss")) >= 3), "the job never got going"
        child_pid = TrainingJob.objects.get(pk=job.pk).pid
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # the training process dies with it (it never runs on as an orphan)
        assert wait_for(lambda: not psutil.pid_exists(child_pid), timeout_s=10)
        steps_at_kill = len(_steps(run, "val_loss"))
        assert steps_at_kill < 40
        # then: the heartbeat stops, the reaper queues it again, a restarted worker resumes it
        time.sleep(3)
        assert training_jobs_reap(heartbeat_timeout_s=2) == 1
        assert TrainingJob.objects.get(pk=job.pk).status == "queued"
        second = start_worker("resume-test", process_env)
        try:
            done = wait_for(
                lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["finished", "failed"]).first(),
                timeout_s=240,
            )
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert done is not None, "the resumed job never finished"
    assert done.status == "finished", done.error
    assert done.attempts == 2
    # one continuous history: every epoch once, none lost, none repeated
    assert _steps(run, "val_loss") == list(range(1, 41))
    log = "".join(RunLogChunk.objects.filter(run=run).values_list("text", flat=True))
    assert "resuming from the checkpoint of epoch" in log
