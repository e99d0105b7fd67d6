"""Profile one Parquet file with DuckDB: per-column statistics, histograms, top values and correlations.

A pure module (no Django): the datasets app calls `profile_parquet` from a Celery task and stores the
returned dict on the version, so that the page opens without touching the data again. The shape of
that dict is documented in bench/README.md ("The profile").

The data never comes into Python. DuckDB reads the file, on a sandboxed connection that may read
this one file only, under a memory limit, spilling to a private temporary folder when it must, in
two rounds of independent aggregate queries:

1. - statistics: one aggregate query per group of columns: counts, min, max, mean, std, text lengths,
     true/false counts;
   - the sample query: `corr()` over every pair of numeric columns, quantiles and distinct counts, on
     a uniform sample of about `sample_rows` rows (all rows when the file is small);
   - top values: one GROUP BY per string column, which also counts its distinct values exactly;
   - duplicate rows.
2. - histograms of the numeric and datetime columns (edges from the min/max of round 1, DuckDB's
     `histogram(x, bounds)`), and the exact distinct counts the sample could not settle.

DuckDB parallelises one query over a file's row groups only, so a file of one row group would run on
one core: the queries of a round run side by side instead, one per thread, and the statistics and
histograms are split by columns for that.

Float columns are first aggregated as they are; only when a column turns out to hold NaN or an
infinity (its max is NaN or its min/max infinite: DuckDB orders NaN above every number) is it
aggregated again with NaN counted as missing and infinities left out of the statistics, so that
clean columns, the common case, pay for no check per value.

Exact, always: counts, missing values, min, max, mean, std, histograms, top values, true/false
counts, the distinct counts of categorical and text columns. Up to `max(sample_rows,
exact_max_rows)` rows everything is exact. Above, `approximations` in the result lists what was
estimated from the sample: correlations (standard error below 1/sqrt(n) for n sampled rows), quantiles
(of the sample, interpolated like pandas), duplicate rows (equal 64-bit row hashes), and the distinct
count of a numeric, datetime or image column in which the sample found no value twice, which is then
its count of values (the sample would have caught a repeat among more than ~0.5 % of the rows). A
column with repeats in the sample is counted exactly; one of more than EXACT_DISTINCT_MAX estimated
values falls back to DuckDB's HyperLogLog (`approx_count_distinct`), which is coarse: errors of
10-30 % were measured.
"""

# Every statement here is generated: names through quote_identifier, text through quote_literal,
# numbers formatted by Python, on a connection that may read this one file only.
# ruff: noqa: S608

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datasets.duck import quote_identifier, quote_literal, sandboxed_connection

PROFILE_FORMAT_VERSION = 1
COLUMN_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "image")
QUANTILES = (("p05", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95))
TOP_VALUE_MAX_CHARS = 200
# A sample with no repeated value stands for "all values distinct" only from this many values up.
MIN_SAMPLE_FOR_ALL_DISTINCT = 1000
# Above this many (estimated) distinct values, a distinct count is a HyperLogLog estimate: an exact
# count needs a hash set of them all.
EXACT_DISTINCT_MAX = 2_000_000
# The sample comes into memory: at most this many values (80 MB of doubles), however wide the file.
SAMPLE_MAX_VALUES = 10_000_000

ProgressCallback = Callable[[float, str], None]
Job = tuple[str, Callable[[], Any]]

_INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }
)
_FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})
_TIMESTAMP_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE"})
_TIMESTAMP_TZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"})

# Candidate widths of a datetime histogram's buckets: (label, DuckDB interval, longest length in
# seconds). The profile takes the finest that gives at most `bins` buckets, so that buckets fall on
# calendar units (days, months, years) rather than on arbitrary fractions of the range.
_TIME_BUCKETS = [
    ("1 second", "1 second", 1),
    ("5 seconds", "5 seconds", 5),
    ("15 seconds", "15 seconds", 15),
    ("1 minute", "1 minute", 60),
    ("5 minutes", "5 minutes", 300),
    ("15 minutes", "15 minutes", 900),
    ("1 hour", "1 hour", 3600),
    ("3 hours", "3 hours", 3 * 3600),
    ("6 hours", "6 hours", 6 * 3600),
    ("12 hours", "12 hours", 12 * 3600),
    ("1 day", "1 day", 86400),
    ("1 week", "7 days", 7 * 86400),
    ("1 month", "1 month", 31 * 86400),
    ("3 months", "3 months", 92 * 86400),
    ("6 months", "6 months", 184 * 86400),
    ("1 year", "1 year", 366 * 86400),
    ("5 years", "5 years", 5 * 366 * 86400),
    ("10 years", "10 years", 10 * 366 * 86400),
    ("50 years", "50 years", 50 * 366 * 86400),
    ("100 years", "100 years", 100 * 366 * 86400),
    ("1000 years", "1000 years", 1000 * 366 * 86400),
]

# Relative cost of one column in the statistics queries, to balance their groups (measured on the
# benchmark's file: a numeric column costs about as much as eight boolean ones).
_STATISTICS_COST = {"numeric": 8, "datetime": 4, "text": 3, "image": 1, "categorical": 1, "boolean": 1}


@dataclass
class _Column:
    index: int
    name: str
    type: str
    physical_type: str
    # Float columns only: found to hold NaN or infinities (see the module's doc).
    needs_cleaning: bool = False

    @property
    def quoted(self) -> str:
        return quote_identifier(self.name)

    @property
    def is_float(self) -> bool:
        return self.physical_type in _FLOAT_TYPES

    @property
    def is_integer(self) -> bool:
        return self.physical_type in _INTEGER_TYPES

    def numeric_value(self, *, clean: bool = False) -> str:
        """Return the SQL of this numeric column's value for statistics: finite numbers, else NULL."""
        raw = self.quoted
        if self.is_integer:
            return raw
        if self.is_float:
            return f"(CASE WHEN isfinite({raw}) THEN {raw} END)" if clean or self.needs_cleaning else raw
        if self.physical_type.startswith("DECIMAL") or self.physical_type == "BOOLEAN":
            return f"CAST({raw} AS DOUBLE)"
        as_double = f"TRY_CAST(CAST({raw} AS VARCHAR) AS DOUBLE)"
        return f"(CASE WHEN isfinite({as_double}) THEN {as_double} END)"

    def numeric_present(self, *, clean: bool = False) -> str:
        """Return the SQL of this numeric column's value, NULL for NULL, NaN and text that is no number."""
        raw = self.quoted
        if self.is_float:
            return f"(CASE WHEN NOT isnan({raw}) THEN {raw} END)" if clean or self.needs_cleaning else raw
        if self.is_integer or self.physical_type.startswith("DECIMAL") or self.physical_type == "BOOLEAN":
            return raw
        return f"TRY_CAST(CAST({raw} AS VARCHAR) AS DOUBLE)"

    def datetime_value(self) -> str:
        """Return the SQL of this column as a TIMESTAMP (the UTC wall-clock time of zoned timestamps)."""
        raw = self.quoted
        if self.physical_type == "TIMESTAMP":
            return raw
        if self.physical_type in _TIMESTAMP_TYPES or self.physical_type in _TIMESTAMP_TZ_TYPES:
            return f"CAST({raw} AS TIMESTAMP)"  # the connection's time zone is UTC
        return f"TRY_CAST(CAST({raw} AS VARCHAR) AS TIMESTAMP)"

    def boolean_value(self) -> str:
        raw = self.quoted
        return raw if self.physical_type == "BOOLEAN" else f"TRY_CAST(CAST({raw} AS VARCHAR) AS BOOLEAN)"

    def distinct_target(self) -> str:
        """Return the SQL whose distinct values a numeric, datetime or image column counts."""
        if self.type == "numeric":
            return self.numeric_present(clean=True)
        if self.type == "datetime":
            return self.datetime_value()
        return self.quoted


def infer_column_type(physical_type: str) -> str:
    """Return our column type for a DuckDB type, for a file's column that the schema does not name."""
    numeric = physical_type in _INTEGER_TYPES or physical_type in _FLOAT_TYPES
    if numeric or physical_type.startswith("DECIMAL"):
        return "numeric"
    if physical_type == "BOOLEAN":
        return "boolean"
    if physical_type in _TIMESTAMP_TYPES or physical_type in _TIMESTAMP_TZ_TYPES:
        return "datetime"
    return "categorical"


def profile_parquet(
    path: Path,
    schema: dict[str, str],
    *,
    progress: ProgressCallback | None = None,
    top_k: int = 10,
    bins: int = 30,
    correlation_max_columns: int = 50,
    sample_rows: int = 100_000,
    exact_max_rows: int = 100_000,
    duplicates: bool = True,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> dict[str, Any]:
    """Profile the Parquet file at `path`; `schema` maps column names to our column types.

    A column of the file that `schema` does not name gets a type inferred from its Parquet type; a
    name in `schema` that the file lacks is a ValueError. The result is plain JSON (NaN and infinities
    become None). `progress(fraction, message)` is called from the calling thread as queries end.
    Correlations, quantiles and some distinct counts come from a uniform sample of about
    `sample_rows` rows when the file has more than `max(sample_rows, exact_max_rows)` rows.
    `duplicates=False` skips the duplicate-row count (a pass over every column).
    """
    if min(top_k, bins, threads, sample_rows) < 1:
        raise ValueError("top_k, bins, threads and sample_rows must be at least 1")
    unknown = sorted({kind for kind in schema.values() if kind not in COLUMN_TYPES})
    if unknown:
        raise ValueError(f"unknown column type(s) {unknown}; expected one of {list(COLUMN_TYPES)}")

    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="studio-profile-") as spill_directory:
        connection = sandboxed_connection(
            {"data": path}, memory_limit=memory_limit, threads=threads, temp_directory=Path(spill_directory)
        )
        try:
            profiler = _Profiler(
                connection=connection,
                path=path,
                top_k=top_k,
                bins=bins,
                correlation_max_columns=correlation_max_columns,
                sample_rows=sample_rows,
                exact_max_rows=exact_max_rows,
                duplicates=duplicates,
                threads=threads,
                report=report,
            )
            profiler.run(schema)
        finally:
            connection.close()
    result = profiler.result()
    result["elapsed_s"] = round(time.perf_counter() - started, 4)
    result = to_json_safe(result)
    report(1.0, "Profile complete")
    return result


class _Profiler:
    """Hold the state of one profile between its queries."""

    def __init__(
        self,
        *,
        connection: duckdb.DuckDBPyConnection,
        path: Path,
        top_k: int,
        bins: int,
        correlation_max_columns: int,
        sample_rows: int,
        exact_max_rows: int,
        duplicates: bool,
        threads: int,
        report: ProgressCallback,
    ) -> None:
        self.connection = connection
        self.path = path
        self.top_k = top_k
        self.bins = bins
        self.correlation_max_columns = correlation_max_columns
        self.sample_rows = sample_rows
        self.exact_max_rows = exact_max_rows
        self.duplicates = duplicates
        self.threads = threads
        self.report = report
        self.columns: list[_Column] = []
        self.stats: list[dict[str, Any]] = []
        self.row_count = 0
        self.row_group_count = 0
        self.sample_every = 1  # the sample holds one row in this many
        self.sampled_row_count = 0
        self.duplicate_row_count: int | None = None
        self.correlation: dict[str, Any] | None = None
        self.approximations: list[str] = []
        self.timings: dict[str, float] = {}

    @property
    def is_sampled(self) -> bool:
        return self.sample_every > 1

    # -- running queries ------------------------------------------------------------------------------

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()  # a cursor per thread: DuckDB runs them side by side
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()

    def _query_named(self, sql: str) -> dict[str, Any]:
        cursor = self.connection.cursor()
        try:
            row = cursor.execute(sql).fetchone()
            return dict(zip([column[0] for column in cursor.description], row, strict=True))
        finally:
            cursor.close()

    def _run_round(self, jobs: list[Job], start: float, end: float) -> None:
        """Run independent jobs on `threads` threads; report progress from this thread as each ends."""
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=min(self.threads, len(jobs))) as pool:
            pending: dict[Future, str] = {pool.submit(self._timed(name, job)): name for name, job in jobs}
            done_count = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = pending.pop(future)
                    future.result()  # raises the job's error, if any
                    done_count += 1
                    self.report(start + (end - start) * done_count / len(jobs), f"Computed {name}")

    def _timed(self, name: str, function: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            started = time.perf_counter()
            try:
                return function()
            finally:
                self.timings[name] = round(time.perf_counter() - started, 4)

        return run

    def _groups(self, columns: list[_Column], cost: Callable[[_Column], int]) -> list[list[_Column]]:
        """Split columns into at most `threads` groups of about equal cost, each in the file's order."""
        groups: list[list[_Column]] = [[] for _ in range(min(self.threads, len(columns)))]
        loads = [0] * len(groups)
        for column in sorted(columns, key=cost, reverse=True):
            lightest = loads.index(min(loads))
            groups[lightest].append(column)
            loads[lightest] += cost(column)
        return [sorted(group, key=lambda column: column.index) for group in groups if group]

    def _of_type(self, *kinds: str) -> list[_Column]:
        return [column for column in self.columns if column.type in kinds]

    # -- the profile ----------------------------------------------------------------------------------

    def run(self, schema: dict[str, str]) -> None:
        self.report(0.0, "Reading the file's schema")
        self._read_schema(schema)
        self.report(0.05, "Sampling rows, counting top values")
        started = time.perf_counter()
        self._run_round(self._sample_jobs() + self._top_value_jobs(), 0.05, 0.25)
        self.timings["round_1"] = round(time.perf_counter() - started, 4)
        self.report(0.25, "Computing statistics and histograms")
        started = time.perf_counter()
        self._run_round(self._statistics_jobs(self.columns) + self._duplicate_jobs(), 0.25, 0.85)
        self.timings["round_2"] = round(time.perf_counter() - started, 4)
        # Rarely needed: columns with NaN or infinities, histograms the footer could not plan.
        started = time.perf_counter()
        dirty = [column for column in self._of_type("numeric") if self._holds_nan_or_infinity(column)]
        if dirty:
            for column in dirty:
                column.needs_cleaning = True
                self.stats[column.index].pop("histogram", None)
            self.report(0.85, "Leaving NaN and infinities out of the statistics")
            self._run_round(self._statistics_jobs(dirty, name="statistics (NaN, infinities)"), 0.85, 0.9)
        self._run_round(self._histogram_jobs(), 0.9, 0.99)
        self.timings["round_3"] = round(time.perf_counter() - started, 4)

    def _read_schema(self, schema: dict[str, str]) -> None:
        started = time.perf_counter()
        physical = {row[0]: row[1] for row in self._query("DESCRIBE SELECT * FROM data")}
        missing = [name for name in schema if name not in physical]
        if missing:
            raise ValueError(f"column(s) {missing} are in the schema but not in the file")
        for index, (name, physical_type) in enumerate(physical.items()):
            kind = schema.get(name) or infer_column_type(physical_type)
            self.columns.append(_Column(index=index, name=name, type=kind, physical_type=physical_type))
        self.stats = [{} for _ in self.columns]
        path = quote_literal(str(self.path))
        rows, row_groups = self._query(
            "SELECT coalesce(sum(num_rows), 0), coalesce(sum(num_row_groups), 0) "
            f"FROM parquet_file_metadata({path})"
        )[0]
        self.row_count, self.row_group_count = int(rows), int(row_groups)
        # The sample is the whole file when that is small, and never more than SAMPLE_MAX_VALUES values.
        sampled_columns = len(self._of_type("numeric", "datetime", "image"))
        sample_rows = max(1, min(self.sample_rows, SAMPLE_MAX_VALUES // max(sampled_columns, 1)))
        if self.row_count > sample_rows:
            self.sample_every = math.ceil(self.row_count / sample_rows)
        self._read_footer_ranges(path)
        self.timings["schema"] = round(time.perf_counter() - started, 4)

    def _read_footer_ranges(self, path: str) -> None:
        """Note each numeric column's min and max from the footer's row-group statistics, where complete.

        They give the histogram's bins before the scan, so that one pass computes statistics and
        histogram together; the scan's own min/max then confirm them (see _statistics_jobs).
        """
        footer = self._query(
            "SELECT column_id, stats_min_value, stats_max_value "
            f"FROM parquet_metadata({path}) ORDER BY column_id"
        )
        if not footer or max(row[0] for row in footer) != len(self.columns) - 1:
            return  # nested columns: leaf ids do not match column positions
        ranges: dict[int, list[tuple[str | None, str | None]]] = {}
        for column_id, low, high in footer:
            ranges.setdefault(column_id, []).append((low, high))
        for column in self._of_type("numeric"):
            if not (column.is_float or column.is_integer) or column.index not in ranges:
                continue
            bounds = ranges[column.index]
            if any(low is None or high is None for low, high in bounds):
                continue
            parse = float if column.is_float else int
            try:
                low, high = min(parse(low) for low, _ in bounds), max(parse(high) for _, high in bounds)
            except ValueError:
                continue
            if column.is_float and not (math.isfinite(low) and math.isfinite(high)):
                continue
            self.stats[column.index]["footer_range"] = (low, high)

    # Round 1: the sample and the top values -------------------------------------------------------------

    def _sample_source(self) -> str:
        if not self.is_sampled:
            return "data"
        # One row in `sample_every`, chosen by a hash of its position: uniform, repeatable, and the
        # same whatever the number of threads.
        return (
            f"read_parquet({quote_literal(str(self.path))}, file_row_number = true) "
            f"WHERE hash(file_row_number) % {self.sample_every} = 0"
        )

    def _sample_jobs(self) -> list[Job]:
        """Plan the sample: DuckDB picks the rows, numpy and Arrow compute on them.

        DuckDB's corr() costs ~10 ns per pair of columns and row; numpy's matrix products do the same
        work for a whole matrix in a fraction of that.
        """
        numeric = self._of_type("numeric")
        counted = self._of_type("numeric", "datetime", "image")
        if not counted:
            return []
        selects = []
        for column in counted:
            if column.type == "numeric":
                selects.append(f"CAST({column.numeric_present(clean=True)} AS DOUBLE)")
            elif column.type == "datetime":
                selects.append(f"epoch_us({column.datetime_value()})")
            else:
                selects.append(column.quoted)
        named = [f"{select} AS s{column.index}" for select, column in zip(selects, counted, strict=True)]
        sql = f"SELECT {', '.join(named)} FROM {self._sample_source()}"

        def run() -> None:
            cursor = self.connection.cursor()
            try:
                table = cursor.execute(sql).arrow()
                if isinstance(table, pa.RecordBatchReader):
                    table = table.read_all()
            finally:
                cursor.close()
            self.sampled_row_count = table.num_rows
            finite: dict[int, np.ndarray] = {}
            for column in counted:
                values = table.column(f"s{column.index}")
                stats = self.stats[column.index]
                stats["sample_count"] = len(values) - values.null_count
                stats["sample_distinct"] = pc.count_distinct(values, mode="only_valid").as_py()
                if column.type == "numeric":
                    numbers = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                    numbers = np.where(np.isfinite(numbers), numbers, np.nan)
                    finite[column.index] = numbers
                    kept = numbers[~np.isnan(numbers)]
                    stats["quantiles"] = (
                        np.quantile(kept, [q for _, q in QUANTILES]).tolist() if kept.size else None
                    )
            chosen = numeric[: self.correlation_max_columns]
            if len(chosen) >= 2:
                matrix = pairwise_correlation(np.column_stack([finite[column.index] for column in chosen]))
                self.correlation = {
                    "method": "pearson",
                    "columns": [column.name for column in chosen],
                    "matrix": matrix,
                    "omitted_columns": [column.name for column in numeric[self.correlation_max_columns :]],
                    "sample_fraction": 1 / self.sample_every,
                }

        return [("sample", run)]

    def _top_value_jobs(self) -> list[Job]:
        columns = self._of_type("categorical", "text", "image")
        if not columns:
            return []
        selects = []
        for column in columns:
            raw = column.quoted
            if column.type == "image":  # paths are unique: their file extensions are what repeats
                key = f"lower(regexp_extract(CAST({raw} AS VARCHAR), '\\.([^./\\\\]+)$', 1))"
            else:
                key = f"CAST({raw} AS VARCHAR)"
            selects.append(
                f"(SELECT {column.index} AS col, value, n, count(*) OVER () AS groups FROM ("
                f"SELECT {key} AS value, count(*) AS n FROM data WHERE {raw} IS NOT NULL GROUP BY 1"
                f") ORDER BY n DESC, value LIMIT {self.top_k})"
            )

        def run() -> None:
            found: dict[int, list[tuple[str, int, int]]] = {}
            for column_index, value, count, groups in self._query(" UNION ALL ".join(selects)):
                found.setdefault(column_index, []).append((value, int(count), int(groups)))
            for column in columns:
                entries = sorted(found.get(column.index, []), key=lambda entry: (-entry[1], entry[0]))
                stats = self.stats[column.index]
                if column.type == "image":
                    stats["top_extensions"] = [(value or "(none)", count) for value, count, _ in entries]
                else:
                    stats["top_values"] = [(value, count) for value, count, _ in entries]
                    stats["distinct"] = entries[0][2] if entries else 0
                    stats["distinct_is_exact"] = True

        return [("top values", run)]

    # Round 2: statistics and histograms of every column, duplicates ------------------------------------

    def _distinct_plan(self, column: _Column) -> str | None:
        """Settle a column's distinct count from the sample, or return the aggregate that counts it."""
        stats = self.stats[column.index]
        if column.type not in ("numeric", "datetime", "image") or "sample_distinct" not in stats:
            return None
        sampled, distinct_in_sample = stats["sample_count"], stats["sample_distinct"]
        if not self.is_sampled:
            stats["distinct"], stats["distinct_is_exact"] = distinct_in_sample, True
            return None
        target = column.distinct_target()
        if sampled >= MIN_SAMPLE_FOR_ALL_DISTINCT and distinct_in_sample == sampled:
            stats["distinct_is_exact"] = False
            return f"count({target}) AS c{column.index}_distinct"  # all distinct: as many as values
        # The sample's share of distinct values times the rows overestimates: the safe side here.
        estimate = self.row_count * distinct_in_sample / max(sampled, 1)
        stats["distinct_is_exact"] = estimate <= EXACT_DISTINCT_MAX
        function = "count(DISTINCT {})" if stats["distinct_is_exact"] else "approx_count_distinct({})"
        return function.format(target) + f" AS c{column.index}_distinct"

    def _statistics_aggregates(self, column: _Column) -> list[str]:
        i, raw = column.index, column.quoted
        if column.type == "numeric":
            value, present = column.numeric_value(), column.numeric_present()
            aggregates = [
                f"count({present}) AS c{i}_count",
                f"min({value}) AS c{i}_min",
                f"max({value}) AS c{i}_max",
                f"avg({value}) AS c{i}_mean",
                f"stddev_samp({value}) AS c{i}_std",
            ]
            if value != present:
                aggregates.append(f"count({value}) AS c{i}_finite")
            footer_range = self.stats[i].get("footer_range")
            if footer_range and not column.needs_cleaning:
                histogram = self._numeric_histogram_aggregate(column, *footer_range)
                if histogram:
                    aggregates.append(histogram)
        elif column.type == "boolean":
            value = column.boolean_value()
            aggregates = [
                f"count({value}) AS c{i}_count",
                f"count_if({value}) AS c{i}_true",
                f"count_if(NOT {value}) AS c{i}_false",
            ]
        elif column.type == "datetime":
            value = column.datetime_value()
            aggregates = [
                f"count({value}) AS c{i}_count",
                f"CAST(min({value}) AS VARCHAR) AS c{i}_min",
                f"CAST(max({value}) AS VARCHAR) AS c{i}_max",
                f"epoch_us(min({value})) AS c{i}_min_us",
                f"epoch_us(max({value})) AS c{i}_max_us",
            ]
        else:
            aggregates = [f"count({raw}) AS c{i}_count"]
            if column.type == "text":
                length = f"length(CAST({raw} AS VARCHAR))"
                aggregates += [
                    f"min({length}) AS c{i}_length_min",
                    f"max({length}) AS c{i}_length_max",
                    f"avg({length}) AS c{i}_length_mean",
                ]
        distinct = self._distinct_plan(column)
        return aggregates + ([distinct] if distinct else [])

    def _statistics_jobs(self, columns: list[_Column], name: str = "statistics") -> list[Job]:
        def job(group: list[_Column]) -> Callable[[], None]:
            def run() -> None:
                aggregates = [sql for column in group for sql in self._statistics_aggregates(column)]
                try:
                    values = self._query_named(f"SELECT {', '.join(aggregates)} FROM data")
                except duckdb.OutOfRangeException:
                    # stddev_samp refuses infinities: clean this group's float columns (each column is
                    # in one group only, so no other thread reads these flags).
                    for column in group:
                        column.needs_cleaning = column.needs_cleaning or column.is_float
                    aggregates = [sql for column in group for sql in self._statistics_aggregates(column)]
                    values = self._query_named(f"SELECT {', '.join(aggregates)} FROM data")
                for column in group:
                    self._store_statistics(column, values)

            return run

        groups = self._groups(columns, lambda column: _STATISTICS_COST[column.type])
        return [(f"{name} {number + 1}/{len(groups)}", job(group)) for number, group in enumerate(groups)]

    def _store_statistics(self, column: _Column, values: dict[str, Any]) -> None:
        prefix = f"c{column.index}_"
        stats = self.stats[column.index]
        found = {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}
        histogram = found.pop("histogram", None)
        stats.update(found)
        if column.type != "numeric":
            return
        if "finite" not in found:
            stats["finite"] = stats["count"]
        plan = stats.pop("histogram_plan", None)
        if histogram is not None and plan is not None:
            low, high = stats.get("min"), stats.get("max")
            # The footer's range made the bins; they stand when the scan found the same min and max.
            if (low, high) == stats["footer_range"]:
                self._store_histogram(column, plan, _as_mapping(histogram))

    def _duplicate_jobs(self) -> list[Job]:
        if not self.duplicates or not self.columns:
            return []
        if self.row_count <= self.exact_max_rows:
            sql = "SELECT count(*) FROM (SELECT DISTINCT * FROM data)"
        else:
            # Rows with equal 64-bit hashes count as duplicates: among 10^8 rows a collision has a
            # chance below 10^-3, and a set of hashes is far smaller than a set of whole rows.
            columns = ", ".join(column.quoted for column in self.columns)
            sql = f"SELECT count(DISTINCT hash({columns})) FROM data"
            self.approximations.append("duplicate rows: rows with equal 64-bit hashes")

        def run() -> None:
            self.duplicate_row_count = self.row_count - int(self._query(sql)[0][0])

        return [("duplicate rows", run)]

    def _holds_nan_or_infinity(self, column: _Column) -> bool:
        if column.needs_cleaning or not column.is_float:
            return False
        low, high = self.stats[column.index].get("min"), self.stats[column.index].get("max")
        return any(value is not None and not math.isfinite(value) for value in (low, high))

    # Histograms ---------------------------------------------------------------------------------------

    def _numeric_edges(self, column: _Column, low: float, high: float) -> list[float]:
        """Return numpy-style bin edges over [low, high]."""
        low, high = float(low), float(high)
        if column.is_integer and high - low + 1 <= self.bins:
            # One bin per integer, centred on it, so that small counts and codes read as bars.
            return [low - 0.5 + step for step in range(int(high - low) + 2)]
        if low == high:
            return [low - 0.5, high + 0.5]
        width = (high - low) / self.bins
        return [low + step * width for step in range(self.bins)] + [high]

    def _numeric_histogram_aggregate(self, column: _Column, low: float, high: float) -> str | None:
        """Return the aggregate counting a numeric column's histogram (noting how to read it), if any."""
        edges = self._numeric_edges(column, low, high)
        if len(edges) == 2:
            return None  # a single value: one bin, filled from the count
        # histogram(x, bounds) counts x in (previous bound, bound]; bounds one step below the inner
        # edges make that numpy's [edge, next edge), with the last bin closed.
        bounds = [math.nextafter(edge, -math.inf) for edge in edges[1:-1]] + [edges[-1]]
        self.stats[column.index]["histogram_plan"] = (edges, bounds)
        bound_list = "[" + ", ".join(_double_literal(bound) for bound in bounds) + "]"
        return (
            f"histogram(CAST({column.numeric_value()} AS DOUBLE), {bound_list}) AS c{column.index}_histogram"
        )

    def _time_bucket(self, column: _Column) -> tuple[str, str] | None:
        low_us, high_us = self.stats[column.index].get("min_us"), self.stats[column.index].get("max_us")
        if low_us is None or high_us is None:
            return None
        span_s = (high_us - low_us) / 1_000_000
        for label, interval, seconds in _TIME_BUCKETS:
            # One bucket of slack: the first bucket starts on a calendar boundary before the minimum.
            if span_s / seconds <= self.bins - 1:
                return label, interval
        return _TIME_BUCKETS[-1][0], _TIME_BUCKETS[-1][1]

    def _datetime_histogram_aggregate(self, column: _Column) -> str | None:
        stats = self.stats[column.index]
        bucket = self._time_bucket(column)
        if bucket is None:
            stats["histogram"] = {"edges": [], "counts": [], "interval": None}
            return None
        label, interval = bucket
        step = f"INTERVAL '{interval}'"
        low, high = int(stats["min_us"]), int(stats["max_us"])
        # The starts of the buckets, from the first through the end of the last.
        starts = self._query(
            f"SELECT epoch_us(t), CAST(t AS VARCHAR) FROM (SELECT unnest(range("
            f"time_bucket({step}, make_timestamp({low})), "
            f"time_bucket({step}, make_timestamp({high})) + {step} + INTERVAL '1 microsecond', "
            f"{step})) AS t)"
        )
        # Each bound is the last microsecond of a bucket: buckets are [start, next start).
        bounds = [start_us - 1 for start_us, _ in starts[1:]]
        stats["histogram_plan"] = ([text.replace(" ", "T") for _, text in starts], bounds, label)
        bound_list = "[" + ", ".join(str(bound) for bound in bounds) + "]::BIGINT[]"
        return f"histogram(epoch_us({column.datetime_value()}), {bound_list}) AS c{column.index}_histogram"

    def _histogram_jobs(self) -> list[Job]:
        """Plan the histograms round 2 could not count: datetime columns, and numeric ones without bins."""
        aggregates: dict[int, str] = {}
        for column in self._of_type("numeric", "datetime"):
            stats = self.stats[column.index]
            if "histogram" in stats:
                continue
            if column.type == "datetime":
                aggregate = self._datetime_histogram_aggregate(column)
            elif stats.get("min") is None or stats.get("max") is None:
                stats["histogram"] = {"edges": [], "counts": []}
                continue
            else:
                aggregate = self._numeric_histogram_aggregate(column, stats["min"], stats["max"])
                if aggregate is None:
                    edges = self._numeric_edges(column, stats["min"], stats["max"])
                    stats["histogram"] = {"edges": edges, "counts": [int(stats["finite"])]}
            if aggregate:
                aggregates[column.index] = aggregate

        def job(group: list[_Column]) -> Callable[[], None]:
            def run() -> None:
                values = self._query_named(
                    f"SELECT {', '.join(aggregates[column.index] for column in group)} FROM data"
                )
                for column in group:
                    plan = self.stats[column.index].pop("histogram_plan")
                    self._store_histogram(column, plan, _as_mapping(values[f"c{column.index}_histogram"]))

            return run

        planned = [column for column in self.columns if column.index in aggregates]
        groups = self._groups(planned, lambda column: 1)
        return [(f"histograms {number + 1}/{len(groups)}", job(group)) for number, group in enumerate(groups)]

    def _store_histogram(self, column: _Column, plan: Any, counted: dict[Any, int]) -> None:
        # The map holds every bound (zero counts too) in order; a key past them would be DuckDB's bin
        # for values above the last bound, which min/max rule out (it would join the last bin).
        ordered = [int(count) for _, count in sorted(counted.items())]
        bounds = plan[1]
        counts = ordered[: len(bounds)] + [0] * (len(bounds) - len(ordered))
        counts[-1] += sum(ordered[len(bounds) :])
        histogram: dict[str, Any] = {"edges": plan[0], "counts": counts}
        if column.type == "datetime":
            histogram["interval"] = plan[2]
        self.stats[column.index]["histogram"] = histogram

    # -- the result -----------------------------------------------------------------------------------

    def _column_result(self, column: _Column) -> dict[str, Any]:
        stats, rows = self.stats[column.index], self.row_count
        count = int(stats.get("count") or 0)
        distinct = stats.get("distinct")
        if distinct is not None:
            distinct = min(int(distinct), count)  # an estimate may overshoot
        result: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "physical_type": column.physical_type,
            "count": count,
            "missing_count": rows - count,
            "missing_percent": _percent(rows - count, rows),
            "distinct_count": distinct,
            "distinct_is_approximate": distinct is not None and not stats.get("distinct_is_exact", False),
        }
        if column.type == "numeric":
            quantiles = stats.get("quantiles") or [None] * len(QUANTILES)
            result.update(
                {
                    "min": stats.get("min"),
                    "max": stats.get("max"),
                    "mean": stats.get("mean"),
                    "std": stats.get("std"),
                    "quantiles": {key: value for (key, _), value in zip(QUANTILES, quantiles, strict=True)},
                    "quantiles_are_approximate": self.is_sampled,
                    "infinite_count": count - int(stats.get("finite") or 0),
                    "histogram": stats.get("histogram", {"edges": [], "counts": []}),
                }
            )
        elif column.type == "boolean":
            true_count, false_count = int(stats.get("true") or 0), int(stats.get("false") or 0)
            result["distinct_count"] = int(true_count > 0) + int(false_count > 0)
            result["true_count"], result["false_count"] = true_count, false_count
            entries = sorted([(True, true_count), (False, false_count)], key=lambda entry: -entry[1])
            result["top_values"] = _top_entries([entry for entry in entries if entry[1] > 0], rows, count)
        elif column.type == "datetime":
            result["min"] = _iso(stats.get("min"))
            result["max"] = _iso(stats.get("max"))
            result["histogram"] = stats.get("histogram", {"edges": [], "counts": [], "interval": None})
        elif column.type == "image":
            result["top_extensions"] = _top_entries(stats.get("top_extensions", []), rows, count)
        else:
            result["top_values"] = _top_entries(stats.get("top_values", []), rows, count)
            if column.type == "text":
                result["length"] = {
                    "min": stats.get("length_min"),
                    "max": stats.get("length_max"),
                    "mean": stats.get("length_mean"),
                }
        return result

    def _correlation_result(self) -> dict[str, Any] | None:
        if self.correlation is None:
            return None
        by_name = {column.name: column for column in self.columns}
        for position, name in enumerate(self.correlation["columns"]):
            std = self.stats[by_name[name].index].get("std")
            # A column correlates with itself when it varies at all.
            diagonal = 1.0 if std is not None and _is_finite(std) and std > 0 else None
            self.correlation["matrix"][position][position] = diagonal
        return self.correlation

    def result(self) -> dict[str, Any]:
        columns = [self._column_result(column) for column in self.columns]
        if self.is_sampled:
            self.approximations.append(
                f"from a uniform sample of {self.sampled_row_count:,} rows (1 in {self.sample_every}): "
                "correlations, quantiles, and the distinct counts marked approximate"
            )
        if any(column["distinct_is_approximate"] for column in columns):
            self.approximations.append(
                "an approximate distinct count is the column's count of values when the sample holds no "
                f"value twice, or a HyperLogLog estimate above {EXACT_DISTINCT_MAX:,} values"
            )
        missing_cells = sum(column["missing_count"] for column in columns)
        duplicates = self.duplicate_row_count
        return {
            "format_version": PROFILE_FORMAT_VERSION,
            "row_count": self.row_count,
            "column_count": len(columns),
            "file_size_bytes": os.path.getsize(self.path),
            "row_group_count": self.row_group_count,
            "missing_cell_count": missing_cells,
            "missing_cell_percent": _percent(missing_cells, self.row_count * len(columns)),
            "duplicate_row_count": duplicates,
            "duplicate_row_percent": None if duplicates is None else _percent(duplicates, self.row_count),
            "duplicates_are_approximate": duplicates is not None and self.row_count > self.exact_max_rows,
            "columns": columns,
            "correlation": self._correlation_result(),
            "sample": {"rows": self.sampled_row_count, "fraction": 1 / self.sample_every},
            "approximations": self.approximations,
            "settings": {
                "top_k": self.top_k,
                "bins": self.bins,
                "sample_rows": self.sample_rows,
                "exact_max_rows": self.exact_max_rows,
                "correlation_max_columns": self.correlation_max_columns,
                "threads": self.threads,
            },
            "engine": {"name": "duckdb", "version": duckdb.__version__},
            "timings_s": self.timings,
        }


def pairwise_correlation(values: np.ndarray) -> list[list[float | None]]:
    """Return Pearson's r of every pair of columns of `values` (rows x columns, NaN where missing).

    Each pair uses the rows where both have a value, as pandas' DataFrame.corr() does; None where
    fewer than two such rows or no variation.
    """
    present = ~np.isnan(values)
    weights = present.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Centred on each column's mean first: sums of squares of raw values would lose digits.
        means = np.where(present, values, 0.0).sum(axis=0) / weights.sum(axis=0)
        centred = np.where(present, values - np.nan_to_num(means), 0.0)
        pairs = weights.T @ weights  # [i, j]: rows where both i and j have a value
        sums = centred.T @ weights  # [i, j]: sum of column i over those rows
        squares = (centred * centred).T @ weights
        covariance = centred.T @ centred - sums * sums.T / pairs
        variance = squares - sums * sums / pairs  # [i, j]: of column i over the rows shared with j
        correlation = covariance / np.sqrt(variance * variance.T)
    correlation[pairs < 2] = np.nan
    correlation = np.clip(correlation, -1.0, 1.0)
    return [[float(value) if np.isfinite(value) else None for value in row] for row in correlation]


def _top_entries(entries: list[tuple[Any, int]], row_count: int, count: int) -> dict[str, Any]:
    """Return top values as {"values": [{"value", "count", "percent" of all rows}], "other_count"}."""
    values = [
        {
            "value": value[:TOP_VALUE_MAX_CHARS] if isinstance(value, str) else value,
            "count": n,
            "percent": _percent(n, row_count),
        }
        for value, n in entries
    ]
    return {"values": values, "other_count": count - sum(n for _, n in entries)}


def _as_mapping(value: Any) -> dict[Any, Any]:
    """Return a DuckDB MAP as a dict (some clients return {'key': [...], 'value': [...]})."""
    if value is None:
        return {}
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        return dict(zip(value["key"], value["value"], strict=True))
    return dict(value)


def _double_literal(value: float) -> str:
    # Parsed from text, the literal is exactly this double (a bare 0.1 would be a DECIMAL first).
    return f"CAST('{value!r}' AS DOUBLE)"


def _percent(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else 100.0 * part / whole


def _iso(text: str | None) -> str | None:
    return None if text is None else text.replace(" ", "T")


def _is_finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def to_json_safe(value: Any) -> Any:
    """Return `value` in plain JSON types: NaN/inf become None, decimals floats, dates ISO strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return to_json_safe(float(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return to_json_safe(value.item())
    return str(value)
