"""The run page's Debugger tab: fragments loaded into the tab (frontend/static/studio/training/debugger.js).

`run_debugger` renders the whole tab: the insights, the latest confusion matrix with an epoch slider,
and the per-epoch charts (gradient norms per layer, learning rate, train vs validation loss, system
metrics); `run_confusion_matrix` renders one epoch's matrix when the slider moves or a new epoch's
artifact arrives. The charts then grow from the project's live events in the browser.
"""

import json
import re

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studio.core.pages import page
from studio.errors import ApplicationError, NotFound
from training import selectors
from training.charts.debugger import (
    confusion_matrix_figure,
    gradient_norms_figure,
    learning_rate_figure,
    loss_figure,
    system_figure,
)
from training.insights import GRADIENT_PREFIX, TRAIN_LOSS_KEYS, VALIDATION_LOSS_KEYS

CHART_POINTS = 1000
LEARNING_RATE_KEYS = ("learning_rate", "lr")
CPU_PERCENT_KEY = "system/cpu_percent"
MEMORY_KEY = "system/memory_mb"
GPU_UTILIZATION = re.compile(r"^system/gpu\d+_utilization$")
GPU_MEMORY = re.compile(r"^system/gpu\d+_memory_mb$")


def _first_present(candidates: tuple[str, ...], keys: set[str]) -> str:
    return next((key for key in candidates if key in keys), candidates[0])


def _chart(chart_id: str, figure: dict, patterns: list[str], *, strip: str = "", log_y: bool = False) -> dict:
    """A chart of the tab; `patterns` (exact keys, or with `*`) name the metrics that extend it live."""
    return {
        "id": chart_id,
        "figure": figure,
        "patterns": json.dumps(patterns),
        "strip": strip,
        "log_y": log_y,
        "title": figure["layout"]["title"]["text"],
    }


def _charts(run) -> list[dict]:
    keys = set(selectors.run_metric_keys(run=run).values_list("key", flat=True))
    train_key = _first_present(TRAIN_LOSS_KEYS, keys)
    validation_key = _first_present(VALIDATION_LOSS_KEYS, keys)
    learning_rate_key = _first_present(LEARNING_RATE_KEYS, keys)
    gradient_keys = sorted(key for key in keys if key.startswith(GRADIENT_PREFIX))
    percent_keys = sorted(key for key in keys if key == CPU_PERCENT_KEY or GPU_UTILIZATION.match(key))
    memory_keys = sorted(key for key in keys if key == MEMORY_KEY or GPU_MEMORY.match(key))
    histories = selectors.metric_histories(
        run=run,
        keys=[train_key, validation_key, learning_rate_key, *gradient_keys, *percent_keys, *memory_keys],
        max_points=CHART_POINTS,
    )

    def pick(names):
        return {key: histories[key] for key in names if key in histories}

    return [
        _chart(
            "debugger-loss-chart",
            loss_figure(
                (train_key, histories.get(train_key)), (validation_key, histories.get(validation_key))
            ),
            [train_key, validation_key],
        ),
        _chart(
            "debugger-gradient-chart",
            gradient_norms_figure(pick(gradient_keys)),
            [GRADIENT_PREFIX + "*"],
            strip=GRADIENT_PREFIX,
            log_y=True,
        ),
        _chart(
            "debugger-learning-rate-chart",
            learning_rate_figure(histories.get(learning_rate_key), learning_rate_key),
            [learning_rate_key],
        ),
        _chart(
            "debugger-system-percent-chart",
            system_figure(pick(percent_keys), title="CPU and GPU utilisation", y_title="%"),
            [CPU_PERCENT_KEY, "system/gpu*_utilization"],
            strip="system/",
        ),
        _chart(
            "debugger-system-memory-chart",
            system_figure(pick(memory_keys), title="Memory: process RSS and GPU", y_title="MB"),
            [MEMORY_KEY, "system/gpu*_memory_mb"],
            strip="system/",
        ),
    ]


def _confusion_context(run, step: int | None) -> dict:
    context = {"confusion": None, "confusion_error": "", "confusion_steps": [], "confusion_status": 200}
    try:
        confusion = selectors.confusion_matrix_get(run=run, step=step)
    except NotFound as error:
        context["confusion_steps"] = selectors.confusion_matrix_steps(run=run)
        if step is not None:
            context["confusion_error"], context["confusion_status"] = error.message, 404
        return context
    except ApplicationError as error:
        context["confusion_steps"] = selectors.confusion_matrix_steps(run=run)
        context["confusion_error"], context["confusion_status"] = error.message, error.status_code
        return context
    context["confusion"] = {**confusion, "figure": confusion_matrix_figure(confusion)}
    context["confusion_steps"] = confusion["steps"]
    return context


def _run(project, run_id):
    try:
        return selectors.run_get(project=project, run_id=run_id)
    except NotFound:
        raise Http404 from None


@page("training.view")
@require_GET
def run_debugger(request, project_id, run_id):
    run = _run(request.access.project, run_id)
    context = {
        "run": run,
        "insights": selectors.run_insight_list(run=run),
        "charts": _charts(run),
        **_confusion_context(run, None),
    }
    context["confusion_steps_json"] = json.dumps(context["confusion_steps"])
    return render(request, "training/_debugger.html", context)


@page("training.view")
@require_GET
def run_confusion_matrix(request, project_id, run_id):
    run = _run(request.access.project, run_id)
    text = request.GET.get("step", "").strip()
    if text and not text.isdigit():
        context = {
            "confusion": None,
            "confusion_error": f"step: expected an epoch number, got {text[:40]!r}.",
        }
        return render(request, "training/_debugger_confusion.html", context, status=400)
    context = _confusion_context(run, int(text) if text else None)
    return render(request, "training/_debugger_confusion.html", context, status=context["confusion_status"])
