"""Experiment tracking: experiments, runs, their params, tags, metric time series and artifacts.

Search over thousands of runs reads two narrow, indexed tables instead of JSON:
`RunParam` (params, immutable once logged) and `RunTag` (tags), each indexed by (key, value), and
`LatestMetric` (one row per run and metric key, kept current by every metric batch) indexed by
(key, value). Those indexes answer `params.lr = '0.01'` or `metrics.acc > 0.9` the same way on SQLite
and PostgreSQL; JSON lookups would scan every run of the project on SQLite. `Run.params` and
`Run.tags` keep a JSON copy so that showing a page of runs needs no join; services write both in
one transaction and are the only writers.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Experiment(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"


TERMINAL_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED})


class RunSource(models.TextChoices):
    SDK = "sdk"
    TRAINER = "trainer"
    SCRIPT = "script"
    NOTEBOOK = "notebook"


class Run(models.Model):
    # The composite indexes below start with these columns: no separate foreign-key indexes.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs", db_index=False)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # PROTECT: a version a run trained on cannot be deleted (datasets answers 409 naming the runs).
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    source = models.CharField(max_length=10, choices=RunSource.choices, default=RunSource.SDK)
    trainer = models.CharField(max_length=100, blank=True)
    device = models.CharField(max_length=100, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="run_project_created"),
            models.Index(fields=["experiment", "-created_at"], name="run_experiment_created"),
            models.Index(fields=["project", "status"], name="run_project_status"),
        ]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (to now while it runs); None before it starts."""
        if self.started_at is None:
            return None
        end = self.ended_at or (timezone.now() if self.status == RunStatus.RUNNING else None)
        if end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def storage_prefix(self) -> str:
        return f"projects/{self.project_id}/runs/{self.pk}"


# Values up to MLflow's 6,000 characters do not fit a PostgreSQL b-tree entry (~2,700 bytes): the index
# holds a prefix, and an equality filter checks the prefix (indexed) and the full value.
VALUE_PREFIX_CHARS = 200


class RunParam(models.Model):
    """A param as a searchable row; `value_number` holds it as a float when it reads as one."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="param_rows", db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=6000)
    value_prefix = models.CharField(max_length=VALUE_PREFIX_CHARS)
    value_number = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_param_unique_key")]
        indexes = [
            models.Index(fields=["key", "value_prefix", "run"], name="run_param_key_value"),
            models.Index(fields=["key", "value_number", "run"], name="run_param_key_number"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class RunTag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tag_rows", db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=5000)
    value_prefix = models.CharField(max_length=VALUE_PREFIX_CHARS)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique_key")]
        indexes = [models.Index(fields=["key", "value_prefix", "run"], name="run_tag_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Metric(models.Model):
    """One point of a metric's time series: the high-volume table, written in bulk only.

    `value` is NULL for NaN (SQLite cannot store NaN; NULL keeps both databases alike); ±inf are
    stored as such. Several points may share a step (as in MLflow): nothing a client sends is dropped.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    key = models.CharField(max_length=250)
    step = models.BigIntegerField()
    value = models.FloatField(null=True)
    timestamp_ms = models.BigIntegerField()

    class Meta:
        # Every column after (run, key, step) rides along, so a chart's read never touches the table
        # (PostgreSQL's INCLUDE would do, but SQLite has none): measured 3× faster on 100k points.
        indexes = [
            models.Index(fields=["run", "key", "step", "value", "timestamp_ms"], name="metric_run_key_step")
        ]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value}"


class LatestMetric(models.Model):
    """The value at the highest step (then latest time) of each metric of a run, plus its extent."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField(null=True)
    step = models.BigIntegerField()
    timestamp_ms = models.BigIntegerField()
    min_step = models.BigIntegerField()
    point_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique_key")]
        indexes = [models.Index(fields=["key", "value", "run"], name="latest_metric_key_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Artifact(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts", db_index=False)
    path = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=700)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="artifact_unique_path")]

    def __str__(self) -> str:
        return self.path


# Jobs live in their own module; importing them here registers them with the app.
from training.job_models import RunLogChunk, TrainingJob  # noqa: E402, F401


class InsightSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RunInsight(models.Model):
    """A finding of the debugger's rules (training/insights.py): one row per run and rule, kept current."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="insights", db_index=False)
    rule = models.CharField(max_length=50)
    severity = models.CharField(max_length=10, choices=InsightSeverity.choices)
    message = models.TextField(max_length=1000)
    step = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "rule"]
        constraints = [models.UniqueConstraint(fields=["run", "rule"], name="run_insight_unique_rule")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


from training.study_models import Study, StudyTrial  # noqa: E402, F401
