"""Open zip archives without trusting them: path traversal, symlinks, encryption and zip bombs.

Checks run twice. Before anything is extracted, on what the archive declares (entry names, entry count,
uncompressed sizes, compression ratios). While extracting, on the bytes actually written, so an archive
whose headers lie is stopped too (Python's zipfile already stops at the declared size; counting here
does not rely on that).
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from datasets.ingest.core import IngestError, IngestLimits, human_bytes

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_entry_path(name: str) -> str:
    """Return the entry's path as a clean relative POSIX path, or raise IngestError if it could escape."""
    display = name[:200]
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise IngestError(f"zip entry {display!r} has control characters in its name", "unsafe_zip_entry")
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise IngestError(f"zip entry {display!r} has an absolute path", code="unsafe_zip_entry")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise IngestError(f"zip entry {display!r} points outside the archive (..)", code="unsafe_zip_entry")
    if not parts:
        raise IngestError(f"zip entry {display!r} has no name", code="unsafe_zip_entry")
    return str(PurePosixPath(*parts))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _ratio_error(what: str, expanded: int, compressed: int, limits: IngestLimits) -> IngestError:
    return IngestError(
        f"{what} expands {expanded / max(compressed, 1):,.0f}x ({human_bytes(compressed)} to "
        f"{human_bytes(expanded)}), more than the limit of {limits.max_zip_ratio:,.0f}x: a zip bomb?",
        code="zip_bomb",
    )


def _total_error(expanded: int, limits: IngestLimits) -> IngestError:
    return IngestError(
        f"the archive expands to more than {human_bytes(limits.max_zip_total_bytes)} "
        f"({human_bytes(expanded)} so far), the limit: a zip bomb?",
        code="zip_bomb",
    )


def check_archive(path: Path, *, limits: IngestLimits) -> list[zipfile.ZipInfo]:
    """Validate every entry's name and declared size before extracting; return the entries."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise IngestError(f"not a readable zip archive: {error}", code="invalid_zip") from None
    if len(infos) > limits.max_zip_entries:
        raise IngestError(
            f"the archive has {len(infos):,} entries, more than the limit of {limits.max_zip_entries:,}",
            code="zip_too_many_entries",
        )
    total = total_compressed = 0
    seen: set[str] = set()
    for info in infos:
        relative = safe_entry_path(info.filename)
        if _is_symlink(info):
            raise IngestError(
                f"zip entry {info.filename[:200]!r} is a symbolic link", code="unsafe_zip_entry"
            )
        if info.flag_bits & 0x1:
            raise IngestError(f"zip entry {info.filename[:200]!r} is encrypted", code="encrypted_zip")
        if not info.is_dir():
            if relative in seen:
                raise IngestError(f"the archive holds {relative!r} twice", code="invalid_zip")
            seen.add(relative)
        if info.file_size > limits.zip_ratio_min_bytes and (
            info.file_size > limits.max_zip_ratio * max(info.compress_size, 1)
        ):
            raise _ratio_error(f"zip entry {relative!r}", info.file_size, info.compress_size, limits)
        total += info.file_size
        total_compressed += info.compress_size
    if total > limits.max_zip_total_bytes:
        raise _total_error(total, limits)
    if total > limits.zip_ratio_min_bytes and total > limits.max_zip_ratio * max(total_compressed, 1):
        raise _ratio_error("the archive", total, total_compressed, limits)
    return infos


class ExtractionBudget:
    """Count the bytes written across one archive's extraction, against the total cap."""

    def __init__(self, limits: IngestLimits):
        self.limits = limits
        self.written_bytes = 0

    def extract(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> int:
        """Stream one entry to target (which must not exist), enforcing the caps on real bytes."""
        limits = self.limits
        relative = safe_entry_path(info.filename)
        written = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as source, target.open("xb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    self.written_bytes += len(chunk)
                    if written > info.file_size:
                        raise IngestError(
                            f"zip entry {relative!r} expands beyond the size it declares", code="zip_bomb"
                        )
                    if written > limits.zip_ratio_min_bytes and written > limits.max_zip_ratio * max(
                        info.compress_size, 1
                    ):
                        raise _ratio_error(f"zip entry {relative!r}", written, info.compress_size, limits)
                    if self.written_bytes > limits.max_zip_total_bytes:
                        raise _total_error(self.written_bytes, limits)
                    sink.write(chunk)
        except IngestError:
            target.unlink(missing_ok=True)
            raise
        except FileExistsError:
            raise IngestError(f"the archive holds {relative!r} twice", code="invalid_zip") from None
        except NotImplementedError as error:
            target.unlink(missing_ok=True)
            raise IngestError(f"zip entry {relative!r}: {error}", code="invalid_zip") from None
        except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as error:
            target.unlink(missing_ok=True)
            raise IngestError(f"zip entry {relative!r} is damaged: {error}", code="invalid_zip") from None
        return written
