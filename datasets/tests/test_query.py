"""The sandboxed DuckDB connection (duck.py) and the server-side preview (query.py)."""

import datetime as dt
import math
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.duck import (
    json_value,
    quote_identifier,
    quote_literal,
    sandboxed_connection,
    select_relation,
    write_parquet,
)
from datasets.query import MAX_LIMIT, QueryError, preview


def naive(*parts: int) -> dt.datetime:
    """A datetime without a zone, as a Parquet TIMESTAMP (not TIMESTAMPTZ) column holds it."""
    return dt.datetime(*parts, tzinfo=dt.UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    path = tmp_path_factory.mktemp("query") / "people.parquet"
    table = pa.table(
        {
            "id": pa.array(range(8), pa.int64()),
            "name": ["Ann", "bob", "Cid", None, "Dee", "eve", "Fay", "Gus"],
            "age": [30, 25, None, 41, 25, 60, 33, 18],
            "score": [1.5, float("nan"), 2.0, None, 9.5, 3.25, 0.0, -1.0],
            "joined": [naive(2024, 1, day, 12, 30) for day in range(1, 9)],
            "active": [True, False, True, None, True, False, True, False],
            "price": pa.array([Decimal("1.10")] * 8, pa.decimal128(10, 2)),
            "blob": pa.array([b"\x00\x01"] * 8, pa.binary()),
            "day": pa.array([dt.date(2024, 2, 1)] * 8, pa.date32()),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture
def con(people):
    connection = sandboxed_connection({"source": people})
    yield connection
    connection.close()


# The sandbox ------------------------------------------------------------------------------------------


@pytest.fixture(params=["parquet", "arrow"])
def sandbox(request, people, tmp_path):
    connection = sandboxed_connection({"source": people}, reader=request.param)
    yield connection, tmp_path
    connection.close()


FILESYSTEM = duckdb.PermissionException
LOCKED = duckdb.InvalidInputException


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", FILESYSTEM),
        ("SELECT * FROM read_text('/etc/passwd')", FILESYSTEM),
        ("SELECT * FROM glob('/etc/*')", FILESYSTEM),
        ("SELECT * FROM '/etc/passwd'", duckdb.CatalogException),
        ("COPY source TO '{tmp}/x.csv'", FILESYSTEM),
        ("COPY (SELECT 1) TO '/tmp/x'", FILESYSTEM),
        ("EXPORT DATABASE '{tmp}/export'", FILESYSTEM),
        ("ATTACH '{tmp}/other.duckdb' AS other", FILESYSTEM),
        ("INSTALL httpfs", FILESYSTEM),
        ("LOAD httpfs", FILESYSTEM),
        ("SET enable_external_access = true", LOCKED),
        ("SET lock_configuration = false", LOCKED),
        ("RESET enable_external_access", LOCKED),
        ("SET allowed_directories = ['/']", LOCKED),
        ("SET temp_directory = '{tmp}'", LOCKED),
        ("SET memory_limit = '100GB'", LOCKED),
        # DuckDB's Python client would otherwise read the caller's local pyarrow table by its name.
        ("SELECT * FROM outside_table", duckdb.CatalogException),
    ],
)
def test_sql_cannot_touch_the_filesystem_or_the_settings(sandbox, sql, error):
    connection, tmp = sandbox
    outside_table = pa.table({"secret": ["from the caller's frame"]})  # noqa: F841 (the replacement-scan bait)

    with pytest.raises(error):
        connection.execute(sql.format(tmp=tmp)).fetchall()

    assert list(tmp.iterdir()) == []


def test_sql_cannot_read_another_parquet_file(sandbox, tmp_path_factory):
    connection, _ = sandbox
    other = tmp_path_factory.mktemp("other") / "secret.parquet"
    pq.write_table(pa.table({"secret": [1]}), other)

    with pytest.raises(duckdb.PermissionException):
        connection.execute(f"SELECT * FROM read_parquet('{other}')").fetchall()  # noqa: S608


def test_the_registered_relations_work(sandbox):
    connection, _ = sandbox

    assert connection.execute("SELECT count(*), sum(age) FROM source WHERE active").fetchone() == (4, 88)


def test_the_arrow_reader_cannot_even_overwrite_its_own_file(people):
    connection = sandboxed_connection({"source": people}, reader="arrow")

    with pytest.raises(duckdb.PermissionException):
        connection.execute(f"COPY (SELECT 1 AS x) TO '{people}' (FORMAT parquet, USE_TMP_FILE false)")

    assert pq.read_table(people).num_rows == 8


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet, USE_TMP_FILE false)",
        "SELECT 1; COPY (SELECT 1 AS x) TO '{path}' (FORMAT parquet, USE_TMP_FILE false)",
        "ATTACH ':memory:' AS m",
        "CREATE TABLE t AS SELECT 1",
        "",
    ],
)
def test_select_relation_runs_one_select_and_nothing_else(con, people, sql):
    with pytest.raises(ValueError, match="expected one SELECT statement"):
        select_relation(con, sql.format(path=people))

    assert pq.read_table(people).num_rows == 8


def test_settings_are_applied_and_locked(con):
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'threads', 'TimeZone', 'temp_directory')"
        ).fetchall()
    )

    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "threads": "2",
        "TimeZone": "UTC",
        "temp_directory": "",
    }


def test_write_parquet_streams_a_relation_out_of_the_sandbox(con, tmp_path):
    with pytest.raises(duckdb.PermissionException):
        con.sql("SELECT * FROM source").to_parquet(str(tmp_path / "direct.parquet"))

    rows = write_parquet(
        con.sql("SELECT id, name FROM source WHERE id < 5"), tmp_path / "out.parquet", rows_per_batch=2
    )

    written = pq.read_table(tmp_path / "out.parquet")
    assert rows == 5
    assert written.column_names == ["id", "name"]
    assert written.column("name").to_pylist() == ["Ann", "bob", "Cid", None, "Dee"]


def test_a_temp_directory_lets_a_large_query_spill(tmp_path):
    path = tmp_path / "wide.parquet"
    count = 300_000
    texts = np.char.add("row ", np.arange(count).astype(str)).astype(object)
    pq.write_table(pa.table({"x": np.random.default_rng(0).random(count), "text": texts}), path)
    spill = tmp_path / "spill"
    spill.mkdir()
    query = "SELECT count(*) FROM (SELECT DISTINCT x, text FROM source)"

    small = sandboxed_connection({"source": path}, memory_limit="20MB", threads=1)
    spilling = sandboxed_connection({"source": path}, memory_limit="20MB", threads=1, temp_directory=spill)

    with pytest.raises(duckdb.OutOfMemoryException):
        small.execute(query).fetchall()
    assert spilling.execute(query).fetchone() == (count,)


def test_a_million_rows_are_queried_in_place(tmp_path):
    path = tmp_path / "million.parquet"
    count = 1_000_000
    ids = np.arange(count)
    table = pa.table({"id": ids, "group": pa.array(ids % 7), "value": (ids % 100).astype(np.float64)})
    pq.write_table(table, path, row_group_size=100_000)
    connection = sandboxed_connection({"big": path})

    assert connection.execute("SELECT count(*) FROM big").fetchone() == (count,)
    assert connection.execute("SELECT count(*), sum(value) FROM big WHERE id >= 999990").fetchone() == (
        10,
        945.0,
    )
    assert len(connection.execute('SELECT "group", avg(value) FROM big GROUP BY 1').fetchall()) == 7
    page = preview(
        connection, "big", offset=100_000, limit=3, filters=[{"column": "group", "op": "==", "value": 3}]
    )
    assert page["total"] == 142_857
    assert page["rows"] == [[700_003, 3, 3.0], [700_010, 3, 10.0], [700_017, 3, 17.0]]


@pytest.mark.parametrize(
    ("tables", "error"),
    [
        ({"": "x.parquet"}, "cannot be empty"),
        ({"a\x00b": "x.parquet"}, "NUL"),
        ({"source": "missing.parquet"}, "no Parquet file"),
        ({"source": "x.parquet", "SOURCE": "x.parquet"}, "given twice"),
        ({"source": "x[1].parquet"}, "glob characters"),
    ],
)
def test_bad_tables_are_refused(tmp_path, tables, error):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x[1].parquet")

    with pytest.raises((ValueError, FileNotFoundError), match=error):
        sandboxed_connection({name: tmp_path / file for name, file in tables.items()})


def test_a_path_with_a_quote_is_quoted(tmp_path):
    path = tmp_path / "it's here.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)

    assert sandboxed_connection({"source": path}).execute("SELECT sum(a) FROM source").fetchone() == (3,)


def test_quote_identifier_and_literal_escape_quotes_and_refuse_nul():
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("back\\slash") == "'back\\slash'"  # DuckDB strings have no backslash escapes
    assert quote_literal(None) == "NULL"
    assert quote_literal(True) == "TRUE"
    assert quote_literal(3) == "3"
    assert quote_literal(0.1) == "CAST(0.1 AS DOUBLE)"
    assert quote_literal(float("-inf")) == "CAST('-inf' AS DOUBLE)"
    with pytest.raises(ValueError, match="NUL"):
        quote_identifier("a\x00")
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\x00")
    with pytest.raises(ValueError, match="empty"):
        quote_identifier("")
    with pytest.raises(TypeError):
        quote_literal(b"bytes")


def test_quoted_values_round_trip_through_duckdb():
    connection = duckdb.connect()
    tricky = ["it's", 'say "hi"', "\\n", "'; DROP TABLE x; --", "ünï©ødé", ""]

    for value in tricky:
        assert connection.execute(
            f"SELECT {quote_literal(value)} AS {quote_identifier(value or 'x')}"
        ).fetchone() == (value,)


def test_json_value_makes_fetched_values_json_safe():
    assert json_value(naive(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert json_value(dt.date(2024, 1, 2)) == "2024-01-02"
    assert json_value(float("nan")) is None
    assert json_value(float("inf")) is None
    assert json_value(Decimal("1.25")) == 1.25
    assert json_value(b"\x00") is None
    assert json_value([1, float("nan"), {"a": dt.date(2024, 1, 1)}]) == [1, None, {"a": "2024-01-01"}]


# The preview ------------------------------------------------------------------------------------------


def test_preview_pages_through_the_rows(con):
    first = preview(con, limit=3)
    second = preview(con, offset=3, limit=3)

    assert first["columns"] == ["id", "name", "age", "score", "joined", "active", "price", "blob", "day"]
    assert [row[0] for row in first["rows"]] == [0, 1, 2]
    assert [row[0] for row in second["rows"]] == [3, 4, 5]
    assert first["total"] == second["total"] == 8


def test_preview_values_are_json_safe(con):
    row = preview(con, limit=2)["rows"][1]

    assert row == [1, "bob", 25, None, "2024-01-02T12:30:00", False, 1.1, None, "2024-02-01"]
    assert not any(isinstance(value, float) and math.isnan(value) for value in row)


def test_preview_sorts_with_nulls_last(con):
    by_age = preview(con, sort=[("age", "desc"), ("id", "asc")])
    by_name = preview(con, sort=[["name", "ASC"]])

    assert [row[2] for row in by_age["rows"]] == [60, 41, 33, 30, 25, 25, 18, None]
    assert [row[0] for row in by_age["rows"]][4:6] == [1, 4]
    assert [row[1] for row in by_name["rows"]][-1] is None


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        ([{"column": "age", "op": "==", "value": 25}], [1, 4]),
        ([{"column": "age", "op": "!=", "value": 25}], [0, 3, 5, 6, 7]),
        ([{"column": "age", "op": ">", "value": "30"}], [3, 5, 6]),  # numbers may come as text
        ([{"column": "age", "op": ">=", "value": 30.5}], [3, 5, 6]),
        ([{"column": "age", "op": "<", "value": 25}], [7]),
        ([{"column": "age", "op": "<=", "value": 25}], [1, 4, 7]),
        ([{"column": "name", "op": "contains", "value": "E"}], [4, 5]),  # case-insensitive
        ([{"column": "age", "op": "is_null"}], [2]),
        ([{"column": "name", "op": "not_null", "value": None}], [0, 1, 2, 4, 5, 6, 7]),
        ([{"column": "active", "op": "==", "value": "true"}], [0, 2, 4, 6]),
        ([{"column": "joined", "op": ">=", "value": "2024-01-07"}], [6, 7]),
        ([{"column": "day", "op": "==", "value": "2024-02-01"}], list(range(8))),
        ([{"column": "name", "op": "==", "value": "it's"}], []),
        (
            [{"column": "age", "op": ">", "value": 20}, {"column": "active", "op": "==", "value": False}],
            [1, 5],
        ),
    ],
)
def test_preview_filters_and_counts_the_filtered_rows(con, filters, expected_ids):
    result = preview(con, filters=filters, sort=[("id", "asc")])

    assert [row[0] for row in result["rows"]] == expected_ids
    assert result["total"] == len(expected_ids)


def test_preview_filters_by_an_expression_too(con):
    result = preview(
        con,
        expression="age > 20 and lower(name) in ['ann', 'bob']",
        filters=[{"column": "active", "op": "==", "value": True}],
    )

    assert [row[0] for row in result["rows"]] == [0]
    assert result["total"] == 1


def test_the_total_counts_all_filtered_rows_not_the_page(con):
    result = preview(con, limit=1, offset=1, filters=[{"column": "age", "op": "<", "value": 40}])

    assert len(result["rows"]) == 1
    assert result["total"] == 5


def test_preview_of_an_empty_page_past_the_end(con):
    assert preview(con, offset=100) == {"columns": preview(con)["columns"], "rows": [], "total": 8}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": MAX_LIMIT + 1}, "limit must be at most 1000"),
        ({"limit": -1}, "limit must be a whole number"),
        ({"offset": -5}, "offset must be a whole number"),
        ({"offset": True}, "offset must be a whole number"),
        ({"sort": [("agee", "asc")]}, "sort: unknown column 'agee'; columns are: id, name, age"),
        ({"sort": [("age", "up")]}, "must be 'asc' or 'desc'"),
        ({"sort": [("age", "asc"), ("age", "desc")]}, "listed twice"),
        ({"sort": "age"}, "sort must be a list"),
        ({"filters": [{"column": "nope", "op": "==", "value": 1}]}, "filters: unknown column 'nope'"),
        ({"filters": [{"column": "age", "op": "like", "value": 1}]}, "op for 'age' must be one of ==, !="),
        (
            {"filters": [{"column": "age", "op": "==", "value": "thirty"}]},
            "'age' holds numbers; 'thirty' is not",
        ),
        ({"filters": [{"column": "age", "op": "==", "value": None}]}, "use is_null for missing values"),
        ({"filters": [{"column": "age", "op": "==", "value": [1]}]}, "must be text, a number or true/false"),
        ({"filters": [{"column": "joined", "op": ">", "value": "yesterday"}]}, "is not an ISO date"),
        ({"filters": [{"column": "active", "op": "==", "value": "maybe"}]}, "holds true/false values"),
        ({"filters": [{"column": "name", "op": "contains", "value": 3}]}, "needs non-empty text"),
        ({"filters": [{"column": "name", "op": "is_null", "value": "x"}]}, "takes no value"),
        ({"filters": [{"column": "name", "op": "==", "value": "a", "extra": 1}]}, "unknown key 'extra'"),
        ({"filters": [{"column": "name", "op": "==", "value": "a\x00"}]}, "NUL"),
        ({"expression": "open('/etc/passwd')"}, "expression: function 'open' is not allowed"),
        ({"expression": "agee > 1"}, "expression: unknown column 'agee'"),
        ({"expression": 3}, "expression must be text"),
    ],
)
def test_a_bad_preview_request_is_refused_naming_the_problem(con, kwargs, message):
    with pytest.raises(QueryError) as caught:
        preview(con, **kwargs)

    assert message in str(caught.value)


def test_an_unknown_relation_is_refused(con):
    with pytest.raises(QueryError, match="cannot read 'nope'"):
        preview(con, "nope")


def test_a_recipe_result_can_be_previewed_through_a_view(con):
    from datasets.recipes import apply_recipe, validate_recipe

    schema = {
        "id": "numeric",
        "name": "text",
        "age": "numeric",
        "score": "numeric",
        "joined": "datetime",
        "active": "boolean",
        "price": "numeric",
        "blob": "text",
        "day": "datetime",
    }
    steps, _ = validate_recipe([{"type": "select", "columns": ["id", "age"]}], schema, con=con)
    apply_recipe(con, steps).create_view("recipe_preview")

    result = preview(con, "recipe_preview", sort=[("age", "desc")], limit=2)

    assert result == {"columns": ["id", "age"], "rows": [[5, 60], [3, 41]], "total": 8}
