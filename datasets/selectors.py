"""Reads of the datasets app, always scoped to a project the caller belongs to."""

import hashlib
import json
import logging
from pathlib import Path

from django.core.cache import cache
from django.db.models import Count, OuterRef, QuerySet, Subquery

from datasets import files
from datasets.models import Dataset, DatasetJob, DatasetVersion, Recipe
from studio.errors import ApplicationError, NotFound

logger = logging.getLogger(__name__)


def dataset_list(*, project, search: str = "", kind: str = "") -> QuerySet[Dataset]:
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    datasets = Dataset.objects.filter(project=project).annotate(
        version_count=Count("versions"),
        latest_number=Subquery(latest.values("number")[:1]),
        latest_rows=Subquery(latest.values("row_count")[:1]),
        latest_version_id=Subquery(latest.values("pk")[:1]),
    )
    if search:
        datasets = datasets.filter(name__icontains=search)
    if kind:
        datasets = datasets.filter(kind=kind)
    return datasets.order_by("-updated_at", "-id")


def dataset_get(*, project, dataset_id=None, name: str | None = None) -> Dataset:
    datasets = Dataset.objects.filter(project=project)
    dataset = (
        datasets.filter(pk=dataset_id).first()
        if dataset_id is not None
        else datasets.filter(name=name).first()
    )
    if dataset is None:
        raise NotFound("No such dataset in this project.")
    return dataset


def version_list(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return (
        dataset.versions.select_related("parent__dataset", "recipe", "created_by")
        .defer("profile")
        .order_by("-number")
    )


def version_get(*, project, version_id: int, with_profile: bool = True) -> DatasetVersion:
    versions = DatasetVersion.objects.select_related("dataset", "parent__dataset", "recipe", "created_by")
    if not with_profile:
        versions = versions.defer("profile")
    version = versions.filter(pk=version_id, dataset__project=project).first()
    if version is None:
        raise NotFound("No such dataset version in this project.")
    return version


def version_lineage(*, version: DatasetVersion) -> dict:
    """What this version came from and what was made from it, both ways."""
    return {
        "parent": version.parent,
        "inputs": list(version.inputs.select_related("dataset")),
        "children": list(version.children.select_related("dataset").order_by("dataset__name", "number")),
        "consumers": list(version.consumers.select_related("dataset").order_by("dataset__name", "number")),
    }


def job_get(*, project, job_id: int) -> DatasetJob:
    job = DatasetJob.objects.select_related("version__dataset").filter(pk=job_id, project=project).first()
    if job is None:
        raise NotFound("No such dataset job in this project.")
    return job


def job_list(*, project, limit: int = 20) -> list[DatasetJob]:
    return list(DatasetJob.objects.filter(project=project).select_related("version__dataset")[:limit])


def recipe_list(*, project) -> QuerySet[Recipe]:
    return Recipe.objects.filter(project=project).select_related("dataset").order_by("-updated_at", "-id")


def recipe_get(*, project, recipe_id=None, name: str | None = None) -> Recipe:
    recipes = Recipe.objects.filter(project=project)
    recipe = (
        recipes.filter(pk=recipe_id).first() if recipe_id is not None else recipes.filter(name=name).first()
    )
    if recipe is None:
        raise NotFound("No such recipe in this project.")
    return recipe


TOTAL_CACHE_SECONDS = 24 * 3600


def version_rows(
    *,
    version: DatasetVersion,
    offset: int = 0,
    limit: int = 50,
    sort=(),
    filters=(),
    expression: str | None = None,
) -> dict:
    """A page of rows with server-side sorting and filtering (DuckDB over the version's data).

    Reads the version's DuckDB copy (`services.build_preview_copy`) when there is one, else the
    Parquet file. The count of matching rows is cached per version and filters: a version's data
    never changes.
    """
    from datasets.duck import copy_cursor, sandboxed_connection
    from datasets.expressions import ExpressionError
    from datasets.query import QueryError, preview

    sort, filters = list(sort), list(filters)
    parquet = files.local_path(version.storage_name)
    copy = preview_copy_path(parquet)
    connection = None
    if copy.is_file():
        try:
            connection = copy_cursor(copy)
        except Exception:
            logger.exception("cannot open the preview copy %s; reading the Parquet file", copy)
    if connection is None:
        connection = sandboxed_connection({"source": parquet})
    key = _total_cache_key(version, filters, expression)
    total = _cache_get(key) if key else None
    try:
        result = preview(
            connection,
            "source",
            offset=offset,
            limit=limit,
            sort=sort,
            filters=filters,
            expression=expression,
            total=total if isinstance(total, int) else None,
        )
    except (QueryError, ExpressionError) as error:
        raise ApplicationError(str(error), code="bad_query") from None
    finally:
        connection.close()
    if key and total is None:
        _cache_set(key, result["total"])
    return result


def preview_copy_path(parquet: Path) -> Path:
    """Where the DuckDB copy of a version's Parquet file lives: beside it, suffix .duckdb."""
    return parquet.with_suffix(".duckdb")


def _total_cache_key(version: DatasetVersion, filters: list, expression: str | None) -> str | None:
    try:
        text = json.dumps({"filters": filters, "expression": expression}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None  # not JSON: preview() refuses it
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"datasets:rows-total:{version.pk}:{version.sha256}:{digest}"


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # the cache is an optimisation: a Redis outage must not break the preview
        logger.warning("cache read failed for %s", key, exc_info=True)
        return None


def _cache_set(key: str, value: int) -> None:
    try:
        cache.set(key, value, TOTAL_CACHE_SECONDS)
    except Exception:
        logger.warning("cache write failed for %s", key, exc_info=True)


def recipe_preview(
    *, project, version: DatasetVersion, steps: list, upto: int | None = None, limit: int = 20
) -> dict:
    """The first rows after the first `upto` steps: the live preview of the recipe builder."""
    import duckdb

    from datasets.duck import json_value
    from datasets.recipes import RecipeError, apply_recipe
    from datasets.services import recipe_connection, validated_steps

    with recipe_connection(project=project, version=version, steps=steps) as (connection, _joined):
        normalized = validated_steps(project=project, version=version, steps=steps, connection=connection)
        try:
            relation = apply_recipe(connection, normalized, upto=upto)
            columns = list(relation.columns)
            types = [str(kind) for kind in relation.types]
            rows = relation.limit(limit).fetchall()
        except RecipeError as error:
            raise ApplicationError(str(error), code="bad_recipe", extra={"step": error.step_index}) from None
        except duckdb.Error as error:  # e.g. out of memory on a huge preview: say so instead of a 500
            message = str(error).splitlines()[0]
            raise ApplicationError(f"The preview could not run: {message}", code="bad_recipe") from None
    return {
        "columns": columns,
        "types": types,
        "rows": [[json_value(value) for value in row] for row in rows],
        "steps": normalized,
    }
