"""Column types a person cares about (numeric, categorical, boolean, datetime, text, image), inferred from
the Arrow types plus a sample of the values.

Strings are never cast here: a string column whose values are ISO dates is typed "datetime" and stays
a string in the Parquet file (the profiler and recipes cast with DuckDB's TRY_CAST when they need to).
CSV columns that pyarrow recognises as dates or timestamps are already stored as such.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)

# A string column is categorical when few distinct values repeat (at most half the sample, at most 1000).
CATEGORICAL_MAX_DISTINCT = 1000
CATEGORICAL_MAX_RATIO = 0.5
# Otherwise it is text when values are wordy or long; short or single-word unique strings (ids, codes,
# hashes, names) stay categorical.
TEXT_MIN_MEAN_CHARS = 50
TEXT_MIN_MEAN_WORDS = 3
SHARE = 0.95  # of non-null sampled values that must look like dates or image paths


def _is_iso_datetime(value: str) -> bool:
    value = value.strip()
    if not _ISO_DATE.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace(",", ".").replace(" ", "T", 1) if len(value) > 10 else value)
    except ValueError:
        return False
    return True


def _string_type(values: list[str]) -> str:
    if not values:
        return "text"
    distinct = set(values)
    lowered = {value.strip().lower() for value in distinct}
    if lowered <= BOOLEAN_WORDS and (
        lowered & {"true", "false", "yes", "no"} or lowered in ({"y", "n"}, {"t", "f"})
    ):
        return "boolean"
    dated = {value for value in distinct if _is_iso_datetime(value)}
    if sum(1 for value in values if value in dated) >= SHARE * len(values):
        return "datetime"
    if sum(1 for value in values if value.strip().lower().endswith(IMAGE_SUFFIXES)) >= SHARE * len(values):
        return "image"
    if len(distinct) <= CATEGORICAL_MAX_DISTINCT and len(distinct) <= CATEGORICAL_MAX_RATIO * len(values):
        return "categorical"
    mean_chars = sum(len(value) for value in values) / len(values)
    mean_words = sum(len(value.split()) for value in values) / len(values)
    if mean_chars >= TEXT_MIN_MEAN_CHARS or mean_words >= TEXT_MIN_MEAN_WORDS:
        return "text"
    return "categorical"


def _is_stringish(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    )


def column_type(data_type: pa.DataType, column: pa.ChunkedArray | None) -> str:
    if pa.types.is_dictionary(data_type):
        if column is not None:
            column = pa.chunked_array(
                [chunk.dictionary_decode() for chunk in column.chunks], data_type.value_type
            )
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "boolean"
    if (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
        or pa.types.is_duration(data_type)
    ):
        return "numeric"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type) or pa.types.is_time(data_type):
        return "datetime"
    if _is_stringish(data_type):
        values = [] if column is None else [value for value in column.to_pylist() if value is not None]
        return _string_type(values)
    # null, binary, nested (list/struct/map): shown and profiled as text.
    return "text"


def infer_schema(parquet_path: Path, sample_rows: int = 10_000) -> list[dict]:
    """Return [{"name", "type", "arrow_type"}] for each column, from the Arrow types and the first rows."""
    parquet = pq.ParquetFile(parquet_path)
    schema = parquet.schema_arrow
    batches = []
    taken = 0
    if sample_rows > 0:
        for batch in parquet.iter_batches(batch_size=min(sample_rows, 65_536)):
            batches.append(batch.slice(0, sample_rows - taken))
            taken += batches[-1].num_rows
            if taken >= sample_rows:
                break
    sample = pa.Table.from_batches(batches, schema=schema) if batches else None
    columns = []
    for index, field in enumerate(schema):
        column = sample.column(index) if sample is not None else None
        columns.append(
            {"name": field.name, "type": column_type(field.type, column), "arrow_type": str(field.type)}
        )
    return columns
