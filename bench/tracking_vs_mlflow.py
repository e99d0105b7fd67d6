"""Issue 4, Speed: experiment tracking side by side with an MLflow 3 tracking server, in one run.

Studio: uvicorn (`studio.asgi:application`, one process) on PostgreSQL, as `bench._studio` starts it.
MLflow: `mlflow server` (one worker) on a SQLite file, in its own venv (var/bench/mlflow-venv, made on
first use with `pip install 'mlflow>=3,<4'` and reused), on 127.0.0.1. The MLflow client runs in that
venv too (`bench/mlflow_client.py`, in a subprocess); Studio's client is `studio_sdk` in this process.

a. Ingestion from one process: 100,000 points of one metric, one `log_metric` call per point.
   Studio's SDK buffers them and posts batches from a background thread; the clock stops when
   `run.flush()` returns (every point stored), and the points in the database are counted. MLflow:
   `log_metric` (synchronous, its default; stopped after 10 s), `log_metric(synchronous=False)` (its
   own background batching; flushed) and `log_batch` (1,000 points per call, its limit); each then
   counts what its server stored (`get_metric_history`).
b. Reading that 100k-point metric for a chart: Studio's `GET .../runs/<id>/metrics/<key>?max_points=1000`
   (the run page's 1,000 points, min/max per bucket server-side); MLflow's UI call
   (`ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`, 320 points, as its chart asks) and the full
   history (`MlflowClient.get_metric_history`).
c. Runs search over 10,000 runs (the same runs, params and metric values in both): filtered by a
   metric and a param and ordered by a metric, page of 100; and ordered by a metric without a filter.
   Studio: `GET .../runs?experiment=&filter=&order_by=&page_size=100` (the runs list's API);
   MLflow: `MlflowClient.search_runs(max_results=100)`. The runs are inserted in bulk on both sides
   (Studio: `bulk_create` of runs, param rows, latest metrics and points; MLflow: its SQLAlchemy
   models in one session); the first page of each case must name the same runs in the same order.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench._studio import ROOT, _free_port, running_studio, setup_django, stop_process_tree
from bench.common import markdown_table
from bench.training_common import delete_runs

TITLE = (
    "Experiment tracking vs an MLflow 3 server: metric ingestion, 100k-point chart read, search of 10k runs"
)
MLFLOW_VENV = ROOT / "var" / "bench" / "mlflow-venv"
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
MLFLOW_SCRIPT = ROOT / "bench" / "mlflow_client.py"
GOAL_POINTS_PER_S = 20_000
GOAL_READ_S = 0.100
GOAL_SEARCH_P95_S = 0.100
KEY = "loss"
SEED = 11
CHART_POINTS = 1000  # training.views.runs.CHART_POINTS: what the run page asks for
MLFLOW_UI_POINTS = 320  # what MLflow's chart asks get-history-bulk-interval for

SIZES = {
    False: {
        "points": 100_000,
        "ingest_repeats": 3,
        "mlflow_log_metric_s": 10,
        "mlflow_async_points": 1_000,
        "reads": 50,
        "full_reads": 3,
        "runs": 10_000,
        "searches": 30,
    },
    True: {
        "points": 3_000,
        "ingest_repeats": 1,
        "mlflow_log_metric_s": 1,
        "mlflow_async_points": 200,
        "reads": 5,
        "full_reads": 1,
        "runs": 300,
        "searches": 5,
    },
}
WARMUPS = 3
PAGE = 100
SEARCH_CASES = {
    "metric_and_param_filter": {
        "filter": "metrics.val_accuracy > 0.9 and params.optimizer = 'adam'",
        "order_by": "metrics.val_accuracy DESC",
    },
    "metric_and_numeric_param_filter": {
        "filter": "metrics.val_loss < 0.5 and params.lr = '0.01'",
        "order_by": "metrics.val_accuracy DESC",
    },
    "order_by_metric_no_filter": {"filter": "", "order_by": "metrics.val_loss ASC"},
}


def run(*, quick: bool = False) -> dict[str, Any]:
    sizes = SIZES[quick]
    setup_django()
    python = ensure_mlflow_venv()
    mlflow_version = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    specs = run_specs(sizes["runs"])
    with tempfile.TemporaryDirectory(prefix="studio-bench-mlflow-") as folder:
        folder = Path(folder)
        runs_file = folder / "runs.json"
        runs_file.write_text(json.dumps(specs))
        with running_mlflow(python, folder) as mlflow_url, running_studio(prefix="bench-tracking") as studio:
            try:
                ingestion = {
                    "studio": studio_ingest(studio, sizes),
                    "mlflow": mlflow_ingest(python, mlflow_url, sizes),
                }
                reads = {
                    "studio": studio_read(studio, ingestion["studio"]["runs"][0]["run_id"], sizes),
                    "mlflow": mlflow_call(
                        python,
                        "history",
                        {
                            "tracking_uri": mlflow_url,
                            "run_id": ingestion["mlflow"]["log_batch"]["run_id"],
                            "key": KEY,
                            "ui_points": MLFLOW_UI_POINTS,
                            "warmups": WARMUPS,
                            "ui_requests": sizes["reads"],
                            "full_requests": sizes["full_reads"],
                        },
                    ),
                }
                search = {
                    "studio": studio_search(studio, specs, sizes),
                    "mlflow": mlflow_search(python, mlflow_url, folder, runs_file, sizes),
                }
            finally:
                delete_runs(studio.project)
    for name, case in search["studio"]["cases"].items():
        case["same_page_as_mlflow"] = case["page_names"] == search["mlflow"]["cases"][name]["page_names"]
    studio_rate = statistics.median(item["points_per_s"] for item in ingestion["studio"]["runs"])
    ingestion["studio"]["median_points_per_s"] = round(studio_rate, 1)
    nothing_lost = all(item["points_stored"] == item["points_logged"] for item in ingestion["studio"]["runs"])
    read = reads["studio"]
    worst_search = max(search["studio"]["cases"], key=lambda name: search["studio"]["cases"][name]["p95_s"])
    worst_p95 = search["studio"]["cases"][worst_search]["p95_s"]
    goals = {
        "ingestion": studio_rate >= GOAL_POINTS_PER_S and nothing_lost,
        "chart_read": read["p95_s"] <= GOAL_READ_S,
        "search": all(case["p95_s"] <= GOAL_SEARCH_P95_S for case in search["studio"]["cases"].values()),
    }
    return {
        "goal": (
            f"Studio: ingestion ≥ {GOAL_POINTS_PER_S:,} points/s with nothing lost; "
            f"a {sizes['points']:,}-point "
            f"chart read ≤ {GOAL_READ_S * 1000:.0f} ms (p95); search p95 ≤ {GOAL_SEARCH_P95_S * 1000:.0f} ms "
            "in every case"
        ),
        "goal_met": all(goals.values()),
        "goals": goals,
        "headline": (
            f"ingest {studio_rate:,.0f} points/s (MLflow log_batch "
            f"{ingestion['mlflow']['log_batch']['points_per_s']:,.0f}); chart read p50/p95 "
            f"{read['p50_s'] * 1000:.0f}/{read['p95_s'] * 1000:.0f} ms (MLflow UI call p50 "
            f"{reads['mlflow']['ui_call']['p50_s'] * 1000:.0f} ms); search p95 ≤ {worst_p95 * 1000:.0f} ms "
            f"(worst: {worst_search})"
        ),
        "mlflow_version": mlflow_version,
        "sizes": sizes,
        "ingestion": ingestion,
        "reads": reads,
        "search": search,
    }


# --- MLflow: its venv, its server, its client -------------------------------------------------------


def ensure_mlflow_venv() -> Path:
    """Return the MLflow venv's python, creating the venv (and installing MLflow 3) when missing."""
    python = MLFLOW_VENV / "bin" / "python"
    if python.exists() and _imports_mlflow(python):
        return python
    base = shutil.which("python3.11") or sys.executable
    print(f"   creating {MLFLOW_VENV} and installing {MLFLOW_REQUIREMENT} (once)", flush=True)
    MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", MLFLOW_REQUIREMENT], check=True, timeout=1800
    )
    if not _imports_mlflow(python):
        raise RuntimeError(f"{MLFLOW_VENV}: mlflow does not import after installing it")
    return python


def _imports_mlflow(python: Path) -> bool:
    return (
        subprocess.run([str(python), "-c", "import mlflow"], capture_output=True, check=False).returncode == 0
    )


@contextmanager
def running_mlflow(python: Path, folder: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "mlflow-server.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    # Its job runner (a pool of huey consumers for GenAI jobs) has no part in tracking: off, so that
    # its processes do not share the 2 cores with the measurements.
    environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(python.parent / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{folder / 'mlflow.db'}",
                "--default-artifact-root",
                str(folder / "mlflow-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=folder,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {server.returncode}:\n{log.read_text()[-4000:]}"
                )
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server was not ready after 240 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process_tree(server)


def mlflow_call(python: Path, command: str, arguments: dict, timeout_s: float = 1800) -> dict:
    completed = subprocess.run(
        [str(python), str(MLFLOW_SCRIPT), command, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"mlflow_client {command} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def mlflow_ingest(python: Path, url: str, sizes: dict) -> dict:
    common = {"tracking_uri": url, "experiment": "ingest", "key": KEY, "points": sizes["points"]}
    return {
        "log_metric": mlflow_call(
            python, "ingest", {**common, "mode": "log_metric", "max_seconds": sizes["mlflow_log_metric_s"]}
        ),
        # Its queue sends the points about as fast as synchronous calls (measured: ~60 points/s), and
        # waiting for 100k of them would take half an hour: fewer points, all flushed and counted.
        "log_metric_async": mlflow_call(
            python,
            "ingest",
            {
                **common,
                "mode": "log_metric_async",
                "points": sizes["mlflow_async_points"],
                "max_seconds": 600,
            },
        ),
        "log_batch": mlflow_call(python, "ingest", {**common, "mode": "log_batch", "max_seconds": 600}),
    }


def mlflow_search(python: Path, url: str, folder: Path, runs_file: Path, sizes: dict) -> dict:
    created = mlflow_call(
        python,
        "create_runs",
        {
            "database_uri": f"sqlite:///{folder / 'mlflow.db'}",
            "runs_file": str(runs_file),
            "experiment": "search",
            "artifact_root": str(folder / "mlflow-artifacts"),
        },
    )
    searched = mlflow_call(
        python,
        "search",
        {
            "tracking_uri": url,
            "experiment_id": created["experiment_id"],
            "cases": SEARCH_CASES,
            "page": PAGE,
            "warmups": WARMUPS,
            "requests": sizes["searches"],
        },
    )
    return {"create_runs_s": created["seconds"], "runs": created["runs"], **searched}


# --- Studio ---------------------------------------------------------------------------------------


def studio_ingest(studio, sizes: dict) -> dict:
    from studio_sdk import Client
    from training.models import Metric

    points = sizes["points"]
    values = [1.0 / (1 + index) for index in range(points)]
    results = []
    with Client(url=studio.url, token=studio.token, project=studio.project.pk) as client:
        for repeat in range(sizes["ingest_repeats"]):
            run = client.runs.start(experiment="ingest", name=f"ingest-{repeat}")
            started = time.perf_counter()
            for step in range(points):
                run.log_metric(KEY, values[step], step=step)
            logged = time.perf_counter() - started
            run.flush()
            seconds = time.perf_counter() - started
            run.end()
            stored = Metric.objects.filter(run_id=run.id, key=KEY).count()
            results.append(
                {
                    "run_id": run.id,
                    "points_logged": points,
                    "points_stored": stored,
                    "log_calls_s": round(logged, 3),
                    "seconds": round(seconds, 3),
                    "points_per_s": round(stored / seconds, 1),
                }
            )
    return {"runs": results}


def studio_read(studio, run_id: int, sizes: dict) -> dict:
    session = studio.session()
    url = f"{studio.api}/runs/{run_id}/metrics/{KEY}"

    def ask() -> dict:
        response = session.get(url, params={"max_points": CHART_POINTS}, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
        return response.json()

    for _ in range(WARMUPS):
        body = ask()
    seconds = []
    for _ in range(sizes["reads"]):
        started = time.perf_counter()
        body = ask()
        seconds.append(time.perf_counter() - started)
    return {
        "max_points": CHART_POINTS,
        "total_points": body["total_points"],
        "points_returned": len(body["steps"]),
        "downsampled": body["downsampled"],
        **_latency(seconds),
    }


def run_specs(count: int, seed: int = SEED) -> list[dict]:
    """The runs both trackers hold: a small grid of params and random final metrics (no ties)."""
    rng = random.Random(seed)
    specs = []
    for index in range(count):
        specs.append(
            {
                "name": f"run-{index:05d}",
                "params": {
                    "lr": rng.choice(["0.1", "0.03", "0.01", "0.003", "0.001"]),
                    "batch_size": rng.choice(["16", "32", "64", "128"]),
                    "optimizer": rng.choice(["adam", "sgd", "adamw"]),
                    "hidden_layers": rng.choice(["[64]", "[64, 32]", "[128, 64]"]),
                    "seed": str(index),
                },
                "metrics": {
                    "val_accuracy": rng.uniform(0.5, 0.99),
                    "val_loss": rng.uniform(0.05, 2.0),
                    "train_loss": rng.uniform(0.05, 2.0),
                },
            }
        )
    return specs


def studio_create_runs(studio, specs: list[dict]) -> tuple[Any, float]:
    """Insert the runs in bulk: the same rows `tracking.run_create` and `run_log_metrics` write."""
    from django.db import transaction
    from django.utils import timezone

    from training import tracking
    from training.models import VALUE_PREFIX_CHARS, LatestMetric, Metric, Run, RunParam, RunStatus

    started = time.perf_counter()
    experiment = tracking.experiment_create(user=studio.user, project=studio.project, name="search")
    now = timezone.now()
    with transaction.atomic():
        runs = Run.objects.bulk_create(
            [
                Run(
                    project=studio.project,
                    experiment=experiment,
                    name=spec["name"],
                    status=RunStatus.FINISHED,
                    params=spec["params"],
                    source="sdk",
                    started_at=now - timedelta(seconds=len(specs) - index),
                    ended_at=now - timedelta(seconds=len(specs) - index) + timedelta(milliseconds=500),
                    created_by=studio.user,
                    created_at=now - timedelta(seconds=len(specs) - index),
                )
                for index, spec in enumerate(specs)
            ],
            batch_size=2000,
        )
        RunParam.objects.bulk_create(
            [
                RunParam(
                    run=run,
                    key=key,
                    value=value,
                    value_prefix=value[:VALUE_PREFIX_CHARS],
                    value_number=tracking.number_or_none(value),
                )
                for run, spec in zip(runs, specs, strict=True)
                for key, value in spec["params"].items()
            ],
            batch_size=5000,
        )
        stamp = int(now.timestamp() * 1000)
        LatestMetric.objects.bulk_create(
            [
                LatestMetric(
                    run=run, key=key, value=value, step=0, timestamp_ms=stamp, min_step=0, point_count=1
                )
                for run, spec in zip(runs, specs, strict=True)
                for key, value in spec["metrics"].items()
            ],
            batch_size=5000,
        )
        Metric.objects.bulk_create(
            [
                Metric(run=run, key=key, value=value, step=0, timestamp_ms=stamp)
                for run, spec in zip(runs, specs, strict=True)
                for key, value in spec["metrics"].items()
            ],
            batch_size=5000,
        )
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give a real database
        cursor.execute("ANALYZE")
    return experiment, time.perf_counter() - started


def studio_search(studio, specs: list[dict], sizes: dict) -> dict:
    experiment, create_s = studio_create_runs(studio, specs)
    session = studio.session()
    url = f"{studio.api}/runs"

    def ask(case: dict) -> dict:
        params = {"experiment": experiment.pk, "order_by": case["order_by"], "page_size": PAGE}
        if case["filter"]:
            params["filter"] = case["filter"]
        response = session.get(url, params=params, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code} for {case}: {response.text[:500]}")
        return response.json()

    cases: dict[str, dict] = {}
    samples: dict[str, list[float]] = {name: [] for name in SEARCH_CASES}
    for name, case in SEARCH_CASES.items():
        for _ in range(WARMUPS):
            body = ask(case)
        cases[name] = {
            **case,
            "matching_runs": body["count"],
            "page_names": [item["name"] for item in body["results"]],
        }
    for _ in range(sizes["searches"]):  # the cases take turns, so that load hits all alike
        for name, case in SEARCH_CASES.items():
            started = time.perf_counter()
            ask(case)
            samples[name].append(time.perf_counter() - started)
    for name in SEARCH_CASES:
        cases[name].update(_latency(samples[name]))
    return {"runs": len(specs), "create_runs_s": round(create_s, 2), "cases": cases}


def _latency(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(float(np.percentile(seconds, 50)), 4),
        "p95_s": round(float(np.percentile(seconds, 95)), 4),
        "max_s": round(max(seconds), 4),
        "min_s": round(min(seconds), 4),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    ingestion, reads, search = result["ingestion"], result["reads"], result["search"]
    lines = [
        f"Studio: uvicorn (one process) on PostgreSQL; `studio_sdk` in the benchmark's process. MLflow "
        f"{result['mlflow_version']}: `mlflow server --workers 1` on SQLite, its own venv; its client in "
        "that venv, in a subprocess. Both on 127.0.0.1, same machine, same run.",
        "",
        f"### a. Metric ingestion from one process ({sizes['points']:,} points of one metric)",
        "",
        "Rate = points stored / seconds from the first call to all points stored (Studio: `flush()` "
        "returned; MLflow: the last call returned, or `flush_async_logging()`). Stored points counted in "
        "the database (Studio) or by `get_metric_history` (MLflow).",
        "",
    ]
    rows = [
        [
            f"Studio SDK `run.log_metric` (background batches), run {index}",
            f"{item['points_logged']:,}",
            f"{item['points_stored']:,}",
            f"{item['seconds']:.2f}",
            f"**{item['points_per_s']:,.0f}**",
        ]
        for index, item in enumerate(ingestion["studio"]["runs"], start=1)
    ]
    labels = {
        "log_metric": "MLflow `log_metric` (synchronous, default)",
        "log_metric_async": "MLflow `log_metric(synchronous=False)`",
        "log_batch": "MLflow `log_batch` (1,000 per call)",
    }
    for mode, label in labels.items():
        item = ingestion["mlflow"][mode]
        rows.append(
            [
                label,
                f"{item['points_sent']:,}",
                f"{item['points_stored']:,}",
                f"{item['seconds']:.2f}",
                f"{item['points_per_s']:,.0f}",
            ]
        )
    lines.append(markdown_table(["client", "points sent", "points stored", "seconds", "points/s"], rows))
    lines += [
        "",
        f"Studio median: **{ingestion['studio']['median_points_per_s']:,.0f} points/s** "
        f"(goal ≥ {GOAL_POINTS_PER_S:,}). MLflow's synchronous `log_metric` was stopped after "
        f"{sizes['mlflow_log_metric_s']} s; its asynchronous queue sends points about as fast as the "
        f"synchronous calls, so it was given {sizes['mlflow_async_points']:,} points (100k would take "
        "about 20 minutes), all flushed and counted.",
        "",
        f"### b. Reading the {sizes['points']:,}-point metric for a chart",
        "",
        f"{WARMUPS} warm-up requests, then {sizes['reads']} timed (full history: {sizes['full_reads']}).",
        "",
    ]
    studio_read_result, mlflow_read = reads["studio"], reads["mlflow"]
    read_rows = [
        [
            f"Studio `GET runs/<id>/metrics/{KEY}?max_points={studio_read_result['max_points']}`",
            f"{studio_read_result['points_returned']:,} (of {studio_read_result['total_points']:,})",
            _ms(studio_read_result["p50_s"]),
            f"**{_ms(studio_read_result['p95_s'])}**",
            _ms(studio_read_result["max_s"]),
        ],
        [
            f"MLflow UI `get-history-bulk-interval` (max_results={MLFLOW_UI_POINTS})",
            f"{mlflow_read['ui_call']['points_returned']:,}",
            _ms(mlflow_read["ui_call"]["p50_s"]),
            _ms(mlflow_read["ui_call"]["p95_s"]),
            _ms(mlflow_read["ui_call"]["max_s"]),
        ],
        [
            "MLflow `get_metric_history` (full)",
            f"{mlflow_read['full_history']['points_returned']:,}",
            _ms(mlflow_read["full_history"]["p50_s"]),
            _ms(mlflow_read["full_history"]["p95_s"]),
            _ms(mlflow_read["full_history"]["max_s"]),
        ],
    ]
    lines.append(markdown_table(["call", "points returned", "p50 ms", "p95 ms", "max ms"], read_rows))
    studio_search_result, mlflow_search_result = search["studio"], search["mlflow"]
    lines += [
        "",
        f"### c. Runs search over {studio_search_result['runs']:,} runs, page of {PAGE}",
        "",
        f"Runs inserted in bulk: Studio {studio_search_result['create_runs_s']:.1f} s "
        "(`bulk_create` of runs, param rows, latest metrics, points), "
        f"MLflow {mlflow_search_result['create_runs_s']:.1f} s (its "
        "SQLAlchemy models in one session; its REST API would take minutes). 5 params and 3 metrics per "
        f"run. {WARMUPS} warm-up requests per case, then {sizes['searches']} timed, the cases taking turns.",
        "",
    ]
    search_rows = []
    for name, case in studio_search_result["cases"].items():
        theirs = mlflow_search_result["cases"][name]
        search_rows.append(
            [
                f"`{case['filter']}`" if case["filter"] else "(none)",
                f"`{case['order_by']}`",
                f"{case['matching_runs']:,}",
                _ms(case["p50_s"]),
                f"**{_ms(case['p95_s'])}**",
                _ms(theirs["p50_s"]),
                _ms(theirs["p95_s"]),
                "yes" if case["same_page_as_mlflow"] else "**no**",
            ]
        )
    lines.append(
        markdown_table(
            [
                "filter",
                "order by",
                "matching",
                "Studio p50 ms",
                "Studio p95 ms",
                "MLflow p50 ms",
                "MLflow p95 ms",
                "same page",
            ],
            search_rows,
        )
    )
    return "\n".join(lines)
