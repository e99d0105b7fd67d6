"""Excel (.xlsx) to Parquet with openpyxl's read-only streaming mode.

Cells arrive as Python values one row at a time, and a column's type is only known once every row
has been seen. So the sheet is read once into a temporary Parquet file of text columns while the kinds
of values are tallied per column, then that file is cast column by column to the final types. openpyxl
parses the sheet once; memory holds one batch of rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from openpyxl.utils import get_column_letter

from datasets.ingest.core import IngestError, IngestLimits, check_column_names, write_parquet
from datasets.ingest.zipsafety import check_archive

BATCH_ROWS = 10_000


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "str"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "str"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _final_type(kinds: set[str]) -> pa.DataType:
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    if kinds == {"date"}:
        return pa.date32()
    if kinds and kinds <= {"datetime", "date"}:
        return pa.timestamp("us")
    return pa.string()


def _open_sheet(handle, sheet_name: str | None):
    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises all sorts (ParseError, KeyError, TypeError) on bad files
        raise IngestError(f"not a readable Excel workbook: {error}", code="invalid_excel") from None
    names = workbook.sheetnames
    if sheet_name is None:
        if not workbook.worksheets:
            workbook.close()
            raise IngestError("the workbook has no worksheets", code="invalid_excel")
        return workbook, workbook.worksheets[0], names
    if sheet_name not in names:
        workbook.close()
        listed = ", ".join(repr(name) for name in names)
        raise IngestError(
            f"the workbook has no sheet named {sheet_name!r}; it has {listed}", "sheet_not_found"
        )
    return workbook, workbook[sheet_name], names


def convert_excel(
    source: Path,
    out_path: Path,
    *,
    work_dir: Path,
    limits: IngestLimits,
    progress: Callable[[float], None],
    sheet_name: str | None = None,
) -> tuple[int, dict]:
    # An xlsx is a zip: the same bomb checks as an image archive, before openpyxl inflates anything.
    check_archive(source, limits=limits)
    staging = work_dir / ".excel-staging.parquet"
    try:
        # A file object, not the path: openpyxl refuses paths that do not end in .xlsx, and uploads
        # are stored under names of our own.
        with source.open("rb") as handle:
            workbook, sheet, sheet_names = _open_sheet(handle, sheet_name)
            try:
                header, header_row, kinds, empty_rows = _stage(sheet, staging, limits, progress)
            finally:
                workbook.close()
        row_count, extra = _finish(staging, out_path, header, kinds, limits, progress)
    finally:
        staging.unlink(missing_ok=True)
    details = {
        "sheet_name": sheet.title,
        "sheet_names": sheet_names,
        "header_row": header_row,
        "skipped_empty_rows": empty_rows,
    }
    return row_count, details | extra


def _checked_rows(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Yield the sheet's rows, turning openpyxl's errors on damaged sheet XML into an IngestError."""
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except Exception as error:
            raise IngestError(f"the sheet could not be read: {error}", code="invalid_excel") from None
        yield values


def _stage(sheet, staging: Path, limits: IngestLimits, progress: Callable[[float], None]):
    """Read the sheet once into a Parquet file of text columns; tally each column's kinds of values."""
    total_rows = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 0 else None
    rows = _checked_rows(sheet.iter_rows(values_only=True))
    header, header_row, skipped_before = _find_header(rows)
    width = len(header)
    kinds: list[set[str]] = [set() for _ in range(width)]
    staged_schema = pa.schema([(f"c{index}", pa.string()) for index in range(width)])
    counters = {"row": header_row, "empty": 0}

    def staged_batches() -> Iterator[pa.RecordBatch]:
        columns: list[list] = [[] for _ in range(width)]
        count = 0
        for values in rows:
            counters["row"] += 1
            if values is None or all(value is None for value in values):
                counters["empty"] += 1
                continue
            for index, value in enumerate(values):
                if index >= width:
                    if value is not None:
                        raise IngestError(
                            f"row {counters['row']:,} has a value in column "
                            f"{get_column_letter(index + 1)}, which has no header",
                            code="ragged_row",
                        )
                    continue
                if value is None or (isinstance(value, str) and value == ""):
                    columns[index].append(None)
                else:
                    kinds[index].add(_kind(value))
                    columns[index].append(_text(value))
            for index in range(len(values), width):
                columns[index].append(None)
            count += 1
            if count == BATCH_ROWS:
                yield pa.record_batch([pa.array(column, pa.string()) for column in columns], staged_schema)
                columns, count = [[] for _ in range(width)], 0
                if total_rows:
                    progress(0.8 * counters["row"] / total_rows)
        if count:
            yield pa.record_batch([pa.array(column, pa.string()) for column in columns], staged_schema)

    write_parquet(staged_batches(), staged_schema, staging, row_group_bytes=limits.row_group_bytes)
    return header, header_row, kinds, counters["empty"] + skipped_before


def _finish(staging: Path, out_path: Path, header: list, kinds: list[set[str]], limits, progress):
    """Cast the staged text columns to their final types into out_path; return (rows, details)."""
    names, keep, auto_named, dropped = _column_names(header, kinds)
    check_column_names(names, limits=limits)
    schema = pa.schema([(name, _final_type(kinds[index])) for name, index in zip(names, keep, strict=True)])
    staged = pq.ParquetFile(staging)
    groups = max(staged.num_row_groups, 1)

    def final_batches() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(staged.iter_batches(batch_size=BATCH_ROWS * 4)):
            arrays = [
                pc.cast(batch.column(index), field.type) for index, field in zip(keep, schema, strict=True)
            ]
            yield pa.record_batch(arrays, schema=schema)
            progress(0.8 + 0.2 * (number + 1) / groups)

    row_count = write_parquet(final_batches(), schema, out_path, row_group_bytes=limits.row_group_bytes)
    details = {}
    if auto_named:
        details["auto_named_columns"] = auto_named
    if dropped:
        details["dropped_empty_columns"] = dropped
    return row_count, details


def _find_header(rows) -> tuple[list, int, int]:
    """Return the first non-empty row (the header), its 1-based row number, and the empty rows before it."""
    for number, values in enumerate(rows, start=1):
        if values and any(value is not None and str(value).strip() for value in values):
            # Blank header cells stay: their columns may hold data, which only the whole read can tell.
            return list(values), number, number - 1
    raise IngestError("the sheet is empty", code="empty_file")


def _column_names(header: list, kinds: list[set[str]]) -> tuple[list[str], list[int], list[str], list[str]]:
    """Name the columns: blank header cells over data get column_<letter>; blank, empty ones are dropped."""
    names: list[str] = []
    keep: list[int] = []
    auto_named: list[str] = []
    dropped: list[str] = []
    taken = {str(cell).strip() for cell in header if cell is not None and str(cell).strip()}
    for index, cell in enumerate(header):
        name = _text(cell).strip() if cell is not None else ""
        if not name:
            letter = get_column_letter(index + 1)
            if not kinds[index]:
                dropped.append(letter)
                continue
            name, suffix = f"column_{letter}", 2
            while name in taken:
                name, suffix = f"column_{letter}_{suffix}", suffix + 1
            taken.add(name)
            auto_named.append(name)
        names.append(name)
        keep.append(index)
    return names, keep, auto_named, dropped
