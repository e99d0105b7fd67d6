import io

import pytest
from django.core.exceptions import SuspiciousFileOperation

from studio.storage import ArtifactFileSystemStorage, clean_artifact_name

ESCAPES = [
    "../secret",
    "a/../../secret",
    "/etc/passwd",
    "%2e%2e/secret",
    "%2e%2e%2fsecret",
    "%252e%252e%252fsecret",
    "a/%2E%2E/%2E%2E/secret",
    "..\\secret",
    "C:/Windows",
    "a\x00b",
    "",
    ".",
]


@pytest.mark.parametrize("name", ESCAPES)
def test_names_that_could_escape_are_refused(name):
    with pytest.raises(SuspiciousFileOperation):
        clean_artifact_name(name)


@pytest.mark.parametrize("name", ESCAPES)
def test_storage_refuses_escaping_names(tmp_path, name):
    storage = ArtifactFileSystemStorage(location=str(tmp_path / "root"))
    with pytest.raises(SuspiciousFileOperation):
        storage.save(name, io.BytesIO(b"x"))
    assert not (tmp_path / "secret").exists()


def test_storage_round_trip_stays_under_its_root(tmp_path):
    storage = ArtifactFileSystemStorage(location=str(tmp_path))
    saved = storage.save("projects/1/runs/a.txt", io.BytesIO(b"hello"))
    assert saved == "projects/1/runs/a.txt"
    assert (tmp_path / "projects/1/runs/a.txt").read_bytes() == b"hello"
    with storage.open(saved) as handle:
        assert handle.read() == b"hello"
    assert clean_artifact_name("a/./b//c.txt") == "a/b/c.txt"
