"""Profile one Parquet file: per-column statistics, histograms, top values, correlations.

A pure module (no Django): the datasets app calls `profile_parquet` from a Celery task and stores the
returned dict on the version, so that the page opens without touching the data again. The shape of
that dict is in `profile_parquet`'s docstring.

DuckDB reads the file, on a sandboxed connection that may read this one file only, under a memory
limit, spilling to a private temporary folder when it must. Round 1 runs these jobs side by side, one
per thread:

- numeric columns (split in groups): DuckDB decodes them and streams Arrow batches of
  NUMERIC_BATCH_ROWS rows; numpy accumulates count, min, max, mean and variance (merged over batches
  with Chan's formula) and the histogram, whose bins come from the min/max of the file's footer
  (row-group statistics) and stand when the data has that very min and max. On the way it keeps a
  uniform sample of about `sample_rows` rows (one in `every`, by a hash of the row's position);
- one DuckDB aggregate query for the other columns: counts, min/max of datetimes, text lengths,
  true/false counts;
- top values: a DuckDB GROUP BY per string column, which also counts its distinct values exactly;
- duplicate rows (DuckDB), and the sample of the datetime and image columns (DuckDB).

Then numpy computes the correlation matrix and the quantiles of the sample, and round 2 (DuckDB)
does what is left, usually little: exact distinct counts where the sample saw a value twice,
datetime histograms (calendar buckets), and histograms the footer could not plan.

Why numpy for the numeric columns: DuckDB parallelises a query over row groups only and costs
~5-20 ns per value and aggregate; on the benchmark's 1M x 50 file, its aggregates (count, min, max,
avg, stddev_samp, histogram) took 0.9 s where numpy over DuckDB's batches takes 0.4 s, and its corr()
over all pairs of 30 columns took 4 s (measured, bench/README.md). NaN counts as missing (as in pandas);
infinities are values, counted apart and left out of mean, std, quantiles, histograms and correlations.

Exact, always: counts, missing values, min, max, mean, std, histograms, top values, true/false
counts, text lengths, the distinct counts of categorical and text columns, and those of numeric,
datetime and image columns whose sample holds a repeated value (up to EXACT_DISTINCT_MAX). From the
sample, and listed in the result's `approximations` when the file has more rows than the sample:
correlations (standard error below 1/sqrt(n) for n sampled rows), quantiles (of the sample,
interpolated like pandas) and the distinct count of a column whose sample holds no value twice,
which is then its count of values (had more than ~0.1 % of its rows repeated a value, the sample
would have shown it). Duplicate rows are compared whole up to `exact_max_rows` rows, by 64-bit hash
above.
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
# Rows per Arrow batch that numpy sums up at a time: 128k rows x 8 bytes per numeric column.
NUMERIC_BATCH_ROWS = 131_072

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
_ARROW_INTEGER_TYPES = _INTEGER_TYPES - {"HUGEINT", "UHUGEINT"}
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


@dataclass
class _Column:
    index: int
    name: str
    type: str
    physical_type: str

    @property
    def quoted(self) -> str:
        return quote_identifier(self.name)

    @property
    def is_float(self) -> bool:
        return self.physical_type in _FLOAT_TYPES

    @property
    def is_integer(self) -> bool:
        return self.physical_type in _INTEGER_TYPES

    def numeric_stream(self) -> str:
        """Return the SQL of this numeric column as numpy reads it: integers as such, the rest DOUBLE."""
        raw = self.quoted
        if self.physical_type in _ARROW_INTEGER_TYPES or self.is_float:
            return raw
        if self.is_integer or self.physical_type.startswith("DECIMAL") or self.physical_type == "BOOLEAN":
            return f"CAST({raw} AS DOUBLE)"  # 128-bit integers and decimals have no numpy type
        return f"TRY_CAST(CAST({raw} AS VARCHAR) AS DOUBLE)"  # text that is no number: NULL

    def numeric_value(self) -> str:
        """Return the SQL of this numeric column's finite values as DOUBLE, NULL for anything else."""
        value = f"CAST({self.numeric_stream()} AS DOUBLE)"
        return value if self.is_integer else f"(CASE WHEN isfinite({value}) THEN {value} END)"

    def numeric_present(self) -> str:
        """Return the SQL of this numeric column's values, NULL for NULL, NaN and text that is no number."""
        value = self.numeric_stream()
        return value if self.is_integer else f"(CASE WHEN NOT isnan({value}) THEN {value} END)"

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
            return self.numeric_present()
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
    sample_rows: int = 50_000,
    exact_max_rows: int = 100_000,
    duplicates: bool = True,
    memory_limit: str = "512MB",
    threads: int = 2,
) -> dict[str, Any]:
    """Profile the Parquet file at `path`; `schema` maps column names to our column types.

    A column of the file that `schema` does not name gets a type inferred from its Parquet type; a
    name in `schema` that the file lacks is a ValueError. The result is plain JSON (NaN and infinities
    become None). `progress(fraction, message)` is called from the calling thread as queries end.
    Correlations, quantiles and some distinct counts come from a uniform sample of about
    `sample_rows` rows when the file has more (fewer when the file is very wide: the sample holds at
    most SAMPLE_MAX_VALUES values). Duplicate rows are compared whole up to `exact_max_rows` rows, by
    hash above; `duplicates=False` skips them (a pass over every column). `memory_limit` and `threads`
    are DuckDB's.

    The result (percentages are of all rows, 0-100):

        row_count, column_count, file_size_bytes, row_group_count,
        missing_cell_count, missing_cell_percent,
        duplicate_row_count, duplicate_row_percent (None when skipped), duplicates_are_approximate,
        columns: [  # in the file's order (a list: PostgreSQL's jsonb would not keep a dict's order)
            {name, type, physical_type, count (values: not NULL, not NaN), missing_count,
             missing_percent, distinct_count, distinct_is_approximate,
             numeric:     min, max, mean, std, quantiles {p05, p25, p50, p75, p95},
                          quantiles_are_approximate, infinite_count,
                          histogram {edges: [n + 1 numbers], counts: [n]},
             datetime:    min, max (ISO 8601, UTC), histogram {edges: [ISO], counts, interval},
             categorical, text, boolean:
                          top_values {values: [{value, count, percent}], other_count},
             text:        length {min, max, mean},
             boolean:     true_count, false_count,
             image:       top_extensions {values: [{value, count, percent}], other_count}},
        ],
        correlation: {method: "pearson", columns, matrix (None where undefined), omitted_columns,
                      sample_fraction} or None (fewer than two numeric columns),
        sample {rows, fraction}, approximations: [sentences], settings, engine, timings_s, elapsed_s
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
        self.report(0.05, "Computing statistics, histograms, top values and correlations")
        started = time.perf_counter()
        jobs = self._numeric_jobs() + self._statistics_jobs() + self._sample_jobs()
        self._run_round(jobs + self._duplicate_jobs() + self._top_value_jobs(), 0.05, 0.85)
        self._summarize_numeric_sample()
        self.timings["round_1"] = round(time.perf_counter() - started, 4)
        # Then what round 1 left open: exact distinct counts where the sample saw repeated values,
        # histograms that the footer could not plan (datetime columns, files without statistics).
        started = time.perf_counter()
        self.report(0.85, "Counting distinct values, computing the remaining histograms")
        self._run_round(self._second_pass_jobs(), 0.85, 0.99)
        self.timings["round_2"] = round(time.perf_counter() - started, 4)

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
        # The numeric columns' sample is taken by row position in each group's stream: the streams
        # must come in the file's order (DuckDB's default), or the groups would sample different rows.
        if not self._query("SELECT current_setting('preserve_insertion_order')")[0][0]:
            raise RuntimeError("profiling needs DuckDB's preserve_insertion_order setting")
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
        histogram together; the data's own min/max then confirm them (see _store_moments).
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

    # Round 1 ------------------------------------------------------------------------------------------

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
        """Plan the sample of the datetime and image columns (numeric ones are sampled as they stream)."""
        columns = self._of_type("datetime", "image")
        if not columns:
            return []
        selects = [
            f"epoch_us({column.datetime_value()})" if column.type == "datetime" else column.quoted
            for column in columns
        ]
        named = [f"{select} AS s{column.index}" for select, column in zip(selects, columns, strict=True)]
        sql = f"SELECT {', '.join(named)} FROM {self._sample_source()}"

        def run() -> None:
            cursor = self.connection.cursor()
            try:
                table = _arrow_table(cursor.execute(sql).arrow(NUMERIC_BATCH_ROWS))
            finally:
                cursor.close()
            if not self._of_type("numeric"):
                self.sampled_row_count = table.num_rows
            for column in columns:
                values = table.column(f"s{column.index}")
                stats = self.stats[column.index]
                stats["sample_count"] = len(values) - values.null_count
                stats["sample_distinct"] = pc.count_distinct(values, mode="only_valid").as_py()

        return [("sample of datetime and image columns", run)]

    def _summarize_numeric_sample(self) -> None:
        """Compute the correlations, quantiles and distinct counts of the numeric columns' sample.

        DuckDB's corr() costs ~10 ns per pair of columns and row; numpy's products do the whole matrix
        for a fraction of that.
        """
        numeric = self._of_type("numeric")
        if not numeric:
            return
        finite: dict[int, np.ndarray] = {}
        for column in numeric:
            stats = self.stats[column.index]
            values = stats.pop("sample")  # NaN where NULL or NaN
            self.sampled_row_count = len(values)
            present = values[~np.isnan(values)]
            stats["sample_count"] = len(present)
            stats["sample_distinct"] = pc.count_distinct(pa.array(present)).as_py()
            finite[column.index] = np.where(np.isfinite(values), values, np.nan)
            kept = present[np.isfinite(present)]
            stats["quantiles"] = np.quantile(kept, [q for _, q in QUANTILES]).tolist() if len(kept) else None
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

    # Distinct counts ----------------------------------------------------------------------------------

    def _distinct_plan(self, column: _Column) -> str | None:
        """Settle a column's distinct count from the sample, or return the aggregate that counts it."""
        stats = self.stats[column.index]
        if column.type not in ("numeric", "datetime", "image") or "sample_distinct" not in stats:
            return None
        sampled, distinct_in_sample = stats["sample_count"], stats["sample_distinct"]
        if not self.is_sampled:
            stats["distinct"], stats["distinct_is_exact"] = distinct_in_sample, True
            return None
        if sampled >= MIN_SAMPLE_FOR_ALL_DISTINCT and distinct_in_sample == sampled:
            # No value twice in the sample: as many distinct values as values.
            stats["distinct"], stats["distinct_is_exact"] = stats["count"], False
            return None
        target = column.distinct_target()
        # The sample's share of distinct values times the rows overestimates: the safe side here.
        estimate = self.row_count * distinct_in_sample / max(sampled, 1)
        stats["distinct_is_exact"] = estimate <= EXACT_DISTINCT_MAX
        function = "count(DISTINCT {})" if stats["distinct_is_exact"] else "approx_count_distinct({})"
        return function.format(target) + f" AS c{column.index}_distinct"

    def _numeric_jobs(self) -> list[Job]:
        """Plan the numeric columns' statistics and histograms: DuckDB reads, numpy sums up.

        DuckDB decodes the columns and hands them over as Arrow batches; numpy computes count, min,
        max, mean and variance (merged over batches with Chan's formula) and the histogram, whose
        bins come from the footer's min/max. DuckDB's own aggregates cost ~5-20 ns per value each;
        measured on the benchmark's file, this takes less than half their time (bench/README.md).
        """
        columns = self._of_type("numeric")

        def job(group: list[_Column]) -> Callable[[], None]:
            def run() -> None:
                moments = {column.index: _NumericMoments(self._footer_bins(column)) for column in group}
                sql = f"SELECT {', '.join(column.numeric_stream() for column in group)} FROM data"
                cursor = self.connection.cursor()
                position = 0  # of the batch's first row in the file: DuckDB keeps the file's order
                try:
                    for batch in _batches(cursor.execute(sql).arrow(NUMERIC_BATCH_ROWS)):
                        sampled = None  # every row
                        if self.is_sampled:
                            sampled = pa.array(sample_mask(position, batch.num_rows, self.sample_every))
                        position += batch.num_rows
                        for number, column in enumerate(group):
                            moments[column.index].add(batch.column(number), sampled)
                finally:
                    cursor.close()
                for column in group:
                    self._store_moments(column, moments[column.index])

            return run

        groups = self._groups(columns, lambda column: 1)
        return [
            (f"numeric columns {number + 1}/{len(groups)}", job(group)) for number, group in enumerate(groups)
        ]

    def _footer_bins(self, column: _Column) -> tuple[float, float, int] | None:
        """Return the histogram's range and bin count from the footer's min/max, if it has them."""
        footer_range = self.stats[column.index].get("footer_range")
        if footer_range is None:
            return None
        edges = self._numeric_edges(column, *footer_range)
        return (edges[0], edges[-1], len(edges) - 1) if len(edges) > 2 else None

    def _store_moments(self, column: _Column, moments: _NumericMoments) -> None:
        stats = self.stats[column.index]
        stats.update(moments.statistics())
        stats["sample"] = np.concatenate(moments.sample) if moments.sample else np.empty(0)
        footer_range = stats.get("footer_range")
        # The footer's range made the bins; they stand when the data has that very min and max.
        if moments.histogram is not None and (stats["min"], stats["max"]) == footer_range:
            edges = self._numeric_edges(column, *footer_range)
            stats["histogram"] = {"edges": edges, "counts": moments.histogram.tolist()}

    def _statistics_aggregates(self, column: _Column) -> list[str]:
        i, raw = column.index, column.quoted
        if column.type == "boolean":
            value = column.boolean_value()
            return [
                f"count({value}) AS c{i}_count",
                f"count_if({value}) AS c{i}_true",
                f"count_if(NOT {value}) AS c{i}_false",
            ]
        if column.type == "datetime":
            value = column.datetime_value()
            return [
                f"count({value}) AS c{i}_count",
                f"CAST(min({value}) AS VARCHAR) AS c{i}_min",
                f"CAST(max({value}) AS VARCHAR) AS c{i}_max",
                f"epoch_us(min({value})) AS c{i}_min_us",
                f"epoch_us(max({value})) AS c{i}_max_us",
            ]
        aggregates = [f"count({raw}) AS c{i}_count"]
        if column.type == "text":
            length = f"length(CAST({raw} AS VARCHAR))"
            aggregates += [
                f"min({length}) AS c{i}_length_min",
                f"max({length}) AS c{i}_length_max",
                f"avg({length}) AS c{i}_length_mean",
            ]
        return aggregates

    def _statistics_jobs(self) -> list[Job]:
        """Plan one aggregate query for the counts of every column that is not numeric."""
        columns = [column for column in self.columns if column.type != "numeric"]
        if not columns:
            return []

        def run() -> None:
            aggregates = [sql for column in columns for sql in self._statistics_aggregates(column)]
            values = self._query_named(f"SELECT {', '.join(aggregates)} FROM data")
            for column in columns:
                prefix = f"c{column.index}_"
                self.stats[column.index].update(
                    {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}
                )

        return [("statistics", run)]

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
            try:
                self.duplicate_row_count = self.row_count - int(self._query(sql)[0][0])
            except duckdb.OutOfMemoryException:
                # A set of one hash per row did not fit in memory_limit: the rest of the profile stands.
                self.approximations.append(
                    "duplicate rows: not counted, the row hashes did not fit in memory"
                )

        return [("duplicate rows", run)]

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

    def _second_pass_jobs(self) -> list[Job]:
        """Plan the exact distinct counts and the histograms that round 1 left open."""
        aggregates: dict[int, list[str]] = {}
        for column in self.columns:
            distinct = self._distinct_plan(column)
            if distinct:
                aggregates.setdefault(column.index, []).append(distinct)
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
                aggregates.setdefault(column.index, []).append(aggregate)

        def job(group: list[_Column]) -> Callable[[], None]:
            def run() -> None:
                selected = [aggregate for column in group for aggregate in aggregates[column.index]]
                values = self._query_named(f"SELECT {', '.join(selected)} FROM data")
                for column in group:
                    if f"c{column.index}_histogram" in values:
                        plan = self.stats[column.index].pop("histogram_plan")
                        self._store_histogram(column, plan, _as_mapping(values[f"c{column.index}_histogram"]))
                    if f"c{column.index}_distinct" in values:
                        self.stats[column.index]["distinct"] = values[f"c{column.index}_distinct"]

            return run

        planned = [column for column in self.columns if column.index in aggregates]
        groups = self._groups(planned, lambda column: len(aggregates[column.index]))
        return [
            (f"second pass {number + 1}/{len(groups)}", job(group)) for number, group in enumerate(groups)
        ]

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
            exact_quantiles = self._quantiles_from_histogram(column)
            quantiles = exact_quantiles or stats.get("quantiles") or [None] * len(QUANTILES)
            result.update(
                {
                    "min": stats.get("min"),
                    "max": stats.get("max"),
                    "mean": stats.get("mean"),
                    "std": stats.get("std"),
                    "quantiles": {key: value for (key, _), value in zip(QUANTILES, quantiles, strict=True)},
                    "quantiles_are_approximate": self.is_sampled and exact_quantiles is None,
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

    def _quantiles_from_histogram(self, column: _Column) -> list[float] | None:
        """Return exact quantiles of an integer column whose histogram has one bin per value, else None.

        A sample's quantile of such a column can land one whole step off; its counts per value give
        the exact ones (interpolated between neighbouring ranks like pandas).
        """
        histogram = self.stats[column.index].get("histogram") or {}
        edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
        if (
            not column.is_integer
            or not counts
            or any(end - start != 1 for start, end in zip(edges, edges[1:], strict=False))
        ):
            return None
        values = [start + 0.5 for start in edges[:-1]]
        ends = np.cumsum(counts)  # rank r (from 0) holds the value of the first bin whose end exceeds r
        total = int(ends[-1])

        def at(rank: int) -> float:
            return values[int(np.searchsorted(ends, rank, side="right"))]

        quantiles = []
        for _, fraction in QUANTILES:
            position = (total - 1) * fraction
            below = math.floor(position)
            quantiles.append(at(below) + (position - below) * (at(math.ceil(position)) - at(below)))
        return quantiles

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


class _NumericMoments:
    """Accumulate one numeric column's statistics and histogram over Arrow batches."""

    def __init__(self, bins: tuple[float, float, int] | None) -> None:
        self.bins = bins
        self.histogram = None if bins is None else np.zeros(bins[2], dtype=np.int64)
        self.count = 0  # values: not NULL, not NaN
        self.finite = 0
        self.minimum: float | int | None = None
        self.maximum: float | int | None = None
        self.mean = 0.0
        self.squares = 0.0  # sum of squared deviations from the mean
        self.sample: list[np.ndarray] = []  # the sampled rows' values, NaN where NULL

    def add(self, array: pa.Array, sampled: pa.BooleanArray | None) -> None:
        """Add a batch of the column; `sampled` marks its rows in the sample (None: all are)."""
        picked = array if sampled is None else array.filter(sampled)
        self.sample.append(picked.to_numpy(zero_copy_only=False).astype(np.float64))
        if pa.types.is_integer(array.type):
            values = array.drop_null() if array.null_count else array
            self.count += len(values)
            self.finite += len(values)
            if not len(values):
                return
            extremes = pc.min_max(values)  # exact, whatever the size of the integers
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            numbers = values.to_numpy().astype(np.float64)
        else:
            numbers = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # NULL: NaN
            self.count += len(numbers) - int(np.isnan(numbers).sum())
            numbers = numbers[np.isfinite(numbers)]
            self.finite += len(numbers)
            if not len(numbers):
                return
            low, high = float(numbers.min()), float(numbers.max())
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)
        # Chan et al.'s pairwise update: mean and squared deviations of two parts make the whole's.
        size, known = len(numbers), self.finite - len(numbers)
        mean = float(numbers.mean())
        deviations = numbers - mean
        delta = mean - self.mean
        self.mean += delta * size / self.finite
        # einsum, not `@`: a BLAS call starts BLAS threads, which fight DuckDB's for the cores.
        squares = float(np.einsum("i,i->", deviations, deviations))
        self.squares += squares + delta * delta * known * size / self.finite
        if self.histogram is not None:
            low_edge, high_edge, bins = self.bins
            self.histogram += np.histogram(numbers, bins=bins, range=(low_edge, high_edge))[0]

    def statistics(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "finite": self.finite,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean if self.finite else None,
            "std": math.sqrt(self.squares / (self.finite - 1)) if self.finite > 1 else None,
        }


def sample_mask(start: int, count: int, every: int) -> np.ndarray:
    """Mark the rows start..start+count-1 that are in a sample of one row in `every`.

    Chosen by a hash of the row's position (splitmix64), so uniform, the same in every run and for
    every group of columns read apart.
    """
    if every <= 1:
        return np.ones(count, dtype=bool)
    with np.errstate(over="ignore"):
        x = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x % np.uint64(every) == 0


def _batches(result: pa.Table | pa.RecordBatchReader):
    """Yield the record batches of a DuckDB Arrow result (a reader since DuckDB 1.4, a table before)."""
    yield from result.to_batches() if isinstance(result, pa.Table) else result


def _arrow_table(result: pa.Table | pa.RecordBatchReader) -> pa.Table:
    return result if isinstance(result, pa.Table) else result.read_all()


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
        # einsum, not `@`: a BLAS call starts BLAS threads, which fight DuckDB's for the cores.
        pairs = np.einsum("ri,rj->ij", weights, weights)  # [i, j]: rows where both i and j have a value
        sums = np.einsum("ri,rj->ij", centred, weights)  # [i, j]: sum of column i over those rows
        squares = np.einsum("ri,rj->ij", centred * centred, weights)
        covariance = np.einsum("ri,rj->ij", centred, centred) - sums * sums.T / pairs
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
