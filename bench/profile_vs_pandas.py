"""Issue 3, Speed: the profile of a 1M-row x 50-column version against the same statistics in pandas.

Both sides start from the Parquet file on disk (warm in the page cache) and end with the statistics
in memory. Studio: `datasets.profiling.profile_parquet` (DuckDB). pandas: `read_parquet`, `describe`
with the same five percentiles, `isna().sum()`, `nunique()`, `value_counts()` of every categorical
and boolean column, `numpy.histogram` of every numeric column (30 bins) and `corr()` of the numeric
columns. The duplicate-row count has no counterpart on the pandas side, so the headline compares the
profile without it (`duplicates=False`); the full profile, as the Celery job runs it, is timed too.

The file is written the way Studio stores a version (`datasets.ingest.core.write_parquet`: zstd,
64 MiB row groups), and a second time the way pyarrow writes by default (one row group of 1M rows),
which DuckDB alone would read on one core.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import markdown_table, summarize, timed
from datasets.ingest.core import IngestLimits, write_parquet
from datasets.profiling import profile_parquet

TITLE = "Dataset profile (DuckDB) vs the same statistics in pandas, 1M rows x 50 columns"
GOAL_SPEEDUP = 5.0
SEED = 20240503
ROWS = 1_000_000
QUICK_ROWS = 50_000
RUNS = 3
BINS = 30
TOP_K = 10
PERCENTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
FLOAT_COLUMNS = 20
INTEGER_COLUMNS = 10
CATEGORICAL_COLUMNS = 15
BOOLEAN_COLUMNS = 5
CARDINALITIES = (5, 20, 100, 500, 1000)


def generate_table(rows: int, seed: int = SEED) -> pa.Table:
    """Return the benchmark's table: 30 numeric (20 float, 10 int), 15 categorical, 5 boolean columns.

    Floats: normal with per-column location/scale, some sharing a common factor (so that the
    correlation matrix has structure), 5 % missing. Integers: uniform over 10..100k values, 2 %
    missing. Categoricals: Zipf-distributed over 5..1000 labels, 3 % missing. Booleans: 30 % true,
    1 % missing.
    """
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    shared = rng.normal(size=rows)
    for i in range(FLOAT_COLUMNS):
        values = shared * (i % 3) + rng.normal(loc=i, scale=1 + i, size=rows)
        columns[f"num_f{i:02d}"] = pa.array(values, mask=rng.random(rows) < 0.05)
    for i in range(INTEGER_COLUMNS):
        values = rng.integers(0, 10 ** (i % 5 + 1), size=rows)
        columns[f"num_i{i:02d}"] = pa.array(values, mask=rng.random(rows) < 0.02)
    for i in range(CATEGORICAL_COLUMNS):
        cardinality = CARDINALITIES[i % len(CARDINALITIES)]
        labels = np.array([f"c{i}_{k}" for k in range(cardinality)], dtype=object)
        codes = rng.zipf(1.5, size=rows) % cardinality
        columns[f"cat_{i:02d}"] = pa.array(labels[codes], type=pa.string(), mask=rng.random(rows) < 0.03)
    for i in range(BOOLEAN_COLUMNS):
        columns[f"flag_{i}"] = pa.array(rng.random(rows) < 0.3, mask=rng.random(rows) < 0.01)
    return pa.table(columns)


def schema_of(table: pa.Table) -> dict[str, str]:
    kinds = {"num": "numeric", "cat": "categorical", "flag": "boolean"}
    return {name: kinds[name.split("_")[0]] for name in table.column_names}


def pandas_profile(path: Path, schema: dict[str, str], *, duplicates: bool = False) -> dict[str, Any]:
    """Compute the profile's statistics the plain-pandas way (and the duplicate rows, if asked)."""
    numeric = [name for name, kind in schema.items() if kind == "numeric"]
    counted = [name for name, kind in schema.items() if kind in ("categorical", "boolean")]
    frame = pd.read_parquet(path)
    numbers = frame[numeric]
    histograms = {}
    for name in numeric:
        values = numbers[name].to_numpy(dtype=float, na_value=np.nan)
        histograms[name] = np.histogram(values[~np.isnan(values)], bins=BINS)
    result = {
        "describe": numbers.describe(percentiles=PERCENTILES),
        "missing": frame.isna().sum(),
        "distinct": frame.nunique(),
        "top_values": {name: frame[name].value_counts().head(TOP_K) for name in counted},
        "histograms": histograms,
        "correlation": numbers.corr(),
    }
    if duplicates:
        result["duplicate_rows"] = int(frame.duplicated().sum())
    return result


def run(*, quick: bool = False) -> dict[str, Any]:
    rows = QUICK_ROWS if quick else ROWS
    runs = 2 if quick else RUNS
    table = generate_table(rows)
    schema = schema_of(table)
    with tempfile.TemporaryDirectory(prefix="studio-bench-profile-") as folder:
        studio_file = Path(folder) / "studio.parquet"
        write_parquet(
            table.to_batches(max_chunksize=65_536),
            table.schema,
            studio_file,
            row_group_bytes=IngestLimits().row_group_bytes,
        )
        single_file = Path(folder) / "one_row_group.parquet"
        pq.write_table(table, single_file, row_group_size=rows)
        del table

        scenarios = {}
        for key, path in (("studio_file", studio_file), ("one_row_group_file", single_file)):
            scenarios[key] = _measure(path, schema, runs=runs, full_profile=key == "studio_file")
        facts = _file_facts(studio_file, single_file, schema, rows)

    main = scenarios["studio_file"]
    speedup = main["speedup_median"]
    return {
        "goal": f"profile at least {GOAL_SPEEDUP:g}x faster than pandas (median of {runs} runs)",
        "goal_met": speedup >= GOAL_SPEEDUP,
        "headline": (
            f"profile {main['timings']['studio_profile']['median_s']:.2f} s vs pandas "
            f"{main['timings']['pandas']['median_s']:.2f} s: {speedup:.1f}x"
        ),
        "dataset": facts,
        "runs": runs,
        "scenarios": scenarios,
    }


def _measure(path: Path, schema: dict[str, str], *, runs: int, full_profile: bool) -> dict[str, Any]:
    """Time both sides, interleaved; with `full_profile`, also both sides with duplicate rows."""
    sides: dict[str, Callable[[], Any]] = {
        "studio_profile": lambda: profile_parquet(path, schema, top_k=TOP_K, bins=BINS, duplicates=False),
        "pandas": lambda: pandas_profile(path, schema),
    }
    if full_profile:
        sides["studio_profile_with_duplicates"] = lambda: profile_parquet(
            path, schema, top_k=TOP_K, bins=BINS
        )
        sides["pandas_with_duplicates"] = lambda: pandas_profile(path, schema, duplicates=True)
    # One untimed round first: imports, DuckDB's first connection, the page cache.
    outputs = {name: side() for name, side in sides.items()}
    samples: dict[str, list[float]] = {name: [] for name in sides}
    cpu_samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):  # interleaved, so that a noisy neighbour hurts both sides alike
        for name, side in sides.items():
            seconds, cpu_seconds, outputs[name] = timed(side)
            samples[name].append(seconds)
            cpu_samples[name].append(cpu_seconds)
    timings = {name: summarize(samples[name], cpu_samples[name]) for name in sides}
    speedups = {"same statistics": _speedup(timings, "pandas", "studio_profile")}
    if full_profile:
        speedups["with duplicate rows"] = _speedup(
            timings, "pandas_with_duplicates", "studio_profile_with_duplicates"
        )
    profile = outputs["studio_profile"]
    result = {
        "timings": timings,
        "speedups": speedups,
        "speedup_median": speedups["same statistics"]["median"],
        "profile_phases_s": profile["timings_s"],
        "approximations": profile["approximations"],
        "sample": profile["sample"],
        "accuracy": compare(profile, outputs["pandas"]),
    }
    if full_profile:
        full = outputs["studio_profile_with_duplicates"]
        result["duplicate_rows"] = {
            "profile": full["duplicate_row_count"],
            "pandas": outputs["pandas_with_duplicates"]["duplicate_rows"],
        }
    return result


def _speedup(timings: dict[str, Any], slow: str, fast: str) -> dict[str, float]:
    return {
        "median": round(timings[slow]["median_s"] / timings[fast]["median_s"], 2),
        "min": round(timings[slow]["min_s"] / timings[fast]["min_s"], 2),
    }


def _file_facts(studio_file: Path, single_file: Path, schema: dict[str, str], rows: int) -> dict[str, Any]:
    kinds = list(schema.values())
    return {
        "rows": rows,
        "columns": len(schema),
        "numeric_columns": kinds.count("numeric"),
        "float_columns": FLOAT_COLUMNS,
        "integer_columns": INTEGER_COLUMNS,
        "categorical_columns": kinds.count("categorical"),
        "boolean_columns": kinds.count("boolean"),
        "seed": SEED,
        "studio_file": {
            "writer": "datasets.ingest.core.write_parquet (zstd, 64 MiB row groups), as versions are stored",
            "size_bytes": studio_file.stat().st_size,
            "row_groups": pq.ParquetFile(studio_file).metadata.num_row_groups,
        },
        "one_row_group_file": {
            "writer": "pyarrow.parquet.write_table (snappy, one row group)",
            "size_bytes": single_file.stat().st_size,
            "row_groups": pq.ParquetFile(single_file).metadata.num_row_groups,
        },
    }


def compare(profile: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Check the profile against pandas: what must be equal is counted, what is estimated is measured."""
    columns = {column["name"]: column for column in profile["columns"]}
    described, missing, distinct = reference["describe"], reference["missing"], reference["distinct"]
    mismatches: list[str] = []
    mean_error = std_error = quantile_error = numeric_distinct_error = 0.0
    histograms_equal = histograms_compared = 0
    for name in described.columns:
        column, stats = columns[name], described[name]
        if column["count"] != int(stats["count"]) or column["missing_count"] != int(missing[name]):
            mismatches.append(f"{name}: count/missing")
        if column["min"] != stats["min"] or column["max"] != stats["max"]:
            mismatches.append(f"{name}: min/max")
        scale = stats["std"] or 1.0
        mean_error = max(mean_error, abs(column["mean"] - stats["mean"]) / scale)
        std_error = max(std_error, abs(column["std"] - stats["std"]) / scale)
        for key, fraction in zip(column["quantiles"], PERCENTILES, strict=True):
            expected = stats[f"{fraction * 100:g}%"]
            quantile_error = max(quantile_error, abs(column["quantiles"][key] - expected) / scale)
        numeric_distinct_error = max(
            numeric_distinct_error,
            abs(column["distinct_count"] - int(distinct[name])) / max(int(distinct[name]), 1),
        )
        counts, _ = reference["histograms"][name]
        if (
            len(column["histogram"]["counts"]) == BINS
        ):  # integer columns with a small range get one bin per value
            histograms_compared += 1
            histograms_equal += column["histogram"]["counts"] == counts.tolist()
    top_values_equal = 0
    for name, counts in reference["top_values"].items():
        ours = {str(item["value"]): item["count"] for item in columns[name]["top_values"]["values"]}
        theirs = {str(value): int(count) for value, count in counts.items()}
        # Ties at the k-th place may pick different values; the counts must agree.
        same = sorted(ours.values()) == sorted(theirs.values()) and all(
            ours[value] == count for value, count in theirs.items() if value in ours
        )
        top_values_equal += same
        if columns[name]["type"] == "categorical" and columns[name]["distinct_count"] != int(distinct[name]):
            mismatches.append(f"{name}: distinct")
    correlation = profile["correlation"]
    expected_matrix = reference["correlation"].loc[correlation["columns"], correlation["columns"]].to_numpy()
    ours_matrix = np.array(
        [[math.nan if value is None else value for value in row] for row in correlation["matrix"]]
    )
    return {
        "exact_mismatches": mismatches,
        "max_mean_error_in_std": _round(mean_error),
        "max_std_error_in_std": _round(std_error),
        "max_quantile_error_in_std": _round(quantile_error),
        "max_numeric_distinct_relative_error": _round(numeric_distinct_error),
        "histograms_identical_to_numpy": f"{histograms_equal}/{histograms_compared}",
        "top_values_identical_to_value_counts": f"{top_values_equal}/{len(reference['top_values'])}",
        "max_correlation_abs_error": _round(float(np.nanmax(np.abs(ours_matrix - expected_matrix)))),
        "correlation_sample_fraction": round(correlation["sample_fraction"], 4),
    }


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def markdown(result: dict[str, Any]) -> str:
    data = result["dataset"]
    lines = [
        f"Data: {data['rows']:,} rows x {data['columns']} columns ({data['float_columns']} float and "
        f"{data['integer_columns']} integer with 2-5 % missing, {data['categorical_columns']} categorical of "
        f"5-1000 labels, {data['boolean_columns']} boolean), seed {data['seed']}. Each side ran "
        f"{result['runs']} times, interleaved, after one untimed round.",
        "",
    ]
    rows = []
    for key, scenario in result["scenarios"].items():
        facts = data[key]
        groups = f"{facts['row_groups']} row group{'s' if facts['row_groups'] != 1 else ''}"
        label = f"{key.replace('_', ' ')} ({groups}, {facts['size_bytes'] / 2**20:.0f} MiB)"
        for side, timing in scenario["timings"].items():
            wall = [f"{timing['min_s']:.2f}", f"{timing['median_s']:.2f}", f"{timing['median_cpu_s']:.2f}"]
            rows.append([label, side.replace("_", " "), *wall])
        for what, speedup in scenario["speedups"].items():
            rows.append(
                [label, f"**speedup, {what}**", f"{speedup['min']}x", f"**{speedup['median']}x**", ""]
            )
    lines.append(markdown_table(["file", "what", "min s", "median s", "median CPU s"], rows))
    main = result["scenarios"]["studio_file"]
    lines += [
        "",
        "Time in each part of the profile (seconds, last run; the queries of a round run side by side,",
        f"so the parts overlap): `{main['profile_phases_s']}`",
        "",
        f"Sample: {main['sample']}. Duplicate rows found: {main.get('duplicate_rows')}.",
        "",
        "Accuracy against pandas (studio file; errors of mean, std and quantiles in units of each column's "
        "std):",
        "",
        markdown_table(["check", "value"], [[key, value] for key, value in main["accuracy"].items()]),
        "",
        "Approximations the profile declared: " + "; ".join(main["approximations"]),
    ]
    return "\n".join(lines)
