"""Wrangling recipes: ordered steps (JSON dicts with a "type") compiled to ONE DuckDB query.

`validate_recipe` checks every step against the columns that exist at that step and returns the
steps normalized: defaults filled in, implicit choices made explicit (which columns fill_missing
works on), and parameters that depend on the data fitted under "fitted" (the mean that fills a gap,
the categories one_hot makes columns for, the mean and spread `scale` uses, the output columns of a
join). Fitting runs small aggregate queries, so it needs a connection (`con`); it happens on every
validation with a connection, so a recipe re-validated against a newer version is fitted to that
version. Store the steps as the user wrote them; the normalized steps are the compiled plan for one
source. Fitting at validation, rather than with window aggregates in the query, keeps the query a
stream of projections and filters, so that the preview of the first rows after a step stays fast on
millions of rows (only drop_duplicates, join and split have to see every row).

`build_query` never trusts SQL from a step: identifiers and values are quoted, expressions are
recompiled from their text, so even an unvalidated step cannot inject SQL (it may only fail).

Step types and their parameters (optional ones with their default):

    select          columns: [str]
    drop            columns: [str]
    rename          mapping: {old: new}
    cast            column, to: numeric | integer | text | categorical | boolean | datetime
                    (TRY_CAST: a value that does not convert becomes NULL)
    filter          expression (see expressions.py)
    fill_missing    strategy: mean | median | mode | constant, value (constant only),
                    columns = every numeric column
    drop_duplicates columns = None (all columns); keeps the first occurrence
    one_hot         column, max_categories = 50, prefix = "<column>_"
                    (0/1 columns for the most frequent values; the column itself is dropped)
    ordinal         column, order = None (the sorted distinct values)
                    (codes 0..n-1; a value not in the order gives NULL)
    scale           columns, method = standard | minmax
    derive          name, expression   (a new column)
    join            version_id: int, on: [str] | {left: [str], right: [str]},
                    how = inner | left | right | outer
    split           ratios: {name: fraction}, seed = 0, stratify = None, column = "split"

Row order is kept by every step (joins order by the left row, then the right row), so a recipe gives
the same rows in the same order each time it runs on the same data.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from datasets.duck import json_value, quote_identifier, quote_literal, schema_type, select_relation
from datasets.expressions import ExpressionError, analyze_expression, compile_expression

SCHEMA_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "image")
CAST_TARGETS: dict[str, tuple[str, str]] = {  # target: (DuckDB type, Studio type)
    "numeric": ("DOUBLE", "numeric"),
    "integer": ("BIGINT", "numeric"),
    "text": ("VARCHAR", "text"),
    "categorical": ("VARCHAR", "categorical"),
    "boolean": ("BOOLEAN", "boolean"),
    "datetime": ("TIMESTAMP", "datetime"),
}
# TRY_CAST would give NULL for every row of these; refusing says so up front.
_IMPOSSIBLE_CASTS = {
    ("datetime", "numeric"),
    ("datetime", "integer"),
    ("datetime", "boolean"),
    ("numeric", "datetime"),
    ("boolean", "datetime"),
}
FILL_STRATEGIES = ("mean", "median", "mode", "constant")
SCALE_METHODS = ("standard", "minmax")
JOIN_KINDS = {"inner": "INNER", "left": "LEFT", "right": "RIGHT", "outer": "FULL OUTER"}
MAX_STEPS = 200
MAX_ONE_HOT_CATEGORIES = 1000
MAX_ORDINAL_CATEGORIES = 1000
RESERVED_PREFIX = "__studio_"
_ROW = RESERVED_PREFIX + "row"
_VALUE = RESERVED_PREFIX + "value"
_POSITION = RESERVED_PREFIX + "position"
_MAX_LISTED_COLUMNS = 30

Schema = dict[str, str]


class RecipeError(ValueError):
    """A recipe is invalid. `step_index` is the 0-based index of the step at fault (None: the recipe)."""

    def __init__(self, message: str, step_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.step_index = step_index


# ---------------------------------------------------------------------------------------------------
# Validation


def validate_recipe(
    steps: Sequence[Mapping[str, Any]],
    schema: Mapping[str, str],
    other_schemas: Mapping[int, Mapping[str, str]] | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    source: str = "source",
) -> tuple[list[dict[str, Any]], list[Schema]]:
    """Check `steps` over a source with `schema`; return the normalized steps and the schema after each.

    other_schemas: {version id: schema} of the versions a join may name (registered on `con` as
    `version_<id>`). con: a connection where `source` (and those versions) are registered; with it,
    data-dependent steps are fitted and every step is bound by DuckDB, so that type errors (say
    lower() of a number) are reported at their step. Without it, a step that needs fitting must
    carry the "fitted" of an earlier validation, or it is refused.
    """
    other_schemas = other_schemas or {}
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        raise RecipeError("a recipe is a list of steps")
    if len(steps) > MAX_STEPS:
        raise RecipeError(f"a recipe has at most {MAX_STEPS} steps; this one has {len(steps)}")
    current = _checked_schema(schema, "the source")
    checked_others = {
        version_id: _checked_schema(other, f"version {version_id}")
        for version_id, other in other_schemas.items()
    }
    if con is not None:
        _check_source_columns(con, source, current)

    normalized: list[dict[str, Any]] = []
    schemas: list[Schema] = []
    for index, step in enumerate(steps):
        context = _Context(index, step, current, checked_others, con, source, normalized)
        checker = _CHECKERS[context.step_type]
        normalized_step, current = checker(context, context.parameters)
        normalized.append(normalized_step)
        if con is not None:
            current = _bind(context, normalized, current)
        schemas.append(current)
    return normalized, schemas


def _checked_schema(schema: Mapping[str, str], what: str) -> Schema:
    if not isinstance(schema, Mapping):
        raise RecipeError(f"the schema of {what} must be a mapping of column name to type")
    checked: Schema = {}
    for name, type_name in schema.items():
        if not isinstance(name, str) or not name or "\x00" in name:
            raise RecipeError(f"the schema of {what} has an invalid column name {name!r}")
        if name.startswith(RESERVED_PREFIX):
            raise RecipeError(
                f"the schema of {what} has column '{name}'; names starting {RESERVED_PREFIX} are reserved"
            )
        if type_name not in SCHEMA_TYPES:
            raise RecipeError(f"the schema of {what} gives column '{name}' the unknown type {type_name!r}")
        checked[name] = type_name
    return checked


def _check_source_columns(con: duckdb.DuckDBPyConnection, source: str, schema: Schema) -> None:
    try:
        columns = select_relation(con, f"SELECT * FROM {quote_identifier(source)}").columns  # noqa: S608 (quoted)
    except duckdb.Error as error:
        raise RecipeError(f"cannot read the source: {_first_line(error)}") from None
    if columns != list(schema):
        raise RecipeError(
            f"the source has columns {', '.join(columns)}; the schema lists {', '.join(schema)}"
        )


def _bind(context: "_Context", normalized: list[dict[str, Any]], schema: Schema) -> Schema:
    """Let DuckDB bind the query up to this step; take the types we could not infer from it."""
    try:
        relation = select_relation(context.con, build_query(normalized, source=context.source))
    except duckdb.Error as error:
        raise context.error(_first_line(error)) from None
    if relation.columns != list(schema):
        raise context.error(
            f"internal error: DuckDB sees columns {relation.columns}, the recipe {list(schema)}"
        )
    return {
        name: type_name if type_name is not None else schema_type(str(duckdb_type))
        for (name, type_name), duckdb_type in zip(schema.items(), relation.types, strict=True)
    }


class _Context:
    """What a step checker needs: the step, the schema it sees, and helpers that name the step in errors."""

    def __init__(
        self,
        index: int,
        step: Any,
        schema: Schema,
        other_schemas: dict[int, Schema],
        con: duckdb.DuckDBPyConnection | None,
        source: str,
        previous_steps: list[dict[str, Any]],
    ):
        self.index = index
        self.schema = schema
        self.other_schemas = other_schemas
        self.con = con
        self.source = source
        self.previous_steps = list(previous_steps)
        if not isinstance(step, Mapping):
            raise RecipeError(f"step {index + 1}: a step must be an object with a 'type'", index)
        self.step = step
        step_type = step.get("type")
        if step_type not in _CHECKERS:
            known = ", ".join(_CHECKERS)
            raise RecipeError(
                f"step {index + 1}: unknown step type {step_type!r}; known types: {known}", index
            )
        self.step_type: str = step_type
        self.parameters = self._parameters()

    def error(self, message: str) -> RecipeError:
        return RecipeError(f"step {self.index + 1} ({self.step_type}): {message}", self.index)

    def _parameters(self) -> dict[str, Any]:
        required, optional = _PARAMETERS[self.step_type]
        given = {key: value for key, value in self.step.items() if key not in ("type", "fitted")}
        unknown = sorted(set(given) - set(required) - set(optional))
        if unknown:
            expected = ", ".join([*required, *optional]) or "none"
            raise self.error(f"unknown parameter '{unknown[0]}'; parameters are: {expected}")
        missing = [name for name in required if name not in given]
        if missing:
            raise self.error(f"missing parameter '{missing[0]}'")
        return {**optional, **given}

    # Parameter checks --------------------------------------------------------------------------

    def text(self, value: Any, parameter: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"'{parameter}' must be non-empty text")
        return value

    def integer(
        self, value: Any, parameter: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(f"'{parameter}' must be a whole number")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(f"'{parameter}' must be between {minimum} and {maximum}")
        return value

    def choice(self, value: Any, parameter: str, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.error(f"'{parameter}' must be one of {', '.join(choices)}; got {value!r}")
        return value

    def scalar(self, value: Any, parameter: str) -> str | int | float | bool | None:
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(f"'{parameter}' must be a finite number")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise self.error(f"'{parameter}' must be a single value (text, number, true/false)")
        if isinstance(value, str) and "\x00" in value:
            raise self.error(f"'{parameter}' contains a NUL character")
        return value

    def column(self, value: Any, parameter: str, schema: Schema | None = None) -> str:
        schema = self.schema if schema is None else schema
        if not isinstance(value, str):
            raise self.error(f"'{parameter}' must be a column name")
        if value not in schema:
            raise self.error(f"column '{value}' does not exist; columns are: {_list_columns(schema)}")
        return value

    def columns(self, value: Any, parameter: str, schema: Schema | None = None) -> list[str]:
        if not isinstance(value, list) or not value:
            raise self.error(f"'{parameter}' must be a non-empty list of column names")
        names = [self.column(item, parameter, schema) for item in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise self.error(f"column '{duplicates[0]}' is listed twice in '{parameter}'")
        return names

    def new_name(self, value: Any, parameter: str, taken: Sequence[str]) -> str:
        name = self.text(value, parameter)
        if "\x00" in name:
            raise self.error(f"'{parameter}' contains a NUL character")
        if name.startswith(RESERVED_PREFIX):
            raise self.error(f"column names starting with '{RESERVED_PREFIX}' are reserved")
        # DuckDB treats names differing only in case as the same column.
        clash = next((existing for existing in taken if existing.lower() == name.lower()), None)
        if clash is not None:
            raise self.error(f"column '{clash}' already exists")
        return name

    # Fitting -----------------------------------------------------------------------------------

    def fetch(self, sql: str) -> list[tuple]:
        try:
            return select_relation(self.con, sql).fetchall()
        except duckdb.Error as error:
            raise self.error(_first_line(error)) from None

    def previous_query(self) -> str:
        return build_query(self.previous_steps, source=self.source)

    def fitted(self, check: Callable[[Any], bool]) -> Any:
        """Return the step's earlier "fitted" values where there is no connection to fit again."""
        fitted = self.step.get("fitted")
        if fitted is None:
            raise self.error("this step is fitted to the data; validate the recipe with a connection")
        if not check(fitted):
            raise self.error("'fitted' is malformed; validate the recipe with a connection")
        return fitted


def _check_select(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    columns = context.columns(parameters["columns"], "columns")
    return {"type": "select", "columns": columns}, {name: context.schema[name] for name in columns}


def _check_drop(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    columns = context.columns(parameters["columns"], "columns")
    remaining = {name: type_name for name, type_name in context.schema.items() if name not in columns}
    if not remaining:
        raise context.error("dropping these columns would leave none")
    return {"type": "drop", "columns": columns}, remaining


def _check_rename(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    mapping = parameters["mapping"]
    if not isinstance(mapping, Mapping) or not mapping:
        raise context.error("'mapping' must be a non-empty object of {old name: new name}")
    names = list(context.schema)
    renamed = [mapping.get(name, name) for name in names]
    for old, new in mapping.items():
        position = names.index(context.column(old, "mapping"))
        context.new_name(new, "mapping", renamed[:position] + renamed[position + 1 :])
    schema = {mapping.get(name, name): type_name for name, type_name in context.schema.items()}
    return {"type": "rename", "mapping": dict(mapping)}, schema


def _check_cast(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    column = context.column(parameters["column"], "column")
    target = context.choice(parameters["to"], "to", list(CAST_TARGETS))
    source_type = context.schema[column]
    if (source_type, target) in _IMPOSSIBLE_CASTS:
        hint = " (derive year(), month() or day() instead)" if source_type == "datetime" else ""
        raise context.error(f"cannot cast {source_type} column '{column}' to {target}{hint}")
    schema = dict(context.schema)
    schema[column] = CAST_TARGETS[target][1]
    return {"type": "cast", "column": column, "to": target}, schema


def _check_filter(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    expression = context.text(parameters["expression"], "expression")
    try:
        compiled = analyze_expression(expression, context.schema)
    except ExpressionError as error:
        raise context.error(str(error)) from None
    if compiled.type not in ("boolean", None):
        raise context.error(
            f"the expression must be true or false for each row; it gives {compiled.type} values"
        )
    return {"type": "filter", "expression": expression}, dict(context.schema)


def _check_fill_missing(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    strategy = context.choice(parameters["strategy"], "strategy", FILL_STRATEGIES)
    if parameters["columns"] is None:
        columns = [name for name, type_name in context.schema.items() if type_name == "numeric"]
        if not columns:
            raise context.error("there are no numeric columns to fill; name the columns")
    else:
        columns = context.columns(parameters["columns"], "columns")
    normalized: dict[str, Any] = {"type": "fill_missing", "columns": columns, "strategy": strategy}
    if strategy == "constant":
        if parameters["value"] is None:
            raise context.error("the constant strategy needs a 'value'")
        value = context.scalar(parameters["value"], "value")
        for column in columns:
            _check_fill_value(context, column, value)
        normalized["value"] = value
        return normalized, dict(context.schema)
    if parameters["value"] is not None:
        raise context.error("'value' is only for the constant strategy")
    if strategy in ("mean", "median"):
        for column in columns:
            if context.schema[column] != "numeric":
                raise context.error(
                    f"strategy '{strategy}' needs numeric columns; '{column}' is {context.schema[column]}"
                )
    if context.con is None:
        values = context.fitted(lambda fitted: _is_value_map(fitted, columns))["values"]
    else:
        values = _fit_fill_values(context, columns, strategy)
    normalized["fitted"] = {"values": values}
    return normalized, dict(context.schema)


def _check_fill_value(context: _Context, column: str, value: Any) -> None:
    type_name = context.schema[column]
    if type_name == "numeric":
        is_valid = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_name == "boolean":
        is_valid = isinstance(value, bool)
    elif type_name == "datetime":
        is_valid = isinstance(value, str) and _is_iso_datetime(value)
    else:
        is_valid = isinstance(value, str)
    if not is_valid:
        expected = {"numeric": "a number", "boolean": "true or false", "datetime": "an ISO date or time"}
        raise context.error(
            f"'value' must be {expected.get(type_name, 'text')} to fill {type_name} column '{column}'"
        )


def _fit_fill_values(context: _Context, columns: list[str], strategy: str) -> dict[str, Any]:
    previous = context.previous_query()
    if strategy == "mode":
        value = quote_identifier(_VALUE)
        values = {}
        for column in columns:
            rows = context.fetch(
                f"SELECT {_missing_as_null(column, context.schema[column])} AS {value} "  # noqa: S608 (quoted)
                f"FROM ({previous}) WHERE {value} IS NOT NULL "
                f"GROUP BY {value} ORDER BY count(*) DESC, {value} LIMIT 1"
            )
            values[column] = json_value(rows[0][0]) if rows else None
        return values
    aggregate = "avg" if strategy == "mean" else "median"
    selected = ", ".join(f"{aggregate}({_missing_as_null(column, 'numeric')})" for column in columns)
    (row,) = context.fetch(f"SELECT {selected} FROM ({previous})")  # noqa: S608 (quoted)
    return {column: json_value(value) for column, value in zip(columns, row, strict=True)}


def _check_drop_duplicates(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    columns = None if parameters["columns"] is None else context.columns(parameters["columns"], "columns")
    return {"type": "drop_duplicates", "columns": columns}, dict(context.schema)


def _check_one_hot(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    column = context.column(parameters["column"], "column")
    if context.schema[column] in ("datetime", "image"):
        raise context.error(f"cannot one-hot encode {context.schema[column]} column '{column}'")
    max_categories = context.integer(
        parameters["max_categories"], "max_categories", minimum=1, maximum=MAX_ONE_HOT_CATEGORIES
    )
    prefix = parameters["prefix"] if parameters["prefix"] is not None else f"{column}_"
    if not isinstance(prefix, str) or "\x00" in prefix or prefix.startswith(RESERVED_PREFIX):
        raise context.error(f"'prefix' must be text not starting with {RESERVED_PREFIX}")
    remaining = {name: type_name for name, type_name in context.schema.items() if name != column}
    if context.con is None:
        fitted = context.fitted(_is_one_hot_fit)
        categories = fitted["categories"]
    else:
        value = quote_identifier(_VALUE)
        rows = context.fetch(
            f"SELECT {quote_identifier(column)} AS {value} FROM ({context.previous_query()}) "  # noqa: S608
            f"WHERE {value} IS NOT NULL GROUP BY {value} "
            f"ORDER BY count(*) DESC, {value} LIMIT {max_categories}"
        )
        # json_value turns a NaN into None: not a category.
        categories = sorted(
            category for category in (json_value(row[0]) for row in rows) if category is not None
        )
    names: list[str] = []
    for category in categories:
        names.append(_unique_name(prefix + _label(category) or "_", [*remaining, *names]))
    normalized = {
        "type": "one_hot",
        "column": column,
        "max_categories": max_categories,
        "prefix": prefix,
        "fitted": {"categories": categories, "columns": names},
    }
    return normalized, {**remaining, **dict.fromkeys(names, "numeric")}


def _check_ordinal(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    column = context.column(parameters["column"], "column")
    normalized: dict[str, Any] = {"type": "ordinal", "column": column, "order": parameters["order"]}
    if parameters["order"] is not None:
        order = parameters["order"]
        if not isinstance(order, list) or not order:
            raise context.error("'order' must be a non-empty list of values")
        for value in order:
            context.scalar(value, "order")
        if len({json_value(value) for value in order}) != len(order) or None in order:
            raise context.error("'order' must list distinct values, without null")
    elif context.con is None:
        context.fitted(lambda fitted: isinstance(fitted, Mapping) and _is_scalar_list(fitted.get("order")))
        normalized["fitted"] = {"order": context.step["fitted"]["order"]}
    else:
        value = quote_identifier(_VALUE)
        rows = context.fetch(
            f"SELECT DISTINCT {quote_identifier(column)} AS {value} FROM ({context.previous_query()}) "  # noqa: S608
            f"WHERE {value} IS NOT NULL ORDER BY {value} LIMIT {MAX_ORDINAL_CATEGORIES + 1}"
        )
        if len(rows) > MAX_ORDINAL_CATEGORIES:
            raise context.error(
                f"column '{column}' has more than {MAX_ORDINAL_CATEGORIES} distinct values; give an 'order'"
            )
        values = (json_value(row[0]) for row in rows)
        normalized["fitted"] = {"order": [category for category in values if category is not None]}
    return normalized, {**context.schema, column: "numeric"}


def _check_scale(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    columns = context.columns(parameters["columns"], "columns")
    method = context.choice(parameters["method"], "method", SCALE_METHODS)
    for column in columns:
        if context.schema[column] != "numeric":
            raise context.error(f"can only scale numeric columns; '{column}' is {context.schema[column]}")
    if context.con is None:
        stats = context.fitted(lambda fitted: _is_stats(fitted, columns))["stats"]
    else:
        first, second = ("avg", "stddev_pop") if method == "standard" else ("min", "max")
        selected = ", ".join(
            f"{aggregate}(CAST({quote_identifier(column)} AS DOUBLE))"
            for column in columns
            for aggregate in (first, second)
        )
        (row,) = context.fetch(f"SELECT {selected} FROM ({context.previous_query()})")  # noqa: S608 (quoted)
        values = [json_value(value) for value in row]
        stats = {column: values[2 * position : 2 * position + 2] for position, column in enumerate(columns)}
    normalized = {"type": "scale", "columns": columns, "method": method, "fitted": {"stats": stats}}
    return normalized, {**context.schema, **dict.fromkeys(columns, "numeric")}


def _check_derive(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    name = context.new_name(parameters["name"], "name", list(context.schema))
    expression = context.text(parameters["expression"], "expression")
    try:
        compiled = analyze_expression(expression, context.schema)
    except ExpressionError as error:
        raise context.error(str(error)) from None
    # An unknown type (a bare None) is taken from DuckDB when binding, else taken as text.
    type_name = compiled.type or ("text" if context.con is None else None)
    return {"type": "derive", "name": name, "expression": expression}, {**context.schema, name: type_name}


def _check_join(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    version_id = context.integer(parameters["version_id"], "version_id")
    if version_id not in context.other_schemas:
        known = ", ".join(str(key) for key in sorted(context.other_schemas)) or "none"
        raise context.error(f"version {version_id} is not known here (known versions: {known})")
    other = context.other_schemas[version_id]
    how = context.choice(parameters["how"], "how", list(JOIN_KINDS))
    on = parameters["on"]
    if isinstance(on, list):
        left_keys = right_keys = context.columns(on, "on")
    elif isinstance(on, Mapping) and set(on) == {"left", "right"}:
        left_keys = context.columns(on["left"], "on.left")
        right_keys = on["right"]
        if not isinstance(right_keys, list) or len(left_keys) != len(right_keys):
            raise context.error("'on.left' and 'on.right' must list as many columns")
    else:
        raise context.error("'on' must be a list of column names or {left: [...], right: [...]}")
    for key in right_keys:
        if not isinstance(key, str) or key not in other:
            columns = _list_columns(other)
            raise context.error(
                f"column {key!r} does not exist in version {version_id}; its columns are: {columns}"
            )

    merged_keys = set(left_keys) if isinstance(on, list) else set()
    output: list[list[str]] = []
    schema: Schema = {}
    for name, type_name in context.schema.items():
        output.append(["key" if name in merged_keys else "left", name, name])
        schema[name] = type_name
    for name, type_name in other.items():
        if name in merged_keys:
            continue
        output_name = _unique_name(name, list(schema), suffix="_right")
        output.append(["right", name, output_name])
        schema[output_name] = type_name
    normalized = {
        "type": "join",
        "version_id": version_id,
        "on": list(on) if isinstance(on, list) else {"left": left_keys, "right": right_keys},
        "how": how,
        "fitted": {"columns": output},
    }
    return normalized, schema


def _check_split(context: _Context, parameters: dict[str, Any]) -> tuple[dict[str, Any], Schema]:
    ratios = parameters["ratios"]
    if not isinstance(ratios, Mapping) or not ratios:
        raise context.error(
            "'ratios' must be an object of {split name: fraction}, like {train: 0.8, test: 0.2}"
        )
    for name, fraction in ratios.items():
        context.text(name, "ratios")
        if "\x00" in name:
            raise context.error("'ratios' names contain a NUL character")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction <= 1:
            raise context.error(f"the fraction for '{name}' must be a number above 0 and at most 1")
    total = sum(ratios.values())
    if abs(total - 1) > 1e-6:
        raise context.error(f"the ratios must add up to 1; they add up to {total:g}")
    seed = context.integer(parameters["seed"], "seed", minimum=-(2**63), maximum=2**63 - 1)
    stratify = None if parameters["stratify"] is None else context.column(parameters["stratify"], "stratify")
    column = context.new_name(parameters["column"], "column", list(context.schema))
    normalized = {
        "type": "split",
        "ratios": dict(ratios),
        "seed": seed,
        "stratify": stratify,
        "column": column,
    }
    return normalized, {**context.schema, column: "categorical"}


_Checker = Callable[[_Context, dict[str, Any]], tuple[dict[str, Any], Schema]]
_CHECKERS: dict[str, _Checker] = {
    "select": _check_select,
    "drop": _check_drop,
    "rename": _check_rename,
    "cast": _check_cast,
    "filter": _check_filter,
    "fill_missing": _check_fill_missing,
    "drop_duplicates": _check_drop_duplicates,
    "one_hot": _check_one_hot,
    "ordinal": _check_ordinal,
    "scale": _check_scale,
    "derive": _check_derive,
    "join": _check_join,
    "split": _check_split,
}
STEP_TYPES = tuple(_CHECKERS)

# step type: (required parameters, {optional parameter: default})
_PARAMETERS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "select": (("columns",), {}),
    "drop": (("columns",), {}),
    "rename": (("mapping",), {}),
    "cast": (("column", "to"), {}),
    "filter": (("expression",), {}),
    "fill_missing": (("strategy",), {"columns": None, "value": None}),
    "drop_duplicates": ((), {"columns": None}),
    "one_hot": (("column",), {"max_categories": 50, "prefix": None}),
    "ordinal": (("column",), {"order": None}),
    "scale": (("columns",), {"method": "standard"}),
    "derive": (("name", "expression"), {}),
    "join": (("version_id", "on"), {"how": "inner"}),
    "split": (("ratios",), {"seed": 0, "stratify": None, "column": "split"}),
}


def _is_value_map(fitted: Any, columns: list[str]) -> bool:
    values = fitted.get("values") if isinstance(fitted, Mapping) else None
    return (
        isinstance(values, Mapping) and set(values) == set(columns) and all(map(_is_scalar, values.values()))
    )


def _is_one_hot_fit(fitted: Any) -> bool:
    return isinstance(fitted, Mapping) and _is_scalar_list(fitted.get("categories"))


def _is_stats(fitted: Any, columns: list[str]) -> bool:
    stats = fitted.get("stats") if isinstance(fitted, Mapping) else None
    return (
        isinstance(stats, Mapping)
        and set(stats) == set(columns)
        and all(
            isinstance(pair, list) and len(pair) == 2 and all(map(_is_number, pair))
            for pair in stats.values()
        )
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(map(_is_scalar, value))


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _is_iso_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unique_name(name: str, taken: Sequence[str], *, suffix: str = "") -> str:
    lowered = {existing.lower() for existing in taken}
    candidate = name
    if candidate.lower() in lowered and suffix:
        candidate = name + suffix
    number = 2
    base = candidate
    while candidate.lower() in lowered:
        candidate = f"{base}_{number}"
        number += 1
    return candidate


def _list_columns(schema: Mapping[str, str]) -> str:
    names = list(schema)
    listed = ", ".join(names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        listed += f", ... ({len(names) - _MAX_LISTED_COLUMNS} more)"
    return listed


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ---------------------------------------------------------------------------------------------------
# SQL


def build_query(steps: Sequence[Mapping[str, Any]], *, source: str = "source") -> str:
    """Return one SELECT statement applying the (validated) `steps` to the relation `source`."""
    previous = quote_identifier(source)
    if not steps:
        return f"SELECT * FROM {previous}"  # noqa: S608 (quoted)
    parts = []
    for index, step in enumerate(steps):
        step_type = step.get("type") if isinstance(step, Mapping) else None
        renderer = _RENDERERS.get(step_type) if isinstance(step_type, str) else None
        if renderer is None:
            raise RecipeError(f"step {index + 1}: unknown step type {step_type!r}", index)
        try:
            body = renderer(step, previous)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise RecipeError(
                f"step {index + 1} ({step_type}): not a validated step ({error!r})", index
            ) from None
        name = quote_identifier(f"{RESERVED_PREFIX}step_{index + 1}")
        parts.append(f"{name} AS (\n  {body}\n)")
        previous = name
    return "WITH " + ",\n".join(parts) + f"\nSELECT * FROM {previous}"  # noqa: S608 (quoted)


def apply_recipe(
    con: duckdb.DuckDBPyConnection,
    steps: Sequence[Mapping[str, Any]],
    *,
    source: str = "source",
    upto: int | None = None,
) -> duckdb.DuckDBPyRelation:
    """Return the lazy relation of the first `upto` steps (all when None) of validated `steps`."""
    upto = len(steps) if upto is None else upto
    if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto <= len(steps):
        raise RecipeError(f"upto must be between 0 and {len(steps)}")
    try:
        return select_relation(con, build_query(steps[:upto], source=source))
    except duckdb.Error as error:
        # Name the first step DuckDB cannot bind, so the user knows where to look.
        for index in range(upto):
            try:
                select_relation(con, build_query(steps[: index + 1], source=source))
            except duckdb.Error:
                step_type = steps[index].get("type")
                raise RecipeError(f"step {index + 1} ({step_type}): {_first_line(error)}", index) from None
        raise RecipeError(_first_line(error)) from None


def _render_select(step: Mapping[str, Any], previous: str) -> str:
    return f"SELECT {_identifiers(step['columns'])} FROM {previous}"  # noqa: S608 (quoted)


def _render_drop(step: Mapping[str, Any], previous: str) -> str:
    return f"SELECT * EXCLUDE ({_identifiers(step['columns'])}) FROM {previous}"  # noqa: S608 (quoted)


def _render_rename(step: Mapping[str, Any], previous: str) -> str:
    pairs = ", ".join(
        f"{quote_identifier(old)} AS {quote_identifier(new)}" for old, new in step["mapping"].items()
    )
    return f"SELECT * RENAME ({pairs}) FROM {previous}"  # noqa: S608 (quoted)


def _render_cast(step: Mapping[str, Any], previous: str) -> str:
    column = quote_identifier(step["column"])
    duckdb_type, _ = CAST_TARGETS[step["to"]]
    if duckdb_type == "VARCHAR":
        converted = f"CAST({column} AS VARCHAR)"
    else:
        converted = f"TRY_CAST({column} AS {duckdb_type})"
    return _replace(previous, {step["column"]: converted})


def _render_filter(step: Mapping[str, Any], previous: str) -> str:
    condition = compile_expression(step["expression"], None)
    return f"SELECT * FROM {previous} WHERE {condition}"  # noqa: S608 (quoted)


def _render_fill_missing(step: Mapping[str, Any], previous: str) -> str:
    if step["strategy"] == "constant":
        values = dict.fromkeys(step["columns"], step["value"])
    else:
        values = step["fitted"]["values"]
    replacements = {}
    for column in step["columns"]:
        value = values[column]
        if value is not None:
            # The value has the column's type (validated), so a number means a numeric column.
            missing = _missing_as_null(column, "numeric" if _is_number(value) else "other")
            replacements[column] = f"coalesce({missing}, {quote_literal(value)})"
    return _replace(previous, replacements)


def _render_drop_duplicates(step: Mapping[str, Any], previous: str) -> str:
    row = quote_identifier(_ROW)
    numbered = f"(SELECT *, row_number() OVER () AS {row} FROM {previous})"  # noqa: S608 (quoted)
    if step["columns"] is None:
        # GROUP BY ALL groups on every column, NULLs equal, as pandas' drop_duplicates does.
        first_rows = f"(SELECT COLUMNS(* EXCLUDE ({row})), min({row}) AS {row} FROM {numbered} GROUP BY ALL)"  # noqa: S608
        return f"SELECT * EXCLUDE ({row}) FROM {first_rows} ORDER BY {row}"  # noqa: S608 (quoted)
    partition = _identifiers(step["columns"])
    return (
        f"SELECT * EXCLUDE ({row}) FROM {numbered} "  # noqa: S608 (quoted)
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {row}) = 1 ORDER BY {row}"
    )


def _render_one_hot(step: Mapping[str, Any], previous: str) -> str:
    column = quote_identifier(step["column"])
    fitted = step["fitted"]
    indicators = [
        f"CAST(coalesce({column} = {quote_literal(category)}, FALSE) AS INTEGER) AS {quote_identifier(name)}"
        for category, name in zip(fitted["categories"], fitted["columns"], strict=True)
    ]
    return f"SELECT {', '.join([f'* EXCLUDE ({column})', *indicators])} FROM {previous}"  # noqa: S608 (quoted)


def _render_ordinal(step: Mapping[str, Any], previous: str) -> str:
    column = quote_identifier(step["column"])
    order = step["order"] if step["order"] is not None else step["fitted"]["order"]
    if not order:
        return _replace(previous, {step["column"]: "CAST(NULL AS INTEGER)"})
    cases = " ".join(f"WHEN {quote_literal(value)} THEN {code}" for code, value in enumerate(order))
    return _replace(previous, {step["column"]: f"CASE {column} {cases} END"})


def _render_scale(step: Mapping[str, Any], previous: str) -> str:
    replacements = {}
    for column in step["columns"]:
        center, spread = step["fitted"]["stats"][column]
        if step["method"] == "minmax" and center is not None and spread is not None:
            spread = spread - center
        value = f"CAST({quote_identifier(column)} AS DOUBLE)"
        if center is None or not spread:
            # A constant column scales to 0, as scikit-learn's scalers do.
            replacements[column] = f"CASE WHEN {value} IS NULL THEN NULL ELSE CAST(0 AS DOUBLE) END"
        else:
            replacements[column] = (
                f"(({value} - {quote_literal(float(center))}) / {quote_literal(float(spread))})"
            )
    return _replace(previous, replacements)


def _render_derive(step: Mapping[str, Any], previous: str) -> str:
    expression = compile_expression(step["expression"], None)
    return f"SELECT *, {expression} AS {quote_identifier(step['name'])} FROM {previous}"  # noqa: S608 (quoted)


def _render_join(step: Mapping[str, Any], previous: str) -> str:
    version_id = step["version_id"]
    if not isinstance(version_id, int) or isinstance(version_id, bool):
        raise TypeError("version_id must be an integer")
    kind = JOIN_KINDS[step["how"]]
    on = step["on"]
    left_keys, right_keys = (on, on) if isinstance(on, list) else (on["left"], on["right"])
    if not left_keys or len(left_keys) != len(right_keys):
        raise ValueError("the join keys do not pair up")
    row = quote_identifier(_ROW)
    left, right = quote_identifier("l"), quote_identifier("r")
    sides = {"left": left, "right": right}
    items = []
    for side, name, output in step["fitted"]["columns"]:
        quoted = quote_identifier(name)
        if side == "key":
            value = {
                "INNER": f"{left}.{quoted}",
                "LEFT": f"{left}.{quoted}",
                "RIGHT": f"{right}.{quoted}",
                "FULL OUTER": f"coalesce({left}.{quoted}, {right}.{quoted})",
            }[kind]
        else:
            value = f"{sides[side]}.{quoted}"
        items.append(f"{value} AS {quote_identifier(output)}")
    condition = " AND ".join(
        f"{left}.{quote_identifier(left_key)} = {right}.{quote_identifier(right_key)}"
        for left_key, right_key in zip(left_keys, right_keys, strict=True)
    )
    other = quote_identifier(f"version_{version_id}")
    return (
        f"SELECT {', '.join(items)} "  # noqa: S608 (quoted)
        f"FROM (SELECT *, row_number() OVER () AS {row} FROM {previous}) AS {left} "
        f"{kind} JOIN (SELECT *, row_number() OVER () AS {row} FROM {other}) AS {right} ON {condition} "
        f"ORDER BY {left}.{row} NULLS LAST, {right}.{row} NULLS LAST"
    )


def _render_split(step: Mapping[str, Any], previous: str) -> str:
    row, position = quote_identifier(_ROW), quote_identifier(_POSITION)
    seed = step["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError("seed must be an integer")
    partition = "" if step["stratify"] is None else f"PARTITION BY {quote_identifier(step['stratify'])} "
    # Rank the rows of each class in a seeded pseudo-random order; a row's position (rank - 0.5) / count
    # in [0, 1) picks its split, so every class is split in the given proportions.
    ordered = f"ORDER BY hash({row}, CAST({seed} AS BIGINT)), {row}"
    numbered = f"(SELECT *, row_number() OVER () AS {row} FROM {previous})"  # noqa: S608 (quoted)
    positioned = (
        f"(SELECT *, (row_number() OVER ({partition}{ordered}) - 0.5) / count(*) OVER ({partition.strip()}) "  # noqa: S608
        f"AS {position} FROM {numbered})"
    )
    names = list(step["ratios"])
    cases = []
    cumulative = 0.0
    for name in names[:-1]:
        cumulative += float(step["ratios"][name])
        cases.append(f"WHEN {position} < {quote_literal(cumulative)} THEN {quote_literal(name)}")
    label = (
        f"CASE {' '.join(cases)} ELSE {quote_literal(names[-1])} END" if cases else quote_literal(names[-1])
    )
    return (
        f"SELECT * EXCLUDE ({row}, {position}), {label} AS {quote_identifier(step['column'])} "  # noqa: S608
        f"FROM {positioned} ORDER BY {row}"
    )


_RENDERERS: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "select": _render_select,
    "drop": _render_drop,
    "rename": _render_rename,
    "cast": _render_cast,
    "filter": _render_filter,
    "fill_missing": _render_fill_missing,
    "drop_duplicates": _render_drop_duplicates,
    "one_hot": _render_one_hot,
    "ordinal": _render_ordinal,
    "scale": _render_scale,
    "derive": _render_derive,
    "join": _render_join,
    "split": _render_split,
}


def _identifiers(names: Sequence[str]) -> str:
    if isinstance(names, str) or not names:
        raise ValueError("expected a non-empty list of column names")
    return ", ".join(quote_identifier(name) for name in names)


def _replace(previous: str, replacements: Mapping[str, str]) -> str:
    if not replacements:
        return f"SELECT * FROM {previous}"  # noqa: S608 (quoted)
    items = ", ".join(f"{sql} AS {quote_identifier(column)}" for column, sql in replacements.items())
    return f"SELECT * REPLACE ({items}) FROM {previous}"  # noqa: S608 (quoted)


def _missing_as_null(column: str, type_name: str) -> str:
    # A float NaN is missing too (pandas may write one for a gap). Not `nullif(x, NaN)`: DuckDB's
    # optimizer folds that to x when the Parquet statistics (which leave NaN out) exclude NaN.
    quoted = quote_identifier(column)
    return f"CASE WHEN isnan({quoted}) THEN NULL ELSE {quoted} END" if type_name == "numeric" else quoted
