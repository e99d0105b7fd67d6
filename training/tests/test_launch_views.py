"""The "New training" page: the built-in trainer form and script mode, through the real views."""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from datasets.tests.factories import DatasetFactory, make_version
from studio.core.testing import UserFactory, project_with_roles
from training.job_models import TrainingJob
from training.views.launch import parse_hyperparameter_lines

TABLE = {"x1": [0.1, 0.2, 0.3, 0.4] * 5, "x2": [1.0, 2.0, 3.0, 4.0] * 5, "label": ["a", "b"] * 10}
SCHEMA = [
    {"name": "x1", "type": "numeric", "arrow_type": "double"},
    {"name": "x2", "type": "numeric", "arrow_type": "double"},
    {"name": "label", "type": "categorical", "arrow_type": "string"},
]


@pytest.fixture
def team(db):
    project, users = project_with_roles()
    version = make_version(dataset=DatasetFactory(project=project, name="toy"), table=TABLE, schema=SCHEMA)
    return project, users, version


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(project) -> str:
    return reverse("training:new", kwargs={"project_id": project.pk})


def test_the_form_offers_the_version_its_target_columns_and_the_trainer_hyperparameters(team):
    project, users, version = team

    response = browser_for(users["scientist"]).get(url(project), {"dataset_version": version.pk})

    page = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{version.pk}" selected>toy v{version.number}' in page
    assert '<option value="label">label (categorical)</option>' in page
    assert 'name="hp_epochs"' in page


def test_changing_the_trainer_rebuilds_the_form_in_place(team):
    project, users, version = team

    response = browser_for(users["scientist"]).get(
        url(project),
        {"dataset_version": version.pk, "trainer": "tabular_regression", "hp_epochs": "7"},
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert page.lstrip().startswith(
        '<form method="post" class="row g-3 studio-form-narrow" id="trainer-form"'
    )
    # a regression trainer is offered the numeric columns only
    assert '<option value="x1">x1 (numeric)</option>' in page
    assert '<option value="label">' not in page
    assert 'name="hp_epochs" value="7"' in page


def test_submitting_the_form_queues_a_job_and_opens_its_run(team, django_capture_on_commit_callbacks):
    project, users, version = team

    with django_capture_on_commit_callbacks(execute=False):
        response = browser_for(users["scientist"]).post(
            url(project),
            {
                "mode": "trainer",
                "dataset_version": version.pk,
                "trainer": "tabular_classification",
                "target": "label",
                "hp_epochs": "3",
                "hp_lr": "0.01",
                "experiment": "form",
                "name": "first try",
                "gpus": "0",
                "time_limit_min": "5",
            },
        )

    job = TrainingJob.objects.get(project=project)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "training:run", kwargs={"project_id": project.pk, "run_id": job.run_id}
    )
    assert job.spec["hyperparameters"]["epochs"] == 3
    assert job.spec["target"] == "label"
    assert job.time_limit_s == 300
    assert job.run.name == "first try"
    assert job.run.experiment.name == "form"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"target": "x9"}, "x9"),
        ({"target": "label", "trainer": "tabular_regression"}, "target 'label' is a categorical column"),
        ({"target": "label", "hp_epochs": "ten"}, "epochs"),
        ({"target": "label", "trainer": "tabular_clasification"}, "did you mean 'tabular_classification'"),
        ({"target": "label", "time_limit_min": "-1"}, "time_limit_min: more than 0 minutes"),
    ],
)
def test_bad_input_is_shown_on_the_page_and_nothing_is_queued(team, fields, words):
    project, users, version = team
    data = {"mode": "trainer", "dataset_version": version.pk, "trainer": "tabular_classification", **fields}

    response = browser_for(users["scientist"]).post(url(project), data)

    assert response.status_code == 400
    assert words in html.unescape(response.content.decode())
    assert not TrainingJob.objects.filter(project=project).exists()


def test_a_script_is_uploaded_and_queued_with_its_hyperparameters(team, django_capture_on_commit_callbacks):
    project, users, version = team
    script = SimpleUploadedFile("train.py", b"import sys\nprint(sys.argv)\n")

    with django_capture_on_commit_callbacks(execute=False):
        response = browser_for(users["scientist"]).post(
            url(project),
            {
                "mode": "script",
                "script": script,
                "dataset_version": version.pk,
                "script_hyperparameters": "lr=0.01\n# a comment\noptimizer=adam\nepochs=4",
            },
        )

    job = TrainingJob.objects.get(project=project)
    assert response.status_code == 302
    assert job.spec["kind"] == "script"
    assert job.spec["hyperparameters"] == {"lr": 0.01, "optimizer": "adam", "epochs": 4}
    assert job.run.artifacts.get().path == "code/train.py"


def test_a_script_with_a_syntax_error_is_refused_on_the_page(team):
    project, users, _version = team
    script = SimpleUploadedFile("train.py", b"for x in:\n  pass\n")

    response = browser_for(users["scientist"]).post(url(project), {"mode": "script", "script": script})

    assert response.status_code == 400
    assert "train.py line 1: SyntaxError" in response.content.decode()
    assert not TrainingJob.objects.filter(project=project).exists()


def test_viewers_may_not_start_training_and_outsiders_do_not_see_the_project(team):
    project, users, _version = team

    assert browser_for(users["viewer"]).get(url(project)).status_code == 403
    assert browser_for(UserFactory()).get(url(project)).status_code == 404


def test_a_version_of_another_project_is_not_offered_or_accepted(team):
    project, users, _version = team
    other_project, _other_users = project_with_roles("Other")
    foreign = make_version(
        dataset=DatasetFactory(project=other_project, name="secret"), table=TABLE, schema=SCHEMA
    )

    page = browser_for(users["scientist"]).get(url(project), {"dataset_version": foreign.pk})
    posted = browser_for(users["scientist"]).post(
        url(project),
        {
            "mode": "trainer",
            "dataset_version": foreign.pk,
            "trainer": "tabular_classification",
            "target": "label",
        },
    )

    assert "secret" not in page.content.decode()
    assert posted.status_code == 400
    assert "choose a dataset version" in posted.content.decode()


def test_hyperparameter_lines_parse_json_values_and_name_a_bad_line():
    assert parse_hyperparameter_lines("lr = 0.1\nuse_bn=true\nname=resnet\n\n") == {
        "lr": 0.1,
        "use_bn": True,
        "name": "resnet",
    }
    with pytest.raises(Exception, match="line 2"):
        parse_hyperparameter_lines("lr=0.1\njust words")


@pytest.fixture
def workspace(team, settings, tmp_path):
    project, users, _version = team
    settings.STUDIO_NOTEBOOK_DIR = tmp_path / "notebooks"
    own = settings.STUDIO_NOTEBOOK_DIR / "users" / str(users["scientist"].pk) / "projects" / str(project.pk)
    shared = settings.STUDIO_NOTEBOOK_DIR / "projects" / str(project.pk) / "shared"
    for folder in (own, shared):
        folder.mkdir(parents=True)
    (own / "mine.py").write_text("print('mine')\n")
    (shared / "team.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
    )
    (own / "shared").symlink_to(shared, target_is_directory=True)
    (tmp_path / "outside.py").write_text("print('secret')\n")
    other = (
        settings.STUDIO_NOTEBOOK_DIR / "users" / str(users["maintainer"].pk) / "projects" / str(project.pk)
    )
    other.mkdir(parents=True)
    (other / "theirs.py").write_text("print('theirs')\n")
    return project, users


@pytest.mark.parametrize(
    ("path", "kind"), [("mine.py", "script"), ("shared/team.ipynb", "notebook")], ids=["own", "shared"]
)
def test_a_file_of_the_notebook_workspace_runs_as_a_job(
    workspace, path, kind, django_capture_on_commit_callbacks
):
    project, users = workspace

    with django_capture_on_commit_callbacks(execute=False):
        response = browser_for(users["scientist"]).post(
            url(project), {"mode": "script", "workspace_path": path}
        )

    assert response.status_code == 302
    job = TrainingJob.objects.get(project=project)
    assert job.spec["kind"] == kind
    assert job.run.artifacts.get().path == f"code/{path.rsplit('/', 1)[-1]}"


@pytest.mark.parametrize(
    "path",
    [
        "../../../../outside.py",
        "/etc/passwd",
        "nothing.py",
        "../../../{maintainer}/projects/{project}/theirs.py",
    ],
)
def test_a_path_outside_the_callers_workspace_is_refused(workspace, path):
    project, users = workspace
    path = path.replace("{maintainer}", str(users["maintainer"].pk)).replace("{project}", str(project.pk))
    client = APIClient()
    client.force_authenticate(users["scientist"])

    response = client.post(
        f"/api/v1/projects/{project.pk}/training-jobs/script", {"workspace_path": path}, format="json"
    )

    assert response.status_code in (400, 404)
    assert "workspace_path" in response.json()["error"]["message"]
    assert not TrainingJob.objects.filter(project=project).exists()
