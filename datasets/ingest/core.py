"""The shared pieces of ingestion: limits, the result, the one error type, progress and the Parquet writer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

GIB = 1024**3
MIB = 1024**2

FORMATS = ("csv", "tsv", "parquet", "jsonl", "excel", "images")
KINDS = ("tabular", "image", "text")


@dataclass(frozen=True)
class IngestLimits:
    """Caps that keep a hostile or broken upload from exhausting memory, disk or time.

    The zip caps are checked on the sizes an archive declares before anything is extracted, and again on
    the bytes actually written, so an archive that lies in its headers is stopped as well.
    """

    max_zip_entries: int = 100_000
    max_zip_total_bytes: int = 20 * GIB
    # Per entry and over the whole archive; applied only to entries (and archives) that expand to more
    # than zip_ratio_min_bytes: a 10 KB file of spaces compresses 500x and harms nobody.
    max_zip_ratio: float = 100
    zip_ratio_min_bytes: int = 1 * MIB
    max_columns: int = 10_000
    # One CSV/JSONL read block; a single row must fit in it. Reading runs at most text_blocks_ahead
    # blocks ahead of conversion, so memory holds about (text_blocks_ahead + a few) blocks.
    text_block_bytes: int = 4 * MIB
    text_blocks_ahead: int = 6
    # Rows are buffered up to this many bytes (Arrow's in-memory size) and written as one row group.
    row_group_bytes: int = 64 * MIB
    # Width x height of one image (Pillow's own guard starts at 89 M pixels).
    max_image_pixels: int = 100_000_000


class IngestError(Exception):
    """An upload that cannot become a dataset version, with a message a user can act on.

    `code` is stable and machine-readable (see `datasets/ingest/__init__.py` for the list).
    """

    def __init__(self, message: str, code: str = "invalid_file"):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


@dataclass
class IngestResult:
    parquet_path: Path
    row_count: int
    schema: list[dict]  # [{"name", "type", "arrow_type"}]
    format: str  # csv | tsv | parquet | jsonl | excel | images
    kind: str  # tabular | image | text
    details: dict = field(default_factory=dict)
    files_dir: Path | None = None  # images: the folder the "image" column's relative paths point into


class Progress:
    """Report a monotonic fraction in [0, 1] to the caller's callback, at most about once per percent."""

    def __init__(self, callback: Callable[[float], None] | None):
        self._callback = callback
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        value = min(max(fraction, 0.0), 1.0)
        if self._callback is not None and value > self._last and (value >= 1.0 or value - self._last >= 0.01):
            self._last = value
            self._callback(value)

    def part(self, start: float, end: float) -> Callable[[float], None]:
        """Return a reporter that maps its own [0, 1] onto [start, end] of this one."""
        return lambda fraction: self(start + (end - start) * min(max(fraction, 0.0), 1.0))


def human_bytes(size_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(size_bytes) < 1024 or unit == "TB":
            return f"{size_bytes:.0f} {unit}" if unit == "bytes" else f"{size_bytes:.1f} {unit}"
        size_bytes /= 1024
    return f"{size_bytes:.1f} TB"  # pragma: no cover


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    out_path: Path,
    *,
    row_group_bytes: int,
    after_batch: Callable[[], None] | None = None,
) -> int:
    """Write batches to one Parquet file, buffering up to row_group_bytes per row group; return the row count.

    Small batches written one by one would make thousands of tiny row groups, slow for DuckDB to scan.
    """
    rows = 0
    buffered: list[pa.RecordBatch] = []
    buffered_bytes = 0
    with pq.ParquetWriter(out_path, schema, compression="zstd") as writer:
        for batch in batches:
            if batch.num_rows:
                buffered.append(batch)
                buffered_bytes += batch.nbytes
                rows += batch.num_rows
            if buffered_bytes >= row_group_bytes:
                writer.write_table(pa.Table.from_batches(buffered, schema=schema))
                buffered, buffered_bytes = [], 0
            if after_batch is not None:
                after_batch()
        if buffered:
            writer.write_table(pa.Table.from_batches(buffered, schema=schema))
    return rows


def check_column_names(names: list[str], *, limits: IngestLimits, what: str = "column") -> None:
    """Refuse too many columns and duplicate names (after blanks were auto-named)."""
    if len(names) > limits.max_columns:
        raise IngestError(
            f"the file has {len(names):,} columns, more than the limit of {limits.max_columns:,}",
            code="too_many_columns",
        )
    seen: set[str] = set()
    duplicates: list[str] = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        listed = ", ".join(repr(name) for name in duplicates[:10])
        more = f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else ""
        raise IngestError(
            f"duplicate {what} names: {listed}{more}; every column needs a unique name",
            code="duplicate_columns",
        )
