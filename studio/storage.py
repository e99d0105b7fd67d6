"""The artifact store: files of datasets, runs and models under one root that no name can escape.

Local filesystem under STUDIO_DATA_DIR/artifacts by default; any Django storage backend (for example
django-storages' S3Storage for an S3-compatible store) by setting STUDIO_ARTIFACT_STORAGE.
"""

import posixpath
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage, storages


def clean_artifact_name(name: str) -> str:
    """Return a normalised relative key for `name`, refusing anything that could leave the store's root."""
    if not isinstance(name, str) or not name:
        raise SuspiciousFileOperation("An artifact name must be a non-empty string.")
    # Decode repeatedly so that %2e%2e%2f and %252e... cannot smuggle a `../` past the checks.
    decoded = name
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    if "\x00" in decoded or "\\" in decoded:
        raise SuspiciousFileOperation(f"Artifact name {name!r} contains a NUL byte or a backslash.")
    if decoded.startswith("/") or (len(decoded) > 1 and decoded[1] == ":"):
        raise SuspiciousFileOperation(f"Artifact name {name!r} is absolute.")
    parts = decoded.split("/")
    if any(part == ".." for part in parts):
        raise SuspiciousFileOperation(f"Artifact name {name!r} climbs out of the store with '..'.")
    normalised = posixpath.normpath(decoded)
    if normalised in (".", ""):
        raise SuspiciousFileOperation(f"Artifact name {name!r} names the store's root.")
    return normalised


class ArtifactFileSystemStorage(FileSystemStorage):
    """Local artifact store rooted at STUDIO_DATA_DIR/artifacts."""

    def __init__(self, location=None, **kwargs):
        super().__init__(location=location or str(settings.STUDIO_DATA_DIR / "artifacts"), **kwargs)

    def path(self, name: str) -> str:
        # FileSystemStorage already refuses paths outside its root; the extra cleaning also refuses
        # encoded and absolute names instead of quietly re-rooting them.
        return super().path(clean_artifact_name(name))


def artifact_storage():
    return storages["artifacts"]
