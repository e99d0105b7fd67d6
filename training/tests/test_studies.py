"""Study services: validation, samplers, pruners and the ask-and-tell bookkeeping (jobs settled by hand)."""

import optuna
import pytest

from studio.core.testing import member
from studio.errors import ApplicationError
from training import studies, tracking
from training.job_models import JobStatus, TrainingJob
from training.jobs import _finish
from training.study_models import Study, StudyStatus, TrialState
from training.tests.factories import make_points_version

SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {"name": "batch_size", "type": "int", "low": 8, "high": 32, "step": 8},
    {"name": "lr_schedule", "type": "categorical", "choices": ["constant", "cosine"]},
]


@pytest.fixture
def world(db):
    version = make_points_version()
    user = member(version.dataset.project, username="tuner")
    return user, version


def _create(world, **overrides):
    user, version = world
    options = {
        "name": "lr search",
        "objective_metric": "val_accuracy",
        "direction": "maximize",
        "search_space": SPACE,
        "trainer": "tabular_classification",
        "dataset_version": version,
        "target": "label",
        "hyperparameters": {"epochs": 3},
        "sampler": "random",
        "seed": 1,
        "n_trials": 3,
        "parallelism": 2,
    }
    options.update(overrides)
    return studies.study_create(user=user, project=version.dataset.project, **options)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"search_space": [{"name": "lr", "type": "float", "low": 0.1, "high": 0.1}]},
            "search_space: lr: empty range (low = high = 0.1); low must be below high",
        ),
        (
            {"search_space": [{"name": "lr", "type": "float", "low": 0.1, "high": 0.01}]},
            "search_space: lr: inverted range (low 0.1 > high 0.01); low must be below high",
        ),
        (
            {"search_space": [{"name": "lr_schedule", "type": "categorical", "choices": []}]},
            "search_space: lr_schedule: a categorical needs at least one choice",
        ),
        (
            {"search_space": [{"name": "momentum", "type": "float", "low": 0.1, "high": 0.9}]},
            "search_space: unknown hyperparameter 'momentum' for tabular_classification",
        ),
        (
            {"search_space": [{"name": "dropout", "type": "float", "low": 0.1, "high": 0.95}]},
            "search_space: dropout: must be between 0 and 0.9, got 0.95",
        ),
        (
            {"search_space": [{"name": "lr", "type": "float", "low": 0.0, "high": 0.1, "log": True}]},
            "search_space: lr: a log scale needs low above 0, got 0",
        ),
        (
            {"search_space": [{"name": "lr_schedule", "type": "categorical", "choices": ["cosine", "step"]}]},
            "search_space: lr_schedule: must be one of 'constant', 'cosine', got 'step'",
        ),
        (
            {"search_space": [{"name": "max_categories", "type": "float", "low": 1, "high": 5}]},
            "search_space: max_categories takes integers; use type int",
        ),
        ({"search_space": []}, "search_space: give at least one hyperparameter to search over"),
        ({"sampler": "bayes"}, "sampler: one of random, grid, tpe, cmaes, got 'bayes'"),
        ({"pruner": "asha"}, "pruner: one of none, median, successive_halving, hyperband, got 'asha'"),
        ({"direction": "up"}, "direction: minimize or maximize, got 'up'"),
        ({"n_trials": None}, "n_trials: give a budget: a number of trials, a time limit, or both"),
        ({"parallelism": 0}, "parallelism: between 1 and 32 trials at once"),
        (
            {"sampler": "grid"},
            "search_space: lr: the grid sampler needs a step for a float range",
        ),
        ({"hyperparameters": {"epochs": 3, "lr": 0.1}}, "search_space: lr is also a fixed hyperparameter"),
        ({"enqueue": [{"dropout": 0.1}]}, "enqueue: dropout is not in the search space"),
    ],
)
def test_bad_studies_are_refused_with_a_message_naming_the_field(world, overrides, message):
    with pytest.raises(ApplicationError) as raised:
        _create(world, **overrides)
    assert raised.value.message.startswith(message), raised.value.message
    assert raised.value.status_code == 400
    assert not Study.objects.exists()


def test_samplers_and_pruners_are_built_by_their_optuna_names(world):
    study = _create(world)
    expected = {
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
        "cmaes": optuna.samplers.CmaEsSampler,
    }
    for name, kind in expected.items():
        study.sampler = name
        assert isinstance(studies.build_sampler(study), kind)
    pruners = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
    }
    for name, kind in pruners.items():
        study.pruner = name
        assert isinstance(studies.build_pruner(study), kind)


def test_a_grid_study_covers_its_grid_and_no_more(world):
    study = _create(
        world,
        sampler="grid",
        n_trials=None,
        search_space=[
            {"name": "lr", "type": "float", "low": 0.01, "high": 0.03, "step": 0.01},
            {"name": "lr_schedule", "type": "categorical", "choices": ["constant", "cosine"]},
        ],
    )
    assert study.n_trials == 6
    assert studies.grid_points(study.search_space)["lr"] == [0.01, 0.02, 0.03]
    assert isinstance(studies.build_sampler(study), optuna.samplers.GridSampler)


def test_the_storage_url_is_built_from_the_django_database():
    postgres = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "studio",
        "USER": "me",
        "PASSWORD": "p@ss",
        "HOST": "db",
        "PORT": 5432,
    }
    assert studies.optuna_storage_url(postgres) == "postgresql+psycopg://me:p%40ss@db:5432/studio"
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/data/studio.sqlite3"}
    assert studies.optuna_storage_url(sqlite) == "sqlite:////data/studio-optuna.sqlite3"


def _end(trial, *, status=JobStatus.FINISHED, metrics=None, code=""):
    trial.refresh_from_db()
    job = trial.job
    if metrics:
        tracking.run_log_metrics(user=None, run=job.run, metrics=metrics)
    _finish(job, status, error="boom" if status == JobStatus.FAILED else "", code=code)


def test_ask_and_tell_runs_the_budget_with_parallelism_and_records_values(world):
    # given: a study of 3 trials, 2 at a time
    study = _create(world)
    studies.study_step(study_id=study.pk)
    first, second = study.trials.order_by("number")
    assert [first.state, second.state] == ["running", "running"]
    assert first.job.spec["study_trial"] == first.pk
    assert first.job.spec["hyperparameters"]["lr"] == first.params["lr"]
    assert first.job.spec["hyperparameters"]["epochs"] == 3
    assert first.job.run.tags == {"study": str(study.pk), "trial": "0"}
    assert first.job.run.experiment.name == "lr search"
    studies.study_step(study_id=study.pk)
    assert study.trials.count() == 2  # a repeated step asks no more while both run

    # when: one trial ends complete, the other fails
    _end(
        first,
        metrics=[
            {"key": "val_accuracy", "value": 0.5, "step": 1},
            {"key": "val_accuracy", "value": 0.75, "step": 2},
        ],
    )
    _end(second, status=JobStatus.FAILED)
    studies.study_step(study_id=study.pk)

    # then: the first's value is its last logged value, the failure did not stop the study
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.value) == (TrialState.COMPLETE, 0.75)
    assert second.state == TrialState.FAILED
    assert "boom" in second.message
    study.refresh_from_db()
    assert study.status == StudyStatus.RUNNING
    third = study.trials.get(number=2)
    _end(third, metrics=[{"key": "val_accuracy", "value": 0.9, "step": 1}])
    studies.study_step(study_id=study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.FINISHED
    assert study.message == "the trial budget is spent"
    handle = studies.optuna_study(study)
    states = [trial.state.name for trial in handle.get_trials()]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert handle.best_value == 0.9
    # importance is recomputed by the step once two trials are complete
    assert set(study.importances) == {"lr", "batch_size", "lr_schedule"}
    assert sum(study.importances.values()) == pytest.approx(1.0)


def test_an_objective_never_logged_stops_the_study_on_the_first_trial(world):
    study = _create(world, objective_metric="val_auc")
    studies.study_step(study_id=study.pk)
    first, second = study.trials.order_by("number")
    _end(
        first,
        metrics=[
            {"key": "val_accuracy", "value": 0.5, "step": 1},
            {"key": "train_loss", "value": 1.0, "step": 1},
        ],
    )
    studies.study_step(study_id=study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    assert study.message.startswith(
        "The objective metric 'val_auc' was never logged by trial 0 "
        f"(run #{first.job.run_id}); it logged train_loss, val_accuracy."
    )
    # the other trial is not left to run the budget for nothing
    assert TrainingJob.objects.get(pk=second.job_id).status == JobStatus.STOPPED
    studies.study_step(study_id=study.pk)
    second.refresh_from_db()
    assert second.state == TrialState.FAILED
    assert study.trials.count() == 2


def test_the_pruner_prunes_a_worse_trial_and_the_study_records_it(world):
    study = _create(world, pruner="median", parallelism=1, n_trials=3)
    for number in range(2):
        studies.study_step(study_id=study.pk)
        trial = study.trials.get(number=number)
        points = [{"key": "val_accuracy", "value": 0.9, "step": step} for step in (1, 2)]
        assert studies.study_trial_report(trial_id=trial.pk, points=points, may_prune=True) is None
        _end(trial, metrics=points)
    studies.study_step(study_id=study.pk)
    worse = study.trials.get(number=2)
    # the last flush of a finished training never prunes it
    low = [{"key": "val_accuracy", "value": 0.1, "step": 1}]
    assert studies.study_trial_report(trial_id=worse.pk, points=low, may_prune=False) is None
    lower = [{"key": "val_accuracy", "value": 0.05, "step": 2}]
    assert studies.study_trial_report(trial_id=worse.pk, points=lower, may_prune=True) == 2
    _end(worse, status=JobStatus.STOPPED, code="pruned")
    studies.study_step(study_id=study.pk)
    worse.refresh_from_db()
    assert (worse.state, worse.pruned_at_step, worse.value) == (TrialState.PRUNED, 2, 0.05)
    study.refresh_from_db()
    assert study.status == StudyStatus.FINISHED


def test_pause_resume_stop_and_extend(world):
    user, _version = world
    study = _create(world, n_trials=1, parallelism=1)
    studies.study_pause(user=user, study=study)
    studies.study_step(study_id=study.pk)
    assert study.trials.count() == 0  # paused: no trials asked
    with pytest.raises(ApplicationError, match="only a running study can be paused"):
        studies.study_pause(user=user, study=study)
    studies.study_resume(user=user, study=study)
    studies.study_step(study_id=study.pk)
    trial = study.trials.get()
    _end(trial, metrics=[{"key": "val_accuracy", "value": 0.5, "step": 1}])
    studies.study_step(study_id=study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.FINISHED
    studies.study_extend(user=user, study=study, n_trials=1)
    study.refresh_from_db()
    assert (study.status, study.n_trials) == (StudyStatus.RUNNING, 2)
    studies.study_step(study_id=study.pk)
    running = study.trials.get(number=1)
    studies.study_stop(user=user, study=study)
    study.refresh_from_db()
    assert study.status == StudyStatus.STOPPED
    assert TrainingJob.objects.get(pk=running.job_id).status == JobStatus.STOPPED
    studies.study_step(study_id=study.pk)
    running.refresh_from_db()
    assert running.state == TrialState.FAILED
    with pytest.raises(ApplicationError, match="a stopped study cannot be extended"):
        studies.study_extend(user=user, study=study, n_trials=1)


def test_a_known_good_configuration_is_tried_first(world):
    study = _create(world, enqueue=[{"lr": 0.01, "batch_size": 16, "lr_schedule": "constant"}])
    studies.study_step(study_id=study.pk)
    first = study.trials.get(number=0)
    assert first.params == {"lr": 0.01, "batch_size": 16, "lr_schedule": "constant"}


def test_a_viewer_cannot_create_a_study(world):
    _user, version = world
    viewer = member(version.dataset.project, username="looker", role="viewer")
    with pytest.raises(ApplicationError):
        studies.study_create(
            user=viewer,
            project=version.dataset.project,
            name="x",
            objective_metric="val_accuracy",
            direction="maximize",
            search_space=SPACE,
            trainer="tabular_classification",
            dataset_version=version,
            target="label",
            n_trials=2,
        )


SCRIPT = "import sys\nprint(sys.argv)\n"


def test_a_script_study_searches_the_script_s_arguments(world):
    user, version = world
    study = studies.study_create(
        user=user,
        project=version.dataset.project,
        name="script search",
        objective_metric="score",
        direction="maximize",
        search_space=[
            {"name": "alpha", "type": "float", "low": 0.1, "high": 2.0},
            {"name": "mode", "type": "categorical", "choices": ["a", "b"]},
        ],
        script_filename="train.py",
        script_source=SCRIPT,
        hyperparameters={"rounds": 3},
        n_trials=1,
        sampler="random",
        seed=2,
    )
    studies.study_step(study_id=study.pk)
    trial = study.trials.select_related("job").get()
    assert trial.job.spec["kind"] == "script"
    assert trial.job.spec["filename"] == "train.py"
    assert trial.job.spec["hyperparameters"] == {"rounds": 3, **trial.params}
    assert trial.job.spec["study_trial"] == trial.pk
    assert set(trial.job.run.artifacts.values_list("path", flat=True)) == {"code/train.py"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"search_space": [{"name": "2fast", "type": "float", "low": 0, "high": 1}]},
            "search_space: '2fast' is not a valid argument name",
        ),
        ({"script_source": "def broken(:\n"}, "script: train.py line 1: SyntaxError"),
        ({"trainer": "tabular_classification"}, "trainer: give either a built-in trainer or a script"),
    ],
)
def test_bad_script_studies_are_refused(world, overrides, message):
    user, version = world
    options = {
        "name": "script search",
        "objective_metric": "score",
        "direction": "maximize",
        "search_space": [{"name": "alpha", "type": "float", "low": 0.1, "high": 2.0}],
        "script_filename": "train.py",
        "script_source": SCRIPT,
        "n_trials": 1,
        **overrides,
    }
    with pytest.raises(ApplicationError) as raised:
        studies.study_create(user=user, project=version.dataset.project, **options)
    assert raised.value.message.startswith(message), raised.value.message


def test_the_sweep_steps_every_running_study(world, django_capture_on_commit_callbacks, monkeypatch):
    from training import tasks

    running = _create(world)
    paused = _create(world, name="paused")
    studies.study_pause(user=world[0], study=paused)
    sent = []
    monkeypatch.setattr(tasks.study_step_task, "apply_async", lambda **options: sent.append(options))
    with django_capture_on_commit_callbacks(execute=True):
        assert studies.studies_sweep() == 1
    assert sent == [{"kwargs": {"study_id": running.pk}, "queue": "default"}]


def test_a_time_limit_ends_the_study_once_its_running_trials_end(world):
    from datetime import timedelta

    from django.utils import timezone

    study = _create(world, n_trials=None, time_limit_s=60, parallelism=1)
    studies.study_step(study_id=study.pk)
    trial = study.trials.get()
    # when: the time is up while a trial runs
    Study.objects.filter(pk=study.pk).update(started_at=timezone.now() - timedelta(seconds=61))
    _end(trial, metrics=[{"key": "val_accuracy", "value": 0.5, "step": 1}])
    studies.study_step(study_id=study.pk)
    # then: no new trial, and the study is finished with the reason
    study.refresh_from_db()
    assert study.trials.count() == 1
    assert (study.status, study.message) == (StudyStatus.FINISHED, "the time limit was reached")
