"""Issue 3, Speed: a preview page request on a 10M-row dataset version, p95 under 200 ms.

A real Studio (uvicorn with `studio.asgi:application`, PostgreSQL) serves a 10M-row version; the
benchmark asks `GET /api/v1/projects/<p>/dataset-versions/<v>/rows` over HTTP with an API token, as
the data grid and the SDK do, and times each request from the client: the first page, a page in the
middle, sorted by a number, sorted by a high-cardinality text column, filtered by an expression, and
filtered and sorted. Each case gets 3 warm-up requests, then the cases take turns, 50 requests each.

The version is registered the way an upload leaves it: the Parquet written by
`datasets.ingest.core.write_parquet` (zstd, 64 MiB row groups), stored with `datasets.files.store_file`,
schema from `datasets.ingest.infer_schema`. For context, the same pages with plain pandas
(`read_parquet`, then `iloc`, `sort_values`, a boolean mask) on the same file.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench._studio import running_studio, setup_django
from bench.common import markdown_table

TITLE = "Preview page request (HTTP, DuckDB) on a 10M-row dataset version: latency per case"
GOAL_P95_S = 0.200
SEED = 20240517
ROWS = 10_000_000
QUICK_ROWS = 200_000
REQUESTS = 50
QUICK_REQUESTS = 10
WARMUPS = 3
PAGE = 50
BATCH_ROWS = 500_000
PANDAS_RUNS = 3
IN_PROCESS_EVERY = 10
CITIES = [
    "Paris",
    "London",
    "Berlin",
    "Madrid",
    "Rome",
    "Vienna",
    "Lisbon",
    "Prague",
    "Dublin",
    "Oslo",
    "Warsaw",
    "Athens",
    "Zurich",
    "Brussels",
    "Amsterdam",
    "Helsinki",
    "Budapest",
    "Copenhagen",
    "Stockholm",
    "Bucharest",
]
FILTER = "amount > 500 and city == 'Paris'"
SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("quantity", pa.int64()),
        ("amount", pa.float64()),
        ("score", pa.float64()),
        ("city", pa.string()),
        ("customer", pa.string()),
        ("is_member", pa.bool_()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def cases(rows: int) -> dict[str, dict[str, Any]]:
    """The requests' query parameters, by case."""
    return {
        "first_page": {"limit": PAGE},
        "deep_page": {"limit": PAGE, "offset": rows // 2},
        "sort_number_desc": {"limit": PAGE, "sort": "amount:desc"},
        "sort_text": {"limit": PAGE, "sort": "customer:asc"},
        "filter": {"limit": PAGE, "expression": FILTER},
        "filter_and_sort": {"limit": PAGE, "expression": FILTER, "sort": "created_at:desc"},
    }


def generate_batches(rows: int, seed: int = SEED) -> Iterator[pa.RecordBatch]:
    """Yield the version's rows in batches, built with numpy and Arrow compute (no Python objects per row).

    order_id: 0..rows-1. quantity: 1-100. amount: log-normal (median about 150, 11 % above 500), 5 %
    missing. score: normal, 10 % missing. city: 20 labels, Zipf-like (Paris about 28 %), 1 % missing.
    customer: "C" and a random number below 10^12 (all but unique). is_member: 30 % true.
    created_at: uniform over 2020-2023, UTC, microseconds.
    """
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(CITIES) + 1)
    weights /= weights.sum()
    cities = pa.array(CITIES)
    start_us = np.datetime64("2020-01-01T00:00:00", "us").astype(np.int64)
    span_us = 4 * 365 * 24 * 3600 * 1_000_000
    for first in range(0, rows, BATCH_ROWS):
        size = min(BATCH_ROWS, rows - first)
        city = cities.take(pa.array(rng.choice(len(CITIES), size=size, p=weights)))
        city = pc.if_else(pa.array(rng.random(size) < 0.01), pa.scalar(None, pa.string()), city)
        customer = pc.binary_join_element_wise(
            "C", pc.cast(pa.array(rng.integers(0, 10**12, size=size)), pa.string()), ""
        )
        columns = [
            pa.array(np.arange(first, first + size, dtype=np.int64)),
            pa.array(rng.integers(1, 101, size=size)),
            pa.array(np.round(rng.lognormal(5.0, 1.0, size=size), 2), mask=rng.random(size) < 0.05),
            pa.array(rng.normal(size=size), mask=rng.random(size) < 0.10),
            city,
            customer,
            pa.array(rng.random(size) < 0.3),
            pa.array(start_us + rng.integers(0, span_us, size=size)).cast(SCHEMA.field("created_at").type),
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def write_version_file(path: Path, rows: int) -> int:
    from datasets.ingest.core import IngestLimits, write_parquet

    return write_parquet(generate_batches(rows), SCHEMA, path, row_group_bytes=IngestLimits().row_group_bytes)


def register_preview_version(*, user, project, path: Path):
    """Store the file as a dataset version, then build its DuckDB preview copy as the profile job would."""
    from bench._studio import register_version

    version = register_version(user=user, project=project, path=path, name="preview-latency")
    # The profile job builds the preview's DuckDB copy before profiling; the benchmark runs no job.
    from datasets.services import build_preview_copy

    if build_preview_copy(version) is None:
        raise RuntimeError("the preview copy could not be built")
    return version


def run(*, quick: bool = False) -> dict[str, Any]:
    rows = QUICK_ROWS if quick else ROWS
    requests_per_case = QUICK_REQUESTS if quick else REQUESTS
    setup_django()
    with tempfile.TemporaryDirectory(prefix="studio-bench-preview-") as folder:
        path = Path(folder) / "preview.parquet"
        started = time.perf_counter()
        written = write_version_file(path, rows)
        assert written == rows, (written, rows)
        metadata = pq.ParquetFile(path).metadata
        dataset = {
            "rows": rows,
            "columns": SCHEMA.names,
            "seed": SEED,
            "size_bytes": path.stat().st_size,
            "row_groups": metadata.num_row_groups,
            "writer": "datasets.ingest.core.write_parquet (zstd, 64 MiB row groups), as an import stores it",
            "generate_s": round(time.perf_counter() - started, 1),
        }
        with running_studio(prefix="bench-preview") as studio:
            version = register_preview_version(user=studio.user, project=studio.project, path=path)
            http = measure_http(studio, version, cases(rows), requests_per_case)
        pandas_side = measure_pandas(path, rows)
    for name, case in http["cases"].items():
        case["same_first_rows_as_pandas"] = case.pop("first_ids") == pandas_side["first_ids"][name]
    worst = max(http["cases"], key=lambda name: http["cases"][name]["p95_s"])
    return {
        "goal": f"p95 under {GOAL_P95_S * 1000:.0f} ms in every case ({requests_per_case} requests each)",
        "goal_met": all(case["p95_s"] < GOAL_P95_S for case in http["cases"].values()),
        "headline": (
            f"{rows:,} rows: p95 {_ms(min(c['p95_s'] for c in http['cases'].values()))}"
            f"-{_ms(http['cases'][worst]['p95_s'])} ms per case (worst: {worst}), "
            f"all requests p95 {_ms(http['overall_p95_s'])} ms"
        ),
        "dataset": dataset,
        "requests_per_case": requests_per_case,
        "warmups_per_case": WARMUPS,
        "filter_expression": FILTER,
        **http,
        "pandas": {key: value for key, value in pandas_side.items() if key != "first_ids"},
    }


def measure_http(studio, version, requests_by_case: dict[str, dict], count: int) -> dict[str, Any]:
    """Time each case's requests from the client; the cases take turns so that load hits all alike.

    Beside each request, the CPU time the web process spent on it (all its threads: a measure of the
    work that does not grow when the machine is busy). Every IN_PROCESS_EVERY-th round also calls the
    selector the view calls, in this process, so that both see the same load.
    """
    session = studio.session()
    url = f"{studio.api}/dataset-versions/{version.pk}/rows"
    web = psutil.Process(studio.web.pid)

    def ask(params: dict) -> tuple[float, float, dict]:
        cpu_before = _cpu_seconds(web)
        started = time.perf_counter()
        response = session.get(url, params=params, timeout=60)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code} for {params}: {response.text[:500]}")
        return seconds, _cpu_seconds(web) - cpu_before, response.json()

    first_ids: dict[str, list] = {}
    totals: dict[str, int] = {}
    for name, params in requests_by_case.items():
        for _ in range(WARMUPS):
            _, _, body = ask(params)
        first_ids[name] = [row[0] for row in body["rows"]]
        totals[name] = body["total"]
        _in_process(version, params)
    samples: dict[str, list[float]] = {name: [] for name in requests_by_case}
    cpu_samples: dict[str, list[float]] = {name: [] for name in requests_by_case}
    in_process: dict[str, list[float]] = {name: [] for name in requests_by_case}
    load_before = _load()
    for round_number in range(count):
        for name, params in requests_by_case.items():
            seconds, cpu_seconds, _ = ask(params)
            samples[name].append(seconds)
            cpu_samples[name].append(cpu_seconds)
            if round_number % IN_PROCESS_EVERY == 0:
                in_process[name].append(_in_process(version, params))
    load_after = _load()
    every = [seconds for values in samples.values() for seconds in values]
    return {
        "cases": {
            name: {
                "params": requests_by_case[name],
                "matching_rows": totals[name],
                **_latency(samples[name]),
                "server_cpu_median_s": round(statistics.median(cpu_samples[name]), 4),
                "in_process_median_s": round(statistics.median(in_process[name]), 4),
                "first_ids": first_ids[name],
            }
            for name in requests_by_case
        },
        "overall_p95_s": round(float(np.percentile(every, 95)), 4),
        "load_average_during": {"before": load_before, "after": load_after},
    }


def _in_process(version, params: dict) -> float:
    """Return the seconds the selector behind the view takes for `params`, without HTTP or Django."""
    from datasets.selectors import version_rows

    sort = []
    if "sort" in params:
        column, _, direction = params["sort"].rpartition(":")
        sort = [(column, direction)]
    started = time.perf_counter()
    version_rows(
        version=version,
        offset=params.get("offset", 0),
        limit=params["limit"],
        sort=sort,
        expression=params.get("expression"),
    )
    return time.perf_counter() - started


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_pandas(path: Path, rows: int) -> dict[str, Any]:
    """The same pages with plain pandas: read the file, then select (each selection timed 3 times)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    frame = pd.read_parquet(path)
    read_s, read_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    memory_bytes = int(frame.memory_usage(deep=True).sum())
    timings, first_ids = _pandas_pages(frame, rows, read_s)
    del frame
    gc.collect()
    return {
        "read_parquet_s": round(read_s, 3),
        "read_parquet_cpu_s": round(read_cpu_s, 3),
        "frame_memory_bytes": memory_bytes,
        "cases": timings,
        "first_ids": first_ids,
    }


def _pandas_pages(frame: pd.DataFrame, rows: int, read_s: float) -> tuple[dict, dict]:
    def matching() -> pd.DataFrame:
        return frame[(frame["amount"] > 500) & (frame["city"] == "Paris")]

    operations: dict[str, Callable[[], pd.DataFrame]] = {
        "first_page": lambda: frame.iloc[:PAGE],
        "deep_page": lambda: frame.iloc[rows // 2 : rows // 2 + PAGE],
        "sort_number_desc": lambda: frame.sort_values("amount", ascending=False).iloc[:PAGE],
        "sort_text": lambda: frame.sort_values("customer").iloc[:PAGE],
        "filter": lambda: matching().iloc[:PAGE],
        "filter_and_sort": lambda: matching().sort_values("created_at", ascending=False).iloc[:PAGE],
    }
    timings, first_ids = {}, {}
    for name, operation in operations.items():
        seconds = []
        for _ in range(PANDAS_RUNS):
            began = time.perf_counter()
            page = operation()  # sort_values puts missing values last, as Studio's NULLS LAST
            seconds.append(time.perf_counter() - began)
        first_ids[name] = page["order_id"].tolist()
        median = statistics.median(seconds)
        timings[name] = {
            "operation_median_s": round(median, 4),
            "read_and_operation_s": round(read_s + median, 4),
        }
    return timings, first_ids


def _latency(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(float(np.percentile(seconds, 50)), 4),
        "p95_s": round(float(np.percentile(seconds, 95)), 4),
        "max_s": round(max(seconds), 4),
        "min_s": round(min(seconds), 4),
    }


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def markdown(result: dict[str, Any]) -> str:
    data = result["dataset"]
    lines = [
        f"Data: {data['rows']:,} rows x {len(data['columns'])} columns ({', '.join(data['columns'])}), "
        f"seed {data['seed']}; {data['size_bytes'] / 2**20:.0f} MiB of Parquet in {data['row_groups']} row "
        f"groups, written by {data['writer']}.",
        "",
        f"Each case: {result['warmups_per_case']} warm-up requests, then {result['requests_per_case']} timed "
        "requests, the cases taking turns; one client, keep-alive, `Authorization: Bearer`, against uvicorn "
        "on loopback. Latency is the client's: request sent to JSON received. *In-process* is the "
        "selector the view calls (`datasets.selectors.version_rows`), run in the benchmark's process every "
        f"{IN_PROCESS_EVERY}th round, without HTTP, Django or authentication (median). *Server CPU* is "
        "the CPU time of the web process per request, all threads (median): it does not grow with the "
        "machine's load, and on 2 cores the wall-clock time is at least half of it. "
        f"Filter: `{result['filter_expression']}`.",
        "",
    ]
    rows = []
    for name, case in result["cases"].items():
        params = ", ".join(f"{key}={value}" for key, value in case["params"].items() if key != "expression")
        if "expression" in case["params"]:
            params += ", expression=<filter>"
        met = "yes" if case["p95_s"] < GOAL_P95_S else "**no**"
        rows.append(
            [
                name.replace("_", " "),
                params,
                f"{case['matching_rows']:,}",
                _ms(case["p50_s"]),
                f"**{_ms(case['p95_s'])}**",
                _ms(case["max_s"]),
                _ms(case["in_process_median_s"]),
                _ms(case["server_cpu_median_s"]),
                met,
            ]
        )
    header = [
        "case",
        "query",
        "rows matching",
        "p50 ms",
        "p95 ms",
        "max ms",
        "in-process ms",
        "server CPU ms",
        "p95 < 200",
    ]
    lines.append(markdown_table(header, rows))
    load = result["load_average_during"]
    lines += [
        "",
        f"All {sum(1 for _ in result['cases']) * result['requests_per_case']} timed requests: p95 "
        f"{_ms(result['overall_p95_s'])} ms. Load average before/after the timed requests: "
        f"{load['before']} / {load['after']}.",
        "",
        "Every case returned the same first rows as pandas: "
        + ("yes" if all(case["same_first_rows_as_pandas"] for case in result["cases"].values()) else "**no**")
        + ".",
        "",
        "### Peer, for context: plain pandas on the same file",
        "",
        f"`pd.read_parquet`: {result['pandas']['read_parquet_s']:.2f} s "
        f"({result['pandas']['read_parquet_cpu_s']:.2f} CPU s); the frame holds "
        f"{result['pandas']['frame_memory_bytes'] / 2**30:.2f} GiB. A server that kept it in memory would "
        "pay the operation alone; one that reads per request pays both.",
        "",
    ]
    pandas_rows = [
        [
            name.replace("_", " "),
            _ms(timing["operation_median_s"]),
            _ms(timing["read_and_operation_s"]),
            _ms(result["cases"][name]["p50_s"]),
        ]
        for name, timing in result["pandas"]["cases"].items()
    ]
    lines.append(
        markdown_table(
            ["case", "pandas operation ms (median)", "pandas read + operation ms", "Studio HTTP p50 ms"],
            pandas_rows,
        )
    )
    return "\n".join(lines)
