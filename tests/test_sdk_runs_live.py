"""The SDK's experiment tracking against a real Studio web process (uvicorn) and the real test database."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from studio.accounts.services import api_token_create
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from studio_sdk import Client, ConflictError, Run, StudioConnectionError, ValidationError
from training.models import LatestMetric, Metric
from training.models import Run as RunRow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(transactional_db):
    return ProjectFactory(name="Tracking team")


@pytest.fixture
def token(project):
    user = UserFactory(username="sdk-tracker")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    _token, raw = api_token_create(user=user, name="sdk runs test")
    return raw


@pytest.fixture
def client(token, project, studio_server):
    with Client(url=studio_server, token=token, project=project.pk) as client:
        yield client


@pytest.mark.integration
def test_fifty_thousand_points_logged_in_a_run_context_all_arrive(client):
    # when: 5 metrics × 10,000 steps, far faster than one request per point could go
    with client.runs.start(experiment="churn", name="big", params={"lr": 0.01}, tags={"team": "a"}) as run:
        for step in range(10_000):
            run.log_metrics({f"m{index}": step * (index + 1) for index in range(5)}, step=step)

    # then: every point is stored, in order, and the run finished
    row = RunRow.objects.get(pk=run.id)
    assert row.status == "finished"
    assert run.status == "finished"
    assert Metric.objects.filter(run=row).count() == 50_000
    latest = {
        item.key: (item.step, item.value, item.point_count) for item in LatestMetric.objects.filter(run=row)
    }
    assert latest == {f"m{index}": (9_999, 9_999.0 * (index + 1), 10_000) for index in range(5)}
    steps = list(Metric.objects.filter(run=row, key="m0").order_by("step").values_list("step", flat=True))
    assert steps == list(range(10_000))
    assert run.unsent_points == 0


@pytest.mark.integration
def test_an_exception_in_the_block_fails_the_run_and_keeps_its_points(client):
    started = []

    def train():
        with client.runs.start(experiment="churn") as run:
            started.append(run)
            for step in range(100):
                run.log_metric("loss", 1 / (step + 1))  # steps 0, 1, 2, … by themselves
            raise RuntimeError("loss diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    row = RunRow.objects.get(pk=started[0].id)
    assert row.status == "failed"
    assert row.ended_at is not None
    assert list(Metric.objects.filter(run=row).order_by("step").values_list("step", flat=True)) == list(
        range(100)
    )


@pytest.mark.integration
def test_list_returns_a_frame_with_params_metrics_and_tags_columns(client):
    # given
    for name, accuracy, lr, team in (("a", 0.95, 0.01, "x"), ("b", 0.80, 0.1, "y"), ("c", 0.91, 0.001, "x")):
        with client.runs.start(experiment="churn", name=name, params={"lr": lr}, tags={"team": team}) as run:
            run.log_metric("val_accuracy", accuracy, step=1)
    with client.runs.start(experiment="fraud", name="elsewhere") as run:
        run.log_metric("val_accuracy", 0.99)

    # when
    frame = client.runs.list(
        experiment="churn", filter="metrics.val_accuracy > 0.9 and tags.team = 'x'", order_by="params.lr desc"
    )

    # then
    assert list(frame["run_name"]) == ["a", "c"]
    assert list(frame["metrics.val_accuracy"]) == [0.95, 0.91]
    assert list(frame["params.lr"]) == ["0.01", "0.001"]
    assert list(frame["tags.team"]) == ["x", "x"]
    assert list(frame["status"]) == ["finished", "finished"]
    assert str(frame["start_time"].dtype) == "datetime64[ns, UTC]"
    assert frame.columns[:3].tolist() == ["run_id", "run_name", "experiment_id"]
    assert len(client.runs.list()) == 4
    assert len(client.runs.list(max_results=2)) == 2
    empty = client.runs.list(filter="metrics.val_accuracy > 2")
    assert empty.empty
    assert "run_id" in empty.columns
    with pytest.raises(ValidationError, match="filter: unexpected character ';' at position 8"):
        client.runs.list(filter="name='a';")


@pytest.mark.integration
def test_history_artifacts_compare_and_immutable_params(client, tmp_path):
    # given
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00" * 1000)
    with client.runs.start(experiment="churn", params={"lr": 0.1}) as first:
        for step in range(30):
            first.log_metric("loss", 1 / (step + 1), step=step)
        first.log_metric("loss", float("nan"), step=30)
        first.log_artifact(weights, artifact_path="model")
        with pytest.raises(ConflictError, match="params cannot change once logged"):
            first.log_param("lr", 0.2)
    with client.runs.start(experiment="churn", params={"lr": 0.2}) as second:
        second.log_metric("loss", 0.5)

    # when
    history = first.metric_history("loss")
    stored = first.artifacts()
    copy = first.download_artifact("model/weights.bin", tmp_path / "copy.bin")
    comparison = client.runs.compare([first, second.id])

    # then
    assert list(history.columns) == ["step", "value", "timestamp"]
    assert list(history["step"]) == list(range(31))
    assert history["value"].iloc[0] == 1.0
    assert math.isnan(history["value"].iloc[-1])
    assert history.attrs["downsampled"] is False
    assert [(item["path"], item["size_bytes"]) for item in stored] == [("model/weights.bin", 1000)]
    assert copy.read_bytes() == weights.read_bytes()
    assert comparison.loc["params.lr", "differs"]
    assert comparison.loc["params.lr", str(first.id)] == "0.1"
    assert math.isnan(comparison.loc["metrics.loss", str(first.id)])
    fetched = client.runs.get(first.id)
    assert isinstance(fetched, Run)
    assert math.isnan(fetched.metrics["loss"])


@pytest.mark.integration
def test_points_survive_a_flaky_connection(client, monkeypatch):
    # given: the first two posts of metrics fail as if the network dropped
    with client.runs.start(experiment="churn") as run:
        run.log_metric("warmup", 1.0)
        run.flush()
        sender = run._sender
        real_request = sender._http.request
        failures = []

        def flaky(method, path, **kwargs):
            if len(failures) < 2:
                failures.append(path)
                raise StudioConnectionError("connection reset")
            return real_request(method, path, **kwargs)

        monkeypatch.setattr(sender._http, "request", flaky)
        monkeypatch.setattr("studio_sdk.runs.FIRST_RETRY_S", 0.01)
        # when
        for step in range(2_000):
            run.log_metric("loss", step, step=step)

    # then: retried, nothing lost, nothing twice
    assert len(failures) == 2
    assert Metric.objects.filter(run_id=run.id, key="loss").count() == 2_000


@pytest.mark.integration
def test_environment_alone_attaches_a_script_to_a_job_run(client, token, project, studio_server, tmp_path):
    # given: a run made by "a training job"
    job_run = client.runs.start(experiment="jobs", name="job-7")
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import studio_sdk

            run = studio_sdk.start_run(params={"epochs": 3})
            for step in range(1000):
                run.log_metric("loss", 1 / (step + 1))
            print("logged", run.id)
            # no flush, no end: the buffered points go out at exit, and the job owns the run's status
            """
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STUDIO_") and key != "DATABASE_URL"
    }
    env.update(
        STUDIO_URL=studio_server,
        STUDIO_TOKEN=token,
        STUDIO_PROJECT=str(project.pk),
        STUDIO_RUN_ID=str(job_run.id),
    )

    # when
    result = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"logged {job_run.id}"
    row = RunRow.objects.get(pk=job_run.id)
    assert row.status == "running"
    assert row.params == {"epochs": "3"}
    assert Metric.objects.filter(run=row).count() == 1000
    job_run.end("stopped")
    assert RunRow.objects.get(pk=job_run.id).status == "stopped"


@pytest.mark.integration
def test_bad_metric_input_fails_at_the_call_site(client):
    with client.runs.start(experiment="churn") as run:
        with pytest.raises(ValueError, match="metric key 'a;b'"):
            run.log_metric("a;b", 1)
        with pytest.raises(TypeError, match="not a number"):
            run.log_metric("ok", "high")
        with pytest.raises(TypeError, match="step must be an integer"):
            run.log_metric("ok", 1, step=1.5)
    assert isinstance(client.runs.list(), pd.DataFrame)
