"""Server-side preview of a relation: one page of rows with sorting and filtering, and the filtered count.

The count and the page are two queries: DuckDB answers an unfiltered count from the Parquet footer
and prunes row groups by the filters, and a sorted page is a top-N that only fetches the rows shown.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from datasets.duck import json_value, quote_identifier, quote_literal, schema_type, select_relation
from datasets.expressions import ExpressionError, compile_expression

MAX_LIMIT = 1000
MAX_SORT_KEYS = 10
MAX_FILTERS = 50
COMPARISONS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
FILTER_OPERATORS = (*COMPARISONS, "contains", "is_null", "not_null")


class QueryError(ValueError):
    """The preview request is invalid; the message names the parameter or column at fault."""


def preview(
    con: duckdb.DuckDBPyConnection,
    relation: str = "source",
    *,
    offset: int = 0,
    limit: int = 50,
    sort: Sequence[Sequence[str]] = (),
    filters: Sequence[Mapping[str, Any]] = (),
    expression: str | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Return {"columns": [name, ...], "rows": [[value, ...], ...], "total": rows matching the filters}.

    sort: [(column, "asc" | "desc"), ...], NULLs last. filters: [{"column", "op", "value"}, ...], all
    of which must hold, with op one of FILTER_OPERATORS ("contains" ignores case; is_null and
    not_null take no value). expression: a filter in the expression language (expressions.py).
    Values are JSON-safe: dates and times as ISO text, NaN and infinities as None, bytes as None.
    total: the count of rows matching these filters, when the caller already knows it (the count
    query is then skipped).
    """
    _check_integer(offset, "offset", maximum=None)
    _check_integer(limit, "limit", maximum=MAX_LIMIT)
    source = quote_identifier(relation)
    try:
        described = select_relation(con, f"SELECT * FROM {source} LIMIT 0")  # noqa: S608 (quoted)
    except duckdb.Error as error:
        raise QueryError(f"cannot read {relation!r}: {_first_line(error)}") from None
    types = {name: str(type_) for name, type_ in zip(described.columns, described.types, strict=True)}

    conditions = [_filter_condition(item, types) for item in _checked_list(filters, "filters", MAX_FILTERS)]
    if expression is not None and not isinstance(expression, str):
        raise QueryError("expression must be text")
    if expression is not None and expression.strip():
        try:
            conditions.append(compile_expression(expression, list(types)))
        except ExpressionError as error:
            raise QueryError(f"expression: {error}") from None
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order_by = _order_by(sort, types)

    if total is not None:
        _check_integer(total, "total", maximum=None)
    try:
        if total is None:
            (total,) = select_relation(con, f"SELECT count(*) FROM {source}{where}").fetchone()  # noqa: S608
        rows = select_relation(
            con,
            f"SELECT * FROM {source}{where}{order_by} LIMIT {limit} OFFSET {offset}",  # noqa: S608 (quoted)
        ).fetchall()
    except duckdb.Error as error:
        raise QueryError(f"the query failed: {_first_line(error)}") from None
    return {
        "columns": list(types),
        "rows": [[json_value(value) for value in row] for row in rows],
        "total": int(total),
    }


def _check_integer(value: Any, name: str, *, maximum: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise QueryError(f"{name} must be a whole number of 0 or more")
    if maximum is not None and value > maximum:
        raise QueryError(f"{name} must be at most {maximum}")


def _checked_list(value: Any, name: str, maximum: int) -> list:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise QueryError(f"{name} must be a list")
    if len(value) > maximum:
        raise QueryError(f"{name} may have at most {maximum} entries")
    return list(value)


def _column(name: Any, types: Mapping[str, str], where: str) -> str:
    if not isinstance(name, str) or name not in types:
        raise QueryError(f"{where}: unknown column {name!r}; columns are: {', '.join(types)}")
    return quote_identifier(name)


def _order_by(sort: Any, types: Mapping[str, str]) -> str:
    keys = []
    seen = set()
    for item in _checked_list(sort, "sort", MAX_SORT_KEYS):
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            raise QueryError("sort: each entry must be [column, 'asc' or 'desc']")
        name, direction = item
        column = _column(name, types, "sort")
        if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
            raise QueryError(f"sort: the direction for {name!r} must be 'asc' or 'desc', not {direction!r}")
        if name in seen:
            raise QueryError(f"sort: column {name!r} is listed twice")
        seen.add(name)
        keys.append(f"{column} {direction.upper()} NULLS LAST")
    return f" ORDER BY {', '.join(keys)}" if keys else ""


def _filter_condition(item: Any, types: Mapping[str, str]) -> str:
    if not isinstance(item, Mapping):
        raise QueryError("filters: each filter must be an object with column, op and value")
    unknown = set(item) - {"column", "op", "value"}
    if unknown:
        raise QueryError(f"filters: unknown key {sorted(unknown)[0]!r}; keys are column, op, value")
    name = item.get("column")
    column = _column(name, types, "filters")
    operator = item.get("op")
    if operator not in FILTER_OPERATORS:
        raise QueryError(
            f"filters: op for {name!r} must be one of {', '.join(FILTER_OPERATORS)}, not {operator!r}"
        )
    value = item.get("value")
    if operator in ("is_null", "not_null"):
        if value is not None:
            raise QueryError(f"filters: {operator} on {name!r} takes no value")
        return f"({column} IS NULL)" if operator == "is_null" else f"({column} IS NOT NULL)"
    if operator == "contains":
        if not isinstance(value, str) or not value:
            raise QueryError(f"filters: contains on {name!r} needs non-empty text")
        return f"contains(lower(CAST({column} AS VARCHAR)), lower({_literal(value, name)}))"
    literal = _literal(_coerced(value, types[name], name), name)
    return f"({column} {COMPARISONS[operator]} {literal})"


def _coerced(value: Any, duckdb_type: str, name: str) -> Any:
    """Check a comparison value against the column's type; a grid sends numbers and dates as text too."""
    if value is None:
        raise QueryError(f"filters: comparing {name!r} needs a value (use is_null for missing values)")
    if isinstance(value, float) and not math.isfinite(value):
        raise QueryError(f"filters: the value for {name!r} must be a finite number")
    if not isinstance(value, str | int | float | bool):
        raise QueryError(f"filters: the value for {name!r} must be text, a number or true/false")
    kind = schema_type(duckdb_type)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise QueryError(f"filters: {name!r} holds true/false values; got {value!r}")
    if kind == "numeric":
        if isinstance(value, bool):
            raise QueryError(f"filters: {name!r} holds numbers; got {value!r}")
        if isinstance(value, int | float):
            return value
        for parse in (int, float):
            try:
                number = parse(value.strip())
            except ValueError:
                continue
            if isinstance(number, float) and not math.isfinite(number):
                raise QueryError(f"filters: the value for {name!r} must be a finite number")
            return number
        raise QueryError(f"filters: {name!r} holds numbers; {value!r} is not a number")
    if kind == "datetime":
        if not isinstance(value, str):
            raise QueryError(f"filters: {name!r} holds dates; give an ISO date such as 2024-05-31")
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryError(f"filters: {name!r} holds dates; {value!r} is not an ISO date or time") from None
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _literal(value: Any, name: str) -> str:
    try:
        return quote_literal(value)
    except (TypeError, ValueError) as error:
        raise QueryError(f"filters: the value for {name!r}: {error}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
