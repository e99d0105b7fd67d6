"""The "New training" page: a built-in trainer on a dataset version, or your own script or notebook.

The built-in form is rebuilt by the server whenever the dataset version or the trainer changes (htmx
swaps the form in place): the target column choices come from the version's schema and the
hyperparameter fields from the trainer's description, so the form and the API validate alike.
"""

from __future__ import annotations

import json

from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from datasets.models import DatasetVersion
from studio.core.pages import page
from studio.errors import ApplicationError
from training import jobs
from training.trainers import TRAINERS

RECENT_VERSIONS = 200


@page("training.run")
@require_http_methods(["GET", "POST"])
def training_new(request, project_id):
    project = request.access.project
    values = request.POST if request.method == "POST" else request.GET
    mode = "script" if values.get("mode") == "script" else "trainer"
    error = {"message": "", "field": ""}
    if request.method == "POST":
        try:
            job = _submit(request, project, mode)
            return redirect("training:run", project_id=project.pk, run_id=job.run_id)
        except ApplicationError as failure:
            error = {"message": failure.message, "field": (failure.extra or {}).get("field", "")}
    context = _form_context(project, values, mode)
    context["error"] = error
    status = 400 if error["message"] else 200
    if request.headers.get("HX-Request") and request.method == "GET":
        return render(request, "training/_trainer_form.html", context)
    return render(request, "training/new.html", context, status=status)


def _form_context(project, values, mode: str) -> dict:
    versions = list(
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("dataset")
        .order_by("-created_at", "-id")[:RECENT_VERSIONS]
    )
    version = _chosen_version(project, values.get("dataset_version"), versions)
    if version is not None and version not in versions:
        versions.insert(0, version)
    trainers = [trainer.describe() for trainer in TRAINERS.values()]
    trainer_name = values.get("trainer") or _default_trainer(version)
    trainer = next((item for item in trainers if item["name"] == trainer_name), trainers[0])
    columns = version.columns if version else {}
    target_choices = [(name, kind) for name, kind in columns.items() if kind in trainer["target_types"]]
    hyperparameters = [
        {**parameter, "value": values.get(f"hp_{parameter['name']}", _shown(parameter["default"]))}
        for parameter in trainer["hyperparameters"]
    ]
    return {
        "mode": mode,
        "versions": versions,
        "version": version,
        "trainers": trainers,
        "trainer": trainer,
        "target_choices": target_choices,
        "target": values.get("target", ""),
        "hyperparameters": hyperparameters,
        "experiment": values.get("experiment", "default"),
        "name": values.get("name", ""),
        "gpus": values.get("gpus", "0"),
        "time_limit_min": values.get("time_limit_min", ""),
        "script_hyperparameters": values.get("script_hyperparameters", ""),
        "processes": values.get("processes", "1"),
        "workspace_path": values.get("workspace_path", ""),
    }


def _chosen_version(project, raw, versions):
    if raw in (None, ""):
        return versions[0] if versions else None
    try:
        version_id = int(raw)
    except (TypeError, ValueError):
        return None
    return (
        DatasetVersion.objects.filter(dataset__project=project, pk=version_id)
        .select_related("dataset")
        .first()
    )


def _default_trainer(version) -> str:
    kind = getattr(version, "kind", "tabular")
    return {"image": "image_classification", "text": "text_classification"}.get(
        kind, "tabular_classification"
    )


def _shown(default) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list | tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def _submit(request, project, mode: str):
    values = request.POST
    version = _chosen_version(project, values.get("dataset_version"), [])
    common = {
        "user": request.user,
        "project": project,
        "experiment": values.get("experiment", "").strip() or "default",
        "name": values.get("name", "").strip()[:200],
        "gpus": _integer(values.get("gpus", "0") or "0", "gpus"),
        "time_limit_s": _time_limit_s(values.get("time_limit_min", "")),
        "ip": request.META.get("REMOTE_ADDR"),
    }
    if mode == "script":
        upload = request.FILES.get("script")
        workspace_path = values.get("workspace_path", "").strip()
        if upload is not None:
            filename, source = upload.name, upload.read()
        elif workspace_path:
            from django.conf import settings

            from notebooks.selectors import workspace_file_read

            filename, source = workspace_file_read(
                user=request.user,
                project=project,
                path=workspace_path,
                max_bytes=settings.STUDIO_MAX_SCRIPT_BYTES,
            )
        else:
            raise ApplicationError(
                "script: choose a .py script or an .ipynb notebook to run, or give a path in your notebook "
                "workspace.",
                extra={"field": "script"},
            )
        if values.get("dataset_version") and version is None:
            raise ApplicationError(
                "dataset_version: no such dataset version in this project.",
                extra={"field": "dataset_version"},
            )
        return jobs.training_script_job_submit(
            filename=filename,
            source=source,
            dataset_version=version,
            hyperparameters=parse_hyperparameter_lines(values.get("script_hyperparameters", "")),
            processes=_integer(values.get("processes", "1") or "1", "processes"),
            **common,
        )
    if version is None:
        raise ApplicationError(
            "dataset_version: choose a dataset version to train on (upload a dataset first).",
            extra={"field": "dataset_version"},
        )
    trainer = TRAINERS.get(values.get("trainer", ""))
    hyperparameters = {}
    if trainer is not None:
        for parameter in trainer.hyperparameters:
            raw = values.get(f"hp_{parameter.name}", "")
            if raw.strip() != "":
                hyperparameters[parameter.name] = raw.strip()  # the trainer coerces and range-checks
    return jobs.training_job_submit(
        trainer=values.get("trainer", ""),
        dataset_version=version,
        target=values.get("target") or None,
        hyperparameters=hyperparameters,
        **common,
    )


def _integer(raw: str, field: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApplicationError(f"{field}: {raw!r} is not a whole number.", extra={"field": field}) from None


def _time_limit_s(raw: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        minutes = float(raw)
    except ValueError:
        raise ApplicationError(
            f"time_limit_min: {raw!r} is not a number of minutes.", extra={"field": "time_limit_min"}
        ) from None
    if not minutes > 0:
        raise ApplicationError("time_limit_min: more than 0 minutes.", extra={"field": "time_limit_min"})
    return max(1, round(minutes * 60))


def parse_hyperparameter_lines(text: str) -> dict:
    """`name=value` per line (blank lines and # comments skipped); values read as JSON when they parse.

    So `lr=0.01` is a number, `layers=[64, 32]` would be refused later (scalars only), and
    `optimizer=adam` stays the string "adam".
    """
    result = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, raw = line.partition("=")
        if not separator:
            raise ApplicationError(
                f"script_hyperparameters: line {number} ({line[:60]!r}) is not name=value.",
                extra={"field": "script_hyperparameters"},
            )
        raw = raw.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        result[name.strip()] = value
    return result
