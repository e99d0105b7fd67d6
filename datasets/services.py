"""Every write of the datasets app: imports, versions, profiles, recipes, deletions."""

import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from datasets import files
from datasets.models import Dataset, DatasetJob, DatasetVersion, ProfileStatus, Recipe
from studio.audit.services import audit_record
from studio.errors import ApplicationError, NotFound
from studio.projects import events
from studio.projects.access import require

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5


def _clean_name(name: str, *, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError(f"{field}: give the dataset a name.", extra={"field": field})
    if len(name) > 100:
        raise ApplicationError(f"{field}: at most 100 characters.", extra={"field": field})
    if any(character in name for character in "/\\\x00"):
        raise ApplicationError(f"{field}: a name cannot contain '/', '\\' or NUL.", extra={"field": field})
    return name


# --- imports -------------------------------------------------------------------------------------


def _job_create(*, user, project, kind: str, dataset_name: str, params: dict, ip: str | None) -> DatasetJob:
    job = DatasetJob(project=project, kind=kind, dataset_name=dataset_name, params=params, created_by=user)
    job.full_clean()
    job.save()
    audit_record(
        user=user,
        project=project,
        action=f"dataset.import.{kind}" if kind != "recipe" else "recipe.apply",
        target=job,
        ip=ip,
        data={"dataset": dataset_name, **{k: v for k, v in params.items() if k != "upload_path"}},
    )
    from datasets.tasks import dataset_job_task

    transaction.on_commit(lambda: dataset_job_task.delay(job_id=job.pk))
    return job


@transaction.atomic
def dataset_upload_start(
    *,
    user,
    project,
    dataset_name: str,
    upload_path: Path,
    original_name: str,
    source_sha256: str,
    size_bytes: int,
    ip: str | None = None,
) -> DatasetJob:
    """Queue the conversion of a received upload into a new version of the dataset `dataset_name`."""
    try:
        require(user=user, project=project, action="dataset.write")
        dataset_name = _clean_name(dataset_name)
    except ApplicationError:
        Path(upload_path).unlink(missing_ok=True)
        raise
    params = {
        "upload_path": str(upload_path),
        "original_name": original_name[:255],
        "source_sha256": source_sha256,
        "size_bytes": size_bytes,
    }
    return _job_create(
        user=user,
        project=project,
        kind=DatasetJob.Kind.UPLOAD,
        dataset_name=dataset_name,
        params=params,
        ip=ip,
    )


@transaction.atomic
def dataset_url_import_start(
    *, user, project, dataset_name: str, url: str, ip: str | None = None
) -> DatasetJob:
    from datasets.fetch import FetchError, validate_url

    require(user=user, project=project, action="dataset.write")
    dataset_name = _clean_name(dataset_name)
    try:
        validate_url(url)
    except FetchError as error:
        raise ApplicationError(f"url: {error}", code="bad_url", extra={"field": "url"}) from None
    return _job_create(
        user=user,
        project=project,
        kind=DatasetJob.Kind.URL,
        dataset_name=dataset_name,
        params={"url": url},
        ip=ip,
    )


class _Progress:
    """Throttled progress: a DB write and a live event at most every PROGRESS_INTERVAL_S."""

    def __init__(self, job: DatasetJob, start: float = 0.0, span: float = 1.0):
        self.job, self.start, self.span, self.last = job, start, span, 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S and fraction < 1:
            return
        self.last = now
        value = round(self.start + self.span * max(0.0, min(1.0, fraction)), 4)
        DatasetJob.objects.filter(pk=self.job.pk).update(progress=value, message=message[:300])
        _publish_job(
            self.job.project_id,
            self.job.pk,
            status=DatasetJob.Status.RUNNING,
            progress=value,
            message=message,
        )


def _publish_job(project_id: int, job_id: int, **payload) -> None:
    events.publish(project_id=project_id, kind="dataset_job", payload={"id": job_id, **payload})


def dataset_job_execute(*, job_id: int) -> None:
    """Run an import or recipe job. Only a queued job is claimed, so a redelivered message is harmless."""
    with transaction.atomic():
        job = DatasetJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != DatasetJob.Status.QUEUED:
            return
        job.status = DatasetJob.Status.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
    work = files.new_work_dir(f"job-{job.pk}-")
    try:
        if job.kind == DatasetJob.Kind.RECIPE:
            version, is_duplicate = _run_recipe_job(job, work)
        else:
            version, is_duplicate = _run_import_job(job, work)
    except Exception as error:
        code = getattr(error, "code", "") or type(error).__name__
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        if not isinstance(error, ApplicationError) and type(error).__name__ not in {
            "IngestError",
            "FetchError",
            "RecipeError",
        }:
            logger.exception("dataset job %s failed", job.pk)
        DatasetJob.objects.filter(pk=job.pk).update(
            status=DatasetJob.Status.FAILED,
            error=message[:5000],
            error_code=str(code)[:50],
            finished_at=timezone.now(),
            message="failed",
        )
        _publish_job(job.project_id, job.pk, status="failed", error=message[:500])
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
        upload_path = job.params.get("upload_path")
        if upload_path:
            Path(upload_path).unlink(missing_ok=True)
    DatasetJob.objects.filter(pk=job.pk).update(
        status=DatasetJob.Status.DONE,
        progress=1.0,
        version=version,
        is_duplicate=is_duplicate,
        finished_at=timezone.now(),
        message="duplicate of an existing version" if is_duplicate else "done",
    )
    _publish_job(
        job.project_id,
        job.pk,
        status="done",
        progress=1.0,
        version_id=version.pk,
        dataset_id=version.dataset_id,
        is_duplicate=is_duplicate,
    )


def _run_import_job(job: DatasetJob, work: Path) -> tuple[DatasetVersion, bool]:
    from datasets.ingest import ingest_file

    if job.kind == DatasetJob.Kind.URL:
        from datasets.fetch import download_url

        _Progress(job)(0.0, "downloading")
        fetched = download_url(
            job.params["url"],
            work / "download",
            max_bytes=settings.STUDIO_MAX_UPLOAD_BYTES,
            timeout_s=settings.STUDIO_URL_IMPORT_TIMEOUT_S,
        )
        source, original_name = fetched.path, fetched.filename
        source_sha256 = files.sha256_of(source)
        progress = _Progress(job, start=0.2, span=0.7)
    else:
        source, original_name = Path(job.params["upload_path"]), job.params["original_name"]
        source_sha256 = job.params["source_sha256"]
        progress = _Progress(job, span=0.9)
    existing = DatasetVersion.objects.filter(
        dataset__project_id=job.project_id, dataset__name=job.dataset_name, source_sha256=source_sha256
    ).first()
    if existing is not None:
        return existing, True
    progress(0.0, "converting")
    result = ingest_file(
        source,
        original_name=original_name,
        work_dir=work / "ingest",
        progress=lambda fraction: progress(fraction, "converting"),
    )
    progress(1.0, "storing")
    return _version_from_files(
        job=job,
        parquet_path=result.parquet_path,
        schema=result.schema,
        row_count=result.row_count,
        kind=result.kind,
        source_format=result.format,
        source_name=original_name,
        source_sha256=source_sha256,
        details=result.details,
        files_dir=result.files_dir,
    )


def _version_from_files(
    *,
    job: DatasetJob,
    parquet_path: Path,
    schema: list[dict],
    row_count: int,
    kind: str,
    source_format: str,
    source_name: str,
    source_sha256: str = "",
    details: dict | None = None,
    files_dir: Path | None = None,
    parent: DatasetVersion | None = None,
    inputs=(),
    recipe: Recipe | None = None,
    recipe_steps=None,
    shared_files_prefix: str = "",
) -> tuple[DatasetVersion, bool]:
    """Store the files and create the version; identical content in the same dataset is one version."""
    sha256 = files.sha256_of(parquet_path)
    with transaction.atomic():
        dataset, created = Dataset.objects.get_or_create(
            project_id=job.project_id,
            name=job.dataset_name,
            defaults={"kind": kind, "created_by": job.created_by},
        )
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        existing = dataset.versions.filter(sha256=sha256).first()
        if existing is not None:
            return existing, True
        number = (dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        prefix = f"{dataset.storage_prefix}/v{number}-{sha256[:12]}"
        storage_name = files.store_file(f"{prefix}/data.parquet", parquet_path)
        files_prefix = shared_files_prefix  # a derived image dataset points at its source's files
        if files_dir is not None:
            files.store_tree(f"{prefix}/files", files_dir)
            files_prefix = f"{prefix}/files"
        version = DatasetVersion(
            dataset=dataset,
            number=number,
            sha256=sha256,
            source_sha256=source_sha256,
            source_format=source_format,
            source_name=source_name[:255],
            kind=kind,
            schema=schema,
            row_count=row_count,
            size_bytes=parquet_path.stat().st_size,
            storage_name=storage_name,
            files_prefix=files_prefix,
            details=details or {},
            parent=parent,
            recipe=recipe,
            recipe_steps=recipe_steps or [],
            created_by=job.created_by,
            profile_status=ProfileStatus.QUEUED,
        )
        version.full_clean()
        try:
            version.save()
        except IntegrityError:  # a concurrent job stored the same content first
            files.delete_prefix(prefix)
            return dataset.versions.get(sha256=sha256), True
        if inputs:
            version.inputs.set(inputs)
        dataset.updated_at = timezone.now()
        if created or dataset.versions.count() == 1:
            dataset.kind = kind
        dataset.save(update_fields=["updated_at", "kind"])
        audit_record(
            user=job.created_by,
            project=dataset.project,
            action="dataset.version.create",
            target=version,
            data={"rows": row_count, "sha256": sha256, "job": job.pk},
        )
        from datasets.tasks import dataset_profile_task

        transaction.on_commit(lambda: dataset_profile_task.delay(version_id=version.pk))
    return version, False


# --- profiles ------------------------------------------------------------------------------------


@transaction.atomic
def dataset_version_profile_start(*, user, version: DatasetVersion, ip: str | None = None) -> DatasetVersion:
    require(user=user, project=version.dataset.project, action="dataset.write")
    version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
    if version.profile_status in (ProfileStatus.QUEUED, ProfileStatus.RUNNING):
        return version
    version.profile_status = ProfileStatus.QUEUED
    version.profile_error = ""
    version.save(update_fields=["profile_status", "profile_error"])
    audit_record(user=user, project=version.dataset.project, action="dataset.profile", target=version, ip=ip)
    from datasets.tasks import dataset_profile_task

    transaction.on_commit(lambda: dataset_profile_task.delay(version_id=version.pk))
    return version


def dataset_version_profile_execute(*, version_id: int) -> None:
    from datasets.profiling import profile_parquet

    with transaction.atomic():
        version = (
            DatasetVersion.objects.select_for_update().select_related("dataset").filter(pk=version_id).first()
        )
        if version is None or version.profile_status != ProfileStatus.QUEUED:
            return
        version.profile_status = ProfileStatus.RUNNING
        version.save(update_fields=["profile_status"])
    project_id = version.dataset.project_id
    last = [0.0]

    def progress(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            events.publish(
                project_id=project_id,
                kind="dataset_profile",
                payload={
                    "version_id": version_id,
                    "status": "running",
                    "progress": fraction,
                    "message": message,
                },
            )

    build_preview_copy(version)  # before the profile: the preview gets fast as soon as it can
    try:
        profile = profile_parquet(files.local_path(version.storage_name), version.columns, progress=progress)
    except Exception as error:
        logger.exception("profile of dataset version %s failed", version_id)
        DatasetVersion.objects.filter(pk=version_id).update(
            profile_status=ProfileStatus.FAILED, profile_error=str(error)[:5000]
        )
        events.publish(
            project_id=project_id,
            kind="dataset_profile",
            payload={"version_id": version_id, "status": "failed", "error": str(error)[:500]},
        )
        return
    DatasetVersion.objects.filter(pk=version_id).update(
        profile=profile, profile_status=ProfileStatus.DONE, profiled_at=timezone.now(), profile_error=""
    )
    events.publish(
        project_id=project_id,
        kind="dataset_profile",
        payload={"version_id": version_id, "status": "done", "progress": 1.0},
    )


def build_preview_copy(version: DatasetVersion) -> Path | None:
    """Write the DuckDB copy of a version's Parquet file that the preview reads, beside the file.

    Being in the version's folder, it goes with the folder when the version is deleted. A failure is
    logged and otherwise ignored: the preview then reads the Parquet file, only slower.
    """
    from datasets.duck import build_table_copy
    from datasets.selectors import preview_copy_path

    try:
        parquet = files.local_path(version.storage_name)
        target = preview_copy_path(parquet)
        if target.is_file():
            return target
        return build_table_copy(parquet, target)
    except Exception:
        logger.exception("building the preview copy of dataset version %s failed", version.pk)
        return None


# --- editing and deleting ------------------------------------------------------------------------


@transaction.atomic
def dataset_update(
    *, user, dataset: Dataset, name: str | None = None, description: str | None = None, ip: str | None = None
) -> Dataset:
    require(user=user, project=dataset.project, action="dataset.write")
    changes = {}
    if name is not None and _clean_name(name) != dataset.name:
        if (
            Dataset.objects.filter(project=dataset.project, name=_clean_name(name))
            .exclude(pk=dataset.pk)
            .exists()
        ):
            raise ApplicationError(
                f"name: a dataset called {name!r} exists already.",
                code="name_taken",
                status=409,
                extra={"field": "name"},
            )
        changes["name"] = [dataset.name, _clean_name(name)]
        dataset.name = _clean_name(name)
    if description is not None and description != dataset.description:
        changes["description"] = True
        dataset.description = description
    if changes:
        dataset.updated_at = timezone.now()
        dataset.full_clean()
        dataset.save()
        audit_record(
            user=user, project=dataset.project, action="dataset.update", target=dataset, ip=ip, data=changes
        )
    return dataset


def _protected_message(error: ProtectedError, what: str) -> str:
    users = sorted({f"{obj._meta.verbose_name} {obj}" for obj in error.protected_objects})[:5]
    return f"{what} is in use by {', '.join(users)} and cannot be deleted."


@transaction.atomic
def dataset_version_delete(*, user, version: DatasetVersion, ip: str | None = None) -> None:
    require(user=user, project=version.dataset.project, action="dataset.write")
    prefix = version.storage_name.rsplit("/", 1)[0]
    label = str(version)
    files_shared = (
        bool(version.files_prefix)
        and DatasetVersion.objects.filter(files_prefix=version.files_prefix).exclude(pk=version.pk).exists()
    )
    try:
        with transaction.atomic():
            version.delete()
    except ProtectedError as error:
        raise ApplicationError(_protected_message(error, label), code="in_use", status=409) from None
    audit_record(
        user=user,
        project=version.dataset.project,
        action="dataset.version.delete",
        target=version.dataset,
        ip=ip,
        data={"version": label},
    )
    if files_shared:  # derived versions still show these images: keep the Parquet only out
        transaction.on_commit(lambda: files.delete_prefix(prefix + "/data.parquet"))
        transaction.on_commit(lambda: files.delete_prefix(prefix + "/data.duckdb"))
    else:
        transaction.on_commit(lambda: files.delete_prefix(prefix))


@transaction.atomic
def dataset_delete(*, user, dataset: Dataset, ip: str | None = None) -> None:
    require(user=user, project=dataset.project, action="dataset.write")
    prefix, project, name = dataset.storage_prefix, dataset.project, dataset.name
    try:
        with transaction.atomic():
            dataset.delete()
    except ProtectedError as error:
        raise ApplicationError(
            _protected_message(error, f"Dataset {name}"), code="in_use", status=409
        ) from None
    audit_record(user=user, project=project, action="dataset.delete", ip=ip, data={"dataset": name})
    transaction.on_commit(lambda: files.delete_prefix(prefix))


# --- recipes -------------------------------------------------------------------------------------


def join_versions(*, project, steps: list) -> list[DatasetVersion]:
    ids = [step.get("version_id") for step in steps if isinstance(step, dict) and step.get("type") == "join"]
    versions = list(
        DatasetVersion.objects.filter(pk__in=[i for i in ids if isinstance(i, int)], dataset__project=project)
    )
    if len(versions) != len(set(ids)):
        raise NotFound("A join step names a dataset version that is not in this project.")
    return versions


@contextmanager
def recipe_connection(*, project, version: DatasetVersion, steps: list, spill_dir: Path | None = None):
    """A sandboxed DuckDB connection with the source as `source` and joined versions as `version_<id>`."""
    from datasets.duck import sandboxed_connection

    joined = join_versions(project=project, steps=steps if isinstance(steps, list) else [])
    tables = {"source": files.local_path(version.storage_name)}
    tables.update({f"version_{other.pk}": files.local_path(other.storage_name) for other in joined})
    # A private spill directory lets big joins/deduplications run past the memory limit (jobs only).
    connection = sandboxed_connection(tables, temp_directory=spill_dir)
    try:
        yield connection, joined
    finally:
        connection.close()


def validated_steps(*, project, version: DatasetVersion, steps: list, connection=None) -> list[dict]:
    """Check steps against the version's data (fitting means, categories, …); errors name the step."""
    from datasets.recipes import RecipeError, validate_recipe

    if not isinstance(steps, list):
        raise ApplicationError("steps: a list of step objects is required.", extra={"field": "steps"})
    if connection is None:
        with recipe_connection(project=project, version=version, steps=steps) as (opened, _joined):
            return validated_steps(project=project, version=version, steps=steps, connection=opened)
    others = {other.pk: other.columns for other in join_versions(project=project, steps=steps)}
    try:
        normalized, _schemas = validate_recipe(steps, version.columns, others, con=connection)
    except RecipeError as error:
        raise ApplicationError(
            str(error), code="bad_recipe", extra={"step": getattr(error, "step_index", None)}
        ) from None
    return normalized


@transaction.atomic
def recipe_save(
    *,
    user,
    project,
    name: str,
    steps: list,
    version: DatasetVersion,
    description: str = "",
    recipe: Recipe | None = None,
    ip: str | None = None,
) -> Recipe:
    """Create or update a recipe; its steps are validated against `version` (the one it was built on)."""
    require(user=user, project=project, action="dataset.write")
    name = _clean_name(name)
    validated_steps(project=project, version=version, steps=steps)
    if recipe is None:
        recipe = Recipe(project=project, created_by=user)
    if Recipe.objects.filter(project=project, name=name).exclude(pk=recipe.pk).exists():
        raise ApplicationError(
            f"name: a recipe called {name!r} exists already.",
            code="name_taken",
            status=409,
            extra={"field": "name"},
        )
    # The user's own steps are kept: fitted values and implicit choices are made again on each application.
    recipe.name, recipe.description, recipe.steps = name, description, steps
    recipe.dataset = version.dataset
    recipe.updated_at = timezone.now()
    recipe.full_clean()
    recipe.save()
    audit_record(
        user=user,
        project=project,
        action="recipe.save",
        target=recipe,
        ip=ip,
        data={"steps": len(steps)},
    )
    return recipe


@transaction.atomic
def recipe_delete(*, user, recipe: Recipe, ip: str | None = None) -> None:
    require(user=user, project=recipe.project, action="dataset.write")
    audit_record(user=user, project=recipe.project, action="recipe.delete", target=recipe, ip=ip)
    recipe.delete()


@transaction.atomic
def recipe_apply_start(
    *,
    user,
    project,
    version: DatasetVersion,
    steps: list | None = None,
    recipe: Recipe | None = None,
    dataset_name: str | None = None,
    ip: str | None = None,
) -> DatasetJob:
    """Queue applying a recipe (saved or ad hoc steps) to `version`; the result is a new version."""
    require(user=user, project=project, action="dataset.write")
    if recipe is None and steps is None:
        raise ApplicationError("steps: give steps or a saved recipe.", extra={"field": "steps"})
    normalized = validated_steps(project=project, version=version, steps=recipe.steps if recipe else steps)
    target = _clean_name(dataset_name, field="dataset_name") if dataset_name else version.dataset.name
    params = {"version_id": version.pk, "steps": normalized, "recipe_id": recipe.pk if recipe else None}
    return _job_create(
        user=user, project=project, kind=DatasetJob.Kind.RECIPE, dataset_name=target, params=params, ip=ip
    )


def _run_recipe_job(job: DatasetJob, work: Path) -> tuple[DatasetVersion, bool]:
    import pyarrow.parquet as pq

    from datasets.ingest import infer_schema
    from datasets.recipes import apply_recipe

    source = DatasetVersion.objects.select_related("dataset").get(pk=job.params["version_id"])
    steps = job.params["steps"]
    progress = _Progress(job)
    progress(0.0, "applying recipe")
    output = work / "data.parquet"
    work.mkdir(parents=True, exist_ok=True)
    with recipe_connection(project=source.dataset.project, version=source, steps=steps) as (
        connection,
        joined,
    ):
        relation = apply_recipe(connection, steps)
        reader = relation.fetch_arrow_reader(batch_size=64_000)
        rows, writer = 0, None
        try:
            for batch in reader:
                if writer is None:
                    writer = pq.ParquetWriter(output, batch.schema, compression="zstd")
                writer.write_batch(batch)
                rows += batch.num_rows
                progress(min(0.95, rows / max(1, source.row_count)), f"{rows} rows written")
            if writer is None:
                writer = pq.ParquetWriter(output, reader.schema, compression="zstd")
        finally:
            if writer is not None:
                writer.close()
    recipe = (
        Recipe.objects.filter(pk=job.params.get("recipe_id")).first() if job.params.get("recipe_id") else None
    )
    return _version_from_files(
        job=job,
        parquet_path=output,
        schema=infer_schema(output),
        row_count=rows,
        kind=source.kind,
        source_format="recipe",
        source_name=recipe.name if recipe else "recipe",
        parent=source,
        inputs=joined,
        recipe=recipe,
        recipe_steps=steps,
        files_dir=None,
        shared_files_prefix=source.files_prefix,
        details={"source_version": source.pk, "steps": len(steps)},
    )


def work_dir_clean(*, older_than_s: float) -> int:
    """Delete leftovers in the work dir (uploads whose job never ran, crashed jobs' scratch space)."""
    in_use = {
        job.params.get("upload_path")
        for job in DatasetJob.objects.filter(status__in=[DatasetJob.Status.QUEUED, DatasetJob.Status.RUNNING])
    }
    cutoff = time.time() - older_than_s
    removed = 0
    for path in files.work_dir().iterdir():
        if str(path) in in_use or path.stat().st_mtime > cutoff:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
