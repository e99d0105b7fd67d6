"""ingest_file: one uploaded file (or folder of images) on local disk -> one Parquet file (+ image files)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from datasets.ingest import detect, text
from datasets.ingest.core import IngestError, IngestLimits, IngestResult, Progress
from datasets.ingest.excel import convert_excel
from datasets.ingest.images import convert_image_folder, convert_image_zip
from datasets.ingest.parquet import convert_parquet
from datasets.ingest.schema import infer_schema

PARQUET_NAME = "data.parquet"
FILES_NAME = "files"


def dataset_kind(data_format: str, schema: list[dict], row_count: int) -> str:
    """image for image datasets; text when text columns dominate (at most two other columns, such as an
    id and a label); tabular otherwise."""
    if data_format == "images":
        return "image"
    if row_count == 0:
        return "tabular"
    types = [column["type"] for column in schema]
    text_columns = types.count("text")
    if text_columns and len(types) - text_columns <= 2:
        return "text"
    return "tabular"


def ingest_file(
    source: Path,
    *,
    original_name: str,
    work_dir: Path,
    progress: Callable[[float], None] | None = None,
    limits: IngestLimits = IngestLimits(),  # noqa: B008 (frozen, so a shared default is safe)
    sheet_name: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> IngestResult:
    """Convert an upload into work_dir/data.parquet (and work_dir/files/ for images).

    The format comes from the content; the name's extension must agree with it. sheet_name (Excel),
    delimiter and encoding (CSV/TSV/JSONL) override detection. On any error nothing is left behind in
    work_dir by this call, and IngestError carries a message for the user and a stable code.
    """
    source = Path(source)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    parquet_path = work_dir / PARQUET_NAME
    files_dir = work_dir / FILES_NAME
    if parquet_path.exists() or files_dir.exists():
        raise ValueError(f"{work_dir} already holds an ingested dataset")
    partial = work_dir / f".{PARQUET_NAME}.partial"
    report = Progress(progress)
    convert = report.part(0.0, 0.98)
    try:
        if source.is_dir():
            data_format = "images"
            rows, details = convert_image_folder(
                source, partial, files_dir=files_dir, limits=limits, progress=convert
            )
        else:
            if source.stat().st_size == 0:
                raise IngestError("the file is empty", code="empty_file")
            content = detect.sniff_content(source)
            head = text.head_text(source, encoding) if content.kind == "text" else None
            data_format = detect.resolve_format(original_name, content, head)
            options = {"sheet_name": sheet_name, "delimiter": delimiter, "encoding": encoding}
            rows, details = _convert(
                data_format, source, partial, files_dir, work_dir, limits, convert, options
            )
            if data_format in ("csv", "tsv"):
                data_format = "tsv" if details["delimiter"] == "\t" else "csv"
        os.replace(partial, parquet_path)
        schema = infer_schema(parquet_path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        parquet_path.unlink(missing_ok=True)
        shutil.rmtree(files_dir, ignore_errors=True)
        if isinstance(error, pa.ArrowException):
            raise IngestError(f"could not read the file: {error}", code="invalid_file") from error
        raise
    report(1.0)
    return IngestResult(
        parquet_path=parquet_path,
        row_count=rows,
        schema=schema,
        format=data_format,
        kind=dataset_kind(data_format, schema, rows),
        details=details,
        files_dir=files_dir if data_format == "images" else None,
    )


def _convert(data_format, source, partial, files_dir, work_dir, limits, progress, options):
    if data_format in ("csv", "tsv"):
        rows, details = text.convert_csv(
            source,
            partial,
            tab_preferred=data_format == "tsv",
            limits=limits,
            progress=progress,
            encoding=options["encoding"],
            delimiter=options["delimiter"],
        )
        return rows, details
    if data_format == "jsonl":
        return text.convert_jsonl(
            source, partial, limits=limits, progress=progress, encoding=options["encoding"]
        )
    if data_format == "parquet":
        return convert_parquet(source, partial, limits=limits, progress=progress)
    if data_format == "excel":
        return convert_excel(
            source,
            partial,
            work_dir=work_dir,
            limits=limits,
            progress=progress,
            sheet_name=options["sheet_name"],
        )
    if data_format == "images":
        return convert_image_zip(source, partial, files_dir=files_dir, limits=limits, progress=progress)
    raise AssertionError(data_format)  # pragma: no cover
