"""The DuckDB copy of a version that the preview reads (duck.build_table_copy, selectors.version_rows)."""

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.duck import (
    build_table_copy,
    copy_cursor,
    forget_copy,
    readonly_copy_connection,
    sandboxed_connection,
)
from datasets.query import preview


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "data.parquet"
    table = pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "name": ["Ann", "bob", None, "Dee", "eve", "Fay"],
            "amount": [3.5, None, 1.0, 9.0, 2.5, 7.0],
            "at": pa.array(
                [dt.datetime(2024, 1, day, tzinfo=dt.UTC) for day in range(1, 7)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    pq.write_table(table, path, row_group_size=2)
    return path


@pytest.fixture
def copy(parquet):
    target = build_table_copy(parquet, parquet.with_suffix(".duckdb"))
    yield target
    forget_copy(target)


def test_build_writes_one_table_and_no_leftovers(parquet, copy):
    assert sorted(path.name for path in parquet.parent.iterdir()) == ["data.duckdb", "data.parquet"]
    con = readonly_copy_connection(copy)
    try:
        assert con.sql("SELECT table_name FROM duckdb_tables()").fetchall() == [("source",)]
        assert con.sql("SELECT id FROM source").fetchall() == [(i,) for i in range(6)]
    finally:
        con.close()


def test_failed_build_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(duckdb.Error):
        build_table_copy(bad, tmp_path / "bad.duckdb")
    assert [path.name for path in tmp_path.iterdir()] == ["bad.parquet"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"sort": [("amount", "desc")]},
        {"sort": [("name", "asc")], "offset": 1, "limit": 3},
        {"expression": "amount > 2", "sort": [("at", "desc")]},
        {"filters": [{"column": "name", "op": "contains", "value": "e"}]},
    ],
)
def test_copy_answers_as_the_parquet_file(parquet, copy, kwargs):
    from_parquet = sandboxed_connection({"source": parquet})
    from_copy = copy_cursor(copy)
    try:
        assert preview(from_copy, "source", **kwargs) == preview(from_parquet, "source", **kwargs)
    finally:
        from_parquet.close()
        from_copy.close()


def test_preview_with_a_known_total_skips_the_count(copy):
    con = copy_cursor(copy)
    try:
        assert preview(con, "source", total=123)["total"] == 123
    finally:
        con.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "COPY source TO '{folder}/out.csv'",
        "ATTACH '{folder}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET memory_limit = '100GB'",
        "SET TimeZone = 'Europe/Paris'",
        "CREATE TABLE other (a INTEGER)",
        "DELETE FROM source",
        "SELECT * FROM read_parquet('{folder}/data.parquet')",
    ],
)
def test_readonly_copy_connection_is_sandboxed(copy, sql):
    for con in (readonly_copy_connection(copy), copy_cursor(copy)):
        try:
            with pytest.raises(duckdb.Error):
                con.execute(sql.format(folder=copy.parent))
            assert con.sql("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        finally:
            con.close()
    assert not (copy.parent / "out.csv").exists()
    assert not (copy.parent / "other.duckdb").exists()
