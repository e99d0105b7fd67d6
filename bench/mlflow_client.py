"""The MLflow side of `bench.tracking_vs_mlflow`: runs in the MLflow venv, never imports Studio.

    <mlflow venv>/bin/python bench/mlflow_client.py COMMAND '<JSON arguments>'

prints one line of JSON (the measurements). Commands:

- ingest: log `points` points of one metric through `log_metric` (synchronous, MLflow's default),
  `log_metric(synchronous=False)` (MLflow's own background batching) or `log_batch` (1,000 per call,
  MLflow's limit), stopping early after `max_seconds`; then count what the server stored.
- history: time the chart read of a metric: the UI's call (`get-history-bulk-interval`, 320 points,
  as the run page asks) and the full history (`MlflowClient.get_metric_history`).
- create_runs: insert the runs of a JSON file through MLflow's SQLAlchemy models in one session (the
  REST API at one run per ~50 ms would take minutes for 10k runs).
- search: time `MlflowClient.search_runs` for each case over HTTP.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _latency(values: list[float]) -> dict:
    return {
        "p50_s": round(_percentile(values, 0.50), 4),
        "p95_s": round(_percentile(values, 0.95), 4),
        "max_s": round(max(values), 4),
        "min_s": round(min(values), 4),
        "count": len(values),
    }


def ingest(args: dict) -> dict:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    mlflow.set_tracking_uri(args["tracking_uri"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name(args["experiment"])
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(args["experiment"])
    mode, points, max_seconds, key = args["mode"], args["points"], args["max_seconds"], args["key"]
    run = client.create_run(experiment_id, run_name=f"ingest-{mode}-{uuid.uuid4().hex[:6]}")
    run_id = run.info.run_id
    values = [1.0 / (1 + index) for index in range(points)]
    sent = 0
    started = time.perf_counter()
    if mode == "log_batch":
        stamp = int(time.time() * 1000)
        for first in range(0, points, 1000):
            batch = [Metric(key, values[i], stamp, i) for i in range(first, min(points, first + 1000))]
            client.log_batch(run_id, metrics=batch)
            sent += len(batch)
            if time.perf_counter() - started > max_seconds:
                break
    else:
        synchronous = mode == "log_metric"
        with mlflow.start_run(run_id=run_id):
            for index in range(points):
                mlflow.log_metric(key, values[index], step=index, synchronous=synchronous)
                sent += 1
                if index % 100 == 0 and time.perf_counter() - started > max_seconds:
                    break
            if not synchronous:
                mlflow.flush_async_logging()
            seconds = time.perf_counter() - started
    if mode == "log_batch":
        seconds = time.perf_counter() - started
    stored = len(client.get_metric_history(run_id, key))
    return {
        "mode": mode,
        "run_id": run_id,
        "points_sent": sent,
        "points_stored": stored,
        "seconds": round(seconds, 3),
        "points_per_s": round(stored / seconds, 1),
    }


def history(args: dict) -> dict:
    import requests
    from mlflow import MlflowClient

    base, run_id, key = args["tracking_uri"], args["run_id"], args["key"]
    session = requests.Session()
    url = f"{base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    params = {"run_ids": run_id, "metric_key": key, "max_results": args["ui_points"]}

    def ui_call() -> int:
        response = session.get(url, params=params, timeout=120)
        response.raise_for_status()
        return len(response.json().get("metrics", []))

    for _ in range(args["warmups"]):
        ui_points = ui_call()
    ui_seconds = []
    for _ in range(args["ui_requests"]):
        started = time.perf_counter()
        ui_points = ui_call()
        ui_seconds.append(time.perf_counter() - started)
    client = MlflowClient(tracking_uri=base)
    full_seconds = []
    for _ in range(args["full_requests"]):
        started = time.perf_counter()
        full_points = len(client.get_metric_history(run_id, key))
        full_seconds.append(time.perf_counter() - started)
    return {
        "ui_call": {"points_returned": ui_points, **_latency(ui_seconds)},
        "full_history": {
            "points_returned": full_points,
            **_latency(full_seconds),
            "median_s": round(statistics.median(full_seconds), 4),
        },
    }


def create_runs(args: dict) -> dict:
    """Insert the runs (params, latest metrics, one point per metric) as MLflow's own store lays them out."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlExperiment,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    with open(args["runs_file"]) as handle:
        runs = json.load(handle)
    engine = create_engine(args["database_uri"])
    started = time.perf_counter()
    now = int(time.time() * 1000)
    with Session(engine) as session:
        experiment = SqlExperiment(
            name=args["experiment"], artifact_location=args["artifact_root"], lifecycle_stage="active"
        )
        session.add(experiment)
        session.flush()
        experiment_id = experiment.experiment_id
        rows = []
        for index, spec in enumerate(runs):
            run_uuid = uuid.uuid4().hex
            start = now - (len(runs) - index) * 1000
            rows.append(
                SqlRun(
                    run_uuid=run_uuid,
                    name=spec["name"],
                    source_type="LOCAL",
                    source_name="",
                    entry_point_name="",
                    user_id="bench",
                    status="FINISHED",
                    start_time=start,
                    end_time=start + 500,
                    source_version="",
                    lifecycle_stage="active",
                    artifact_uri=f"{args['artifact_root']}/{run_uuid}/artifacts",
                    experiment_id=experiment_id,
                )
            )
            rows.append(SqlTag(key="mlflow.runName", value=spec["name"], run_uuid=run_uuid))
            rows += [
                SqlParam(key=key, value=str(value), run_uuid=run_uuid)
                for key, value in spec["params"].items()
            ]
            for key, value in spec["metrics"].items():
                rows.append(
                    SqlMetric(key=key, value=value, timestamp=start, step=0, is_nan=False, run_uuid=run_uuid)
                )
                rows.append(
                    SqlLatestMetric(
                        key=key, value=value, timestamp=start, step=0, is_nan=False, run_uuid=run_uuid
                    )
                )
        session.add_all(rows)
        session.commit()
    return {
        "experiment_id": str(experiment_id),
        "runs": len(runs),
        "seconds": round(time.perf_counter() - started, 2),
    }


def search(args: dict) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=args["tracking_uri"])
    results = {}
    for name, case in args["cases"].items():

        def call(case=case):
            return client.search_runs(
                experiment_ids=[args["experiment_id"]],
                filter_string=case["filter"],
                order_by=[case["order_by"]],
                max_results=args["page"],
            )

        for _ in range(args["warmups"]):
            page = call()
        seconds = []
        for _ in range(args["requests"]):
            started = time.perf_counter()
            page = call()
            seconds.append(time.perf_counter() - started)
        results[name] = {
            **_latency(seconds),
            "page_names": [run.info.run_name for run in page],
        }
    return {"cases": results}


COMMANDS = {"ingest": ingest, "history": history, "create_runs": create_runs, "search": search}

if __name__ == "__main__":
    command, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(COMMANDS[command](arguments)), flush=True)
