"""Issue 4, Speed: the same training loop through Studio and as a plain Python script, ≤ 1.10× wall time.

The loop: the built-in `tabular_classification` trainer (an MLP, 20 epochs, batch 64, seed 7) on a
generated 135,000-row dataset (`bench.training_common`), sized so that the plain script takes about
30 s on the 2-core benchmark machine.

- Studio: `training_job_submit` (the service behind the Train form and the API) queues the job; a
  real prefork Celery worker claims it and supervises `python -m training.runner` in a child process
  (heartbeat, log pump, system metrics, checkpoints into the artifact store, metrics into PostgreSQL,
  the model uploaded as artifacts). Wall time: submit → the job's `finished_at`.
- Plain: `python -m bench.training_plain` in a subprocess: the same trainer with the in-memory
  `RecordingContext` (no Django, no database, no queue). Wall time: start → exit of the process.

Both pay interpreter start and imports, and both train with one torch thread (`STUDIO_TORCH_THREADS=1`,
which the runner honours): on a shared 2-core machine, two OpenMP threads stall whenever another
process takes a core (measured here: the same plain run took 15 s, 40 s and 160 s). The two take
turns, `REPEATS` times each, after one small warm-up job (a deployed worker is warm). The goal compares
the best (least disturbed) wall time of each side; medians and the CPU time each side used (the
plain process; the worker's pool process and, through its waited-for children, the training child)
are reported beside it; CPU time grows far less than wall time with other load. Same seed, same
data: the final validation accuracy of both is reported and must match.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench._studio import ROOT, register_version, running_studio, setup_django
from bench.common import markdown_table
from bench.training_common import (
    SEED,
    TARGET,
    delete_runs,
    epoch_seconds,
    submit,
    wait_finished,
    write_dataset,
)

TITLE = "Training overhead: the same tabular MLP through a Studio job vs a plain Python script"
GOAL_RATIO = 1.10
ROWS, QUICK_ROWS = 135_000, 2_000
EPOCHS, QUICK_EPOCHS = 20, 2
REPEATS, QUICK_REPEATS = 3, 1
JOB_TIMEOUT_S = 600


def hyperparameters(epochs: int) -> dict[str, Any]:
    return {"epochs": epochs, "batch_size": 64, "hidden_layers": [64, 32], "seed": SEED}


def run(*, quick: bool = False) -> dict[str, Any]:
    # Read by the runner (the worker inherits it) and by the plain script; restored for other benchmarks.
    previous = os.environ.get("STUDIO_TORCH_THREADS")
    os.environ["STUDIO_TORCH_THREADS"] = "1"
    try:
        return _measure(quick=quick)
    finally:
        if previous is None:
            os.environ.pop("STUDIO_TORCH_THREADS", None)
        else:
            os.environ["STUDIO_TORCH_THREADS"] = previous


def _measure(*, quick: bool) -> dict[str, Any]:
    rows = QUICK_ROWS if quick else ROWS
    epochs = QUICK_EPOCHS if quick else EPOCHS
    repeats = QUICK_REPEATS if quick else REPEATS
    hp = hyperparameters(epochs)
    setup_django()
    with tempfile.TemporaryDirectory(prefix="studio-bench-overhead-") as folder:
        path = Path(folder) / "classification.parquet"
        write_dataset(path, rows)
        plain, studio_runs = [], []
        with running_studio(worker=True, prefix="bench-overhead") as studio:
            version = register_version(user=studio.user, project=studio.project, path=path, name="overhead")
            warm_up = submit(studio, version, {**hp, "epochs": 1}, experiment="warm-up")
            wait_finished(studio, warm_up.pk, timeout_s=JOB_TIMEOUT_S)
            try:
                for index in range(repeats):
                    plain.append(run_plain(path, version.columns, hp, Path(folder) / f"plain-{index}"))
                    studio_runs.append(run_studio(studio, version, hp))
            finally:
                delete_runs(studio.project)
    plain_median = statistics.median(item["wall_s"] for item in plain)
    studio_median = statistics.median(item["wall_s"] for item in studio_runs)
    plain_best = min(item["wall_s"] for item in plain)
    studio_best = min(item["wall_s"] for item in studio_runs)
    ratio = studio_best / plain_best
    cpu_ratio = statistics.median(item["cpu_s"] for item in studio_runs) / statistics.median(
        item["cpu_s"] for item in plain
    )
    same = all(
        abs(s["val_accuracy"] - p["final_metrics"]["val_accuracy"]) < 1e-9
        for s, p in zip(studio_runs, plain, strict=True)
    )
    return {
        "goal": (
            f"Studio wall time ≤ {GOAL_RATIO:.2f}× the plain script's (best of {repeats} each), "
            "confirmed by the CPU time (medians)"
        ),
        # Sequential runs on a shared machine: a wall-time "win" can come from the other side's bad
        # luck. CPU time (which grows far less with other load) must agree before the goal counts.
        "goal_met": ratio <= GOAL_RATIO and cpu_ratio <= GOAL_RATIO,
        "headline": (
            f"best plain {plain_best:.1f} s, Studio {studio_best:.1f} s: {ratio:.3f}× "
            f"({(studio_best - plain_best):+.1f} s); CPU time {cpu_ratio:.3f}×; medians "
            f"{plain_median:.1f} / {studio_median:.1f} s"
        ),
        "ratio": round(ratio, 4),
        "cpu_ratio": round(cpu_ratio, 4),
        "median_ratio": round(studio_median / plain_median, 4),
        "plain_best_s": round(plain_best, 3),
        "studio_best_s": round(studio_best, 3),
        "plain_median_s": round(plain_median, 3),
        "studio_median_s": round(studio_median, 3),
        "torch_threads": 1,
        "same_val_accuracy": same,
        "dataset": {
            "rows": rows,
            "features": 20,
            "classes": 3,
            "target": TARGET,
            "generator": "make_classification",
        },
        "trainer": "tabular_classification",
        "hyperparameters": hp,
        "repeats": repeats,
        "plain": plain,
        "studio": studio_runs,
    }


def run_plain(path: Path, schema: dict, hp: dict, output_dir: Path) -> dict[str, Any]:
    arguments = {
        "trainer": "tabular_classification",
        "parquet_path": str(path),
        "schema": schema,
        "target": TARGET,
        "hyperparameters": hp,
        "output_dir": str(output_dir),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.training_plain", json.dumps(arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"the plain script failed:\n{completed.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        **json.loads(completed.stdout.strip().splitlines()[-1]),
    }


def run_studio(studio, version, hp: dict) -> dict[str, Any]:
    from training.models import LatestMetric, Metric

    pool = _pool_process(studio)
    supervisor_before, child_before = _cpu_split(pool)
    submitted = time.time()
    job = submit(studio, version, hp, experiment="overhead")
    job = wait_finished(studio, job.pk, timeout_s=JOB_TIMEOUT_S)
    time.sleep(0.5)  # the pool process has reaped the child by now: its CPU is in children_*
    supervisor_after, child_after = _cpu_split(pool)
    supervisor_cpu, child_cpu = supervisor_after - supervisor_before, child_after - child_before
    latest = {item.key: item.value for item in LatestMetric.objects.filter(run_id=job.run_id)}
    return {
        "job_id": job.pk,
        "wall_s": round(epoch_seconds(job.finished_at) - submitted, 3),
        "cpu_s": round(supervisor_cpu + child_cpu, 3),
        "supervisor_cpu_s": round(supervisor_cpu, 3),
        "child_cpu_s": round(child_cpu, 3),
        "queued_s": round(epoch_seconds(job.started_at) - submitted, 3),
        "supervised_s": round(epoch_seconds(job.finished_at) - epoch_seconds(job.started_at), 3),
        "val_accuracy": latest.get("val_accuracy"),
        "metric_points": Metric.objects.filter(run_id=job.run_id).exclude(key__startswith="system/").count(),
        "artifacts": job.run.artifacts.count(),
    }


def _pool_process(studio) -> psutil.Process:
    """The prefork worker's pool process (concurrency 1): it runs the supervisor and waits the child."""
    children = psutil.Process(studio.worker.pid).children()
    if len(children) != 1:
        raise RuntimeError(f"expected one pool process, found {len(children)}")
    return children[0]


def _cpu_split(process: psutil.Process) -> tuple[float, float]:
    """(the pool process's own CPU seconds: the supervisor; its reaped children's: the training child)."""
    times = process.cpu_times()
    return times.user + times.system, times.children_user + times.children_system


def markdown(result: dict[str, Any]) -> str:
    hp = result["hyperparameters"]
    data = result["dataset"]
    lines = [
        f"Trainer `{result['trainer']}` on {data['rows']:,} rows x {data['features']} numeric features "
        f"({data['classes']} classes, scikit-learn `{data['generator']}`, seed {hp['seed']}); "
        f"{hp['epochs']} epochs, batch {hp['batch_size']}, hidden layers {hp['hidden_layers']}.",
        "",
        "*Plain*: `python -m bench.training_plain` in a subprocess, the trainer with the in-memory "
        "`RecordingContext`; wall time from start to exit. *Studio*: `training_job_submit` → Redis → a "
        "prefork Celery worker (warm: one small job ran first) → `python -m training.runner` as a child "
        "process with heartbeat, log pump, system metrics, checkpoints each epoch and the model uploaded "
        "as artifacts; wall time from submit to the job's `finished_at`. The two took turns.",
        "",
    ]
    rows = []
    for index, (plain, studio) in enumerate(zip(result["plain"], result["studio"], strict=True), start=1):
        rows.append(
            [
                index,
                f"{plain['wall_s']:.2f}",
                f"{plain['import_s']:.2f}",
                f"{plain['fit_s']:.2f}",
                f"{plain['cpu_s']:.2f}",
                f"{studio['wall_s']:.2f}",
                f"{studio['cpu_s']:.2f} ({studio['supervisor_cpu_s']:.2f} + {studio['child_cpu_s']:.2f})",
                f"{studio['queued_s']:.2f}",
                f"{studio['supervised_s']:.2f}",
                f"{studio['wall_s'] / plain['wall_s']:.3f}",
                f"{plain['final_metrics']['val_accuracy']:.4f} / {studio['val_accuracy']:.4f}",
            ]
        )
    header = [
        "#",
        "plain s",
        "plain imports s",
        "plain fit s",
        "plain CPU s",
        "Studio s",
        "Studio CPU s (supervisor + child)",
        "Studio queued s",
        "Studio child supervised s",
        "ratio",
        "val_accuracy plain / Studio",
    ]
    lines.append(markdown_table(header, rows))
    lines += [
        "",
        f"Best: plain {result['plain_best_s']:.2f} s, Studio {result['studio_best_s']:.2f} s, ratio "
        f"**{result['ratio']:.3f}** (goal ≤ {GOAL_RATIO:.2f}). Medians: plain "
        f"{result['plain_median_s']:.2f} s, Studio {result['studio_median_s']:.2f} s "
        f"({result['median_ratio']:.3f}×). CPU time (medians): "
        f"{result['cpu_ratio']:.3f}×. One torch thread on both sides. Same final validation accuracy in "
        f"every pair: {'yes' if result['same_val_accuracy'] else '**no**'}. Studio stored "
        f"{result['studio'][0]['metric_points']} metric points (without system metrics) and "
        f"{result['studio'][0]['artifacts']} artifacts per run.",
    ]
    return "\n".join(lines)
