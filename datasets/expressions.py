"""A small, safe expression language for row filters and derived columns, compiled to DuckDB SQL.

The text is Python expression syntax, parsed with `ast` and walked against an allowlist: anything
not listed below is refused with a message naming it. The output never contains user text except
as quoted identifiers and quoted literals, so no input can reach DuckDB as SQL.

- literals: numbers, strings, True, False, None
- columns: bare names (`age`) or `col("name with spaces")`
- arithmetic: + - * / // % ** and unary minus; `/` is true division, `//` floors, `%` is SQL's
  (the sign follows the dividend)
- comparisons (chains allowed): == != < <= > >=, `x in [..]`, `x not in (..)`, `x is None`,
  `x is not None` (`x == None` means `x is None`)
- logic: and, or, not
- functions: see FUNCTIONS (a domain error such as sqrt(-1) or log(0) gives NULL, not a failure)
"""

import ast
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from datasets.duck import quote_identifier, quote_literal

MAX_LENGTH = 2000
MAX_DEPTH = 64
# Chained comparisons repeat their middle operand; this caps what nesting them can blow up to.
MAX_SQL_LENGTH = 50_000
_MAX_LISTED_COLUMNS = 30


class ExpressionError(ValueError):
    """The expression is not valid; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class CompiledExpression:
    sql: str
    type: str | None  # a Studio column type ("numeric", "boolean", ...); None when unknown
    columns: frozenset[str]


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int | None
    render: Callable[[list[str]], str]
    result_type: Callable[[list[str | None]], str | None]


def _call(sql_name: str) -> Callable[[list[str]], str]:
    return lambda args: f"{sql_name}({', '.join(args)})"


def _fixed(type_name: str) -> Callable[[list[str | None]], str | None]:
    return lambda types: type_name


def _first_known(types: list[str | None]) -> str | None:
    return next((type_name for type_name in types if type_name is not None), None)


def _text_like(types: list[str | None]) -> str:
    # lower(city) is still a categorical column; lower(review) still text.
    return "categorical" if types and types[0] == "categorical" else "text"


_NUMERIC = _fixed("numeric")
_BOOLEAN = _fixed("boolean")

FUNCTIONS: dict[str, _Function] = {
    "abs": _Function(1, 1, _call("abs"), _NUMERIC),
    "round": _Function(1, 2, _call("round"), _NUMERIC),
    "floor": _Function(1, 1, _call("floor"), _NUMERIC),
    "ceil": _Function(1, 1, _call("ceil"), _NUMERIC),
    # TRY turns DuckDB's domain errors (sqrt of a negative, log of zero) into NULL for that row.
    "sqrt": _Function(1, 1, lambda args: f"TRY(sqrt({args[0]}))", _NUMERIC),
    "log": _Function(1, 1, lambda args: f"TRY(ln({args[0]}))", _NUMERIC),
    "exp": _Function(1, 1, _call("exp"), _NUMERIC),
    "lower": _Function(1, 1, _call("lower"), _text_like),
    "upper": _Function(1, 1, _call("upper"), _text_like),
    "strip": _Function(1, 1, _call("trim"), _text_like),
    "trim": _Function(1, 1, _call("trim"), _text_like),
    "length": _Function(1, 1, _call("length"), _NUMERIC),
    "len": _Function(1, 1, _call("length"), _NUMERIC),
    "contains": _Function(2, 2, _call("contains"), _BOOLEAN),
    "startswith": _Function(2, 2, _call("starts_with"), _BOOLEAN),
    "endswith": _Function(2, 2, _call("ends_with"), _BOOLEAN),
    "is_null": _Function(1, 1, lambda args: f"({args[0]} IS NULL)", _BOOLEAN),
    "not_null": _Function(1, 1, lambda args: f"({args[0]} IS NOT NULL)", _BOOLEAN),
    "coalesce": _Function(2, None, _call("coalesce"), _first_known),
    "if_else": _Function(
        3,
        3,
        lambda args: f"(CASE WHEN {args[0]} THEN {args[1]} ELSE {args[2]} END)",
        lambda types: _first_known(types[1:]),
    ),
    "year": _Function(1, 1, _call("year"), _NUMERIC),
    "month": _Function(1, 1, _call("month"), _NUMERIC),
    "day": _Function(1, 1, _call("day"), _NUMERIC),
    "to_number": _Function(1, 1, lambda args: f"TRY_CAST({args[0]} AS DOUBLE)", _NUMERIC),
    "to_text": _Function(1, 1, lambda args: f"CAST({args[0]} AS VARCHAR)", _fixed("text")),
    "to_datetime": _Function(1, 1, lambda args: f"TRY_CAST({args[0]} AS TIMESTAMP)", _fixed("datetime")),
    "min": _Function(2, None, _call("least"), _first_known),
    "max": _Function(2, None, _call("greatest"), _first_known),
    "concat": _Function(2, None, _call("concat"), _fixed("text")),
}
_COLUMN_FUNCTION = "col"

_BINARY_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}
_COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Eq: "=",
    ast.NotEq: "<>",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_OPERATOR_SYMBOLS: dict[type, str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}
_REFUSED_NODES: dict[type, str] = {
    ast.Subscript: "indexing and slicing ([...] after a value) are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "starred values (*x) are not allowed",
    ast.Dict: "dictionaries are not allowed",
    ast.Set: "sets are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


def compile_expression(text: str, columns: Collection[str] | None) -> str:
    """Compile `text` to a DuckDB SQL expression over `columns` (None: any name is taken as a column)."""
    return analyze_expression(text, columns).sql


def expression_columns(text: str) -> set[str]:
    """Return the column names `text` refers to (the expression is fully checked on the way)."""
    return set(analyze_expression(text, None).columns)


def analyze_expression(text: str, columns: Mapping[str, str] | Collection[str] | None) -> CompiledExpression:
    """Compile `text` and infer its Studio type; pass a {column: type} mapping for column types."""
    tree = _parse(text)
    compiler = _Compiler(columns)
    sql, type_name = compiler.compile(tree.body)
    return CompiledExpression(sql=sql, type=type_name, columns=frozenset(compiler.used_columns))


def _parse(text: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if "\x00" in text:
        raise ExpressionError("the expression contains a NUL character")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise ExpressionError(f"syntax error{where}: {error.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"the expression is nested too deeply (limit {MAX_DEPTH} levels)") from None
    _check_depth(tree)
    return tree


def _check_depth(tree: ast.AST) -> None:
    # Iterative, so that the check itself cannot hit Python's recursion limit.
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested too deeply (limit {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Compiler:
    def __init__(self, columns: Mapping[str, str] | Collection[str] | None):
        self.columns = columns
        self.column_types: Mapping[str, str] = columns if isinstance(columns, Mapping) else {}
        self.used_columns: set[str] = set()

    def compile(self, node: ast.AST) -> tuple[str, str | None]:
        sql, type_name = self._compile(node)
        if len(sql) > MAX_SQL_LENGTH:
            raise ExpressionError("the expression is too complex")
        return sql, type_name

    def _compile(self, node: ast.AST) -> tuple[str, str | None]:
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BoolOp):
            keyword = " AND " if isinstance(node.op, ast.And) else " OR "
            parts = [self.compile(value)[0] for value in node.values]
            return "(" + keyword.join(parts) + ")", "boolean"
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.IfExp):
            raise ExpressionError("'x if condition else y' is not allowed; use if_else(condition, x, y)")
        if isinstance(node, ast.List | ast.Tuple):
            raise ExpressionError("a list is only allowed after 'in' or 'not in', as in: x in [1, 2]")
        if isinstance(node, ast.Attribute):
            raise ExpressionError(f"attribute access ('.{node.attr}') is not allowed")
        raise ExpressionError(_REFUSED_NODES.get(type(node), f"'{type(node).__name__}' is not allowed"))

    def _constant(self, value: object) -> tuple[str, str | None]:
        if value is None:
            return "NULL", None
        if isinstance(value, bool):
            return quote_literal(value), "boolean"
        if isinstance(value, int):
            if abs(value) >= 2**63:
                raise ExpressionError(f"the number {value} is too large")
            return quote_literal(value), "numeric"
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ExpressionError("the number is too large")
            return quote_literal(value), "numeric"
        if isinstance(value, str):
            return quote_literal(value), "text"
        if value is Ellipsis:
            raise ExpressionError("'...' is not allowed in an expression")
        raise ExpressionError(f"{type(value).__name__} values are not allowed in an expression")

    def _name(self, name: str) -> tuple[str, str | None]:
        if name.startswith("__"):
            raise ExpressionError(f"the name '{name}' is not allowed; use col(\"{name}\") for such a column")
        return self._column(name)

    def _column(self, name: str) -> tuple[str, str | None]:
        if self.columns is not None and name not in self.columns:
            raise ExpressionError(f"unknown column '{name}' (columns: {_list_columns(self.columns)})")
        self.used_columns.add(name)
        try:
            return quote_identifier(name), self.column_types.get(name)
        except ValueError as error:
            raise ExpressionError(str(error)) from None

    def _binary(self, node: ast.BinOp) -> tuple[str, str | None]:
        left, _ = self.compile(node.left)
        right, _ = self.compile(node.right)
        if isinstance(node.op, ast.FloorDiv):
            return f"floor({left} / {right})", "numeric"
        if isinstance(node.op, ast.Pow):
            return f"power({left}, {right})", "numeric"
        operator = _BINARY_OPERATORS.get(type(node.op))
        if operator is None:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise ExpressionError(f"the operator '{symbol}' is not allowed; use and, or, not for logic")
        return f"({left} {operator} {right})", "numeric"

    def _unary(self, node: ast.UnaryOp) -> tuple[str, str | None]:
        operand, type_name = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return f"(NOT {operand})", "boolean"
        if isinstance(node.op, ast.USub):
            return f"(- {operand})", "numeric"
        if isinstance(node.op, ast.UAdd):
            return operand, type_name
        raise ExpressionError("the operator '~' is not allowed; use not")

    def _compare(self, node: ast.Compare) -> tuple[str, str | None]:
        parts = []
        left_node = node.left
        for operator, right_node in zip(node.ops, node.comparators, strict=True):
            parts.append(self._comparison(left_node, operator, right_node))
            left_node = right_node
        if len(parts) == 1:
            return parts[0], "boolean"
        return "(" + " AND ".join(parts) + ")", "boolean"

    def _comparison(self, left_node: ast.expr, operator: ast.cmpop, right_node: ast.expr) -> str:
        left, _ = self.compile(left_node)
        if isinstance(operator, ast.In | ast.NotIn):
            if not isinstance(right_node, ast.List | ast.Tuple):
                raise ExpressionError(
                    "'in' needs a list of values, as in: x in [1, 2]; use contains(text, part) for text"
                )
            if not right_node.elts:
                return "FALSE" if isinstance(operator, ast.In) else "TRUE"
            values = ", ".join(self.compile(element)[0] for element in right_node.elts)
            keyword = "IN" if isinstance(operator, ast.In) else "NOT IN"
            return f"({left} {keyword} ({values}))"
        is_none = isinstance(right_node, ast.Constant) and right_node.value is None
        if isinstance(operator, ast.Is | ast.IsNot):
            if not is_none:
                raise ExpressionError("'is' is only allowed as 'is None' or 'is not None'; use == to compare")
            return f"({left} IS NULL)" if isinstance(operator, ast.Is) else f"({left} IS NOT NULL)"
        if is_none and isinstance(operator, ast.Eq | ast.NotEq):
            return f"({left} IS NULL)" if isinstance(operator, ast.Eq) else f"({left} IS NOT NULL)"
        right, _ = self.compile(right_node)
        return f"({left} {_COMPARISONS[type(operator)]} {right})"

    def _call(self, node: ast.Call) -> tuple[str, str | None]:
        if isinstance(node.func, ast.Attribute):
            raise ExpressionError(f"attribute access ('.{node.func.attr}') is not allowed")
        if not isinstance(node.func, ast.Name):
            raise ExpressionError("only the allowed functions can be called, by name, as in: round(x, 2)")
        name = node.func.id
        if name != _COLUMN_FUNCTION and name not in FUNCTIONS:
            allowed = ", ".join(sorted([*FUNCTIONS, _COLUMN_FUNCTION]))
            raise ExpressionError(f"function '{name}' is not allowed; allowed: {allowed}")
        if node.keywords:
            raise ExpressionError(f"keyword arguments are not allowed (in the call to {name}())")
        if any(isinstance(argument, ast.Starred) for argument in node.args):
            raise ExpressionError(f"starred arguments are not allowed (in the call to {name}())")
        if name == _COLUMN_FUNCTION:
            return self._column_call(node)
        function = FUNCTIONS[name]
        count = len(node.args)
        if count < function.min_args or (function.max_args is not None and count > function.max_args):
            raise ExpressionError(f"{name}() takes {_arity(function)}, got {count}")
        compiled = [self.compile(argument) for argument in node.args]
        sql = function.render([argument_sql for argument_sql, _ in compiled])
        return sql, function.result_type([argument_type for _, argument_type in compiled])

    def _column_call(self, node: ast.Call) -> tuple[str, str | None]:
        if len(node.args) != 1 or not (
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            raise ExpressionError('col() takes one column name in quotes, as in: col("unit price")')
        return self._column(node.args[0].value)


def _arity(function: _Function) -> str:
    if function.max_args is None:
        return f"at least {function.min_args} arguments"
    if function.min_args == function.max_args:
        return f"{function.min_args} argument" + ("" if function.min_args == 1 else "s")
    return f"{function.min_args} to {function.max_args} arguments"


def _list_columns(columns: Collection[str]) -> str:
    names = list(columns)
    listed = ", ".join(names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        listed += f", ... ({len(names) - _MAX_LISTED_COLUMNS} more)"
    return listed or "none"
