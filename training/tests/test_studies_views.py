"""The study pages: the list, the form (its bad input shown on the page) and a study with its figures."""

import pytest
from django.test import Client

from datasets.tests.factories import DatasetFactory
from studio.core.testing import member
from training import studies, tracking
from training.job_models import JobStatus
from training.jobs import _finish
from training.study_models import Study
from training.tests.factories import make_points_version


@pytest.fixture
def world(db):
    version = make_points_version()
    user = member(version.dataset.project, username="page-tuner")
    browser = Client()
    browser.force_login(user)
    return user, version, browser


def _form(version, **overrides):
    data = {
        "name": "page study",
        "trainer": "tabular_classification",
        "dataset_version": str(version.pk),
        "target": "label",
        "objective_metric": "val_accuracy",
        "direction": "maximize",
        "sampler": "tpe",
        "pruner": "median",
        "space-0-name": "lr",
        "space-0-type": "float",
        "space-0-low": "0.001",
        "space-0-high": "0.1",
        "space-0-log": "1",
        "space-1-name": "lr_schedule",
        "space-1-type": "categorical",
        "space-1-choices": "constant, cosine",
        "space-2-name": "batch_size",
        "space-2-type": "int",
        "space-2-low": "8",
        "space-2-high": "32",
        "space-2-step": "8",
        "n_trials": "4",
        "parallelism": "2",
        "hyperparameters": '{"epochs": 2}',
    }
    data.update(overrides)
    return data


def test_the_form_creates_a_study_with_its_search_space(world):
    _user, version, browser = world
    project = version.dataset.project
    response = browser.post(f"/projects/{project.pk}/training/studies/new/", _form(version))
    study = Study.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/training/studies/{study.pk}/"
    assert study.search_space == [
        {"name": "lr", "type": "float", "low": 0.001, "high": 0.1, "log": True, "step": None},
        {"name": "lr_schedule", "type": "categorical", "choices": ["constant", "cosine"]},
        {"name": "batch_size", "type": "int", "low": 8, "high": 32, "log": False, "step": 8},
    ]
    assert (study.pruner, study.n_trials, study.parallelism) == ("median", 4, 2)
    assert study.template["hyperparameters"] == {"epochs": 2}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"space-0-low": "0.5", "space-0-high": "0.1", "space-0-log": ""},
            "lr: inverted range (low 0.5 &gt; high 0.1)",
        ),
        ({"space-1-choices": ""}, "lr_schedule: a categorical needs at least one choice"),
        (
            {"space-0-name": "momentum"},
            "unknown hyperparameter &#x27;momentum&#x27; for tabular_classification",
        ),
        ({"hyperparameters": "epochs=2"}, "hyperparameters: a JSON object of fixed values"),
    ],
)
def test_bad_input_is_shown_on_the_form(world, overrides, message):
    _user, version, browser = world
    response = browser.post(
        f"/projects/{version.dataset.project_id}/training/studies/new/", _form(version, **overrides)
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'value="lr_schedule"' in response.content.decode()  # what was typed stays
    assert not Study.objects.exists()


def test_the_study_page_shows_trials_figures_and_the_best_run(world):
    user, version, browser = world
    project = version.dataset.project
    study = studies.study_create(
        user=user,
        project=project,
        name="shown",
        objective_metric="val_accuracy",
        direction="maximize",
        search_space=[{"name": "lr", "type": "float", "low": 0.001, "high": 0.1, "log": True}],
        trainer="tabular_classification",
        dataset_version=version,
        target="label",
        n_trials=2,
        parallelism=2,
        sampler="random",
    )
    studies.study_step(study_id=study.pk)
    for trial, value in zip(study.trials.order_by("number"), (0.6, 0.8), strict=True):
        points = [
            {"key": "val_accuracy", "value": value - 0.1, "step": 1},
            {"key": "val_accuracy", "value": value, "step": 2},
        ]
        studies.study_trial_report(trial_id=trial.pk, points=points, may_prune=False)
        tracking.run_log_metrics(user=None, run=trial.job.run, metrics=points)
        _finish(trial.job, JobStatus.FINISHED, error="", code="")
    studies.study_step(study_id=study.pk)
    best = study.trials.get(number=1)

    page = browser.get(f"/projects/{project.pk}/training/studies/{study.pk}/").content.decode()
    assert 'data-status="finished"' in page
    assert f'href="/projects/{project.pk}/training/runs/{best.job.run_id}/" id="study-best-run"' in page
    for chart in ("study-history", "study-intermediate", "study-parallel", "study-importance"):
        assert f'id="{chart}"' in page
    assert page.count('data-state="complete"') == 2
    fragment = browser.get(f"/projects/{project.pk}/training/studies/{study.pk}/live/").content.decode()
    assert "<html" not in fragment
    assert 'id="study-trials"' in fragment
    listing = browser.get(f"/projects/{project.pk}/training/studies/").content.decode()
    assert "shown" in listing


def test_another_project_s_study_is_a_404(world):
    user, version, _browser = world
    study = studies.study_create(
        user=user,
        project=version.dataset.project,
        name="private",
        objective_metric="val_accuracy",
        direction="maximize",
        search_space=[{"name": "lr", "type": "float", "low": 0.001, "high": 0.1}],
        trainer="tabular_classification",
        dataset_version=version,
        target="label",
        n_trials=1,
    )
    other = DatasetFactory(name="theirs")
    outsider = member(other.project, username="elsewhere", role="owner")
    browser = Client()
    browser.force_login(outsider)
    assert browser.get(f"/projects/{other.project_id}/training/studies/{study.pk}/").status_code == 404
    assert (
        browser.get(f"/projects/{version.dataset.project_id}/training/studies/{study.pk}/").status_code == 404
    )


def test_the_form_starts_a_script_study_from_an_uploaded_file(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _user, version, browser = world
    form = _form(
        version,
        trainer="",
        objective_metric="score",
        **{"space-1-name": "", "space-2-name": "", "hyperparameters": "{}"},
    )
    form["script"] = SimpleUploadedFile("search.py", b"import sys\nprint(sys.argv)\n")
    response = browser.post(f"/projects/{version.dataset.project_id}/training/studies/new/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    study = Study.objects.get()
    assert (study.template["kind"], study.template["filename"], study.program) == (
        "script",
        "search.py",
        "search.py",
    )
    missing = browser.post(
        f"/projects/{version.dataset.project_id}/training/studies/new/", _form(version, trainer="")
    )
    assert missing.status_code == 400
    assert "script: choose a .py or .ipynb file, or a built-in trainer." in missing.content.decode()
