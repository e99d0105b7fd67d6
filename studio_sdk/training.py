"""`client.training`: built-in trainers run as jobs by Studio's workers.

job = client.training.submit(trainer="tabular_classification", dataset="iris", target="species",
                             hyperparameters={"epochs": 10})
job.wait()              # a tqdm bar of the job's progress; TrainingJobFailedError when it fails
job.run.metrics         # the tracked run: params, metrics, artifacts
print(job.logs())
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from studio_sdk._http import Transport
from studio_sdk.datasets import (
    DatasetVersion,
    ProjectScope,
    _Context,
    poll_job,
)
from studio_sdk.exceptions import NotFoundError, StudioError
from studio_sdk.runs import Run

FINAL_STATUSES = ("finished", "failed", "stopped")


class TrainingJobFailedError(StudioError):
    """A training job ended as failed (or stopped, when waited on); `message` is the job's own error.

    `code` is the job's error code and `job` the `TrainingJob`.
    """

    def __init__(self, message: str, *, code: str | None = None, job: TrainingJob | None = None) -> None:
        super().__init__(message, None, code or None, {"job_id": job.id if job else None})
        self.job = job


class TrainingJob:
    """A handle on a training job: `refresh()`, `wait()`, `logs()`, `stop()` and its tracked `run`."""

    _FIELDS = (
        "run_id",
        "kind",
        "trainer",
        "filename",
        "dataset_version_id",
        "target",
        "hyperparameters",
        "status",
        "progress",
        "message",
        "attempts",
        "max_attempts",
        "error",
        "error_code",
        "queue",
        "gpus",
        "worker_host",
        "created_at",
        "started_at",
        "finished_at",
    )

    def __init__(self, job_id: int, context: _Context) -> None:
        self.id = job_id
        self._context = context
        self.run_id: int | None = None
        self.kind = "trainer"  # or "script" / "notebook"
        self.trainer = ""
        self.filename = ""
        self.dataset_version_id: int | None = None
        self.target: str | None = None
        self.hyperparameters: dict[str, Any] = {}
        self.status = "queued"
        self.progress = 0.0
        self.message = ""
        self.attempts = 0
        self.max_attempts = 0
        self.error = ""
        self.error_code = ""
        self.queue = ""
        self.gpus = 0
        self.worker_host = ""
        self.created_at: str | None = None
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self._log_after = 0
        self._log_text: list[str] = []

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> TrainingJob:
        return cls(data["id"], context)._update(data)

    def _update(self, data: dict) -> TrainingJob:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        return self

    @property
    def is_finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def refresh(self) -> TrainingJob:
        """Reload the job's status, progress, attempts and error from the server."""
        return self._update(self._context.call("GET", f"training-jobs/{self.id}"))

    def stop(self) -> TrainingJob:
        """Ask the job to stop (a queued job stops at once, a running one within seconds)."""
        return self._update(self._context.call("POST", f"training-jobs/{self.id}/stop"))

    @property
    def run(self) -> Run:
        """The run the job records into (fetched fresh: params, metrics, status)."""
        context = self._context
        return Run._from_api(context.call("GET", f"runs/{int(self.run_id)}"), context)

    def logs(self) -> str:
        """All of the job's output so far (reads only what is new since the last call)."""
        while True:
            body = self._context.call(
                "GET", f"runs/{int(self.run_id)}/logs", params={"after": self._log_after}
            )
            chunks = body.get("chunks") or []
            if not chunks:
                break
            self._log_text.extend(chunk["text"] for chunk in chunks)
            self._log_after = body["next"]
        return "".join(self._log_text)

    def wait(
        self, timeout_s: float | None = None, progress: bool = True, *, poll_interval_s: float | None = None
    ) -> TrainingJob:
        """Poll until the job ends; return self, or raise TrainingJobFailedError with the job's error.

        Shows a tqdm bar of the job's progress when `progress` and tqdm is installed. Raises
        JobTimeoutError after `timeout_s` (the job goes on on the server).
        """

        def is_finished(job: TrainingJob) -> bool:
            if job.status in ("failed", "stopped"):
                raise TrainingJobFailedError(
                    job.error or f"The training job {job.id} ended as {job.status}.",
                    code=job.error_code or job.status,
                    job=job,
                )
            return job.status == "finished"

        poll_job(
            self,
            label=f"training job {self.id}",
            timeout_s=timeout_s,
            progress=progress,
            poll_interval_s=poll_interval_s,
            is_finished=is_finished,
        )
        return self

    def __repr__(self) -> str:
        return (
            f"<TrainingJob id={self.id} trainer={self.trainer!r} run={self.run_id} "
            f"status={self.status!r} progress={(self.progress or 0):.0%}>"
        )


class Training:
    """`client.training`: the built-in trainers and training jobs of the client's project."""

    def __init__(self, transport: Transport, scope: ProjectScope) -> None:
        self._http = transport
        self._scope = scope

    def trainers(self) -> list[dict]:
        """Each built-in trainer: name, title, task, data kind and hyperparameters (type, default, range)."""
        return self._scope.context().call("GET", "trainers")

    def submit(
        self,
        trainer: str,
        dataset: Any,
        target: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        experiment: str = "default",
        gpus: int = 0,
        wait: bool = False,
        *,
        name: str = "",
        processes: int = 1,
        queue: str | None = None,
        time_limit_s: int | None = None,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> TrainingJob:
        """Queue a built-in trainer on a dataset version and return its `TrainingJob`.

        `dataset` is a `DatasetVersion`, a version id or a dataset name (its latest version). A bad
        trainer, target or hyperparameter raises ValidationError naming it. With `wait`, waits for the
        job to end (see `TrainingJob.wait`).
        """
        context = self._scope.context()
        body: dict[str, Any] = {
            "trainer": trainer,
            "dataset_version_id": self._version_id(context, dataset),
            "target": target,
            "hyperparameters": dict(hyperparameters or {}),
            "experiment": experiment,
            "name": name,
            "gpus": gpus,
            "processes": processes,
            "queue": queue,
            "time_limit_s": time_limit_s,
        }
        return self._queue(context, "training-jobs", body, wait=wait, progress=progress, timeout_s=timeout_s)

    def submit_script(
        self,
        script: str | os.PathLike,
        dataset: Any = None,
        hyperparameters: dict[str, Any] | None = None,
        experiment: str = "default",
        gpus: int = 0,
        wait: bool = False,
        *,
        name: str = "",
        processes: int = 1,
        queue: str | None = None,
        time_limit_s: int | None = None,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> TrainingJob:
        """Queue your own script (.py) or notebook (.ipynb) as a training job ("script mode").

        The job runs it with the hyperparameters as `--name value` arguments (papermill parameters for
        a notebook), the dataset version's files under $STUDIO_DATASET_DIR, and this SDK configured by
        the environment with a token that lives as long as the job: inside, `studio_sdk.start_run()`
        logs to the job's run. Files written to $STUDIO_MODEL_DIR become the run's `model/` artifacts.
        """
        path = Path(script)
        return self._submit_script(
            {"filename": path.name, "source": path.read_text(encoding="utf-8")},
            dataset=dataset,
            hyperparameters=hyperparameters,
            options={
                "experiment": experiment,
                "name": name,
                "gpus": gpus,
                "processes": processes,
                "queue": queue,
                "time_limit_s": time_limit_s,
            },
            wait=wait,
            progress=progress,
            timeout_s=timeout_s,
        )

    def submit_workspace_notebook(
        self,
        workspace_path: str,
        dataset: Any = None,
        hyperparameters: dict[str, Any] | None = None,
        experiment: str = "default",
        wait: bool = False,
        *,
        name: str = "",
        gpus: int = 0,
        time_limit_s: int | None = None,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> TrainingJob:
        """Queue a script or notebook from your Studio notebook workspace (e.g. "shared/train.ipynb").

        The server reads the file, so this works from anywhere, not only from inside the lab.
        """
        return self._submit_script(
            {"workspace_path": workspace_path},
            dataset=dataset,
            hyperparameters=hyperparameters,
            options={"experiment": experiment, "name": name, "gpus": gpus, "time_limit_s": time_limit_s},
            wait=wait,
            progress=progress,
            timeout_s=timeout_s,
        )

    def _submit_script(
        self,
        code: dict[str, Any],
        *,
        dataset: Any,
        hyperparameters: dict[str, Any] | None,
        options: dict[str, Any],
        wait: bool,
        progress: bool,
        timeout_s: float | None,
    ) -> TrainingJob:
        context = self._scope.context()
        body: dict[str, Any] = {
            **code,
            "dataset_version_id": None if dataset is None else self._version_id(context, dataset),
            "hyperparameters": dict(hyperparameters or {}),
            **options,
        }
        return self._queue(
            context, "training-jobs/script", body, wait=wait, progress=progress, timeout_s=timeout_s
        )

    @staticmethod
    def _queue(
        context: _Context,
        path: str,
        body: dict[str, Any],
        *,
        wait: bool,
        progress: bool,
        timeout_s: float | None,
    ) -> TrainingJob:
        job = TrainingJob._from_api(context.call("POST", path, json=body), context)
        if wait:
            job.wait(timeout_s=timeout_s, progress=progress)
        return job

    def job(self, job_id: int) -> TrainingJob:
        context = self._scope.context()
        return TrainingJob._from_api(context.call("GET", f"training-jobs/{int(job_id)}"), context)

    def jobs(self) -> list[TrainingJob]:
        """The project's training jobs, newest first."""
        context = self._scope.context()
        return [TrainingJob._from_api(item, context) for item in context.paginate("training-jobs")]

    @staticmethod
    def _version_id(context: _Context, dataset: Any) -> int:
        if isinstance(dataset, DatasetVersion):
            return dataset.id
        if isinstance(dataset, bool):
            raise TypeError("expected a DatasetVersion, a version id or a dataset name, not a bool")
        if isinstance(dataset, int):
            return dataset
        if isinstance(dataset, str):
            page = context.call("GET", "datasets", params={"name": dataset})
            if page["count"] == 0:
                raise NotFoundError(
                    f"No dataset named {dataset!r} in this project.",
                    status=404,
                    code="not_found",
                    detail={"name": dataset},
                )
            latest = page["results"][0].get("latest_version_id")
            if latest is None:
                raise NotFoundError(f"Dataset {dataset!r} has no versions yet.", status=404, code="not_found")
            return int(latest)
        raise TypeError(
            f"expected a DatasetVersion, a version id or a dataset name, not {type(dataset).__name__}"
        )
