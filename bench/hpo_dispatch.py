"""Issue 5, Speed: trials per hour through Studio with 2 worker processes vs in-process Optuna, 2 threads.

The same objective on both sides: the built-in `tabular_classification` trainer on a generated
60,000-row dataset (`bench.training_common`), `EPOCHS` epochs, one torch thread per trial, with the
learning rate and dropout drawn by a seeded random sampler (random, so both sides train comparable
configurations; the sampler is not what is measured).

- Studio: `training.studies.study_create` (the service behind the study form and the API) with
  parallelism 2; a real prefork Celery worker with 2 processes runs `training.study_step` (ask) and
  each trial as a training job (`training.runner` child: heartbeat, logs, checkpoints, metrics in
  PostgreSQL, model artifacts, intermediate values to Optuna's RDB storage). Time: create → the study's
  `finished_at`.
- Plain: `optuna.create_study(...).optimize(objective, n_trials, n_jobs=2)` in this process, in
  memory, the objective fitting the same trainer with the in-memory `RecordingContext`.

Goal: Studio's trials per hour ≥ 0.8 × plain Optuna's. The sides run one after the other, plain first,
then Studio, then plain again; the plain figure is the mean of its two runs (the machine is shared).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._studio import register_version, running_studio, setup_django
from bench.common import markdown_table
from bench.training_common import TARGET, delete_runs, write_dataset

TITLE = "HPO dispatch: trials/hour through Studio (2 worker processes) vs in-process Optuna (2 threads)"
ROWS = 60_000
EPOCHS = 12
TRIALS = 8
SEARCH_SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.3},
]
FIXED = {"epochs": EPOCHS, "batch_size": 64, "hidden_layers": [64, 32], "seed": 7}
TIMEOUT_S = 1800


def run(*, quick: bool) -> dict[str, Any]:
    setup_django()
    rows, trials = (5_000, 2) if quick else (ROWS, TRIALS)
    epochs = 2 if quick else EPOCHS
    fixed = {**FIXED, "epochs": epochs}
    previous = os.environ.get("STUDIO_TORCH_THREADS")
    os.environ["STUDIO_TORCH_THREADS"] = "1"  # the trial children, like the plain threads, use one each
    try:
        with tempfile.TemporaryDirectory(prefix="studio-bench-hpo-dispatch-") as folder:
            path = Path(folder) / "data.parquet"
            write_dataset(path, rows)
            plain_first = _plain(path, trials=trials, fixed=fixed, folder=Path(folder))
            with running_studio(worker=True, prefix="bench-hpo", concurrency=2) as studio:
                version = register_version(user=studio.user, project=studio.project, path=path, name="hpo")
                try:
                    studio_side = _studio(studio, version, trials=trials, fixed=fixed)
                finally:
                    delete_runs(studio.project)
            plain_second = _plain(path, trials=trials, fixed=fixed, folder=Path(folder))
    finally:
        if previous is None:
            os.environ.pop("STUDIO_TORCH_THREADS", None)
        else:
            os.environ["STUDIO_TORCH_THREADS"] = previous
    plain_per_hour = statistics.fmean([plain_first["trials_per_hour"], plain_second["trials_per_hour"]])
    ratio = studio_side["trials_per_hour"] / plain_per_hour
    return {
        "title": TITLE,
        "goal": "Studio's trials per hour ≥ 0.8 × in-process Optuna's (2 workers vs 2 threads)",
        "goal_met": ratio >= 0.8,
        "headline": (
            f"Studio {studio_side['trials_per_hour']:.0f} trials/h vs plain Optuna {plain_per_hour:.0f} "
            f"trials/h: {ratio:.2f}x"
        ),
        "rows": rows,
        "epochs": epochs,
        "trials": trials,
        "fixed": fixed,
        "search_space": SEARCH_SPACE,
        "plain_runs": [plain_first, plain_second],
        "plain_trials_per_hour": plain_per_hour,
        "studio": studio_side,
        "ratio": ratio,
    }


def _plain(path: Path, *, trials: int, fixed: dict, folder: Path) -> dict[str, Any]:
    import optuna
    import torch

    from training.trainers import get_trainer
    from training.trainers.base import TrainingData
    from training.trainers.recording import RecordingContext

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    import pyarrow.parquet as pq

    schema = {name: "numeric" for name in pq.read_schema(path).names if name != TARGET} | {
        TARGET: "categorical"
    }
    counter = {"n": 0}
    lock = threading.Lock()

    def objective(trial) -> float:
        params = {
            item["name"]: trial.suggest_float(
                item["name"], item["low"], item["high"], log=bool(item.get("log"))
            )
            for item in SEARCH_SPACE
        }
        with lock:
            counter["n"] += 1
            number = counter["n"]
        context = RecordingContext(folder / f"plain-{time.monotonic_ns()}-{number}", seed=7)
        data = TrainingData(parquet_path=path, schema=schema)
        final = get_trainer("tabular_classification").fit(
            data, target=TARGET, hyperparameters={**fixed, **params}, context=context
        )
        return float(final.get("val_accuracy", context.history("val_accuracy")[-1][1]))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=2)
    seconds = time.perf_counter() - started
    complete = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    return {
        "seconds": seconds,
        "complete": len(complete),
        "best": study.best_value,
        "trials_per_hour": len(complete) / seconds * 3600,
    }


def _studio(studio, version, *, trials: int, fixed: dict) -> dict[str, Any]:
    from training.studies import study_create
    from training.study_models import Study, StudyStatus, TrialState

    started = time.perf_counter()
    study = study_create(
        user=studio.user,
        project=studio.project,
        name=f"dispatch-{time.time_ns()}",
        objective_metric="val_accuracy",
        direction="maximize",
        search_space=SEARCH_SPACE,
        trainer="tabular_classification",
        dataset_version=version,
        target=TARGET,
        hyperparameters=fixed,
        sampler="random",
        seed=1,
        pruner="none",
        n_trials=trials,
        parallelism=2,
    )
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        study = Study.objects.get(pk=study.pk)
        if study.status not in (StudyStatus.RUNNING, StudyStatus.PAUSED):
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if study.status != StudyStatus.FINISHED:
        raise RuntimeError(
            f"study {study.pk} ended {study.status}: {study.message}\n{studio.log_tail('worker')}"
        )
    rows = list(study.trials.order_by("number"))
    complete = [trial for trial in rows if trial.state == TrialState.COMPLETE]
    trial_seconds = [
        (trial.job.finished_at - trial.job.created_at).total_seconds()
        for trial in rows
        if trial.job and trial.job.finished_at
    ]
    return {
        "seconds": seconds,
        "complete": len(complete),
        "states": [trial.state for trial in rows],
        "best": max((trial.value for trial in complete if trial.value is not None), default=None),
        "trial_job_seconds_median": statistics.median(trial_seconds) if trial_seconds else None,
        "trials_per_hour": len(complete) / seconds * 3600,
    }


def markdown(result: dict[str, Any]) -> str:
    plain = result["plain_runs"]
    studio = result["studio"]
    rows = [
        [
            "plain Optuna, `n_jobs=2` (before Studio)",
            plain[0]["complete"],
            f"{plain[0]['seconds']:.1f}",
            f"{plain[0]['trials_per_hour']:.0f}",
            f"{plain[0]['best']:.4f}",
        ],
        [
            "Studio, 2 worker processes, parallelism 2",
            studio["complete"],
            f"{studio['seconds']:.1f}",
            f"**{studio['trials_per_hour']:.0f}**",
            f"{studio['best']:.4f}" if studio["best"] is not None else "—",
        ],
        [
            "plain Optuna, `n_jobs=2` (after Studio)",
            plain[1]["complete"],
            f"{plain[1]['seconds']:.1f}",
            f"{plain[1]['trials_per_hour']:.0f}",
            f"{plain[1]['best']:.4f}",
        ],
    ]
    lines = [
        f"Objective: `tabular_classification` on {result['rows']:,} generated rows (20 numeric features, 3 "
        f"classes), {result['epochs']} epochs, fixed {result['fixed']}; `lr` (log) and `dropout` drawn by a "
        f"seeded random sampler; one torch thread per trial; {result['trials']} trials per side.",
        "",
        markdown_table(["side", "complete trials", "seconds", "trials/hour", "best val_accuracy"], rows),
        "",
        f"Studio's median trial job (submit → finished): {studio['trial_job_seconds_median']:.1f} s. "
        f"Ratio: **{result['ratio']:.2f}×** plain Optuna's mean "
        f"{result['plain_trials_per_hour']:.0f} trials/h (goal ≥ 0.8×).",
    ]
    return "\n".join(lines) + "\n"
