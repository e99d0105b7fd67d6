"""What the training benchmarks share: a generated tabular dataset registered as a version, and jobs.

The dataset is scikit-learn's `make_classification` (numbers only, 3 classes, a fixed seed), written
as Parquet and stored as a dataset version the way an import leaves it (file in the artifact store,
schema from `datasets.ingest.infer_schema`). Jobs go through `training.jobs.training_job_submit`, the
service the Train form and the API call, to a real Celery worker.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

SEED = 7
FEATURES = 20
TARGET = "label"


def write_dataset(path: Path, rows: int, seed: int = SEED) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=rows,
        n_features=FEATURES,
        n_informative=12,
        n_redundant=4,
        n_classes=3,
        random_state=seed,
    )
    frame = pd.DataFrame(features.astype(np.float64), columns=[f"x{index}" for index in range(FEATURES)])
    frame[TARGET] = [f"class_{value}" for value in labels]
    frame.to_parquet(path, index=False)


def submit(studio, version, hyperparameters: dict[str, Any], *, experiment: str):
    from training.jobs import training_job_submit

    return training_job_submit(
        user=studio.user,
        project=studio.project,
        trainer="tabular_classification",
        dataset_version=version,
        target=TARGET,
        hyperparameters=hyperparameters,
        experiment=experiment,
    )


def wait_finished(studio, job_id: int, *, timeout_s: float, poll_s: float = 0.05):
    """Poll the job's row until it is final; raise with the worker's log if it did not finish."""
    from training.job_models import JobStatus, TrainingJob

    final = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = TrainingJob.objects.select_related("run").get(pk=job_id)
        if job.status in final:
            if job.status != JobStatus.FINISHED:
                raise RuntimeError(f"job {job_id} {job.status}: {job.error}\n{studio.log_tail('worker')}")
            return job
        time.sleep(poll_s)
    raise RuntimeError(f"job {job_id} did not finish in {timeout_s} s:\n{studio.log_tail('worker')}")


def delete_runs(project) -> None:
    """Delete the benchmark's runs: a run protects its dataset version, which the cleanup deletes."""
    from training.models import Run

    Run.objects.filter(project=project).delete()


def epoch_seconds(moment: datetime) -> float:
    return moment.timestamp()


def latency(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(float(np.percentile(values, 50)), 3),
        "p95_s": round(float(np.percentile(values, 95)), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }
