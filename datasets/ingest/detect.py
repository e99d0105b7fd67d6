"""Tell what a file really is from its bytes, and how its text is encoded and delimited.

The extension only says what the uploader *claims*; the content decides, and a disagreement is an error.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from datasets.ingest.core import IngestError

HEAD_BYTES = 1024 * 1024
DELIMITERS = (",", "\t", ";", "|")

# What the extension claims. None: unknown extension, the content decides alone.
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "delimited",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".zip": "images",
}
UNSUPPORTED_EXTENSIONS = {
    ".xls": "legacy Excel workbooks (.xls) are not supported; save the sheet as .xlsx or CSV",
    ".ods": "OpenDocument spreadsheets are not supported; save the sheet as .xlsx or CSV",
    ".gz": "compressed files are not supported; decompress it first (a .zip is read as a set of images)",
    ".bz2": "compressed files are not supported; decompress it first",
    ".xz": "compressed files are not supported; decompress it first",
    ".7z": "7-Zip archives are not supported; use a .zip",
    ".rar": "RAR archives are not supported; use a .zip",
    ".tar": "tar archives are not supported; use a .zip",
    ".tgz": "tar archives are not supported; use a .zip",
}

CLAIMED = {
    "csv": "CSV",
    "tsv": "TSV",
    "delimited": "delimited text",
    "jsonl": "JSON Lines",
    "parquet": "Parquet",
    "excel": "an Excel workbook (.xlsx)",
    "images": "a zip of images",
}

# Magic numbers of formats people upload by mistake, to name them in the error.
_BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"ARROW1", "an Arrow IPC file"),
)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


@dataclass(frozen=True)
class Content:
    """What the bytes are: kind in parquet | xlsx | zip | text | binary; description for messages."""

    kind: str
    description: str


def claimed_format(original_name: str) -> str | None:
    """Return what the file name claims (a key of CLAIMED), None when it claims nothing we know."""
    suffix = Path(original_name).suffix.lower()
    if suffix in UNSUPPORTED_EXTENSIONS:
        raise IngestError(f"{original_name}: {UNSUPPORTED_EXTENSIONS[suffix]}", code="unsupported_format")
    return EXTENSIONS.get(suffix)


def sniff_content(path: Path) -> Content:
    with path.open("rb") as file:
        head = file.read(4096)
    if head.startswith(b"PAR1"):
        return Content("parquet", "a Parquet file")
    if head.startswith(_ZIP_MAGICS):
        return _sniff_zip(path)
    if head.startswith(_OLE_MAGIC):
        return Content("binary", "a legacy Office file (.xls/.doc)")
    for magic, description in _BINARY_MAGIC:
        if head.startswith(magic):
            return Content("binary", description)
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Content("text", "a text file")
    if b"\x00" in head and _utf16_without_bom(head) is None:
        return Content("binary", "a binary file")
    return Content("text", "a text file")


def _sniff_zip(path: Path) -> Content:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Content("zip", "a damaged zip archive")
    if "[Content_Types].xml" in names:
        if any(name.startswith("xl/") for name in names):
            return Content("xlsx", "an Excel workbook (.xlsx)")
        if any(name.startswith("word/") for name in names):
            return Content("binary", "a Word document (.docx)")
        if any(name.startswith("ppt/") for name in names):
            return Content("binary", "a PowerPoint file (.pptx)")
    if "mimetype" in names and any(name == "content.xml" for name in names):
        return Content("binary", "an OpenDocument file")
    return Content("zip", "a zip archive")


def resolve_format(original_name: str, content: Content, head_text: str | None) -> str:
    """Return the format to read the file as (csv | tsv | jsonl | parquet | excel | images).

    Raise IngestError when the content is not what the name claims, or is nothing we read.
    """
    claimed = claimed_format(original_name)
    if content.kind == "binary":
        target = CLAIMED.get(claimed or "", "a dataset file")
        raise IngestError(
            f"{original_name} looks like {content.description}, not {target}", "format_mismatch"
        )
    natural = {"parquet": "parquet", "xlsx": "excel", "zip": "images"}.get(content.kind)
    if natural is not None:
        if claimed is None or claimed == natural:
            return natural
        raise IngestError(
            f"{original_name} looks like {content.description}, not {CLAIMED[claimed]}", "format_mismatch"
        )
    # Text from here on.
    if claimed in ("parquet", "excel", "images"):
        raise IngestError(
            f"{original_name} looks like a text file{_text_guess(head_text)}, not {CLAIMED[claimed]}",
            "format_mismatch",
        )
    looks_json = head_text is not None and _looks_like_json_lines(head_text)
    if claimed == "jsonl":
        stripped = (head_text or "").lstrip()
        if stripped.startswith("["):
            raise IngestError(
                f"{original_name} is a JSON array; upload JSON Lines instead (one JSON object per line)",
                "unsupported_format",
            )
        if stripped and not stripped.startswith("{"):
            raise IngestError(
                f"{original_name} looks like a text file{_text_guess(head_text)}, not JSON Lines "
                "(line 1 is not a JSON object)",
                "format_mismatch",
            )
        return "jsonl"
    if claimed in ("csv", "tsv") and looks_json:
        raise IngestError(f"{original_name} looks like JSON Lines, not {CLAIMED[claimed]}", "format_mismatch")
    if claimed is None and looks_json:
        return "jsonl"
    return "tsv" if claimed == "tsv" else "csv"


def _text_guess(head_text: str | None) -> str:
    if head_text is None:
        return ""
    if _looks_like_json_lines(head_text):
        return " (JSON Lines?)"
    return " (CSV?)"


def _looks_like_json_lines(head_text: str) -> bool:
    for line in head_text.splitlines():
        if line.strip():
            try:
                return isinstance(json.loads(line), dict)
            except ValueError:
                return False
    return False


# ---------------------------------------------------------------------------------------------- encoding


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


def _utf16_without_bom(head: bytes) -> str | None:
    """Recognise BOM-less UTF-16 by its zero bytes: ASCII text has a zero in every other byte."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even_zeros = sample[0::2].count(0) / max(len(sample[0::2]), 1)
    odd_zeros = sample[1::2].count(0) / max(len(sample[1::2]), 1)
    if odd_zeros > 0.4 and even_zeros < 0.05:
        return "utf-16-le"
    if even_zeros > 0.4 and odd_zeros < 0.05:
        return "utf-16-be"
    return None


def detect_encoding(head: bytes) -> str:
    """Return the codec to read the text with: utf-8, utf-8-sig, utf-16(-le/-be), cp1252 or latin-1.

    Text that is UTF-8 with a few broken bytes stays UTF-8 (so the broken bytes are reported with their
    offset) rather than being silently read as cp1252 mojibake: legacy 8-bit text almost never contains
    valid multi-byte UTF-8 sequences by accident.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    decoded = head.decode("utf-8", errors="replace")
    broken = decoded.count("\ufffd")
    valid_multibyte = sum(1 for char in decoded if ord(char) > 127 and char != "\ufffd")
    if valid_multibyte >= broken:
        return "utf-8"
    # cp1250/cp1251 and friends are left out on purpose: on short samples charset-normalizer picks them
    # for plain French or German text. A user with such a file passes encoding= explicitly.
    best = charset_normalizer.from_bytes(head[:65536], cp_isolation=["cp1252", "latin_1"]).best()
    if best is not None and best.encoding in ("cp1252", "latin_1"):
        encoding = "cp1252" if best.encoding == "cp1252" else "latin-1"
    else:
        encoding = "cp1252"
    try:
        head.decode(encoding)
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 decodes every byte.
        encoding = "latin-1"
    return encoding


def normalize_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise IngestError(f"unknown text encoding {name!r}", code="encoding_error") from None


def decode_head(head: bytes, encoding: str, *, at_eof: bool) -> str:
    """Decode the head sample, tolerating a multi-byte character cut at its end."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(head, final=at_eof)


# --------------------------------------------------------------------------------------------- delimiter


def _complete_lines(text: str, *, at_eof: bool, max_lines: int = 200) -> str:
    if not at_eof and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    lines = text.splitlines(keepends=True)
    return "".join(lines[:max_lines])


def _field_counts(sample: str, delimiter: str) -> list[int]:
    try:
        rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=False))
    except csv.Error:
        return []
    return [len(row) for row in rows if row]


def _consistent(counts: list[int]) -> bool:
    if not counts or counts[0] < 2:
        return False
    # The last line of a sample may be a record cut in the middle of a quoted field.
    body = counts[:-1] if len(counts) > 2 else counts
    return all(count == counts[0] for count in body)


def detect_delimiter(head_text: str, *, prefer_tab: bool, at_eof: bool) -> str:
    """Pick the delimiter among , TAB ; | with csv.Sniffer, checked against the field counts of the sample.

    A file with one column gets "," (or TAB for .tsv).
    """
    sample = _complete_lines(head_text, at_eof=at_eof)
    if not sample.strip():
        return "\t" if prefer_tab else ","
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    tab_overrides = prefer_tab and sniffed != "\t" and _consistent(_field_counts(sample, "\t"))
    if sniffed in DELIMITERS and _consistent(_field_counts(sample, sniffed)) and not tab_overrides:
        return sniffed
    order = ("\t", ",", ";", "|") if prefer_tab else DELIMITERS
    best, best_fields = None, 1
    for candidate in order:
        counts = _field_counts(sample, candidate)
        if _consistent(counts) and counts[0] > best_fields:
            best, best_fields = candidate, counts[0]
    if best is not None:
        return best
    return "\t" if prefer_tab else ","


_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")
_DECIMAL_POINT = re.compile(r"^\s*-?\d+\.\d+\s*$")


def detect_decimal_point(head_text: str, delimiter: str, *, at_eof: bool) -> str:
    """Return "," for European CSVs ("1,5" with ";" as the delimiter), else "."."""
    if delimiter == ",":
        return "."
    sample = _complete_lines(head_text, at_eof=at_eof)
    commas = points = 0
    for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=False):
        for value in row:
            if _DECIMAL_COMMA.match(value):
                commas += 1
            elif _DECIMAL_POINT.match(value):
                points += 1
    return "," if commas and not points else "."


def split_header(head_text: str, delimiter: str, *, at_eof: bool) -> tuple[list[str], str]:
    """Return the header's cells and the exact text of the header record (leading blank lines included).

    A quoted header cell may contain a newline, so the record ends at the first newline outside quotes.
    """
    position = 0
    while position < len(head_text) and head_text[position] in "\r\n":
        position += 1
    in_quotes = False
    end = None
    for index in range(position, len(head_text)):
        char = head_text[index]
        if char == '"':
            in_quotes = not in_quotes
        elif char == "\n" and not in_quotes:
            end = index + 1
            break
    if end is None:
        if not at_eof:
            raise IngestError(
                "the header row is longer than 1 MB or has an unclosed quote", "csv_parse_error"
            )
        end = len(head_text)
    header_text = head_text[:end]
    rows = [row for row in csv.reader(io.StringIO(header_text, newline=""), delimiter=delimiter) if row]
    cells = rows[0] if rows else []
    return cells, header_text
