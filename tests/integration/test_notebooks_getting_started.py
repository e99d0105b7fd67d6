"""The getting-started notebook runs top to bottom against a real Studio and worker, as a kernel of a
notebook server would run it: the client from the environment, a dataset upload, a tracked run, a job."""

import json
import uuid
from datetime import timedelta

import nbformat
import pytest
from django.utils import timezone
from nbclient import NotebookClient

from datasets.models import Dataset
from notebooks.getting_started import getting_started_notebook
from studio.accounts.services import api_token_create
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from training.job_models import TrainingJob
from training.models import Metric, Run

pytestmark = [pytest.mark.integration]


def test_the_getting_started_notebook_runs(
    transactional_db, studio_server, celery_worker_name, monkeypatch, tmp_path
):
    # given: the environment a notebook server gives its kernels
    project = ProjectFactory(name=f"Getting started {uuid.uuid4().hex[:6]}")
    user = UserFactory(username=f"starter-{uuid.uuid4().hex[:6]}")
    MembershipFactory(project=project, user=user, role="scientist")
    _token, raw = api_token_create(
        user=user, name="notebook", project=project, expires_at=timezone.now() + timedelta(hours=1)
    )
    monkeypatch.setenv("STUDIO_URL", studio_server)
    monkeypatch.setenv("STUDIO_TOKEN", raw)
    monkeypatch.setenv("STUDIO_PROJECT", str(project.pk))
    notebook = nbformat.reads(getting_started_notebook(), as_version=4)

    # when
    NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    # then: every cell ran without error, and the studio holds what it made
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert Dataset.objects.filter(project=project, name="iris").exists()
    run = Run.objects.get(experiment__project=project, experiment__name="getting-started", trainer="")
    assert run.status == "finished"
    assert list(
        Metric.objects.filter(run=run, key="val_accuracy").order_by("step").values_list("step", flat=True)
    ) == list(range(10))
    job = TrainingJob.objects.get(run__experiment__project=project)
    assert job.status == "finished", job.error
    assert "val_accuracy" in json.dumps(notebook.cells[-1].outputs[-1]["data"]["text/plain"])
