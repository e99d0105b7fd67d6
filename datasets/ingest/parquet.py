"""Parquet uploads: check that the file opens and every page decodes, by rewriting it as our own file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.ingest.core import IngestError, IngestLimits, check_column_names, write_parquet


def convert_parquet(
    source: Path, out_path: Path, *, limits: IngestLimits, progress: Callable[[float], None]
) -> tuple[int, dict]:
    """Rewrite a Parquet upload row group by row group (zstd, our row-group size); return (rows, details).

    Copying the bytes would be faster, but a rewrite proves every page decodes before a version exists,
    and gives every stored version the same compression and row-group shape.
    """
    try:
        parquet = pq.ParquetFile(source, memory_map=False)
        schema = parquet.schema_arrow
        metadata = parquet.metadata
    except (pa.ArrowException, OSError) as error:
        raise IngestError(f"not a valid Parquet file: {str(error).strip()}", code="invalid_parquet") from None
    check_column_names(schema.names, limits=limits)
    total_rows = max(metadata.num_rows, 1)
    done = {"rows": 0}

    def batches():
        for batch in parquet.iter_batches(batch_size=65_536):
            done["rows"] += batch.num_rows
            yield batch

    try:
        rows = write_parquet(
            batches(),
            schema,
            out_path,
            row_group_bytes=limits.row_group_bytes,
            after_batch=lambda: progress(done["rows"] / total_rows),
        )
    except (pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(
            f"the Parquet file is damaged: {str(error).strip()}", code="invalid_parquet"
        ) from None
    details = {
        "source_bytes": source.stat().st_size,
        "source_row_groups": metadata.num_row_groups,
        "created_by": metadata.created_by,
    }
    return rows, details
