"""Files of dataset versions: receiving uploads to disk, and local paths of stored versions."""

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files import File

from studio.errors import ApplicationError
from studio.storage import artifact_storage

CHUNK_BYTES = 1024 * 1024


def work_dir() -> Path:
    path = settings.STUDIO_DATA_DIR / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_work_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir()))


def receive_upload(stream, *, expected_bytes: int | None, max_bytes: int) -> tuple[Path, str, int]:
    """Stream an upload body to a file of its own, hashing as it goes; never holds it in memory.

    Returns (path, sha256, size). An interrupted or oversized upload leaves nothing behind.
    """
    if expected_bytes is not None and expected_bytes > max_bytes:
        raise ApplicationError(
            f"file: {expected_bytes} bytes is over the upload limit of {max_bytes} bytes.",
            code="too_large",
            status=413,
        )
    target = work_dir() / f"upload-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            while True:
                chunk = stream.read(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise ApplicationError(
                        f"file: the upload is over the limit of {max_bytes} bytes.",
                        code="too_large",
                        status=413,
                    )
                digest.update(chunk)
                out.write(chunk)
        if expected_bytes is not None and size != expected_bytes:
            raise ApplicationError(
                f"file: the upload was interrupted ({size} of {expected_bytes} bytes arrived); "
                "nothing was kept.",
                code="incomplete_upload",
            )
        if size == 0:
            raise ApplicationError("file: the file is empty.", code="empty_file")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target, digest.hexdigest(), size


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_file(name: str, path: Path) -> str:
    storage = artifact_storage()
    if storage.exists(name):
        storage.delete(name)
    with path.open("rb") as handle:
        return storage.save(name, File(handle, name=os.path.basename(name)))


def store_tree(prefix: str, root: Path) -> int:
    count = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            store_file(f"{prefix}/{path.relative_to(root).as_posix()}", path)
            count += 1
    return count


def local_path(name: str) -> Path:
    """A local path for a stored file: the file itself on the local store, else a cached copy."""
    storage = artifact_storage()
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        cached = settings.STUDIO_DATA_DIR / "cache" / name
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(cached.suffix + f".{uuid.uuid4().hex}.part")
            with storage.open(name, "rb") as source, partial.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
            partial.replace(cached)
        return cached


def delete_prefix(prefix: str) -> None:
    """Delete every stored file under `prefix` (a dataset or a version's files)."""
    storage = artifact_storage()
    try:
        root = Path(storage.path(prefix))
    except NotImplementedError:
        root = None
    if root is not None:
        if root.is_file():
            root.unlink()
        else:
            shutil.rmtree(root, ignore_errors=True)
        return
    if storage.exists(prefix):  # a single file on a remote store
        storage.delete(prefix)
        return
    directories, files = storage.listdir(prefix)
    for name in files:
        storage.delete(f"{prefix}/{name}")
    for directory in directories:
        delete_prefix(f"{prefix}/{directory}")
