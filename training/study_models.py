"""Hyperparameter studies: a Study (search space, sampler, pruner, objective, budget, job template)
and its StudyTrials, one training job each. Optuna's own tables hold the sampler's state and the
intermediate values; these rows are what the pages, the API and the job hooks read.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class StudyStatus(models.TextChoices):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"


class StudyDirection(models.TextChoices):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class StudySampler(models.TextChoices):
    RANDOM = "random"
    GRID = "grid"
    TPE = "tpe"
    CMAES = "cmaes"


class StudyPruner(models.TextChoices):
    NONE = "none"
    MEDIAN = "median"
    SUCCESSIVE_HALVING = "successive_halving"
    HYPERBAND = "hyperband"


class TrialState(models.TextChoices):
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


class Study(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="studies")
    name = models.CharField(max_length=200)
    objective_metric = models.CharField(max_length=250)
    direction = models.CharField(max_length=8, choices=StudyDirection.choices)
    # [{"name", "type": float|int|categorical, "low", "high", "log", "step", "choices"}], validated.
    search_space = models.JSONField(default=list)
    sampler = models.CharField(max_length=20, choices=StudySampler.choices, default=StudySampler.TPE)
    seed = models.IntegerField(null=True, blank=True)
    pruner = models.CharField(max_length=20, choices=StudyPruner.choices, default=StudyPruner.NONE)
    n_trials = models.PositiveIntegerField(null=True, blank=True)
    time_limit_s = models.PositiveIntegerField(null=True, blank=True)
    parallelism = models.PositiveSmallIntegerField(default=2)
    # {"kind": "trainer", "trainer", "dataset_version_id", "target", "hyperparameters", "gpus",
    #  "queue", "trial_time_limit_s"}: what every trial's job is submitted with, plus its params.
    template = models.JSONField(default=dict)
    # {hyperparameter: fANOVA importance}, recomputed by the study step whenever a trial completes.
    importances = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=StudyStatus.choices, default=StudyStatus.RUNNING)
    message = models.CharField(max_length=1000, blank=True)
    optuna_study_name = models.CharField(max_length=200, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="study_project_time")]

    def __str__(self) -> str:
        return self.name

    @property
    def program(self) -> str:
        """What every trial runs: the built-in trainer's name or the script's file name."""
        return self.template.get("trainer") or self.template.get("filename", "")


class StudyTrial(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    optuna_trial_id = models.PositiveIntegerField()
    job = models.OneToOneField(
        "training.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="study_trial"
    )
    params = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=TrialState.choices, default=TrialState.RUNNING)
    value = models.FloatField(null=True, blank=True)
    pruned_at_step = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "number"]
        constraints = [models.UniqueConstraint(fields=["study", "number"], name="study_trial_unique_number")]
        indexes = [models.Index(fields=["study", "state"], name="study_trial_state")]

    def __str__(self) -> str:
        return f"trial {self.number} of {self.study_id}"

    @property
    def duration_s(self) -> float | None:
        if self.job is None or self.job.started_at is None:
            return None
        end = self.job.finished_at or timezone.now()
        return (end - self.job.started_at).total_seconds()
