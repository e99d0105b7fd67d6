"""The datasets pages: list + upload, a dataset, a version (preview, profile, schema), recipes.

The pages read through selectors and write through services; the browser talks to the JSON API
(datasets/apis.py) for uploads, previews and recipe jobs, so the pages stay thin.
"""

# plotly's validators read sys.modules["pandas"] without the import lock: should a first request import
# pandas (pyarrow.dataset does, for the rows API) while another builds a chart, plotly sees a
# half-initialised module and fails. Importing it with the URLconf, before any request, avoids that.
import pandas  # noqa: F401
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from datasets import selectors, services
from datasets.charts import profile_figures
from datasets.models import DatasetJob, Kind, ProfileStatus
from studio.core.api import client_ip
from studio.core.pages import page, paginate
from studio.errors import ApplicationError, NotFound

RECENT_JOBS = 10
PICKER_DATASETS = 200


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@page("dataset.view")
@require_GET
def dataset_list(request, project_id):
    project = request.access.project
    query = request.GET.get("q", "").strip()[:100]
    kind = request.GET.get("kind", "") if request.GET.get("kind", "") in Kind.values else ""
    context = {
        "page_obj": paginate(request, selectors.dataset_list(project=project, search=query, kind=kind)),
        "q": query,
        "kind": kind,
        "kinds": Kind.values,
        "jobs": selectors.job_list(project=project, limit=RECENT_JOBS),
    }
    return render(request, "datasets/list.html", context)


@page("dataset.view")
@require_http_methods(["GET", "POST"])
def dataset_detail(request, project_id, dataset_id):
    project = request.access.project
    try:
        dataset = selectors.dataset_get(project=project, dataset_id=dataset_id)
    except NotFound:
        raise Http404 from None
    if request.method == "POST":
        try:
            if request.POST.get("op") == "delete":
                services.dataset_delete(user=request.user, dataset=dataset, ip=client_ip(request))
                messages.success(request, f"Dataset {dataset.name} and its files were deleted.")
                return redirect("datasets:list", project_id=project.pk)
            services.dataset_update(
                user=request.user,
                dataset=dataset,
                name=request.POST.get("name"),
                description=request.POST.get("description"),
                ip=client_ip(request),
            )
            messages.success(request, "Saved.")
            return redirect("datasets:detail", project_id=project.pk, dataset_id=dataset.pk)
        except ApplicationError as error:
            messages.error(request, error.message)
            dataset.refresh_from_db()
    context = {"dataset": dataset, "page_obj": paginate(request, selectors.version_list(dataset=dataset))}
    return render(request, "datasets/detail.html", context)


def _version_or_404(request, version_id):
    try:
        return selectors.version_get(project=request.access.project, version_id=version_id)
    except NotFound:
        raise Http404 from None


def _profile_context(version) -> dict:
    profile = version.profile if version.profile_status == ProfileStatus.DONE else None
    return {
        "profile": profile,
        "figures": profile_figures(profile) if profile else {},
        "profile_is_running": version.profile_status in (ProfileStatus.QUEUED, ProfileStatus.RUNNING),
    }


@page("dataset.view")
@require_http_methods(["GET", "POST"])
def version_detail(request, project_id, version_id):
    project = request.access.project
    version = _version_or_404(request, version_id)
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "delete":
                services.dataset_version_delete(user=request.user, version=version, ip=client_ip(request))
                messages.success(request, f"{version} was deleted.")
                return redirect("datasets:detail", project_id=project.pk, dataset_id=version.dataset_id)
            if op == "profile":
                services.dataset_version_profile_start(
                    user=request.user, version=version, ip=client_ip(request)
                )
                messages.success(request, "The profile is being computed again.")
                return redirect(f"{request.path}?tab=profile")
            messages.error(request, "Unknown operation.")
        except ApplicationError as error:
            messages.error(request, error.message)
    tab = request.GET.get("tab", "preview")
    context = {
        "version": version,
        "dataset": version.dataset,
        "lineage": selectors.version_lineage(version=version),
        "tab": tab if tab in ("preview", "profile", "schema") else "preview",
        "class_counts": sorted(
            (version.details.get("class_counts") or {}).items(), key=lambda item: (-item[1], item[0])
        )
        if version.kind == Kind.IMAGE
        else [],
        **_profile_context(version),
    }
    return render(request, "datasets/version.html", context)


@page("dataset.view")
@require_GET
def version_profile(request, project_id, version_id):
    """The Profile tab alone: the page swaps it in when a profile job finishes."""
    version = _version_or_404(request, version_id)
    return render(request, "datasets/_profile.html", {"version": version, **_profile_context(version)})


@page("dataset.view")
@require_http_methods(["GET", "POST"])
def recipe_list(request, project_id):
    project = request.access.project
    if request.method == "POST":
        try:
            recipe = selectors.recipe_get(
                project=project, recipe_id=_int_or_none(request.POST.get("recipe_id"))
            )
            if request.POST.get("op") == "delete":
                services.recipe_delete(user=request.user, recipe=recipe, ip=client_ip(request))
                messages.success(request, f"Recipe {recipe.name} was deleted.")
            else:
                newest = selectors.version_list(dataset=recipe.dataset).first() if recipe.dataset else None
                if newest is None:
                    raise ApplicationError(f"Recipe {recipe.name} has no dataset version to apply to.")
                job = services.recipe_apply_start(
                    user=request.user, project=project, version=newest, recipe=recipe, ip=client_ip(request)
                )
                messages.success(request, f"Applying {recipe.name} to {newest}: job #{job.pk} is queued.")
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("datasets:recipes", project_id=project.pk)
    jobs = [
        job for job in selectors.job_list(project=project, limit=50) if job.kind == DatasetJob.Kind.RECIPE
    ]
    context = {
        "page_obj": paginate(request, selectors.recipe_list(project=project)),
        "jobs": jobs[:RECENT_JOBS],
    }
    return render(request, "datasets/recipes.html", context)


@page("dataset.view")
@require_GET
def recipe_builder(request, project_id):
    project = request.access.project
    recipe = version = None
    try:
        if request.GET.get("recipe"):
            recipe = selectors.recipe_get(project=project, recipe_id=_int_or_none(request.GET["recipe"]))
        if request.GET.get("version"):
            version = selectors.version_get(
                project=project, version_id=_int_or_none(request.GET["version"]), with_profile=False
            )
        elif recipe is not None and recipe.dataset is not None:
            version = selectors.version_list(dataset=recipe.dataset).first()
    except NotFound:
        raise Http404 from None
    choices = list(
        selectors.dataset_list(project=project).filter(latest_version_id__isnull=False)[:PICKER_DATASETS]
    )
    context = {
        "recipe": recipe,
        "version": version,
        "version_choices": choices,
        "join_choices": [
            {"id": choice.latest_version_id, "label": f"{choice.name} v{choice.latest_number}"}
            for choice in choices
        ],
        "builder": {
            "projectId": project.pk,
            "versionId": version.pk if version else None,
            "schema": version.schema if version else [],
            "recipe": {
                "id": recipe.pk,
                "name": recipe.name,
                "description": recipe.description,
                "steps": recipe.steps,
            }
            if recipe
            else None,
        },
    }
    return render(request, "datasets/recipe_builder.html", context)
