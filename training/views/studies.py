"""The study pages: the list, the "New study" form and a study (live trials table and figures).

The study page re-fetches its live part (`_study_live.html`) when a `study` event of its study
arrives (study.js listens to live.js's `studio:event`); pause, resume, stop and extend go through the
JSON API like the run page's Stop button.
"""

from __future__ import annotations

import json
import math

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from datasets.models import DatasetVersion
from studio.core.pages import page
from studio.errors import ApplicationError, NotFound
from training import selectors, studies
from training.charts.studies import (
    history_figure,
    importance_figure,
    intermediate_figure,
    parallel_coordinates_figure,
)
from training.study_models import StudyPruner, StudySampler
from training.trainers import TRAINERS

RECENT_VERSIONS = 200
FORM_SPACE_ROWS = 3
MAX_FORM_SPACE_ROWS = 30
OBJECTIVE_SUGGESTIONS = ("val_loss", "val_accuracy", "val_f1", "val_rmse", "val_mae", "val_r2", "train_loss")


@page("training.view")
@require_GET
def study_list(request, project_id):
    project = request.access.project
    items = list(selectors.study_list(project=project)[:200])
    return render(request, "training/studies.html", {"studies": items})


@page("training.run")
@require_http_methods(["GET", "POST"])
def study_new(request, project_id):
    project = request.access.project
    values = request.POST if request.method == "POST" else request.GET
    error = {"message": "", "field": ""}
    if request.method == "POST":
        try:
            study = _create(request, project)
            return redirect("training:study", project_id=project.pk, study_id=study.pk)
        except ApplicationError as failure:
            error = {"message": failure.message, "field": (failure.extra or {}).get("field", "")}
    versions = list(
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("dataset")
        .order_by("-created_at", "-id")[:RECENT_VERSIONS]
    )
    rows = _space_rows(values)
    context = {
        "error": error,
        "values": values,
        "versions": versions,
        "trainers": [trainer.describe() for trainer in TRAINERS.values()],
        "samplers": StudySampler.values,
        "pruners": StudyPruner.values,
        "rows": rows,
        "objective_suggestions": OBJECTIVE_SUGGESTIONS,
    }
    return render(request, "training/study_new.html", context, status=400 if error["message"] else 200)


def _space_rows(values) -> list[dict]:
    rows = []
    for index in range(MAX_FORM_SPACE_ROWS):
        row = {
            key: values.get(f"space-{index}-{key}", "")
            for key in ("name", "type", "low", "high", "step", "choices", "log")
        }
        if index >= FORM_SPACE_ROWS and not row["name"]:
            continue
        row["index"] = index
        rows.append(row)
    return rows


def _form_number(text: str, field: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ApplicationError(f"{field}: {text!r} is not a number.", extra={"field": field}) from None
    if not math.isfinite(number):
        raise ApplicationError(f"{field}: {text!r} is not a finite number.", extra={"field": field})
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _form_choice(text: str):
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return _form_number(text, "choices")
    except ApplicationError:
        return text


def _form_int(values, name: str) -> int | None:
    number = _form_number(values.get(name, ""), name)
    if number is not None and not isinstance(number, int):
        raise ApplicationError(f"{name}: a whole number, got {number!r}.", extra={"field": name})
    return number


def _create(request, project):
    values = request.POST
    space = []
    for row in _space_rows(values):
        name = row["name"].strip()
        if not name:
            continue
        kind = row["type"] or "float"
        item = {"name": name, "type": kind}
        if kind == "categorical":
            item["choices"] = [_form_choice(part) for part in row["choices"].split(",") if part.strip()]
        else:
            item["low"] = _form_number(row["low"], "search_space")
            item["high"] = _form_number(row["high"], "search_space")
            item["step"] = _form_number(row["step"], "search_space")
            item["log"] = bool(row["log"])
        space.append(item)
    fixed_text = values.get("hyperparameters", "").strip() or "{}"
    try:
        fixed = json.loads(fixed_text)
    except ValueError:
        fixed = None
    if not isinstance(fixed, dict):
        raise ApplicationError(
            'hyperparameters: a JSON object of fixed values, e.g. {"epochs": 10}.',
            extra={"field": "hyperparameters"},
        )
    trainer = values.get("trainer", "")
    script_filename = script_source = None
    upload = request.FILES.get("script")
    if not trainer:
        if upload is None:
            raise ApplicationError(
                "script: choose a .py or .ipynb file, or a built-in trainer.", extra={"field": "script"}
            )
        if upload.size > settings.STUDIO_MAX_SCRIPT_BYTES:
            raise ApplicationError(
                f"script: {upload.name} is over the limit of {settings.STUDIO_MAX_SCRIPT_BYTES} bytes.",
                extra={"field": "script"},
            )
        try:
            script_filename, script_source = upload.name, upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ApplicationError(
                f"script: {upload.name} is not UTF-8 text.", extra={"field": "script"}
            ) from None
    version_id = _form_int(values, "dataset_version")
    version = (
        DatasetVersion.objects.select_related("dataset")
        .filter(dataset__project=project, pk=version_id)
        .first()
        if version_id
        else None
    )
    if version is None and trainer:
        raise ApplicationError(
            "dataset_version: choose a dataset version.", extra={"field": "dataset_version"}
        )
    time_limit_min = _form_number(values.get("time_limit_min", ""), "time_limit_min")
    return studies.study_create(
        user=request.user,
        project=project,
        name=values.get("name", ""),
        objective_metric=values.get("objective_metric", ""),
        direction=values.get("direction", "minimize"),
        search_space=space,
        trainer=trainer or None,
        script_filename=script_filename,
        script_source=script_source,
        dataset_version=version,
        target=values.get("target", "").strip() or None,
        hyperparameters=fixed,
        sampler=values.get("sampler", "tpe"),
        seed=_form_int(values, "seed"),
        pruner=values.get("pruner", "none"),
        n_trials=_form_int(values, "n_trials"),
        time_limit_s=int(time_limit_min * 60) if time_limit_min else None,
        parallelism=_form_int(values, "parallelism") or 1,
        ip=request.META.get("REMOTE_ADDR"),
    )


@page("training.view")
@require_GET
def study_detail(request, project_id, study_id):
    context = _study_context(request.access.project, study_id)
    return render(request, "training/study.html", context)


@page("training.view")
@require_GET
def study_live(request, project_id, study_id):
    context = _study_context(request.access.project, study_id)
    return render(request, "training/_study_live.html", context)


def _study_context(project, study_id: int) -> dict:
    try:
        study = selectors.study_get(project=project, study_id=study_id)
    except NotFound:
        raise Http404 from None
    trials = selectors.study_trials(study=study)
    plain = [
        {
            "number": trial.number,
            "state": trial.state,
            "value": trial.value,
            "params": trial.params,
            "pruned_at_step": trial.pruned_at_step,
        }
        for trial in trials
    ]
    counts = {
        state: sum(1 for trial in trials if trial.state == state)
        for state in ("running", "complete", "pruned", "failed")
    }
    curves = selectors.study_intermediate_values(study=study)
    importances = study.importances
    charts = [
        {
            "id": "study-history",
            "title": "Optimisation history",
            "figure": history_figure(plain, direction=study.direction, objective=study.objective_metric),
        },
        {
            "id": "study-intermediate",
            "title": "Intermediate values",
            "figure": intermediate_figure(curves, plain, objective=study.objective_metric),
        },
    ]
    if counts["complete"] >= 2:
        charts.append(
            {
                "id": "study-parallel",
                "title": "Parallel coordinates",
                "figure": parallel_coordinates_figure(
                    plain, search_space=study.search_space, objective=study.objective_metric
                ),
            }
        )
    if importances:
        charts.append(
            {
                "id": "study-importance",
                "title": "Hyperparameter importance",
                "figure": importance_figure(importances),
            }
        )
    space_names = [item["name"] for item in study.search_space]
    return {
        "study": study,
        "trials": [
            {"trial": trial, "params": [trial.params.get(name) for name in space_names]} for trial in trials
        ],
        "space_names": space_names,
        "best": selectors.study_best_trial(study=study, trials=trials),
        "counts": counts,
        "charts": charts,
        "is_active": study.status in ("running", "paused"),
    }
