"""Issue 3, Speed: upload and conversion of a 1 GB CSV, peak memory under 1 GB per process.

A real Studio runs: uvicorn (`studio.asgi:application`) and a Celery worker (prefork, concurrency 1),
against PostgreSQL and Redis. The CSV is posted as the raw body of
`POST /api/v1/projects/<p>/datasets/upload?name=...&filename=big.csv`, streamed from disk by requests
with its Content-Length, as the SDK does; the web process streams it to disk and queues the import
job, which the worker converts to Parquet (`datasets.ingest`) and stores as a version. A thread
samples every 50 ms the resident memory (RSS) of the web process and of the worker's process tree
(parent and pool child) until the job is done, and then while the profile job the new version queues
runs (for context: the goal is about the upload and the conversion).

Peer, for context: plain pandas (`read_csv`, then `to_parquet`) of the same file, in a subprocess
whose peak RSS the kernel reports (`ru_maxrss`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bench._studio import MemorySampler, running_studio, setup_django
from bench.common import markdown_table

TITLE = "Upload + conversion of a 1 GB CSV through the API and a worker: peak memory per process"
GOAL_PEAK_BYTES = 1024**3
SEED = 20240519
TARGET_BYTES = 1024**3
QUICK_TARGET_BYTES = 50 * 1024**2
BATCH_ROWS = 200_000
SAMPLE_INTERVAL_S = 0.05
POLL_INTERVAL_S = 0.25
JOB_TIMEOUT_S = 480
PROFILE_TIMEOUT_S = 240
CATEGORIES = [f"category_{index:02d}" for index in range(25)]
WORDS = ["alpha", "beta", "gamma", "delta", "late", "early", "fragile", "heavy", "blue", "red,", "green;"]
WORDS += ['"quoted"', "parcel", "order"]
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("customer_id", pa.int64()),
        ("amount", pa.float64()),
        ("ratio", pa.float64()),
        ("category", pa.string()),
        ("email", pa.string()),
        ("comment", pa.string()),
        ("is_active", pa.bool_()),
        ("created_at", pa.timestamp("s")),
    ]
)


def generate_batches(seed: int = SEED) -> Iterator[pa.RecordBatch]:
    """Yield rows without end, built with numpy and Arrow compute (no Python objects per row).

    id: sequential. customer_id: below 10^6. amount: log-normal, 2 decimals, 5 % missing. ratio:
    uniform, 4 decimals, 10 % missing. category: 25 labels. email: all but unique. comment: 400
    phrases of 2-6 words, some with commas and quotes (so quoted fields), 20 % missing. is_active:
    70 % true. created_at: second resolution over 2020-2023.
    """
    rng = np.random.default_rng(seed)
    phrases = pa.array(
        [" ".join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(400)], type=pa.string()
    )
    categories = pa.array(CATEGORIES)
    start_s = np.datetime64("2020-01-01T00:00:00", "s").astype(np.int64)
    first = 0
    while True:
        size = BATCH_ROWS
        email = pc.binary_join_element_wise(
            "user", pc.cast(pa.array(rng.integers(0, 10**10, size=size)), pa.string()), "@example.com", ""
        )
        comment = phrases.take(pa.array(rng.integers(0, len(phrases), size=size)))
        comment = pc.if_else(pa.array(rng.random(size) < 0.2), pa.scalar(None, pa.string()), comment)
        columns = [
            pa.array(np.arange(first, first + size, dtype=np.int64)),
            pa.array(rng.integers(0, 10**6, size=size)),
            pa.array(np.round(rng.lognormal(4.0, 1.2, size=size), 2), mask=rng.random(size) < 0.05),
            pa.array(np.round(rng.random(size), 4), mask=rng.random(size) < 0.10),
            categories.take(pa.array(rng.integers(0, len(CATEGORIES), size=size))),
            email,
            comment,
            pa.array(rng.random(size) < 0.7),
            pa.array(start_s + rng.integers(0, 4 * 365 * 24 * 3600, size=size)).cast(SCHEMA.field(8).type),
        ]
        first += size
        yield pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def write_csv(path: Path, target_bytes: int) -> int:
    """Write batches to `path` until it holds at least `target_bytes`; return the row count."""
    rows = 0
    with path.open("wb") as out, pa_csv.CSVWriter(out, SCHEMA) as writer:
        for batch in generate_batches():
            writer.write_batch(batch)
            rows += batch.num_rows
            if out.tell() >= target_bytes:
                break
    return rows


def run(*, quick: bool = False) -> dict[str, Any]:
    target = QUICK_TARGET_BYTES if quick else TARGET_BYTES
    setup_django()
    with tempfile.TemporaryDirectory(prefix="studio-bench-upload-") as folder:
        source = Path(folder) / "big.csv"
        started = time.perf_counter()
        rows = write_csv(source, target)
        dataset = {
            "csv_bytes": source.stat().st_size,
            "rows": rows,
            "columns": SCHEMA.names,
            "seed": SEED,
            "generate_s": round(time.perf_counter() - started, 1),
        }
        with running_studio(worker=True, prefix="bench-upload") as studio:
            studio_side = measure_studio(studio, source)
        pandas_side = measure_pandas(source, Path(folder) / "pandas.parquet")
    studio_side["rows_match"] = studio_side["row_count"] == rows
    peaks = studio_side["peaks_upload_and_conversion"]
    web_peak = peaks["web"]["largest_process_bytes"]
    worker_peak = peaks["worker"]["tree_bytes"]
    return {
        "goal": "peak RSS under 1 GiB for the web process and for the worker (parent + pool child, summed)",
        "goal_met": studio_side["job_status"] == "done"
        and web_peak < GOAL_PEAK_BYTES
        and worker_peak < GOAL_PEAK_BYTES,
        "headline": (
            f"{dataset['csv_bytes'] / 2**30:.2f} GiB CSV, {rows:,} rows: peak web {_mib(web_peak)} MiB, "
            f"worker {_mib(worker_peak)} MiB; upload {studio_side['upload_s']:.0f} s, conversion "
            f"{studio_side['conversion_s']:.0f} s (pandas: {_mib(pandas_side['peak_rss_bytes'])} MiB)"
        ),
        "dataset": dataset,
        "studio": studio_side,
        "pandas": pandas_side,
    }


def measure_studio(studio, source: Path) -> dict[str, Any]:
    from datasets.models import DatasetJob

    session = studio.session()
    trees = {"web": (studio.web.pid, False), "worker": (studio.worker.pid, True)}
    result: dict[str, Any] = {"load_average": {"before": _load()}}
    with MemorySampler(trees, interval_s=SAMPLE_INTERVAL_S) as sampler:
        sampler.phase("idle")
        time.sleep(1.0)
        sampler.phase("upload")
        started = time.perf_counter()
        with source.open("rb") as body:
            response = session.post(
                f"{studio.api}/datasets/upload",
                params={"name": "upload-memory", "filename": "big.csv"},
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                timeout=(10, 600),
            )
        result["upload_s"] = round(time.perf_counter() - started, 2)
        if response.status_code != 202:
            raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
        job_id = response.json()["id"]
        sampler.phase("conversion")
        started = time.perf_counter()
        job = _poll(session, f"{studio.api}/dataset-jobs/{job_id}", ("done", "failed"), JOB_TIMEOUT_S)
        result["conversion_observed_s"] = round(time.perf_counter() - started, 2)
        result["load_average"]["after_conversion"] = _load()
        sampler.phase("profile")
        result["job_status"] = job["status"]
        if job["status"] != "done":
            raise RuntimeError(
                f"the import job ended {job['status']}: {job['error']}\n{studio.log_tail('worker')}"
            )
        version_url = f"{studio.api}/dataset-versions/{job['version_id']}"
        started = time.perf_counter()
        version = _poll(session, version_url, ("done", "failed"), PROFILE_TIMEOUT_S, key="profile_status")
        result["profile_observed_s"] = round(time.perf_counter() - started, 2)
        result["profile_status"] = version["profile_status"]
        sampler.phase("end")
        result["samples"] = sampler.samples
    record = DatasetJob.objects.get(pk=job_id)
    result["load_average"]["after"] = _load()
    result["conversion_s"] = round((record.finished_at - record.started_at).total_seconds(), 2)
    result["queued_s"] = round((record.started_at - record.created_at).total_seconds(), 2)
    result["row_count"] = version["row_count"]
    result["parquet_bytes"] = version["size_bytes"]
    result["schema"] = {column["name"]: column["type"] for column in version["schema"]}
    result["peaks_by_phase"] = {
        phase: peaks for phase, peaks in sampler.peaks.items() if phase not in ("start", "end")
    }
    result["peaks_upload_and_conversion"] = _merged([sampler.peaks["upload"], sampler.peaks["conversion"]])
    return result


def _poll(session, url: str, final: tuple[str, ...], timeout_s: float, *, key: str = "status") -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        body = response.json()
        if body[key] in final or time.monotonic() > deadline:
            return body
        time.sleep(POLL_INTERVAL_S)


def _merged(phases: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for phase in phases:
        for tree, peak in phase.items():
            best = result.setdefault(tree, dict.fromkeys(peak, 0))
            for key, value in peak.items():
                best[key] = max(best[key], value)
    return result


PANDAS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    started = time.perf_counter()
    frame = pd.read_csv(sys.argv[1])
    read_s = time.perf_counter() - started
    frame.to_parquet(sys.argv[2])
    total_s = time.perf_counter() - started
    print(json.dumps({
        "read_csv_s": round(read_s, 2),
        "to_parquet_s": round(total_s - read_s, 2),
        "total_s": round(total_s, 2),
        "rows": len(frame),
        "frame_memory_bytes": int(frame.memory_usage(deep=True).sum()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))
    """
)


def measure_pandas(source: Path, target: Path) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", PANDAS_SCRIPT, str(source), str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:], "peak_rss_bytes": 0}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["parquet_bytes"] = target.stat().st_size
    return result


def _peak_cells(peaks: dict[str, dict[str, int]]) -> list[str]:
    return [
        _mib(peaks["web"]["largest_process_bytes"]),
        _mib(peaks["worker"]["largest_process_bytes"]),
        _mib(peaks["worker"]["tree_bytes"]),
        _mib(peaks["worker"]["tree_pss_bytes"]),
    ]


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:.0f}"


def markdown(result: dict[str, Any]) -> str:
    data, studio, pandas_side = result["dataset"], result["studio"], result["pandas"]
    lines = [
        f"Data: a {data['csv_bytes'] / 2**30:.2f} GiB CSV ({data['csv_bytes']:,} bytes), {data['rows']:,} "
        f"rows x {len(data['columns'])} columns ({', '.join(data['columns'])}), seed {data['seed']}: "
        "integers, floats with missing values, a 25-label category, unique e-mails, free text with commas "
        "and quotes, booleans, timestamps.",
        "",
        "Posted as the raw body of `POST /api/v1/projects/<p>/datasets/upload` (requests streams the file, "
        "Content-Length set) to uvicorn; converted by a Celery worker (prefork, concurrency 1). RSS sampled "
        f"every {SAMPLE_INTERVAL_S * 1000:.0f} ms ({studio['samples']:,} samples), PSS every fifth sample; "
        "the worker's tree is its parent and its pool child. RSS summed counts the pages the forked child "
        "shares with its parent twice (an upper bound; the goal is judged on it); PSS summed splits them.",
        "",
    ]
    rows = []
    for phase, peaks in studio["peaks_by_phase"].items():
        rows.append([phase, *_peak_cells(peaks)])
    overall = _peak_cells(studio["peaks_upload_and_conversion"])
    rows.append(["**upload + conversion**", *(f"**{cell}**" for cell in overall)])
    header = [
        "phase",
        "web RSS MiB",
        "worker: largest process RSS MiB",
        "worker: tree RSS MiB",
        "worker: tree PSS MiB",
    ]
    lines.append(markdown_table(header, rows))
    lines += [
        "",
        f"- upload (client: first byte sent to 202 received): {studio['upload_s']:.1f} s "
        f"({data['csv_bytes'] / 2**20 / studio['upload_s']:.0f} MiB/s)",
        f"- conversion (the job's started_at to finished_at): {studio['conversion_s']:.1f} s, queued "
        f"{studio['queued_s']:.2f} s; seen done by the client after {studio['conversion_observed_s']:.1f} s",
        f"- version: {studio['row_count']:,} rows (same as written: "
        f"{'yes' if studio['rows_match'] else '**no**'}), "
        f"{studio['parquet_bytes'] / 2**20:.0f} MiB of Parquet; column types {studio['schema']}",
        f"- the profile job that follows (context, not the goal): {studio['profile_status']} after "
        f"{studio['profile_observed_s']:.1f} s",
        f"- load average before / after the conversion / at the end: {studio['load_average']['before']} / "
        f"{studio['load_average']['after_conversion']} / {studio['load_average']['after']}",
        "",
        "### Peer, for context: plain pandas",
        "",
    ]
    if "error" in pandas_side:
        lines.append(f"pandas failed: `{pandas_side['error'][-500:]}`")
    else:
        lines.append(
            f"`pd.read_csv` {pandas_side['read_csv_s']:.1f} s + `to_parquet` "
            f"{pandas_side['to_parquet_s']:.1f} s = {pandas_side['total_s']:.1f} s; peak RSS "
            f"**{_mib(pandas_side['peak_rss_bytes'])} MiB** (the frame: "
            f"{pandas_side['frame_memory_bytes'] / 2**20:.0f} MiB); "
            f"{pandas_side['parquet_bytes'] / 2**20:.0f} MiB of Parquet (snappy)."
        )
    return "\n".join(lines)
