"""Image datasets: a zip (or a folder) of images becomes files on disk plus a Parquet table describing them.

Layouts (after stripping the folders that every image shares, like `photos/`):
- flat: `1.png`, `2.png` -> columns image, width, height (no label);
- class_folders: `cats/1.png`, `dogs/2.png` -> the top folder becomes `label` (deeper folders are just
  organisation: `cats/indoor/3.png` is a cat; an image outside any folder gets no label);
- split_class_folders: `train/cats/1.png`, `test/dogs/2.png` -> `split` and `label`.

Skipped and counted in details: system files (`__MACOSX/`, `.DS_Store`, `._*`, hidden files, Thumbs.db),
non-image files, and corrupt images (Pillow cannot identify or verify them): one bad file in ten
thousand should not sink an upload, and the counts and examples tell the user what was left out.
An image whose width x height exceeds the limit is an error, not a skip (a decompression bomb is
hostile, not broken). No readable image at all is an error.
"""

from __future__ import annotations

import os
import shutil
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from datasets.ingest.core import IngestError, IngestLimits
from datasets.ingest.zipsafety import ExtractionBudget, check_archive, safe_entry_path

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing"})
EXAMPLES = 10


def is_system_file(relative: str) -> bool:
    parts = relative.split("/")
    return (
        "__MACOSX" in parts
        or parts[-1].lower() in SYSTEM_FILES
        or any(part.startswith(".") for part in parts)  # ._foo (macOS resource forks), .git/, hidden files
    )


@dataclass(frozen=True)
class Layout:
    name: str
    strip: int  # leading folders every image shares
    has_label: bool
    has_split: bool

    def row(self, relative: str) -> tuple[str, str | None, str | None]:
        """Return (stored path, label, split) for one image."""
        parts = relative.split("/")[self.strip :]
        folders = parts[:-1]
        split = label = None
        if self.has_split:
            split = folders[0]
            label = folders[1] if len(folders) > 1 else None
        elif self.has_label:
            label = folders[0] if folders else None
        return "/".join(parts), label, split


def detect_layout(paths: list[str]) -> Layout:
    parts = [path.split("/") for path in paths]
    strip = 0
    while all(len(p) > strip + 1 for p in parts) and len({p[strip] for p in parts}) == 1:
        strip += 1
    folders = [p[strip:-1] for p in parts]
    if all(not f for f in folders):
        return Layout("flat", strip, has_label=False, has_split=False)
    if all(f and f[0].lower() in SPLIT_NAMES for f in folders):
        has_label = any(len(f) > 1 for f in folders)
        return Layout("split_class_folders" if has_label else "split_folders", strip, has_label, True)
    return Layout("class_folders", strip, has_label=True, has_split=False)


def _measure(path: Path, stored: str, limits: IngestLimits) -> tuple[int, int] | str:
    """Return (width, height) of a verified image, or the reason it is unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > limits.max_image_pixels:
                    raise IngestError(
                        f"{stored} is {width:,}x{height:,} pixels, more than the limit of "
                        f"{limits.max_image_pixels:,} pixels",
                        code="image_too_large",
                    )
                image.verify()
    except Image.DecompressionBombError:
        raise IngestError(
            f"{stored} has more pixels than Pillow will open safely", "image_too_large"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow's messages name the file by its absolute path on this server; name it by the stored path.
        return (str(error) or type(error).__name__).replace(f" '{path}'", "").replace(str(path), stored)
    return width, height


class _Collector:
    """Sort a dataset's files into images and skipped ones, then build the table."""

    def __init__(self):
        self.images: list[str] = []
        self.system = 0
        self.non_image: list[str] = []

    def add(self, relative: str) -> bool:
        if is_system_file(relative):
            self.system += 1
            return False
        if PurePosixPath(relative).suffix.lower() not in IMAGE_EXTENSIONS:
            self.non_image.append(relative)
            return False
        self.images.append(relative)
        return True

    def require_images(self) -> None:
        if self.images:
            return
        found = ""
        if self.non_image:
            examples = ", ".join(self.non_image[:3])
            found = f" (found {len(self.non_image):,} other files, e.g. {examples}; upload a table directly)"
        raise IngestError(
            f"no images found{found}; expected .png, .jpg, .jpeg, .gif, .bmp, .webp or .tif files",
            code="no_images",
        )


def _build(
    collector: _Collector,
    copy: Callable[[str, Path], None],
    files_dir: Path,
    out_path: Path,
    *,
    limits: IngestLimits,
    progress: Callable[[float], None],
    source_kind: str,
) -> tuple[int, dict]:
    collector.require_images()
    paths = sorted(collector.images)
    layout = detect_layout(paths)
    files_dir.mkdir(parents=True, exist_ok=False)
    root = files_dir.resolve()
    columns: dict[str, list] = {"image": [], "label": [], "split": [], "width": [], "height": []}
    corrupt: list[str] = []
    for number, relative in enumerate(paths, start=1):
        stored, label, split = layout.row(relative)
        target = files_dir / stored
        if not target.resolve().is_relative_to(root):  # safe_entry_path already refused this; belt and braces
            raise IngestError(f"{relative!r} points outside the dataset", code="unsafe_zip_entry")
        copy(relative, target)
        measured = _measure(target, stored, limits)
        if isinstance(measured, str):
            target.unlink(missing_ok=True)
            corrupt.append(f"{stored}: {measured}"[:300])
        else:
            columns["image"].append(stored)
            columns["label"].append(label)
            columns["split"].append(split)
            columns["width"].append(measured[0])
            columns["height"].append(measured[1])
        progress(number / len(paths))
    if not columns["image"]:
        raise IngestError(
            f"none of the {len(paths):,} images could be read (e.g. {corrupt[0]})", code="no_images"
        )
    fields = [("image", pa.string())]
    if layout.has_label:
        fields.append(("label", pa.string()))
    if layout.has_split:
        fields.append(("split", pa.string()))
    fields += [("width", pa.int32()), ("height", pa.int32())]
    schema = pa.schema(fields)
    table = pa.table(
        {name: pa.array(columns[name], schema.field(name).type) for name in schema.names}, schema
    )
    pq.write_table(table, out_path, compression="zstd")
    details: dict = {
        "source": source_kind,
        "layout": layout.name,
        "image_count": table.num_rows,
        "skipped_system_files": collector.system,
        "skipped_non_image_files": len(collector.non_image),
        "skipped_corrupt_images": len(corrupt),
    }
    if layout.has_label:
        counts = Counter(label for label in columns["label"] if label is not None)
        details["class_counts"] = dict(sorted(counts.items()))
        details["unlabelled_images"] = sum(1 for label in columns["label"] if label is None)
    if layout.has_split:
        details["split_counts"] = dict(sorted(Counter(columns["split"]).items()))
    if collector.non_image:
        details["non_image_examples"] = collector.non_image[:EXAMPLES]
    if corrupt:
        details["corrupt_examples"] = corrupt[:EXAMPLES]
    return table.num_rows, details


def convert_image_zip(
    source: Path,
    out_path: Path,
    *,
    files_dir: Path,
    limits: IngestLimits,
    progress: Callable[[float], None],
) -> tuple[int, dict]:
    infos = check_archive(source, limits=limits)
    collector = _Collector()
    by_path: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.is_dir():
            continue
        relative = safe_entry_path(info.filename)
        if collector.add(relative):
            by_path[relative] = info
    collector.require_images()
    budget = ExtractionBudget(limits)
    with zipfile.ZipFile(source) as archive:
        rows, details = _build(
            collector,
            lambda relative, target: budget.extract(archive, by_path[relative], target),
            files_dir,
            out_path,
            limits=limits,
            progress=progress,
            source_kind="zip",
        )
    details["extracted_bytes"] = budget.written_bytes
    return rows, details


def convert_image_folder(
    source: Path,
    out_path: Path,
    *,
    files_dir: Path,
    limits: IngestLimits,
    progress: Callable[[float], None],
) -> tuple[int, dict]:
    """Read a folder of images (a browser folder upload, unpacked by the caller). Symlinks are refused."""
    collector = _Collector()
    count = 0
    for directory, folder_names, file_names in os.walk(source):
        base = Path(directory)
        for name in sorted(folder_names + file_names):
            if (base / name).is_symlink():
                relative = (base / name).relative_to(source).as_posix()
                raise IngestError(f"{relative!r} is a symbolic link", code="unsafe_path")
        for name in file_names:
            count += 1
            if count > limits.max_zip_entries:
                raise IngestError(
                    f"the folder has more than {limits.max_zip_entries:,} files", code="zip_too_many_entries"
                )
            collector.add((base / name).relative_to(source).as_posix())

    def copy(relative: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target, follow_symlinks=False)

    rows, details = _build(
        collector, copy, files_dir, out_path, limits=limits, progress=progress, source_kind="folder"
    )
    return rows, details
