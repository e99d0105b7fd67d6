"""Reads: chart histories (downsampled server-side, spikes kept), comparisons, experiments."""

import math
import random

import pytest

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.errors import ApplicationError, NotFound
from studio.projects.permissions import Role
from training import selectors, tracking


@pytest.fixture
def user(db):
    return UserFactory(username="reader")


@pytest.fixture
def project(user):
    project = ProjectFactory(name="Charts")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return project


@pytest.fixture
def run(project, user):
    experiment = tracking.experiment_get_or_create(user=user, project=project, name="curves")
    return tracking.run_create(user=user, project=project, experiment=experiment)


def log(user, run, key, values, first_step=0):
    batch = [{"key": key, "value": value, "step": first_step + i} for i, value in enumerate(values)]
    for start in range(0, len(batch), 10_000):
        tracking.run_log_metrics(user=user, run=run, metrics=batch[start : start + 10_000])


def test_a_short_history_comes_back_exactly(user, run):
    log(user, run, "loss", [3.0, 2.0, "NaN", 1.0])
    history = selectors.metric_history(run=run, key="loss", max_points=10)
    assert history["downsampled"] is False
    assert history["total_points"] == 4
    assert history["steps"] == [0, 1, 2, 3]
    assert history["values"] == [3.0, 2.0, None, 1.0]
    assert len(history["timestamps"]) == 4


def test_a_long_history_keeps_every_buckets_min_and_max_so_spikes_survive(user, run):
    # given: 30k noisy points of a falling curve with one spike up and one spike down
    rng = random.Random(7)
    values = [1 / (1 + step / 1000) + rng.uniform(-0.01, 0.01) for step in range(30_000)]
    values[12_345] = 50.0
    values[23_456] = -50.0
    log(user, run, "loss", values)

    # when
    history = selectors.metric_history(run=run, key="loss", max_points=500)

    # then
    assert history["downsampled"] is True
    assert history["total_points"] == 30_000
    assert len(history["steps"]) <= 500
    assert history["steps"] == sorted(history["steps"])
    assert max(history["values"]) == 50.0
    assert min(history["values"]) == -50.0
    spike = history["values"].index(50.0)
    assert abs(history["steps"][spike] - 12_345) <= history["bucket_steps"]
    # the curve falls, so each bucket's maximum comes before its minimum (no saw-tooth)
    assert history["values"][0] > history["values"][1]
    assert math.isclose(history["values"][0], max(values[: history["bucket_steps"]]))


def test_history_errors(user, run):
    log(user, run, "loss", [1.0])
    with pytest.raises(NotFound, match="no metric 'acc'"):
        selectors.metric_history(run=run, key="acc")
    with pytest.raises(ApplicationError, match="max_points: between 10 and 10000"):
        selectors.metric_history(run=run, key="loss", max_points=5)


def test_compare_marks_what_differs(project, user, run):
    # given
    experiment = selectors.experiment_get(project=project, name="curves")
    tracking.run_log_params(user=user, run=run, params={"lr": 0.01, "seed": 1})
    other = tracking.run_create(
        user=user, project=project, experiment=experiment, params={"lr": 0.1, "seed": 1}, tags={"t": "x"}
    )
    log(user, run, "acc", [0.5, 0.9])
    log(user, other, "acc", [0.9])

    # when
    comparison = selectors.runs_compare(project=project, run_ids=[other.pk, run.pk])

    # then
    assert [item.pk for item in comparison["runs"]] == [other.pk, run.pk]
    params = {row["key"]: row for row in comparison["params"]}
    assert params["lr"] == {"key": "lr", "values": {other.pk: "0.1", run.pk: "0.01"}, "differs": True}
    assert params["seed"]["differs"] is False
    assert comparison["metrics"] == [{"key": "acc", "values": {other.pk: 0.9, run.pk: 0.9}, "differs": False}]
    assert comparison["tags"] == [{"key": "t", "values": {other.pk: "x", run.pk: None}, "differs": True}]


def test_compare_refuses_runs_of_other_projects(project, user, run):
    foreign_project = ProjectFactory(name="Foreign")
    MembershipFactory(project=foreign_project, user=user, role=Role.SCIENTIST)
    experiment = tracking.experiment_get_or_create(user=user, project=foreign_project, name="x")
    foreign = tracking.run_create(user=user, project=foreign_project, experiment=experiment)
    with pytest.raises(NotFound, match=f"No run {foreign.pk} in this project"):
        selectors.runs_compare(project=project, run_ids=[run.pk, foreign.pk])


def test_experiments_count_their_runs(project, user, run):
    experiment = selectors.experiment_by_reference(project=project, reference="curves")
    assert experiment.run_count == 1
    assert selectors.experiment_by_reference(project=project, reference=str(experiment.pk)).name == "curves"
    with pytest.raises(NotFound):
        selectors.experiment_by_reference(project=project, reference="nope")
