"""The debugger's rules on crafted histories, and the service that stores their findings per run."""

import math

import pytest

from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from training import insights, tracking
from training.job_models import TrainingJob
from training.models import RunInsight, RunStatus


def series(values, start=1):
    return [(start + index, value) for index, value in enumerate(values)]


# --- loss not decreasing -------------------------------------------------------------------------


def test_a_flat_loss_over_the_window_is_flagged():
    loss = series([1.0, 0.8, 0.7, 0.7, 0.71, 0.7, 0.702, 0.705])

    finding = insights.loss_not_decreasing(loss, window=5)

    assert finding is not None
    assert finding.rule == "loss_not_decreasing"
    assert finding.step == 8
    assert "last 5 epochs" in finding.message


def test_a_falling_loss_is_not_flagged():
    loss = series([1.0, 0.8, 0.7, 0.65, 0.6, 0.58, 0.57, 0.56])

    assert insights.loss_not_decreasing(loss, window=5) is None


def test_too_few_epochs_say_nothing_about_a_plateau():
    assert insights.loss_not_decreasing(series([0.7] * 5), window=5) is None


# --- overfitting ---------------------------------------------------------------------------------


def test_validation_rising_while_training_falls_is_overfitting():
    train = series([1.0, 0.8, 0.6, 0.5, 0.4, 0.3])
    validation = series([1.0, 0.85, 0.7, 0.72, 0.76, 0.8])

    finding = insights.overfitting(train, validation, window=3)

    assert finding is not None
    assert finding.step == 6
    assert "0.7 to 0.8" in finding.message


def test_both_losses_falling_is_not_overfitting():
    train = series([1.0, 0.8, 0.6, 0.5, 0.4, 0.3])
    validation = series([1.0, 0.85, 0.7, 0.65, 0.6, 0.58])

    assert insights.overfitting(train, validation, window=3) is None


def test_both_losses_rising_is_not_overfitting():
    train = series([1.0, 0.8, 0.6, 0.7, 0.8, 0.9])
    validation = series([1.0, 0.85, 0.7, 0.72, 0.76, 0.8])

    assert insights.overfitting(train, validation, window=3) is None


# --- gradients -----------------------------------------------------------------------------------


def test_a_layer_with_a_tiny_gradient_norm_is_vanishing():
    norms = {"layers.0": series([1e-3, 1e-6, 1e-9]), "layers.2": series([0.5, 0.4, 0.3])}

    finding = insights.vanishing_gradients(norms)

    assert finding is not None
    assert "layers.0" in finding.message
    assert "layers.2" not in finding.message
    assert finding.step == 3


def test_healthy_gradient_norms_raise_nothing():
    norms = {"layers.0": series([0.9, 0.5, 0.3]), "layers.2": series([0.5, 0.4, 0.3])}

    assert insights.vanishing_gradients(norms) is None
    assert insights.exploding_gradients(norms) is None


def test_a_huge_or_nan_gradient_norm_is_exploding():
    norms = {"layers.0": series([1.0, 50.0, 5e4]), "layers.2": series([0.5, None]), "out": series([0.1])}

    finding = insights.exploding_gradients(norms)

    assert finding is not None
    assert finding.severity == "critical"
    assert "layers.0 (5e+04)" in finding.message
    assert "layers.2 (NaN)" in finding.message
    assert "out" not in finding.message


def test_only_the_latest_norm_counts():
    norms = {"layers.0": series([5e4, 2.0, 1.0])}

    assert insights.exploding_gradients(norms) is None


# --- non-finite loss -----------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "shown"), [(None, "NaN"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_a_nan_or_infinite_loss_is_critical(bad, shown):
    finding = insights.non_finite_loss({"train_loss": series([0.9, 0.8, bad, 0.7])})

    assert finding is not None
    assert finding.severity == "critical"
    assert finding.step == 3
    assert f"train_loss became {shown} at step 3" in finding.message


def test_finite_losses_raise_nothing():
    assert insights.non_finite_loss({"train_loss": series([0.9, 0.8]), "val_loss": series([1.0])}) is None


# --- GPU utilisation -----------------------------------------------------------------------------


def gpu_samples(values, every_s=2):
    return [(index * every_s, value) for index, value in enumerate(values)]


def test_a_sustained_low_gpu_utilisation_is_flagged():
    finding = insights.low_gpu_utilization({"system/gpu0_utilization": gpu_samples([12.0] * 40)})

    assert finding is not None
    assert "GPU 0 at 12 %" in finding.message
    assert finding.step == 78


def test_a_busy_gpu_is_not_flagged():
    assert insights.low_gpu_utilization({"system/gpu0_utilization": gpu_samples([85.0] * 40)}) is None


def test_a_short_dip_at_the_start_is_not_sustained():
    assert insights.low_gpu_utilization({"system/gpu0_utilization": gpu_samples([5.0] * 8)}) is None


def test_only_the_last_minute_counts():
    samples = gpu_samples([5.0] * 40 + [90.0] * 40)

    assert insights.low_gpu_utilization({"system/gpu0_utilization": samples}) is None


def test_without_gpu_metrics_there_is_no_gpu_rule():
    histories = {"train_loss": series([0.9, 0.8, 0.7]), "system/cpu_percent": gpu_samples([5.0] * 40)}

    assert [finding.rule for finding in insights.evaluate(histories)] == []


def test_evaluate_names_every_rule_that_fires():
    histories = {
        "train_loss": series([1.0, 0.8, 0.6, 0.5, 0.4, 0.3]),
        "val_loss": series([1.0, 0.85, 0.7, 0.72, 0.76, 0.8]),
        "debug/grad_norm/layers.0": series([0.5, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9]),
    }

    assert sorted(finding.rule for finding in insights.evaluate(histories)) == [
        "overfitting",
        "vanishing_gradients",
    ]


# --- the service ---------------------------------------------------------------------------------


@pytest.fixture
def scientist(db):
    project = ProjectFactory(name="Insights")
    user = UserFactory(username="insightful")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return user


@pytest.fixture
def run(scientist):
    project = scientist.memberships.get().project
    experiment = tracking.experiment_get_or_create(user=scientist, project=project, name="debug")
    return tracking.run_create(user=scientist, project=project, experiment=experiment)


def log(user, run, key, values, start=1):
    tracking.run_log_metrics(
        user=user,
        run=run,
        metrics=[{"key": key, "value": value, "step": step} for step, value in series(values, start)],
    )


def test_the_service_stores_one_row_per_rule_and_updates_it_in_place(scientist, run):
    # given: a loss that stopped falling
    log(scientist, run, "train_loss", [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7])

    # when
    first = insights.run_insights_evaluate(run=run)
    log(scientist, run, "train_loss", [0.7], start=9)
    second = insights.run_insights_evaluate(run=run)

    # then
    assert [insight.rule for insight in first] == ["loss_not_decreasing"]
    assert RunInsight.objects.filter(run=run).count() == 1
    assert second[0].pk == first[0].pk
    assert RunInsight.objects.get(run=run).step == 9


def test_an_insight_goes_when_its_rule_no_longer_fires(scientist, run):
    log(scientist, run, "train_loss", [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7])
    insights.run_insights_evaluate(run=run)

    log(scientist, run, "train_loss", [0.5], start=9)
    remaining = insights.run_insights_evaluate(run=run)

    assert remaining == []
    assert not RunInsight.objects.filter(run=run).exists()


def test_a_change_is_published_to_the_project(
    scientist, run, django_capture_on_commit_callbacks, monkeypatch
):
    published = []
    monkeypatch.setattr(insights.events, "publish", lambda **event: published.append(event))
    log(scientist, run, "train_loss", [0.9, float("nan")])

    with django_capture_on_commit_callbacks(execute=True):
        insights.run_insights_evaluate(run=run)
    with django_capture_on_commit_callbacks(execute=True):
        insights.run_insights_evaluate(run=run)  # nothing changed: no second event

    assert len(published) == 1
    assert published[0]["kind"] == "run_insights"
    assert published[0]["payload"]["run_id"] == run.pk
    assert [item["rule"] for item in published[0]["payload"]["insights"]] == ["non_finite_loss"]


def test_an_sdk_run_that_ends_gets_its_insights(scientist, run, django_capture_on_commit_callbacks):
    # given: a notebook logged a NaN loss (the SDK sends it as the string "NaN")
    tracking.run_log_metrics(
        user=scientist,
        run=run,
        metrics=[{"key": "loss", "value": 0.5, "step": 1}, {"key": "loss", "value": "NaN", "step": 2}],
    )

    # when
    with django_capture_on_commit_callbacks(execute=True):
        tracking.run_update_status(user=scientist, run=run, status=RunStatus.FAILED)

    # then
    insight = RunInsight.objects.get(run=run)
    assert insight.rule == "non_finite_loss"
    assert insight.step == 2
    assert "loss became NaN at step 2" in insight.message


def test_a_job_flushing_an_epoch_posts_its_insights(scientist, run, settings, tmp_path):
    from training.runner import JobContext

    settings.STUDIO_DATA_DIR = tmp_path
    job = TrainingJob.objects.create(
        project=run.project,
        run=run,
        created_by=scientist,
        spec={"trainer": "tabular_classification", "hyperparameters": {}},
    )
    context = JobContext(job, device="cpu", rank=0)

    # when: the trainer logs an epoch whose gradients exploded, and the epoch is flushed
    context.log_metrics({"train_loss": 0.9, "learning_rate": 0.1}, step=1)
    context.log_debug("gradient_norms", {"layers.0": 4.2e5, "layers.2": 0.3}, step=1)
    context.flush()

    # then
    insight = RunInsight.objects.get(run=run)
    assert insight.rule == "exploding_gradients"
    assert "layers.0" in insight.message
    assert insight.step == 1


def test_a_diverged_job_posts_the_non_finite_loss_insight(scientist, run, settings, tmp_path):
    from training.runner import JobContext
    from training.trainers.base import TrainingDiverged

    settings.STUDIO_DATA_DIR = tmp_path
    job = TrainingJob.objects.create(
        project=run.project,
        run=run,
        created_by=scientist,
        spec={"trainer": "tabular_classification", "hyperparameters": {}},
    )
    context = JobContext(job, device="cpu", rank=0)
    context.log_metrics({"train_loss": 0.9}, step=1)
    context.flush()

    # when: epoch 2 diverged, and the runner records the failure before its final flush
    context.record_failure(TrainingDiverged("training diverged", epoch=2, batch=5))
    context.flush()

    # then
    insight = RunInsight.objects.get(run=run)
    assert insight.rule == "non_finite_loss"
    assert insight.severity == "critical"
    assert insight.step == 2
    assert "train_loss became NaN at step 2" in insight.message
