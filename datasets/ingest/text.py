"""CSV/TSV and JSON Lines to Parquet, streamed in blocks so memory stays flat whatever the file size."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from datasets.ingest import detect
from datasets.ingest.core import IngestError, IngestLimits, check_column_names, human_bytes, write_parquet

_ENCODING_LABELS = {"utf-8": "UTF-8", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16", "utf-16": "UTF-16"}


class Utf8Stream(io.RawIOBase):
    """Read a text file as UTF-8 bytes, for pyarrow: validate UTF-8 (or transcode), drop a BOM and a prefix.

    pyarrow would report a broken byte as "invalid UTF8 data" without saying where; decoding here, in
    order, names the byte offset and line of the first undecodable byte. `raw_offset` is how far into
    the file reading has got.

    Backpressure (max_reads_ahead): pyarrow's streaming CSV reader reads 30 to 60 blocks ahead of the
    batches it has handed out (measured with pyarrow 21), so memory grew with the block size times that.
    It asks for one block per read() and yields one batch per block, so read() waits while it is more
    than max_reads_ahead reads ahead of the batches the consumer acknowledged. The wait gives up after
    stall_s, so a mismatch in that bookkeeping can only slow reading down, never deadlock it.
    """

    def __init__(
        self,
        path: Path,
        encoding: str,
        *,
        skip_output_bytes: int = 0,
        chunk_bytes: int = 1 << 20,
        max_reads_ahead: int | None = None,
        stall_s: float = 1.0,
    ):
        super().__init__()
        self._file = path.open("rb")
        codec = codecs.lookup(encoding).name
        if codec == "utf-8-sig":
            # Pass the bytes after the BOM through untouched; no need to transcode UTF-8 to UTF-8.
            if self._file.read(3) != codecs.BOM_UTF8:
                self._file.seek(0)
            codec = "utf-8"
        self.encoding = codec
        self.raw_offset = self._file.tell()
        self.decode_error: IngestError | None = None
        self._passthrough = codec == "utf-8"
        self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._chunk_bytes = chunk_bytes
        self._buffer = bytearray()
        self._skip = skip_output_bytes
        self._newlines = 0
        self._eof = False
        self._max_reads_ahead = max_reads_ahead
        self._stall_s = stall_s
        self._condition = threading.Condition()
        self._reads = 0
        self._acknowledged = 0

    def acknowledge(self) -> None:
        """Tell the stream the consumer took one more batch (one block)."""
        with self._condition:
            self._acknowledged += 1
            self._condition.notify_all()

    def consumed_fraction(self, size: int) -> float:
        """Estimate how much of the file the acknowledged batches cover, for progress."""
        return self.raw_offset * min(self._acknowledged / max(self._reads, 1), 1.0) / max(size, 1)

    def _wait_for_consumer(self) -> None:
        if self._max_reads_ahead is None:
            return
        deadline = time.monotonic() + self._stall_s
        with self._condition:
            while self._reads - self._acknowledged >= self._max_reads_ahead and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            self._reads += 1

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        self._wait_for_consumer()
        while not self._eof and (size is None or size < 0 or len(self._buffer) < size):
            self._fill()
        if size is None or size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def close(self) -> None:
        self._file.close()
        super().close()
        with self._condition:
            self._condition.notify_all()

    def _fill(self) -> None:
        chunk = self._file.read(self._chunk_bytes)
        final = not chunk
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            self.decode_error = self._describe(error, pending)
            raise self.decode_error from None
        self.raw_offset += len(chunk)
        output = chunk if self._passthrough else text.encode("utf-8")
        self._newlines += output.count(b"\n")
        if self._skip:
            dropped = min(self._skip, len(output))
            output = output[dropped:]
            self._skip -= dropped
        self._buffer += output
        if final:
            self._eof = True

    def _describe(self, error: UnicodeDecodeError, pending: int) -> IngestError:
        # A buffered incremental decoder raises on (its pending bytes + this chunk).
        offset = self.raw_offset - pending + error.start
        before = bytes(error.object[: error.start]).decode(self.encoding, errors="replace")
        line = self._newlines + before.count("\n") + 1
        bad = bytes(error.object[error.start : error.start + 1])
        label = _ENCODING_LABELS.get(self.encoding, self.encoding)
        return IngestError(
            f"the file is not valid {label} text: undecodable byte 0x{bad.hex()} at byte offset {offset:,} "
            f"(line {line:,}); save it as UTF-8, or name its encoding",
            code="encoding_error",
        )


def _read_head(source: Path, encoding: str | None) -> tuple[str, str, bool, int]:
    """Return (encoding, decoded head text, whether the head is the whole file, file size)."""
    size = source.stat().st_size
    head = detect.read_head(source)
    at_eof = len(head) >= size
    encoding = detect.normalize_encoding(encoding) if encoding else detect.detect_encoding(head)
    text = detect.decode_head(head, encoding, at_eof=at_eof)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise IngestError("the file is empty", code="empty_file")
    return encoding, text, at_eof, size


def head_text(source: Path, encoding: str | None = None) -> str:
    return _read_head(source, encoding)[1]


# -------------------------------------------------------------------------------------------------- CSV


def _column_names(cells: list[str]) -> tuple[list[str], list[str]]:
    """Strip header cells and name blank ones column_<position>; return (names, auto-named)."""
    names = [cell.strip() for cell in cells]
    taken = {name for name in names if name}
    auto_named = []
    for index, name in enumerate(names):
        if not name:
            candidate, suffix = f"column_{index + 1}", 2
            while candidate in taken:
                candidate, suffix = f"column_{index + 1}_{suffix}", suffix + 1
            names[index] = candidate
            taken.add(candidate)
            auto_named.append(candidate)
    return names, auto_named


def _skip_blank_rows(row) -> str:
    """Skip lines of only spaces (a stray "   " at the end of a file); any other ragged row is an error."""
    return "skip" if not row.text.strip() else "error"


_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to ([^:]+): invalid value '(.*)'", re.DOTALL
)


def _widened_type(failed_type: str, value: str, decimal_point: str) -> pa.DataType:
    if failed_type.startswith(("int", "uint")):
        try:
            float(value.strip().replace(decimal_point, "."))
            return pa.float64()
        except ValueError:
            pass
    return pa.string()


def convert_csv(
    source: Path,
    out_path: Path,
    *,
    tab_preferred: bool,
    limits: IngestLimits,
    progress: Callable[[float], None],
    encoding: str | None = None,
    delimiter: str | None = None,
) -> tuple[int, dict]:
    """Convert delimited text to Parquet; return (row count, details).

    Column types come from pyarrow's inference on the first block. A value further down that does not
    fit (an int column meeting "1.5" or "n/a") restarts the conversion with that column widened
    (int -> float -> string): correct types without a separate pass over every file.
    """
    encoding, text, at_eof, size = _read_head(source, encoding)
    if delimiter is None:
        delimiter = detect.detect_delimiter(text, prefer_tab=tab_preferred, at_eof=at_eof)
    elif len(delimiter) != 1 or delimiter in '\r\n"':
        raise IngestError(f"the delimiter must be one character, not {delimiter!r}", "invalid_option")
    cells, header_text = detect.split_header(text, delimiter, at_eof=at_eof)
    names, auto_named = _column_names(cells)
    check_column_names(names, limits=limits)
    decimal_point = detect.detect_decimal_point(text, delimiter, at_eof=at_eof)
    header_bytes = len(header_text.encode("utf-8"))
    details = {
        "encoding": encoding,
        "delimiter": delimiter,
        "decimal_point": decimal_point,
        "source_bytes": size,
    }
    if auto_named:
        details["auto_named_columns"] = auto_named
    if at_eof and not text[len(header_text) :].strip():
        # A header and no rows is a valid, empty table (pyarrow would call it an empty file).
        schema = pa.schema([(name, pa.string()) for name in names])
        write_parquet([], schema, out_path, row_group_bytes=limits.row_group_bytes)
        details["header_only"] = True
        return 0, details

    overrides: dict[str, pa.DataType] = {}
    widened: dict[str, str] = {}
    rows = None
    for _attempt in range(2 * len(names) + 2):
        stream = Utf8Stream(
            source, encoding, skip_output_bytes=header_bytes, max_reads_ahead=limits.text_blocks_ahead
        )
        try:
            reader = pa_csv.open_csv(
                stream,
                read_options=pa_csv.ReadOptions(
                    column_names=names, block_size=limits.text_block_bytes, use_threads=True
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=_skip_blank_rows
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=overrides,
                    strings_can_be_null=True,
                    check_utf8=False,  # Utf8Stream validated it, and names the offset when it is not
                    decimal_point=decimal_point,
                ),
            )
            # A column empty in the whole first block is inferred as null; later values would not fit.
            null_columns = [
                f.name for f in reader.schema if pa.types.is_null(f.type) and f.name not in overrides
            ]
            if null_columns:
                overrides.update(dict.fromkeys(null_columns, pa.string()))
                continue
            rows = write_parquet(
                reader,
                reader.schema,
                out_path,
                row_group_bytes=limits.row_group_bytes,
                after_batch=lambda stream=stream: (
                    stream.acknowledge(),
                    progress(stream.consumed_fraction(size)),
                ),
            )
            break
        except IngestError:
            raise
        except (pa.ArrowException, UnicodeDecodeError, ValueError) as error:
            if stream.decode_error is not None:
                raise stream.decode_error from None
            match = _CONVERSION_ERROR.search(str(error))
            if match and int(match.group(1)) < len(names):
                name = names[int(match.group(1))]
                overrides[name] = _widened_type(match.group(2), match.group(3), decimal_point)
                widened[name] = str(overrides[name])
                continue
            raise _csv_parse_error(str(error), source, encoding, delimiter, len(names), limits) from None
        finally:
            stream.close()
    if rows is None:
        raise IngestError("could not settle on the column types", code="csv_parse_error")
    if widened:
        details["widened_columns"] = widened
    return rows, details


def _csv_parse_error(
    message: str, source: Path, encoding: str, delimiter: str, expected: int, limits: IngestLimits
) -> IngestError:
    """Turn a pyarrow parse error into one that names the line, found again with Python's csv module.

    pyarrow's streaming reader does not know row numbers, and a row is not a line when quoted values
    hold newlines; csv.reader's line_num counts physical lines.
    """
    located = _locate_csv_problem(source, encoding, delimiter, expected)
    if located is not None:
        return IngestError(located, code="ragged_row" if "fields, expected" in located else "csv_parse_error")
    counts = re.search(r"Expected (\d+) columns, got (\d+): ?(.*)", message, re.DOTALL)
    if counts:
        return IngestError(
            f"a row has {counts.group(2)} fields, expected {counts.group(1)}: {counts.group(3)[:200]!r}",
            code="ragged_row",
        )
    if "straddl" in message:
        return IngestError(
            f"a row is longer than {human_bytes(limits.text_block_bytes)}, or a quote is never closed",
            code="csv_parse_error",
        )
    return IngestError(f"could not parse the file as CSV: {message}", code="csv_parse_error")


def _locate_csv_problem(source: Path, encoding: str, delimiter: str, expected: int) -> str | None:
    python_encoding = "utf-8-sig" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
    previous_line = 0  # the last physical line of the last complete record
    try:
        with source.open(encoding=python_encoding, newline="") as text:
            reader = csv.reader(text, delimiter=delimiter, strict=False)
            header_seen = False
            for row in reader:
                start, previous_line = previous_line + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip() and expected != 1):
                    continue
                if not header_seen:
                    header_seen = True
                    continue
                if len(row) != expected:
                    hint = (
                        f" (is a value that contains {delimiter!r} missing its quotes?)"
                        if len(row) > expected
                        else ""
                    )
                    return f"line {start:,} has {len(row)} fields, expected {expected}{hint}"
    except csv.Error as error:
        start = previous_line + 1
        if "field limit" in str(error):
            return f"line {start:,}: a value is longer than 128 KB, or a quote opened there is never closed"
        return f"line {start:,}: {error}"
    except (UnicodeDecodeError, OSError):
        return None
    return None


# ------------------------------------------------------------------------------------------- JSON Lines


def _iter_lines(source: Path, encoding: str) -> Iterator[tuple[int, bytes, Utf8Stream]]:
    stream = Utf8Stream(source, encoding)
    try:
        with io.BufferedReader(stream, buffer_size=1 << 20) as lines:
            for number, line in enumerate(lines, start=1):
                yield number, line, stream
    finally:
        stream.close()


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "nested"


def _locate_json_problem(source: Path, encoding: str) -> IngestError | None:
    for number, line, _stream in _iter_lines(source, encoding):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            reason = getattr(error, "msg", str(error))
            column = getattr(error, "colno", None)
            where = f" (column {column})" if column else ""
            return IngestError(f"line {number:,} is not valid JSON: {reason}{where}", code="invalid_json")
        if not isinstance(value, dict):
            kind = {"nested": "an array", "str": "a string", "null": "null"}.get(
                _json_kind(value), "a number"
            )
            if isinstance(value, bool):
                kind = "a boolean"
            return IngestError(f"line {number:,} is {kind}, not a JSON object", code="invalid_json")
    return None


def convert_jsonl(
    source: Path,
    out_path: Path,
    *,
    limits: IngestLimits,
    progress: Callable[[float], None],
    encoding: str | None = None,
) -> tuple[int, dict]:
    """Convert JSON Lines to Parquet; return (row count, details).

    pyarrow's streaming JSON reader fixes the schema on the first block; a key that first appears later,
    or a value whose type changes, makes it fail. Then either a line is broken (reported with its
    number) or the schema drifts, and a slower pure-Python conversion takes over (details
    "schema_drift": true): it unions the keys and stores mixed-type and nested values as JSON text.
    use_threads=False: after a parse error, pyarrow's threaded JSON reader sometimes aborts the whole
    process at exit (seen with pyarrow 21).
    """
    encoding, _text, _at_eof, size = _read_head(source, encoding)
    details = {"encoding": encoding, "source_bytes": size, "schema_drift": False}
    explicit: dict[str, pa.DataType] = {}
    for _attempt in range(2):
        stream = Utf8Stream(source, encoding, max_reads_ahead=limits.text_blocks_ahead)
        try:
            reader = pa_json.open_json(
                stream,
                read_options=pa_json.ReadOptions(block_size=limits.text_block_bytes, use_threads=False),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=pa.schema(list(explicit.items())) if explicit else None,
                    unexpected_field_behavior="infer",
                ),
            )
            check_column_names(reader.schema.names, limits=limits, what="key")
            null_columns = [f.name for f in reader.schema if pa.types.is_null(f.type)]
            if null_columns and not explicit:
                explicit = dict.fromkeys(null_columns, pa.string())
                continue
            rows = write_parquet(
                reader,
                reader.schema,
                out_path,
                row_group_bytes=limits.row_group_bytes,
                after_batch=lambda stream=stream: (
                    stream.acknowledge(),
                    progress(stream.consumed_fraction(size)),
                ),
            )
            return rows, details
        except IngestError:
            raise
        except (pa.ArrowException, UnicodeDecodeError, ValueError):
            if stream.decode_error is not None:
                raise stream.decode_error from None
            break
        finally:
            stream.close()
    problem = _locate_json_problem(source, encoding)
    if problem is not None:
        raise problem
    details["schema_drift"] = True
    rows = _convert_jsonl_python(
        source, out_path, encoding=encoding, size=size, limits=limits, progress=progress
    )
    return rows, details


def _arrow_type(kinds: set[str]) -> pa.DataType:
    kinds = kinds - {"null"}
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _convert_jsonl_python(
    source: Path,
    out_path: Path,
    *,
    encoding: str,
    size: int,
    limits: IngestLimits,
    progress: Callable[[float], None],
    batch_rows: int = 20_000,
) -> int:
    kinds: dict[str, set[str]] = {}
    for _number, line, stream in _iter_lines(source, encoding):
        if not line.strip():
            continue
        for key, value in json.loads(line).items():
            kinds.setdefault(key, set()).add(_json_kind(value))
        if len(kinds) > limits.max_columns:
            check_column_names(list(kinds), limits=limits, what="key")
        progress(0.5 * stream.raw_offset / max(size, 1))
    if not kinds:
        raise IngestError("the file has no JSON objects", code="empty_file")
    schema = pa.schema([(key, _arrow_type(found)) for key, found in kinds.items()])
    as_text = {key for key, found in kinds.items() if _arrow_type(found) == pa.string()}

    def batches() -> Iterator[pa.RecordBatch]:
        columns: dict[str, list] = {key: [] for key in kinds}
        count = 0
        for _number, line, stream in _iter_lines(source, encoding):
            if not line.strip():
                continue
            record = json.loads(line)
            for key, values in columns.items():
                value = record.get(key)
                values.append(_as_text(value) if key in as_text else value)
            count += 1
            if count == batch_rows:
                yield pa.record_batch([pa.array(columns[f.name], f.type) for f in schema], schema=schema)
                columns = {key: [] for key in kinds}
                count = 0
                progress(0.5 + 0.5 * stream.raw_offset / max(size, 1))
        if count:
            yield pa.record_batch([pa.array(columns[f.name], f.type) for f in schema], schema=schema)

    return write_parquet(batches(), schema, out_path, row_group_bytes=limits.row_group_bytes)
