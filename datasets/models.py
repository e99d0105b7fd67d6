from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    TABULAR = "tabular"
    IMAGE = "image"
    TEXT = "text"


class Dataset(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=5000)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TABULAR)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name_per_project")
        ]
        indexes = [models.Index(fields=["project", "-updated_at"], name="dataset_project_updated")]

    def __str__(self) -> str:
        return self.name

    @property
    def storage_prefix(self) -> str:
        return f"projects/{self.project_id}/datasets/{self.pk}"


class ProfileStatus(models.TextChoices):
    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DatasetVersion(models.Model):
    """An immutable version: one Parquet file (plus image files for image datasets). Never edited."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # sha256 of the stored Parquet content; identical content in one dataset is one version.
    sha256 = models.CharField(max_length=64)
    # sha256 of the uploaded bytes, so re-uploading the same file is recognised before converting it.
    source_sha256 = models.CharField(max_length=64, blank=True)
    source_format = models.CharField(max_length=20)
    source_name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TABULAR)
    schema = models.JSONField(default=list)
    row_count = models.BigIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    storage_name = models.CharField(max_length=400)
    files_prefix = models.CharField(max_length=400, blank=True)
    details = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Other versions a derived version read (joins); lineage is shown both ways.
    inputs = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="consumers")
    recipe = models.ForeignKey(
        "datasets.Recipe", null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    recipe_steps = models.JSONField(default=list, blank=True)
    profile = models.JSONField(null=True, blank=True)
    profile_status = models.CharField(
        max_length=10, choices=ProfileStatus.choices, default=ProfileStatus.NONE
    )
    profile_error = models.TextField(blank=True)
    profiled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique_number"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="dataset_version_unique_content"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def columns(self) -> dict[str, str]:
        return {column["name"]: column["type"] for column in self.schema}


class Recipe(models.Model):
    """Ordered wrangling steps, saved to be re-applied to newer versions (pipelines use this later)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="recipes")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="recipes"
    )
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="recipe_unique_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class DatasetJob(models.Model):
    """Long dataset work run by a worker: importing an upload or a URL, or applying a recipe."""

    class Kind(models.TextChoices):
        UPLOAD = "upload"
        URL = "url"
        RECIPE = "recipe"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="dataset_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    dataset_name = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_duplicate = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="dataset_job_project_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.dataset_name} ({self.status})"
