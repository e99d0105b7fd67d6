from django.conf import settings
from django.db import models
from django.utils import timezone

from training.models import Run


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"


class TrainingJob(models.Model):
    """A training run executed by a worker in a child process: claimed, heartbeated, resumable."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="training_jobs")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="job")
    # {"trainer", "dataset_version_id", "target", "hyperparameters"}; validated before it is stored.
    spec = models.JSONField(default=dict)
    queue = models.CharField(max_length=20, default="default")
    gpus = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    time_limit_s = models.PositiveIntegerField(default=24 * 3600)
    is_stop_requested = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="training_job_project_time"),
            models.Index(fields=["status", "heartbeat_at"], name="training_job_status_beat"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"


class RunLogChunk(models.Model):
    """A piece of a run's output (stdout/stderr of its job), appended about once a second."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_chunks")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"log of run {self.run_id} #{self.pk}"
