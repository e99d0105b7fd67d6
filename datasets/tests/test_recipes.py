"""Recipes: each step's result in DuckDB, the schema after each step, clear errors at the right step."""

import datetime as dt
from collections import Counter

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.duck import sandboxed_connection
from datasets.recipes import RecipeError, apply_recipe, build_query, validate_recipe

SCHEMA = {
    "age": "numeric",
    "name": "text",
    "city": "categorical",
    "score": "numeric",
    "joined": "datetime",
    "active": "boolean",
}
CITIES_SCHEMA = {"city": "categorical", "country": "text", "name": "text"}


def naive(*parts: int) -> dt.datetime:
    """A datetime without a zone, as a Parquet TIMESTAMP (not TIMESTAMPTZ) column holds it."""
    return dt.datetime(*parts, tzinfo=dt.UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipes")
    people = pa.table(
        {
            "age": [30, None, 45, 30, 22, 61],
            "name": ["Ann", "Bob", "Cid", "Ann", "Dee", "Eve"],
            "city": ["Oslo", "Rome", None, "Oslo", "Rome", "Oslo"],
            "score": [1.5, 2.5, None, 1.5, 4.0, 3.0],
            "joined": [naive(2024, 1, day) for day in (1, 2, 3, 1, 5, 6)],
            "active": [True, False, True, True, None, False],
        }
    )
    cities = pa.table(
        {"city": ["Oslo", "Rome", "Paris"], "country": ["NO", "IT", "FR"], "name": ["o", "r", "p"]}
    )
    pq.write_table(people, folder / "people.parquet")
    pq.write_table(cities, folder / "cities.parquet")
    return {"source": folder / "people.parquet", "version_7": folder / "cities.parquet"}


@pytest.fixture
def con(files):
    connection = sandboxed_connection(files)
    yield connection
    connection.close()


def run(con, steps, schema=SCHEMA, others=None):
    """Validate with the connection, apply, and return (columns, rows, schemas)."""
    normalized, schemas = validate_recipe(steps, schema, others or {}, con=con)
    relation = apply_recipe(con, normalized)
    return relation.columns, relation.fetchall(), schemas


def column(con, steps, name, **kwargs):
    columns, rows, _ = run(con, steps, **kwargs)
    return [row[columns.index(name)] for row in rows]


# Steps, one by one ---------------------------------------------------------------------------------


def test_no_steps_is_the_source(con):
    columns, rows, schemas = run(con, [])

    assert columns == list(SCHEMA)
    assert len(rows) == 6
    assert schemas == []


def test_select_keeps_the_columns_in_the_given_order(con):
    columns, rows, schemas = run(con, [{"type": "select", "columns": ["city", "age"]}])

    assert columns == ["city", "age"]
    assert rows[0] == ("Oslo", 30)
    assert schemas == [{"city": "categorical", "age": "numeric"}]


def test_drop_removes_the_columns(con):
    columns, _, schemas = run(con, [{"type": "drop", "columns": ["name", "joined"]}])

    assert columns == ["age", "city", "score", "active"]
    assert list(schemas[0]) == columns


def test_rename_keeps_positions_and_types(con):
    columns, rows, schemas = run(con, [{"type": "rename", "mapping": {"age": "years", "city": "town"}}])

    assert columns == ["years", "name", "town", "score", "joined", "active"]
    assert schemas[0]["years"] == "numeric"
    assert schemas[0]["town"] == "categorical"
    assert rows[0][0] == 30


def test_rename_can_swap_two_names(con):
    columns, rows, _ = run(con, [{"type": "rename", "mapping": {"name": "city", "city": "name"}}])

    assert columns[1:3] == ["city", "name"]
    assert rows[0][1:3] == ("Ann", "Oslo")


@pytest.mark.parametrize(
    ("column_name", "to", "expected", "expected_type"),
    [
        ("age", "text", ["30", None, "45", "30", "22", "61"], "text"),
        ("score", "integer", [2, 2, None, 2, 4, 3], "numeric"),  # to the nearest, ties to even
        ("active", "numeric", [1.0, 0.0, 1.0, 1.0, None, 0.0], "numeric"),
        ("age", "categorical", ["30", None, "45", "30", "22", "61"], "categorical"),
        ("name", "numeric", [None] * 6, "numeric"),  # TRY_CAST: what does not convert becomes NULL
        ("joined", "text", ["2024-01-01 00:00:00", "2024-01-02 00:00:00"], "text"),
    ],
)
def test_cast_converts_and_sets_the_type(con, column_name, to, expected, expected_type):
    values = column(con, [{"type": "cast", "column": column_name, "to": to}], column_name)
    _, schemas = validate_recipe([{"type": "cast", "column": column_name, "to": to}], SCHEMA, con=con)

    assert values[: len(expected)] == expected
    assert schemas[0][column_name] == expected_type


def test_cast_text_to_boolean_and_datetime(tmp_path):
    path = tmp_path / "strings.parquet"
    pq.write_table(
        pa.table({"flag": ["true", "no", "maybe"], "when": ["2024-05-06", "2024-05-06 10:11:12", "x"]}), path
    )
    connection = sandboxed_connection({"source": path})
    schema = {"flag": "text", "when": "text"}
    steps = [
        {"type": "cast", "column": "flag", "to": "boolean"},
        {"type": "cast", "column": "when", "to": "datetime"},
    ]

    columns, rows, schemas = run(connection, steps, schema=schema)

    assert rows == [
        (True, naive(2024, 5, 6)),
        (False, naive(2024, 5, 6, 10, 11, 12)),
        (None, None),
    ]
    assert schemas[-1] == {"flag": "boolean", "when": "datetime"}


def test_filter_keeps_the_rows_where_the_expression_is_true(con):
    values = column(con, [{"type": "filter", "expression": "age >= 30 and city != 'Rome'"}], "name")

    assert values == ["Ann", "Ann", "Eve"]  # Cid's city is NULL: NULL != 'Rome' is not true (SQL)


@pytest.mark.parametrize(
    ("strategy", "expected_age", "expected_score"),
    [
        ("mean", 37.6, 2.5),
        ("median", 30.0, 2.5),
        ("mode", 30, 1.5),
    ],
)
def test_fill_missing_numeric_columns_by_default(con, strategy, expected_age, expected_score):
    steps = [{"type": "fill_missing", "strategy": strategy}]

    normalized, _ = validate_recipe(steps, SCHEMA, con=con)
    columns, rows, _ = run(con, steps)

    assert normalized[0]["columns"] == ["age", "score"]
    assert rows[1][0] == pytest.approx(expected_age)
    assert rows[2][3] == pytest.approx(expected_score)
    assert rows[0][0] == 30  # present values untouched


def test_fill_missing_mode_of_a_categorical_and_a_constant(con):
    steps = [
        {"type": "fill_missing", "strategy": "mode", "columns": ["city"]},
        {"type": "fill_missing", "strategy": "constant", "columns": ["active"], "value": False},
        {"type": "fill_missing", "strategy": "constant", "columns": ["age"], "value": -1},
    ]

    columns, rows, _ = run(con, steps)

    assert [row[columns.index("city")] for row in rows] == ["Oslo", "Rome", "Oslo", "Oslo", "Rome", "Oslo"]
    assert [row[columns.index("active")] for row in rows] == [True, False, True, True, False, False]
    assert [row[columns.index("age")] for row in rows] == [30, -1, 45, 30, 22, 61]


def test_fill_missing_a_datetime_with_a_constant(tmp_path):
    path = tmp_path / "dates.parquet"
    pq.write_table(pa.table({"when": [naive(2024, 1, 1), None]}), path)
    steps = [
        {"type": "fill_missing", "strategy": "constant", "columns": ["when"], "value": "2000-02-03T04:05:06"}
    ]

    _, rows, _ = run(sandboxed_connection({"source": path}), steps, schema={"when": "datetime"})

    assert rows == [(naive(2024, 1, 1),), (naive(2000, 2, 3, 4, 5, 6),)]


def test_fill_missing_treats_nan_as_missing(tmp_path):
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"x": pa.array([1.0, float("nan"), 3.0, None])}), path)
    connection = sandboxed_connection({"source": path})

    _, rows, _ = run(connection, [{"type": "fill_missing", "strategy": "mean"}], schema={"x": "numeric"})

    assert [row[0] for row in rows] == [1.0, 2.0, 3.0, 2.0]


def test_drop_duplicates_keeps_the_first_occurrence_in_order(con):
    names = column(con, [{"type": "drop_duplicates", "columns": ["city"]}], "name")
    all_columns = column(con, [{"type": "drop", "columns": ["joined"]}, {"type": "drop_duplicates"}], "name")

    assert names == ["Ann", "Bob", "Cid"]  # Oslo, Rome, NULL
    assert all_columns == ["Ann", "Bob", "Cid", "Dee", "Eve"]  # the second Ann row repeats the first


def test_one_hot_adds_a_column_per_category_and_drops_the_original(con):
    steps = [{"type": "one_hot", "column": "city"}]

    normalized, schemas = validate_recipe(steps, SCHEMA, con=con)
    columns, rows, _ = run(con, steps)

    assert normalized[0]["fitted"] == {"categories": ["Oslo", "Rome"], "columns": ["city_Oslo", "city_Rome"]}
    assert columns == ["age", "name", "score", "joined", "active", "city_Oslo", "city_Rome"]
    assert [row[-2:] for row in rows] == [(1, 0), (0, 1), (0, 0), (1, 0), (0, 1), (1, 0)]
    assert schemas[0]["city_Oslo"] == "numeric"
    assert "city" not in schemas[0]


def test_one_hot_keeps_the_most_frequent_categories_with_a_prefix(con):
    steps = [{"type": "one_hot", "column": "city", "max_categories": 1, "prefix": "is_"}]

    columns, rows, _ = run(con, steps)

    assert columns[-1] == "is_Oslo"
    assert [row[-1] for row in rows] == [1, 0, 0, 1, 0, 1]


def test_one_hot_of_a_boolean_names_columns_true_and_false(con):
    columns, _, _ = run(con, [{"type": "one_hot", "column": "active"}])

    assert columns[-2:] == ["active_false", "active_true"]


def test_ordinal_codes_by_the_given_order_and_null_for_unknown(con):
    values = column(con, [{"type": "ordinal", "column": "city", "order": ["Rome", "Oslo"]}], "city")

    assert values == [1, 0, None, 1, 0, 1]


def test_ordinal_without_an_order_uses_the_sorted_values(con):
    normalized, schemas = validate_recipe([{"type": "ordinal", "column": "name"}], SCHEMA, con=con)
    values = column(con, [{"type": "ordinal", "column": "name"}], "name")

    assert normalized[0]["fitted"] == {"order": ["Ann", "Bob", "Cid", "Dee", "Eve"]}
    assert values == [0, 1, 2, 0, 3, 4]
    assert schemas[0]["name"] == "numeric"


def test_scale_standard_gives_mean_zero_and_unit_population_std(con):
    values = column(con, [{"type": "scale", "columns": ["score"]}], "score")

    present = [value for value in values if value is not None]
    mean = sum(present) / len(present)
    variance = sum((value - mean) ** 2 for value in present) / len(present)
    assert mean == pytest.approx(0)
    assert variance == pytest.approx(1)
    assert values[2] is None


def test_scale_minmax_maps_to_zero_one(con):
    values = column(con, [{"type": "scale", "columns": ["score", "age"], "method": "minmax"}], "score")

    assert values == pytest.approx([0.0, 0.4, None, 0.0, 1.0, 0.6], nan_ok=True)


def test_scale_of_a_constant_column_gives_zero(con):
    steps = [{"type": "filter", "expression": "name == 'Ann'"}, {"type": "scale", "columns": ["age"]}]

    assert column(con, steps, "age") == [0.0, 0.0]


def test_derive_appends_a_typed_column(con):
    steps = [
        {"type": "derive", "name": "adult", "expression": "age >= 18"},
        {"type": "derive", "name": "label", "expression": "concat(lower(name), '@', city)"},
        {"type": "derive", "name": "joined year", "expression": "year(joined)"},
    ]

    columns, rows, schemas = run(con, steps)

    assert columns[-3:] == ["adult", "label", "joined year"]
    assert rows[0][-3:] == (True, "ann@Oslo", 2024)
    assert schemas[-1]["adult"] == "boolean"
    assert schemas[-1]["label"] == "text"
    assert schemas[-1]["joined year"] == "numeric"


def test_derive_takes_an_unknown_type_from_duckdb(con):
    _, schemas = validate_recipe(
        [{"type": "derive", "name": "x", "expression": "coalesce(None, None)"}], SCHEMA, con=con
    )

    assert schemas[0]["x"] in ("numeric", "text")


def test_join_on_a_shared_column_suffixes_clashing_names(con):
    steps = [{"type": "join", "version_id": 7, "on": ["city"], "how": "left"}]

    columns, rows, schemas = run(con, steps, others={7: CITIES_SCHEMA})

    assert columns == [*SCHEMA, "country", "name_right"]
    assert [(row[0], row[2], row[-2]) for row in rows] == [
        (30, "Oslo", "NO"),
        (None, "Rome", "IT"),
        (45, None, None),
        (30, "Oslo", "NO"),
        (22, "Rome", "IT"),
        (61, "Oslo", "NO"),
    ]
    assert schemas[0]["country"] == "text"


@pytest.mark.parametrize(("how", "row_count"), [("inner", 5), ("left", 6), ("right", 6), ("outer", 7)])
def test_join_kinds(con, how, row_count):
    steps = [{"type": "join", "version_id": 7, "on": ["city"], "how": how}]

    columns, rows, _ = run(con, steps, others={7: CITIES_SCHEMA})

    assert len(rows) == row_count
    if how in ("right", "outer"):
        assert "Paris" in [row[columns.index("city")] for row in rows]  # the key comes from either side


def test_join_with_left_and_right_keys_keeps_both(con):
    steps = [
        {"type": "rename", "mapping": {"city": "town"}},
        {"type": "join", "version_id": 7, "on": {"left": ["town"], "right": ["city"]}},
    ]

    columns, rows, _ = run(con, steps, others={7: CITIES_SCHEMA})

    assert columns == ["age", "name", "town", "score", "joined", "active", "city", "country", "name_right"]
    assert len(rows) == 5


def test_split_is_deterministic_for_a_seed_and_follows_the_ratios(tmp_path):
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"id": list(range(1000)), "label": ["a"] * 700 + ["b"] * 300}), path)
    connection = sandboxed_connection({"source": path})
    schema = {"id": "numeric", "label": "categorical"}
    steps = [{"type": "split", "ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}, "seed": 7}]

    first = column(connection, steps, "split", schema=schema)
    again = column(connection, steps, "split", schema=schema)
    other_seed = column(connection, [{**steps[0], "seed": 8}], "split", schema=schema)

    assert first == again
    assert first != other_seed
    assert Counter(first) == {"train": 800, "validation": 100, "test": 100}
    assert first[:10] != ["train"] * 10 or first[10:20] != ["train"] * 10  # shuffled, not in blocks
    assert column(connection, steps, "id", schema=schema) == list(range(1000))  # row order kept


def test_stratified_split_keeps_the_class_proportions(tmp_path):
    path = tmp_path / "classes.parquet"
    pq.write_table(pa.table({"label": (["a", "b", "b", "b", "b"] * 100)}), path)
    connection = sandboxed_connection({"source": path})
    steps = [
        {
            "type": "split",
            "ratios": {"train": 0.8, "test": 0.2},
            "seed": 1,
            "stratify": "label",
            "column": "part",
        }
    ]

    columns, rows, schemas = run(connection, steps, schema={"label": "categorical"})

    assert Counter(rows) == {("a", "train"): 80, ("a", "test"): 20, ("b", "train"): 320, ("b", "test"): 80}
    assert schemas[0]["part"] == "categorical"


# The schema after each step, and the live preview ---------------------------------------------------


def test_validate_returns_the_schema_after_each_step(con):
    steps = [
        {"type": "drop", "columns": ["joined"]},
        {"type": "derive", "name": "old", "expression": "age > 40"},
        {"type": "one_hot", "column": "city", "max_categories": 1},
    ]

    _, schemas = validate_recipe(steps, SCHEMA, con=con)

    assert schemas == [
        {"age": "numeric", "name": "text", "city": "categorical", "score": "numeric", "active": "boolean"},
        {
            "age": "numeric",
            "name": "text",
            "city": "categorical",
            "score": "numeric",
            "active": "boolean",
            "old": "boolean",
        },
        {
            "age": "numeric",
            "name": "text",
            "score": "numeric",
            "active": "boolean",
            "old": "boolean",
            "city_Oslo": "numeric",
        },
    ]


def test_apply_upto_gives_the_preview_after_each_step(con):
    steps, _ = validate_recipe(
        [{"type": "filter", "expression": "age > 25"}, {"type": "select", "columns": ["name"]}],
        SCHEMA,
        con=con,
    )

    assert len(apply_recipe(con, steps, upto=0).fetchall()) == 6
    assert apply_recipe(con, steps, upto=1).columns == list(SCHEMA)
    assert apply_recipe(con, steps, upto=2).fetchall() == [("Ann",), ("Cid",), ("Ann",), ("Eve",)]
    with pytest.raises(RecipeError, match="upto must be between 0 and 2"):
        apply_recipe(con, steps, upto=3)


def test_a_validated_recipe_revalidates_without_a_connection(con):
    steps = [
        {"type": "fill_missing", "strategy": "mean"},
        {"type": "one_hot", "column": "city"},
        {"type": "ordinal", "column": "name"},
        {"type": "scale", "columns": ["score"]},
    ]
    normalized, schemas = validate_recipe(steps, SCHEMA, con=con)

    again, schemas_again = validate_recipe(normalized, SCHEMA)

    assert again == normalized
    assert schemas_again == schemas


def test_a_step_that_needs_the_data_is_refused_without_a_connection():
    with pytest.raises(RecipeError, match=r"step 1 \(one_hot\): this step is fitted to the data"):
        validate_recipe([{"type": "one_hot", "column": "city"}], SCHEMA)


def test_validation_with_a_connection_refits_to_the_new_data(con, tmp_path):
    normalized, _ = validate_recipe(
        [{"type": "fill_missing", "strategy": "mean", "columns": ["age"]}], SCHEMA, con=con
    )
    newer = tmp_path / "newer.parquet"
    pq.write_table(pa.table({"age": [10, None]}), newer)

    refitted, _ = validate_recipe(normalized, {"age": "numeric"}, con=sandboxed_connection({"source": newer}))

    assert normalized[0]["fitted"]["values"] == {"age": 37.6}
    assert refitted[0]["fitted"]["values"] == {"age": 10.0}


def test_the_recipe_is_one_select_statement(con):
    steps, _ = validate_recipe(
        [{"type": "filter", "expression": "age > 1"}, {"type": "split", "ratios": {"a": 1}}], SCHEMA, con=con
    )

    statements = con.extract_statements(build_query(steps))

    assert [statement.type for statement in statements] == [duckdb.StatementType.SELECT]


# Bad recipes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "message", "step_index"),
    [
        ([{"type": "nope"}], "step 1: unknown step type 'nope'; known types: select, drop", 0),
        (["drop"], "step 1: a step must be an object with a 'type'", 0),
        ([{"type": "drop"}], "step 1 (drop): missing parameter 'columns'", 0),
        ([{"type": "drop", "columns": ["age"], "colums": 1}], "step 1 (drop): unknown parameter 'colums'", 0),
        ([{"type": "drop", "columns": "age"}], "'columns' must be a non-empty list of column names", 0),
        ([{"type": "drop", "columns": list(SCHEMA)}], "dropping these columns would leave none", 0),
        ([{"type": "select", "columns": ["age", "age"]}], "column 'age' is listed twice", 0),
        (
            [{"type": "select", "columns": ["age", "name"]}, {"type": "drop", "columns": ["agee"]}],
            "step 2 (drop): column 'agee' does not exist; columns are: age, name",
            1,
        ),
        (
            [{"type": "drop", "columns": ["city"]}, {"type": "one_hot", "column": "city"}],
            "step 2 (one_hot): column 'city' does not exist",
            1,
        ),
        (
            [{"type": "rename", "mapping": {"age": "Name"}}],
            "step 1 (rename): column 'name' already exists",
            0,
        ),
        ([{"type": "rename", "mapping": {"age": ""}}], "'mapping' must be non-empty text", 0),
        ([{"type": "rename", "mapping": {"age": "__studio_row"}}], "are reserved", 0),
        ([{"type": "cast", "column": "age", "to": "float"}], "'to' must be one of numeric, integer", 0),
        ([{"type": "cast", "column": "joined", "to": "numeric"}], "cannot cast datetime column 'joined'", 0),
        (
            [{"type": "filter", "expression": "open('/etc/passwd')"}],
            "step 1 (filter): function 'open' is not",
            0,
        ),
        ([{"type": "filter", "expression": "agee > 3"}], "step 1 (filter): unknown column 'agee'", 0),
        (
            [{"type": "filter", "expression": "age + 1"}],
            "must be true or false for each row; it gives numeric",
            0,
        ),
        ([{"type": "filter", "expression": "age > 1; DROP TABLE x"}], "syntax error", 0),
        ([{"type": "derive", "name": "age", "expression": "1"}], "column 'age' already exists", 0),
        ([{"type": "derive", "name": "x", "expression": "lower(age)"}], "step 1 (derive): Binder Error", 0),
        (
            [{"type": "fill_missing", "strategy": "mean", "columns": ["city"]}],
            "needs numeric columns; 'city'",
            0,
        ),
        ([{"type": "fill_missing", "strategy": "constant", "columns": ["age"]}], "needs a 'value'", 0),
        (
            [{"type": "fill_missing", "strategy": "constant", "columns": ["age"], "value": "x"}],
            "'value' must be a number to fill numeric column 'age'",
            0,
        ),
        ([{"type": "fill_missing", "strategy": "mode", "value": 1}], "'value' is only for the constant", 0),
        (
            [{"type": "fill_missing", "strategy": "constant", "columns": ["joined"], "value": "soon"}],
            "'value' must be an ISO date or time to fill datetime column 'joined'",
            0,
        ),
        ([{"type": "fill_missing", "strategy": "average"}], "'strategy' must be one of mean, median", 0),
        ([{"type": "one_hot", "column": "joined"}], "cannot one-hot encode datetime column", 0),
        (
            [{"type": "one_hot", "column": "city", "max_categories": 0}],
            "'max_categories' must be between 1",
            0,
        ),
        (
            [{"type": "ordinal", "column": "city", "order": ["a", "a"]}],
            "'order' must list distinct values",
            0,
        ),
        ([{"type": "scale", "columns": ["name"]}], "can only scale numeric columns; 'name' is text", 0),
        (
            [{"type": "scale", "columns": ["age"], "method": "robust"}],
            "'method' must be one of standard, minmax",
            0,
        ),
        (
            [{"type": "join", "version_id": 9, "on": ["city"]}],
            "step 1 (join): version 9 is not known here",
            0,
        ),
        ([{"type": "join", "version_id": "7", "on": ["city"]}], "'version_id' must be a whole number", 0),
        (
            [{"type": "join", "version_id": 7, "on": ["age"]}],
            "column 'age' does not exist in version 7; its columns",
            0,
        ),
        (
            [{"type": "join", "version_id": 7, "on": {"left": ["city"], "right": ["town"]}}],
            "column 'town' does not exist in version 7; its columns are: city, country, name",
            0,
        ),
        (
            [{"type": "join", "version_id": 7, "on": {"left": ["city"], "right": []}}],
            "must list as many columns",
            0,
        ),
        ([{"type": "join", "version_id": 7, "on": "city"}], "'on' must be a list of column names or", 0),
        (
            [{"type": "join", "version_id": 7, "on": ["city"], "how": "cross"}],
            "'how' must be one of inner",
            0,
        ),
        (
            [{"type": "split", "ratios": {"train": 0.8, "test": 0.1}}],
            "the ratios must add up to 1; they add up to 0.9",
            0,
        ),
        (
            [{"type": "split", "ratios": {"train": 1.0, "test": 0}}],
            "the fraction for 'test' must be a number above 0",
            0,
        ),
        ([{"type": "split", "ratios": {"a": 1}, "seed": 1.5}], "'seed' must be a whole number", 0),
        ([{"type": "split", "ratios": {"a": 1}, "stratify": "nope"}], "column 'nope' does not exist", 0),
        ([{"type": "split", "ratios": {"a": 1}, "column": "city"}], "column 'city' already exists", 0),
    ],
)
def test_a_bad_step_is_refused_naming_the_step_and_the_problem(con, steps, message, step_index):
    with pytest.raises(RecipeError) as caught:
        validate_recipe(steps, SCHEMA, {7: CITIES_SCHEMA}, con=con)

    assert message in str(caught.value)
    assert caught.value.step_index == step_index


def test_a_schema_that_does_not_match_the_data_is_refused(con):
    with pytest.raises(RecipeError, match="the source has columns age, name"):
        validate_recipe([], {"age": "numeric"}, con=con)


def test_a_bad_schema_type_is_refused():
    with pytest.raises(RecipeError, match="unknown type 'number'"):
        validate_recipe([], {"age": "number"})


def test_build_query_quotes_everything_even_for_an_unvalidated_step(con):
    # given steps nobody validated, with SQL where names and values go
    evil = "x\" FROM source; COPY source TO '/tmp/evil.csv'; --"
    steps = [
        {"type": "derive", "name": evil, "expression": "1"},
        {
            "type": "fill_missing",
            "strategy": "constant",
            "columns": [evil],
            "value": "'); DROP TABLE source; --",
        },
        {"type": "rename", "mapping": {evil: "ok"}},
    ]

    # when the query runs
    rows = apply_recipe(con, steps).fetchall()

    # then the names and values were data, and there is still one statement's worth of effect
    assert {row[-1] for row in rows} == {1}
    assert con.execute("SELECT count(*) FROM source").fetchone() == (6,)


def test_build_query_refuses_a_malformed_step():
    with pytest.raises(RecipeError, match=r"step 1 \(drop\): not a validated step"):
        build_query([{"type": "drop", "columns": [{"not": "a name"}]}])


def test_apply_names_the_step_duckdb_cannot_bind(con):
    steps = [{"type": "select", "columns": ["age"]}, {"type": "filter", "expression": "lower(age) == 'x'"}]

    with pytest.raises(RecipeError) as caught:
        apply_recipe(con, steps)

    assert caught.value.step_index == 1
    assert str(caught.value).startswith("step 2 (filter): Binder Error")
