"""The SDK's datasets and recipes against a real Studio web process, a real Celery worker and database."""

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from studio.accounts.services import api_token_create
from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory
from studio.projects.permissions import Role
from studio_sdk import (
    Client,
    Dataset,
    DatasetJob,
    DatasetVersion,
    JobFailedError,
    NotFoundError,
    PermissionDeniedError,
    Recipe,
    StudioError,
    ValidationError,
)
from studio_sdk.datasets import _ProgressBar, _ReadingWithProgress, _upload_file

WAIT_S = 120  # a bound for a job on a cold worker, not a speed assertion
CITIES = ["Paris", "Lyon", "Nice"]
ORDERS_CSV = "id,city,amount,returned\n" + "".join(
    f"{n},{CITIES[n % 3]},{n * 1.5},{'true' if n % 4 == 0 else 'false'}\n" for n in range(1, 201)
)


def raw_token(user) -> str:
    _token, raw = api_token_create(user=user, name="sdk datasets test")
    return raw


@pytest.fixture
def project(transactional_db):
    return ProjectFactory(name="Data team")


@pytest.fixture
def scientist(project):
    user = UserFactory(username="sdk-scientist")
    MembershipFactory(project=project, user=user, role=Role.SCIENTIST)
    return user


@pytest.fixture
def client(scientist, project, studio_server, celery_worker_name):
    with Client(url=studio_server, token=raw_token(scientist), project=project.pk) as client:
        yield client


@pytest.fixture
def orders_csv(tmp_path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)
    return path


@pytest.fixture
def orders(client, orders_csv) -> DatasetVersion:
    return client.datasets.upload(orders_csv, name="orders", progress=False, timeout_s=WAIT_S)


@pytest.mark.integration
def test_upload_a_csv_path_makes_a_version_with_rows_and_schema(client, orders_csv):
    # when
    version = client.datasets.upload(orders_csv, name="orders", progress=False, timeout_s=WAIT_S)

    # then
    assert isinstance(version, DatasetVersion)
    assert (version.dataset_name, version.number, version.row_count) == ("orders", 1, 200)
    assert version.column_types == {
        "id": "numeric",
        "city": "categorical",
        "amount": "numeric",
        "returned": "boolean",
    }
    assert version.columns == ["id", "city", "amount", "returned"]
    assert len(version.sha256) == 64
    assert version.parent is None
    assert repr(version) == f"<DatasetVersion id={version.id} dataset='orders' number=1 rows=200 columns=4>"


@pytest.mark.integration
def test_list_and_get_by_name_and_id_show_the_versions_newest_first(client, orders, tmp_path):
    # given: a second, different upload to the same dataset
    changed = tmp_path / "orders.csv"
    changed.write_text(ORDERS_CSV + "201,Paris,301.5,false\n")
    second = client.datasets.upload(changed, name="orders", progress=False, timeout_s=WAIT_S)

    # when
    listed = client.datasets.list()
    by_name = client.datasets.get("orders")
    by_id = client.datasets.get(by_name.id)

    # then
    assert [dataset.name for dataset in listed] == ["orders"]
    assert isinstance(by_name, Dataset)
    assert by_id.name == "orders"
    assert (by_name.version_count, by_name.latest_number) == (2, 2)
    assert [(version.id, version.number) for version in by_name.versions] == [(second.id, 2), (orders.id, 1)]
    assert by_name.latest.id == second.id
    assert by_name.version(1).row_count == 200
    assert second.row_count == 201
    with pytest.raises(NotFoundError, match="no version 3"):
        by_name.version(3)
    with pytest.raises(NotFoundError, match="No dataset named 'nope'"):
        client.datasets.get("nope")


@pytest.mark.integration
def test_upload_a_dataframe_round_trips_its_values(client):
    # given
    frame = pd.DataFrame(
        {
            "name": ["ada", "grace", "linus"],
            "score": [0.5, 1.25, -3.0],
            "count": [1, 2, 3],
            "passed": [True, False, True],
        }
    )

    # when
    version = client.datasets.upload(frame, name="scores", progress=False, timeout_s=WAIT_S)
    back = version.to_pandas()

    # then
    assert version.row_count == 3
    assert version.columns == ["name", "score", "count", "passed"]
    assert version.column_types["score"] == "numeric"
    assert version.column_types["passed"] == "boolean"
    assert back.to_dict("list") == frame.to_dict("list")


@pytest.mark.integration
def test_uploading_the_same_file_again_returns_the_same_version(client, orders_csv, orders):
    # when
    job = client.datasets.upload(orders_csv, name="orders", wait=False, progress=False)
    again = job.wait(timeout_s=WAIT_S, progress=False)

    # then
    assert isinstance(job, DatasetJob)
    assert job.status == "done"
    assert job.is_duplicate is True
    assert again.id == orders.id
    assert [version.id for version in client.datasets.get("orders").versions] == [orders.id]
    assert "duplicate" in repr(job)


@pytest.mark.integration
def test_to_pandas_and_a_parquet_download_keep_the_csv_values(client, orders, tmp_path):
    # when
    frame = orders.to_pandas()
    parquet_path = orders.download(tmp_path / "copy.parquet")

    # then
    expected = pd.read_csv(io.StringIO(ORDERS_CSV))
    assert frame["id"].tolist() == expected["id"].tolist()
    assert frame["city"].tolist() == expected["city"].tolist()
    assert frame["amount"].tolist() == expected["amount"].tolist()
    assert frame["returned"].tolist() == expected["returned"].tolist()
    assert pd.read_parquet(parquet_path).equals(frame)
    assert orders.to_pandas(columns=["city"]).shape == (200, 1)
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.integration
def test_a_csv_download_into_a_folder_is_named_after_the_version(client, orders, tmp_path):
    # when
    csv_path = orders.download(tmp_path, format="csv")

    # then
    assert csv_path == tmp_path / "orders-v1.csv"
    assert pd.read_csv(csv_path)["amount"].tolist() == [n * 1.5 for n in range(1, 201)]
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.integration
def test_profile_waits_for_the_statistics(client, orders):
    # when
    profile = orders.profile(timeout_s=WAIT_S)
    again = orders.profile(refresh=True, timeout_s=WAIT_S)

    # then
    columns = {column["name"]: column for column in profile["columns"]}
    assert profile["row_count"] == 200
    assert list(columns) == ["id", "city", "amount", "returned"]
    assert (columns["amount"]["min"], columns["amount"]["max"]) == (1.5, 300.0)
    assert columns["amount"]["mean"] == pytest.approx(150.75)
    assert columns["amount"]["missing_count"] == 0
    assert columns["city"]["distinct_count"] == 3
    assert columns["returned"]["true_count"] == 50
    assert orders.profile_status == "done"
    assert again["row_count"] == 200


@pytest.mark.integration
def test_rows_are_sorted_and_filtered_by_the_server(client, orders):
    # when
    top_paris = orders.rows(limit=3, sort="amount:desc", expression="city == 'Paris'")
    every_row = orders.rows(limit=5000, sort=[("id", "asc")])

    # then
    assert isinstance(top_paris, pd.DataFrame)
    assert top_paris["id"].tolist() == [198, 195, 192]
    assert set(top_paris["city"]) == {"Paris"}
    assert every_row["id"].tolist() == list(range(1, 201))


@pytest.mark.integration
def test_a_recipe_preview_then_apply_makes_a_derived_version(client, orders):
    # given
    steps = [
        {"type": "drop", "columns": ["returned"]},
        {"type": "filter", "expression": "amount > 150"},
        {"type": "derive", "name": "amount_k", "expression": "amount / 1000"},
    ]

    # when
    preview_after_two = client.recipes.preview(orders, steps, upto=2)
    preview = client.recipes.preview(orders, steps, limit=5)
    recipe = client.recipes.create("big orders", orders, steps, description="orders over 150")
    derived = client.recipes.apply(orders, recipe="big orders", dataset_name="big orders", progress=False)

    # then
    assert list(preview_after_two.columns) == ["id", "city", "amount"]
    assert list(preview.columns) == ["id", "city", "amount", "amount_k"]
    assert len(preview) == 5
    assert (preview["amount"] > 150).all()
    assert isinstance(recipe, Recipe)
    assert [item.name for item in client.recipes.list()] == ["big orders"]
    assert client.recipes.get("big orders").id == recipe.id
    assert client.recipes.get(recipe.id).steps == recipe.steps
    assert derived.dataset_name == "big orders"
    assert derived.parent.id == orders.id
    assert derived.row_count == sum(1 for n in range(1, 201) if n * 1.5 > 150)
    assert derived.columns == ["id", "city", "amount", "amount_k"]
    assert derived.recipe_id == recipe.id
    assert [child["id"] for child in orders.lineage["children"]] == [derived.id]
    assert derived.lineage["parent"]["id"] == orders.id


@pytest.mark.integration
def test_ad_hoc_steps_apply_without_waiting(client, orders):
    # when
    job = client.recipes.apply(orders, steps=[{"type": "drop", "columns": ["city"]}], wait=False)
    derived = job.wait(timeout_s=WAIT_S, progress=False)

    # then
    assert job.kind == "recipe"
    assert (derived.dataset_name, derived.number) == ("orders", 2)
    assert derived.columns == ["id", "amount", "returned"]


@pytest.mark.integration
def test_a_ragged_csv_raises_job_failed_error_with_the_line_number(client, tmp_path):
    # given
    path = tmp_path / "broken.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n")

    # when
    with pytest.raises(JobFailedError) as caught:
        client.datasets.upload(path, progress=False, timeout_s=WAIT_S)

    # then
    assert "line 4" in str(caught.value)
    assert isinstance(caught.value, StudioError)
    assert caught.value.job.status == "failed"
    assert caught.value.code
    with pytest.raises(NotFoundError):
        client.datasets.get("broken")


@pytest.mark.integration
def test_a_bad_recipe_step_is_a_validation_error_naming_the_column(client, orders):
    with pytest.raises(ValidationError, match="nope"):
        client.recipes.preview(orders, [{"type": "drop", "columns": ["nope"]}])


@pytest.mark.integration
def test_a_viewer_may_not_upload(client, project, studio_server, orders_csv, orders):
    # given
    viewer = UserFactory(username="sdk-data-viewer")
    MembershipFactory(project=project, user=viewer, role=Role.VIEWER)
    viewer_client = Client(url=studio_server, token=raw_token(viewer), project="Data team")

    # when
    with pytest.raises(PermissionDeniedError) as caught:
        viewer_client.datasets.upload(orders_csv, name="orders", progress=False)

    # then
    assert caught.value.status == 403
    assert [dataset.name for dataset in viewer_client.datasets.list()] == ["orders"]  # a viewer may read
    assert viewer_client.datasets.get("orders").version_count == 1


@pytest.mark.integration
def test_the_only_visible_project_is_used_when_none_is_named(scientist, studio_server, celery_worker_name):
    client = Client(url=studio_server, token=raw_token(scientist))

    assert client.datasets.list() == []
    assert client.project.name == "Data team"


@pytest.mark.integration
def test_a_folder_of_images_uploads_with_a_label_per_class_folder(client, tmp_path):
    # given: two class folders of tiny PNGs
    from PIL import Image

    root = tmp_path / "pets"
    for label, colour in (("cat", "red"), ("dog", "blue")):
        (root / label).mkdir(parents=True)
        for number in range(2):
            Image.new("RGB", (8, 8), colour).save(root / label / f"{label}{number}.png")

    # when
    version = client.datasets.upload(root, progress=False, timeout_s=WAIT_S)

    # then
    assert (version.dataset_name, version.kind, version.row_count) == ("pets", "image", 4)
    frame = version.to_pandas()
    assert sorted(frame["label"]) == ["cat", "cat", "dog", "dog"]


# --- without a server --------------------------------------------------------------------------------


def test_a_folder_is_zipped_with_its_class_folders_and_without_dot_files(tmp_path):
    root = tmp_path / "flowers"
    (root / "rose").mkdir(parents=True)
    (root / "tulip" / "red").mkdir(parents=True)
    (root / "rose" / "a.jpg").write_bytes(b"jpeg")
    (root / "tulip" / "red" / "b.jpg").write_bytes(b"jpeg")
    (root / ".DS_Store").write_bytes(b"junk")

    with _upload_file(root, None) as (path, filename, name):
        names = zipfile.ZipFile(path).namelist()
        assert (filename, name) == ("flowers.zip", "flowers")
    assert names == ["rose/a.jpg", "tulip/red/b.jpg"]
    assert not path.exists()  # the temporary zip is gone


def test_a_dataframe_needs_a_name_and_a_missing_path_is_named():
    with pytest.raises(ValueError, match="name"), _upload_file(pd.DataFrame({"a": [1]}), None):
        pass
    with pytest.raises(FileNotFoundError, match="no-such.csv"), _upload_file("no-such.csv", None):
        pass


def test_the_upload_reader_reports_progress_to_tqdm_when_it_is_installed(monkeypatch):
    # given: a stand-in for tqdm.auto that records what the bar was told
    import sys
    import types

    updates = []

    class FakeTqdm:
        def __init__(self, **options):
            self.options, self.n = options, 0

        def update(self, amount):
            self.n += amount
            updates.append(amount)

        def set_postfix_str(self, text, refresh=True):
            updates.append(text)

        def close(self):
            updates.append("closed")

    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeTqdm))

    # when
    with _ProgressBar(True, total=10, desc="upload", unit="B") as bar:
        reader = _ReadingWithProgress(io.BytesIO(b"0123456789"), 10, bar)
        chunks = list(reader)
        bar.to(10, "done")
    with _ProgressBar(False, total=10, desc="silent", unit="B") as silent:
        silent.advance(5)

    # then
    assert b"".join(chunks) == b"0123456789"
    assert len(reader) == 10
    assert updates == [10, "done", "closed"]
