"""The tracking services: batches of metrics, latest values, params, tags, status changes, artifacts."""

import io
import math
from unittest import mock

import pytest

from datasets.services import dataset_version_delete
from datasets.tests.factories import DatasetFactory, make_version
from studio.audit.models import AuditEvent
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.errors import ApplicationError, NotFound, PermissionDenied
from studio.projects.permissions import Role
from studio.storage import artifact_storage
from training import tracking
from training.models import Artifact, LatestMetric, Metric, Run, RunParam, RunStatus, RunTag


@pytest.fixture
def project(db):
    return ProjectFactory(name="Tracking")


@pytest.fixture
def scientist(project):
    user = UserFactory(username="tracker")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return user


@pytest.fixture
def run(project, scientist):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    return tracking.run_create(user=scientist, project=project, experiment=experiment, params={"lr": 0.01})


def points(key, steps, value=lambda step: step / 10, timestamp=None):
    return [
        {"key": key, "value": value(step), "step": step, **({"timestamp": timestamp} if timestamp else {})}
        for step in steps
    ]


# --- experiments and runs ------------------------------------------------------------------------


def test_run_create_makes_a_running_named_run_and_audits_it(project, scientist):
    # when
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    again = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    run = tracking.run_create(
        user=scientist, project=project, experiment=experiment, params={"lr": 0.01, "layers": [64, 32]}
    )

    # then
    assert again.pk == experiment.pk
    assert run.status == RunStatus.RUNNING
    assert run.started_at is not None
    assert run.ended_at is None
    assert run.name == f"run-{run.pk}"
    assert run.params == {"lr": "0.01", "layers": "[64, 32]"}
    assert sorted(RunParam.objects.filter(run=run).values_list("key", "value", "value_number")) == [
        ("layers", "[64, 32]", None),
        ("lr", "0.01", 0.01),
    ]
    actions = list(AuditEvent.objects.filter(project=project).values_list("action", flat=True))
    assert sorted(actions) == ["experiment.create", "run.create"]


def test_a_viewer_may_not_create_runs_and_an_outsider_sees_nothing(project, scientist):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    viewer = UserFactory(username="watcher")
    MembershipFactory(project=project, user=viewer, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        tracking.run_create(user=viewer, project=project, experiment=experiment)
    with pytest.raises(NotFound):
        tracking.run_create(user=UserFactory(username="stranger"), project=project, experiment=experiment)


def test_runs_of_an_archived_project_are_read_only(project, scientist, run):
    project.is_archived = True
    project.save()
    with pytest.raises(ApplicationError) as caught:
        tracking.run_log_metrics(user=scientist, run=run, metrics=points("loss", [1]))
    assert caught.value.status_code == 409


def test_a_run_cannot_use_a_dataset_version_of_another_project(project, scientist):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    foreign = make_version(dataset=DatasetFactory(project=ProjectFactory(name="Other")))
    with pytest.raises(NotFound, match="dataset version"):
        tracking.run_create(user=scientist, project=project, experiment=experiment, dataset_version=foreign)


def test_a_dataset_version_used_by_a_run_cannot_be_deleted(project, scientist):
    # given
    owner = UserFactory(username="boss")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    version = make_version(dataset=DatasetFactory(project=project, name="customers"))
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="churn")
    run = tracking.run_create(user=scientist, project=project, experiment=experiment, dataset_version=version)

    # when / then
    with pytest.raises(ApplicationError, match=f"in use by run {run.name}") as caught:
        dataset_version_delete(user=owner, version=version)
    assert caught.value.status_code == 409


# --- metrics -------------------------------------------------------------------------------------


def test_a_batch_is_stored_whole_and_latest_metric_follows_the_highest_step(run, scientist):
    # when: the second batch holds a lower step than the first one's last
    tracking.run_log_metrics(user=scientist, run=run, metrics=points("loss", range(0, 100)))
    tracking.run_log_metrics(
        user=scientist,
        run=run,
        metrics=points("loss", [50, 150], value=lambda step: -step) + points("acc", [3, 1]),
    )

    # then
    assert Metric.objects.filter(run=run).count() == 104
    loss = LatestMetric.objects.get(run=run, key="loss")
    assert (loss.step, loss.value, loss.min_step, loss.point_count) == (150, -150.0, 0, 102)
    acc = LatestMetric.objects.get(run=run, key="acc")
    assert (acc.step, acc.value, acc.min_step, acc.point_count) == (3, 0.3, 1, 2)


def test_at_the_same_step_the_later_timestamp_is_the_latest(run, scientist):
    tracking.run_log_metrics(
        user=scientist,
        run=run,
        metrics=[
            {"key": "loss", "value": 2.0, "step": 5, "timestamp": 2_000},
            {"key": "loss", "value": 1.0, "step": 5, "timestamp": 1_000},
        ],
    )
    assert LatestMetric.objects.get(run=run, key="loss").value == 2.0


def test_nan_and_infinities_are_kept(run, scientist):
    tracking.run_log_metrics(
        user=scientist,
        run=run,
        metrics=[
            {"key": "loss", "value": "NaN", "step": 1},
            {"key": "loss", "value": "Infinity", "step": 2},
            {"key": "loss", "value": float("-inf"), "step": 3},
            {"key": "loss", "value": 0.5, "step": 4},
        ],
    )
    values = list(Metric.objects.filter(run=run).order_by("step").values_list("value", flat=True))
    assert values[0] is None  # NaN is stored as NULL on both databases
    assert values[1:] == [math.inf, -math.inf, 0.5]
    assert [tracking.json_number(value) for value in values] == [None, "Infinity", "-Infinity", 0.5]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ("nope", "metrics: expected a list"),
        ([{"value": 1}], r"metrics\[0\].key: a key must be a non-empty string"),
        ([{"key": "a;DROP TABLE", "value": 1}], r"metrics\[0\].key: 'a;DROP TABLE' may use only"),
        ([{"key": "x" * 251, "value": 1}], "at most 250 characters"),
        ([{"key": "a/../b", "value": 1}], "dot parts"),
        (
            [{"key": "ok", "value": 1}, {"key": "ok", "value": "high"}],
            r"metrics\[1\].value: expected a number",
        ),
        ([{"key": "ok", "value": True}], r"metrics\[0\].value: expected a number"),
        ([{"key": "ok", "value": 1, "step": 1.5}], r"metrics\[0\].step: expected an integer"),
        ([{"key": "ok", "value": 1, "timestamp": "now"}], r"metrics\[0\].timestamp: expected milliseconds"),
        ([{"key": "ok", "value": 1}] * 10_001, "at most 10000 points per batch"),
    ],
)
def test_bad_points_are_refused_with_the_point_named_and_nothing_stored(run, scientist, batch, message):
    with pytest.raises(ApplicationError, match=message):
        tracking.run_log_metrics(user=scientist, run=run, metrics=batch)
    assert not Metric.objects.filter(run=run).exists()
    assert not LatestMetric.objects.filter(run=run).exists()


def test_one_live_event_per_batch_carries_at_most_500_points_with_each_keys_last(
    run, scientist, django_capture_on_commit_callbacks
):
    # given
    batch = points("loss", range(3000)) + points("acc", range(3000))
    # when
    with (
        mock.patch("training.tracking.events.publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stored = tracking.run_log_metrics(user=scientist, run=run, metrics=batch)

    # then
    assert stored == 6000
    metric_events = [call.kwargs for call in publish.call_args_list if call.kwargs["kind"] == "run_metrics"]
    assert len(metric_events) == 1
    payload = metric_events[0]["payload"]
    assert payload["run_id"] == run.pk
    assert payload["count"] == 6000
    assert len(payload["points"]) <= 500
    last = {point["key"]: point["step"] for point in payload["points"]}
    assert last == {"loss": 2999, "acc": 2999}


def test_metric_batches_are_not_audited(run, scientist):
    before = AuditEvent.objects.count()
    tracking.run_log_metrics(user=scientist, run=run, metrics=points("loss", range(10)))
    assert AuditEvent.objects.count() == before


def test_truncating_after_a_checkpoint_drops_later_points_and_recomputes_the_latest(run, scientist):
    tracking.run_log_metrics(
        user=scientist, run=run, metrics=points("loss", range(10)) + points("acc", [8, 9])
    )
    removed = tracking.run_metrics_truncate(user=scientist, run=run, after_step=6)
    assert removed == 5
    loss = LatestMetric.objects.get(run=run, key="loss")
    assert (loss.step, loss.value, loss.point_count) == (6, 0.6, 7)
    assert not LatestMetric.objects.filter(run=run, key="acc").exists()


# --- params and tags -----------------------------------------------------------------------------


def test_params_are_immutable_but_logging_the_same_value_again_is_fine(run, scientist):
    tracking.run_log_params(user=scientist, run=run, params={"lr": "0.01", "batch_size": 32})
    with pytest.raises(
        ApplicationError, match=r"params.lr: params cannot change once logged; it is '0.01'"
    ) as e:
        tracking.run_log_params(user=scientist, run=run, params={"lr": 0.1, "new": "x"})
    assert e.value.status_code == 409
    run.refresh_from_db()
    assert run.params == {"lr": "0.01", "batch_size": "32"}
    assert not RunParam.objects.filter(run=run, key="new").exists()


def test_long_param_values_are_kept_whole_and_indexed_by_prefix(run, scientist):
    config = "x" * 5000
    tracking.run_log_params(user=scientist, run=run, params={"config": config})
    row = RunParam.objects.get(run=run, key="config")
    assert row.value == config
    assert row.value_prefix == config[:200]
    with pytest.raises(ApplicationError, match="at most 6000"):
        tracking.run_log_params(user=scientist, run=run, params={"huge": "y" * 6001})


def test_tags_merge_change_and_disappear_in_the_search_table_too(run, scientist):
    tracking.run_set_tags(user=scientist, run=run, tags={"team": "a", "stage": "dev"})
    tags = tracking.run_set_tags(user=scientist, run=run, tags={"team": "b", "stage": None})
    assert tags == {"team": "b"}
    assert list(RunTag.objects.filter(run=run).values_list("key", "value")) == [("team", "b")]


# --- status --------------------------------------------------------------------------------------


def test_finishing_sets_ended_at_audits_once_and_finished_is_final(run, scientist):
    # when
    finished = tracking.run_update_status(user=scientist, run=run, status=RunStatus.FINISHED)
    again = tracking.run_update_status(user=scientist, run=run, status=RunStatus.FINISHED)

    # then
    assert finished.ended_at is not None
    assert finished.duration_s >= 0
    assert again.ended_at == finished.ended_at
    assert AuditEvent.objects.filter(action="run.finish").count() == 1
    event = AuditEvent.objects.get(action="run.finish")
    assert event.data["status"] == "finished"
    assert event.data["from"] == "running"
    with pytest.raises(ApplicationError, match="a finished run cannot become running") as caught:
        tracking.run_update_status(user=scientist, run=run, status=RunStatus.RUNNING)
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["running", "lost", "running", "finished"], True),
        (["running", "stopped"], True),
        (["queued", "running", "failed"], True),
        (["queued", "finished"], False),
        (["running", "queued"], False),
        (["running", "failed", "finished"], False),
    ],
)
def test_status_transitions_are_guarded(project, scientist, path, allowed):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="jobs")
    run = tracking.run_create(user=scientist, project=project, experiment=experiment, status=path[0])
    for status in path[1:-1]:
        run = tracking.run_update_status(user=scientist, run=run, status=status)
    if allowed:
        run = tracking.run_update_status(user=scientist, run=run, status=path[-1])
        assert run.status == path[-1]
        assert run.started_at is not None
    else:
        with pytest.raises(ApplicationError, match="cannot become"):
            tracking.run_update_status(user=scientist, run=run, status=path[-1])


def test_a_lost_run_picked_up_again_is_running_without_an_end(project, scientist, run):
    tracking.run_update_status(user=None, run=run, status=RunStatus.LOST)  # Studio itself (a beat task)
    resumed = tracking.run_update_status(user=scientist, run=run, status=RunStatus.RUNNING)
    assert resumed.ended_at is None
    assert resumed.started_at == run.started_at


def test_a_queued_run_gets_its_start_when_it_starts(project, scientist):
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="jobs")
    run = tracking.run_create(user=scientist, project=project, experiment=experiment, status=RunStatus.QUEUED)
    assert run.started_at is None
    assert run.duration_s is None
    run = tracking.run_update_status(user=scientist, run=run, status=RunStatus.RUNNING)
    assert run.started_at is not None


# --- artifacts and deletion ----------------------------------------------------------------------


def test_artifacts_are_stored_under_the_run_and_replaced_at_the_same_path(run, scientist):
    # when
    first = tracking.artifact_upload(
        user=scientist, run=run, path="model/card.json", stream=io.BytesIO(b"{}")
    )
    second = tracking.artifact_upload(
        user=scientist, run=run, path="./model/card.json", stream=io.BytesIO(b'{"a": 1}')
    )

    # then
    assert first.pk == second.pk
    assert second.storage_name == f"projects/{run.project_id}/runs/{run.pk}/artifacts/model/card.json"
    assert second.size_bytes == 8
    with artifact_storage().open(second.storage_name) as handle:
        assert handle.read() == b'{"a": 1}'
    assert Artifact.objects.filter(run=run).count() == 1


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/%2e%2e/%2e%2e/b", ""])
def test_artifact_paths_cannot_leave_the_run(run, scientist, path):
    with pytest.raises(ApplicationError, match="path:"):
        tracking.artifact_upload(user=scientist, run=run, path=path, stream=io.BytesIO(b"x"))


def test_an_interrupted_artifact_upload_keeps_nothing(run, scientist):
    with pytest.raises(ApplicationError, match="interrupted"):
        tracking.artifact_upload(
            user=scientist, run=run, path="a.bin", stream=io.BytesIO(b"abc"), expected_bytes=10
        )
    assert not Artifact.objects.filter(run=run).exists()


def test_deleting_a_run_removes_its_points_and_files(run, scientist, django_capture_on_commit_callbacks):
    tracking.run_log_metrics(user=scientist, run=run, metrics=points("loss", range(50)))
    artifact = tracking.artifact_upload(user=scientist, run=run, path="m.bin", stream=io.BytesIO(b"weights"))
    with django_capture_on_commit_callbacks(execute=True):
        tracking.run_delete(user=scientist, run=run)
    assert not Run.objects.filter(pk=run.pk).exists()
    assert not Metric.objects.filter(run_id=run.pk).exists()
    assert not artifact_storage().exists(artifact.storage_name)
    assert AuditEvent.objects.filter(action="run.delete").count() == 1
