import pytest
from django.db import transaction

from datasets import files
from datasets.models import Dataset, DatasetVersion
from datasets.services import dataset_delete, dataset_update, dataset_version_delete
from datasets.tests.factories import DatasetFactory, make_version
from studio.audit.models import AuditEvent
from studio.core.testing import MembershipFactory, UserFactory
from studio.errors import ApplicationError, PermissionDenied


@pytest.fixture
def owner_and_dataset(db):
    dataset = DatasetFactory(name="sales")
    user = UserFactory()
    MembershipFactory(project=dataset.project, user=user, role="scientist")
    return user, dataset


def test_deleting_a_dataset_removes_its_files(transactional_db):
    dataset = DatasetFactory(name="sales")
    user = UserFactory()
    MembershipFactory(project=dataset.project, user=user, role="scientist")
    first, second = make_version(dataset=dataset), make_version(dataset=dataset, table={"x": [1, 2]})
    paths = [files.local_path(version.storage_name) for version in (first, second)]
    assert all(path.is_file() for path in paths)
    dataset_delete(user=user, dataset=dataset)
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not DatasetVersion.objects.filter(pk__in=[first.pk, second.pk]).exists()
    assert not any(path.exists() for path in paths)
    assert not files.local_path(dataset.storage_prefix).exists()
    assert AuditEvent.objects.filter(action="dataset.delete", data__dataset="sales").exists()


def test_deleting_a_version_keeps_the_others(transactional_db):
    dataset = DatasetFactory()
    user = UserFactory()
    MembershipFactory(project=dataset.project, user=user, role="maintainer")
    first, second = make_version(dataset=dataset), make_version(dataset=dataset, table={"x": [1, 2]})
    dataset_version_delete(user=user, version=first)
    assert not files.local_path(first.storage_name).exists()
    assert files.local_path(second.storage_name).is_file()
    assert list(dataset.versions.values_list("pk", flat=True)) == [second.pk]


def test_a_viewer_cannot_delete(owner_and_dataset):
    _user, dataset = owner_and_dataset
    viewer = UserFactory()
    MembershipFactory(project=dataset.project, user=viewer, role="viewer")
    version = make_version(dataset=dataset)
    with pytest.raises(PermissionDenied):
        dataset_version_delete(user=viewer, version=version)
    assert files.local_path(version.storage_name).is_file()


def test_rename_to_a_taken_name_is_a_clear_conflict(owner_and_dataset):
    user, dataset = owner_and_dataset
    DatasetFactory(project=dataset.project, name="taken")
    with pytest.raises(ApplicationError, match="exists already") as raised, transaction.atomic():
        dataset_update(user=user, dataset=dataset, name="taken")
    assert raised.value.status_code == 409
    dataset.refresh_from_db()
    assert dataset.name == "sales"


def test_preview_reads_the_duckdb_copy_and_caches_filtered_counts(owner_and_dataset):
    from datasets.selectors import preview_copy_path, version_rows
    from datasets.services import build_preview_copy

    _user, dataset = owner_and_dataset
    version = make_version(dataset=dataset)
    from_parquet = version_rows(version=version, sort=[("income", "desc")], expression="age > 30")
    copy = build_preview_copy(version)
    assert copy == preview_copy_path(files.local_path(version.storage_name))
    assert copy.is_file()
    from_copy = version_rows(version=version, sort=[("income", "desc")], expression="age > 30")
    assert from_copy == from_parquet
    assert from_copy["total"] == 4
    assert [row[0] for row in from_copy["rows"]] == [58, 42, 42, 31]
    # the cached count is per filter: another filter gets its own
    assert version_rows(version=version, expression="city == 'Paris'")["total"] == 3
