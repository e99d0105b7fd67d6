"""The debugger's rules: findings about a run read from its metric histories, stored as RunInsight rows.

The rules are pure functions over histories (lists of (step, value) in step order, value None for NaN),
so each is tested with crafted series. `run_insights_evaluate` reads a run's histories, applies every
rule and keeps one row per (run, rule): a rule that fires again updates its row, a rule that no longer
fires (the loss started to fall again) loses its row. It runs when a job flushes an epoch's metrics
(training/runner.py JobContext.flush) and when an SDK run reaches a terminal status (tracking).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from studio.projects import events
from training.models import InsightSeverity, Metric, Run, RunInsight

Series = Sequence[tuple[int, float | None]]

# Epoch-level rules look at the last few epochs: 5 flat epochs is longer than the noise of a small
# validation set, and short enough to say so while a 20-epoch job still runs.
LOSS_PLATEAU_EPOCHS = 5
# "Not decreasing": the best loss of the window is less than 0.1 % below the best before it.
LOSS_MIN_RELATIVE_IMPROVEMENT = 0.001
# Overfitting: over the last 3 epochs the validation loss rose by more than 1 % of its value while
# the training loss fell; one noisy epoch rises less than that on the built-in trainers' data.
OVERFIT_WINDOW_EPOCHS = 3
OVERFIT_MIN_RELATIVE_RISE = 0.01
# Gradient norms (per layer, the mean L2 norm over an epoch's batches): below 1e-7 a float32 update
# of lr × grad is lost in the weights' rounding; above 1e3 one step moves the weights further than
# any sane initialisation scale (the usual clip_grad_norm_ thresholds are 1 to 10).
VANISHING_GRADIENT_NORM = 1e-7
EXPLODING_GRADIENT_NORM = 1e3
# GPU utilisation is sampled every ~2 s (training/jobs.py HEARTBEAT_S) with step = seconds since the
# start; a mean under 30 % for a minute means the input pipeline, not the GPU, sets the pace.
LOW_GPU_UTILIZATION_PERCENT = 30.0
LOW_GPU_WINDOW_S = 60
LOW_GPU_MIN_SAMPLES = 10
# A rule reads at most this many of the latest points of a key: an SDK run may log 100k losses.
RULE_HISTORY_POINTS = 5000

TRAIN_LOSS_KEYS = ("train_loss", "loss")
VALIDATION_LOSS_KEYS = ("val_loss", "validation_loss")
GRADIENT_PREFIX = "debug/grad_norm/"
GPU_UTILIZATION_KEY = re.compile(r"^system/gpu(\d+)_utilization$")
SEVERITY_ORDER = {InsightSeverity.CRITICAL: 0, InsightSeverity.WARNING: 1, InsightSeverity.INFO: 2}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    step: int | None


def _is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _finite(series: Series) -> list[tuple[int, float]]:
    return [(step, value) for step, value in series if _is_finite(value)]


# --- rules ---------------------------------------------------------------------------------------


def loss_not_decreasing(
    loss: Series, *, key: str = "train_loss", window: int = LOSS_PLATEAU_EPOCHS
) -> Finding | None:
    points = _finite(loss)
    if len(points) <= window:
        return None
    before, recent = points[:-window], points[-window:]
    best_before = min(value for _step, value in before)
    best_recent = min(value for _step, value in recent)
    if best_recent < best_before - abs(best_before) * LOSS_MIN_RELATIVE_IMPROVEMENT:
        return None
    return Finding(
        rule="loss_not_decreasing",
        severity=InsightSeverity.WARNING,
        message=(
            f"{key} has not decreased over the last {window} epochs (best {best_recent:.4g}, "
            f"before {best_before:.4g}): try a higher or a scheduled learning rate, or check the labels."
        ),
        step=recent[-1][0],
    )


def overfitting(
    train_loss: Series, validation_loss: Series, *, window: int = OVERFIT_WINDOW_EPOCHS
) -> Finding | None:
    train = dict(_finite(train_loss))
    validation = dict(_finite(validation_loss))
    steps = sorted(set(train) & set(validation))
    if len(steps) <= window:
        return None
    first, last = steps[-window - 1], steps[-1]
    rise = validation[last] - validation[first]
    if rise <= abs(validation[first]) * OVERFIT_MIN_RELATIVE_RISE or train[last] >= train[first]:
        return None
    return Finding(
        rule="overfitting",
        severity=InsightSeverity.WARNING,
        message=(
            f"Overfitting: the validation loss rose from {validation[first]:.4g} to {validation[last]:.4g} "
            f"over the last {window} epochs while the training loss fell from {train[first]:.4g} to "
            f"{train[last]:.4g}: try early stopping, weight decay or more data."
        ),
        step=last,
    )


def _latest(series: Series) -> tuple[int, float | None] | None:
    return series[-1] if series else None


def vanishing_gradients(gradient_norms: dict[str, Series]) -> Finding | None:
    """Fire when a layer's latest gradient norm is below VANISHING_GRADIENT_NORM."""
    layers, step = [], None
    for layer, series in sorted(gradient_norms.items()):
        latest = _latest(series)
        if latest is not None and _is_finite(latest[1]) and abs(latest[1]) < VANISHING_GRADIENT_NORM:
            layers.append(f"{layer} ({latest[1]:.2g})")
            step = latest[0] if step is None else max(step, latest[0])
    if not layers:
        return None
    return Finding(
        rule="vanishing_gradients",
        severity=InsightSeverity.WARNING,
        message=(
            f"Vanishing gradients: the gradient norm of {', '.join(layers)} is below "
            f"{VANISHING_GRADIENT_NORM:g}; these layers barely learn (try another activation, "
            "normalisation or a higher learning rate)."
        ),
        step=step,
    )


def exploding_gradients(gradient_norms: dict[str, Series]) -> Finding | None:
    """Fire when a layer's latest gradient norm is above EXPLODING_GRADIENT_NORM or not finite."""
    layers, step = [], None
    for layer, series in sorted(gradient_norms.items()):
        latest = _latest(series)
        if latest is None:
            continue
        value = latest[1]
        if not _is_finite(value) or abs(value) > EXPLODING_GRADIENT_NORM:
            layers.append(f"{layer} ({'NaN' if value is None else f'{value:.3g}'})")
            step = latest[0] if step is None else max(step, latest[0])
    if not layers:
        return None
    return Finding(
        rule="exploding_gradients",
        severity=InsightSeverity.CRITICAL,
        message=(
            f"Exploding gradients: the gradient norm of {', '.join(layers)} is above "
            f"{EXPLODING_GRADIENT_NORM:g}; try a lower learning rate or gradient clipping."
        ),
        step=step,
    )


def non_finite_loss(losses: dict[str, Series]) -> Finding | None:
    """Fire at the first NaN or infinite value of any loss series (the job stops there)."""
    first: tuple[int, str, float | None] | None = None
    for key, series in sorted(losses.items()):
        for step, value in series:
            if not _is_finite(value):
                if first is None or step < first[0]:
                    first = (step, key, value)
                break
    if first is None:
        return None
    step, key, value = first
    shown = "NaN" if value is None or value != value else ("inf" if value > 0 else "-inf")
    return Finding(
        rule="non_finite_loss",
        severity=InsightSeverity.CRITICAL,
        message=(
            f"{key} became {shown} at step {step}: training cannot recover from it, so it stopped. "
            "Try a lower learning rate, check the inputs for NaN, or normalise the features."
        ),
        step=step,
    )


def low_gpu_utilization(
    gpu_utilization: dict[str, Series], *, window_s: int = LOW_GPU_WINDOW_S
) -> Finding | None:
    """Fire when a GPU's mean utilisation over its last `window_s` seconds of samples is low."""
    low = []
    step = None
    for key, series in sorted(gpu_utilization.items()):
        points = _finite(series)
        if not points:
            continue
        end = points[-1][0]
        recent = [value for sample_step, value in points if sample_step > end - window_s]
        if len(recent) < LOW_GPU_MIN_SAMPLES or points[-1][0] - points[0][0] < window_s - 1:
            continue  # not sustained yet: a job spends its first seconds loading data
        mean = sum(recent) / len(recent)
        if mean < LOW_GPU_UTILIZATION_PERCENT:
            match = GPU_UTILIZATION_KEY.match(key)
            low.append(f"GPU {match.group(1) if match else key} at {mean:.0f} %")
            step = end if step is None else max(step, end)
    if not low:
        return None
    return Finding(
        rule="low_gpu_utilization",
        severity=InsightSeverity.INFO,
        message=(
            f"Low GPU utilisation over the last {window_s} s: {', '.join(low)} (under "
            f"{LOW_GPU_UTILIZATION_PERCENT:.0f} %). The input pipeline is the bottleneck: try a larger "
            "batch size or more data loader workers."
        ),
        step=step,
    )


def evaluate(histories: dict[str, Series]) -> list[Finding]:
    """Apply every rule to a run's histories (metric key → points in step order)."""
    train_key = next((key for key in TRAIN_LOSS_KEYS if key in histories), None)
    validation_key = next((key for key in VALIDATION_LOSS_KEYS if key in histories), None)
    gradients = {
        key.removeprefix(GRADIENT_PREFIX): series
        for key, series in histories.items()
        if key.startswith(GRADIENT_PREFIX)
    }
    losses = {key: series for key, series in histories.items() if _is_loss_key(key)}
    gpu = {key: series for key, series in histories.items() if GPU_UTILIZATION_KEY.match(key)}
    findings = [
        non_finite_loss(losses),
        loss_not_decreasing(histories[train_key], key=train_key) if train_key else None,
        overfitting(histories[train_key], histories[validation_key])
        if train_key and validation_key
        else None,
        vanishing_gradients(gradients),
        exploding_gradients(gradients),
        low_gpu_utilization(gpu) if gpu else None,
    ]
    return [finding for finding in findings if finding is not None]


def _is_loss_key(key: str) -> bool:
    return "/" not in key and (key == "loss" or key.endswith("_loss"))


def _relevant(key: str) -> bool:
    return _is_loss_key(key) or key.startswith(GRADIENT_PREFIX) or bool(GPU_UTILIZATION_KEY.match(key))


# --- service -------------------------------------------------------------------------------------


def run_histories(*, run: Run) -> dict[str, list[tuple[int, float | None]]]:
    """The latest points (at most RULE_HISTORY_POINTS per key) of the keys the rules read."""
    keys = [key for key in run.latest_metrics.values_list("key", flat=True) if _relevant(key)]
    histories = {}
    for key in keys:
        rows = list(
            Metric.objects.filter(run=run, key=key)
            .order_by("-step", "-timestamp_ms", "-id")
            .values_list("step", "value")[:RULE_HISTORY_POINTS]
        )
        rows.reverse()
        histories[key] = rows
    return histories


def insight_payload(insight: RunInsight) -> dict:
    return {
        "rule": insight.rule,
        "severity": insight.severity,
        "message": insight.message,
        "step": insight.step,
        "created_at": insight.created_at.isoformat(),
    }


def sorted_insights(insights) -> list[RunInsight]:
    return sorted(insights, key=lambda item: (SEVERITY_ORDER.get(item.severity, 9), item.rule))


@transaction.atomic
def run_insights_evaluate(*, run: Run) -> list[RunInsight]:
    """Apply the rules to the run's metrics and store the findings; tell the run page when they change."""
    # The run's row lock serializes two evaluations of one run (an epoch's flush and the end), so
    # neither inserts a rule's row the other is inserting.
    Run.objects.select_for_update().filter(pk=run.pk).first()
    findings = {finding.rule: finding for finding in evaluate(run_histories(run=run))}
    stored = {insight.rule: insight for insight in RunInsight.objects.filter(run=run)}
    changed = False
    gone = [rule for rule in stored if rule not in findings]
    if gone:
        RunInsight.objects.filter(run=run, rule__in=gone).delete()
        changed = True
    current = []
    for rule, finding in findings.items():
        insight = stored.get(rule)
        if insight is None:
            insight = RunInsight(run=run, rule=rule)
        elif (insight.severity, insight.message, insight.step) == (
            finding.severity,
            finding.message,
            finding.step,
        ):
            current.append(insight)
            continue
        insight.severity, insight.message, insight.step = finding.severity, finding.message, finding.step
        insight.full_clean()
        insight.save()
        current.append(insight)
        changed = True
    current = sorted_insights(current)
    if changed:
        payload = {"run_id": run.pk, "insights": [insight_payload(insight) for insight in current]}
        project_id = run.project_id
        transaction.on_commit(
            lambda: events.publish(project_id=project_id, kind="run_insights", payload=payload)
        )
    return current
