"""The runs filter and order language: MLflow's search syntax, tokenized and parsed into ORM queries.

    filter:   metrics.val_accuracy > 0.9 and params.lr = '0.01' and tags.team = 'a' and status = 'finished'
    order_by: metrics.val_accuracy desc, params.lr, created_at

Beyond MLflow: OR, NOT and parentheses; `params.x < 0.1` compares numerically when the literal is a
number (params are also kept as floats where they read as one); IN (...), LIKE / ILIKE and IS [NOT]
NULL. Keys with other characters are quoted: metrics.`val loss` or metrics."val loss".

Nothing is evaluated: a small tokenizer and a recursive-descent parser build Q objects whose values
travel as query parameters. Every error names the offending token and its position.
Each clause on a metric, param or tag is a subquery on an indexed table (LatestMetric, RunParam,
RunTag), so it costs an index range scan however many runs the project holds.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, FilteredRelation, Lookup, Q, QuerySet

from studio.errors import ApplicationError
from training.models import VALUE_PREFIX_CHARS, LatestMetric, RunParam, RunStatus, RunTag

MAX_FILTER_CHARS = 4000
MAX_DEPTH = 20
MAX_CLAUSES = 100
MAX_ORDER_TERMS = 5

ENTITIES = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

# name → (ORM field, type). MLflow's names (run_id, run_name, start_time, end_time) are aliases.
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "id": ("id", "int"),
    "run_id": ("id", "int"),
    "name": ("name", "string"),
    "run_name": ("name", "string"),
    "status": ("status", "status"),
    "experiment_id": ("experiment_id", "int"),
    "experiment": ("experiment__name", "string"),
    "dataset_version_id": ("dataset_version_id", "int"),
    "parent_id": ("parent_id", "int"),
    "source": ("source", "string"),
    "trainer": ("trainer", "string"),
    "device": ("device", "string"),
    "worker_host": ("worker_host", "string"),
    "created_by": ("created_by__username", "string"),
    "created_at": ("created_at", "datetime"),
    "started_at": ("started_at", "datetime"),
    "start_time": ("started_at", "datetime"),
    "ended_at": ("ended_at", "datetime"),
    "end_time": ("ended_at", "datetime"),
}
NULLABLE_ATTRIBUTES = {"dataset_version_id", "parent_id", "started_at", "start_time", "ended_at", "end_time"}

KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "IS", "NULL", "ASC", "DESC"}
COMPARISONS = {
    "=": "exact",
    "==": "exact",
    "!=": "ne",
    "<>": "ne",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-./:]+")


class SearchError(ApplicationError):
    def __init__(self, message: str, *, field: str = "filter", position: int | None = None):
        extra = {"field": field}
        if position is not None:
            extra["position"] = position
        super().__init__(
            f"{field}: {message}", code="bad_filter" if field == "filter" else "bad_order_by", extra=extra
        )


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, op, keyword, (, ), ",", end
    text: str
    value: Any
    position: int

    def describe(self) -> str:
        return "the end" if self.kind == "end" else f"{self.text!r} at position {self.position}"


# --- tokenizer -----------------------------------------------------------------------------------


def tokenize(text: str, *, field: str = "filter") -> list[Token]:
    if len(text) > MAX_FILTER_CHARS:
        raise SearchError(f"at most {MAX_FILTER_CHARS} characters.", field=field)
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        character = text[position]
        if character.isspace():
            position += 1
            continue
        start = position
        if character in "(),":
            tokens.append(Token(character, character, character, start))
            position += 1
        elif text.startswith(("<=", ">=", "!=", "<>", "=="), position):
            tokens.append(Token("op", text[position : position + 2], text[position : position + 2], start))
            position += 2
        elif character in "=<>":
            tokens.append(Token("op", character, character, start))
            position += 1
        elif character in "'\"":
            value, position = _quoted(text, position, field=field)
            tokens.append(Token("string", text[start:position], value, start))
        elif (number := _NUMBER.match(text, position)) and (
            character not in "+-" or number.end() > position + 1
        ):
            literal = number.group()
            value = float(literal) if any(c in literal for c in ".eE") else int(literal)
            tokens.append(Token("number", literal, value, start))
            position = number.end()
        elif word := _WORD.match(text, position):
            name = word.group()
            position = word.end()
            if name.upper() in KEYWORDS:
                tokens.append(Token("keyword", name, name.upper(), start))
            elif position < len(text) and text[position] == ".":
                entity = ENTITIES.get(name.lower())
                if entity is None:
                    raise SearchError(
                        f"unknown prefix {name!r} at position {start}; use metrics., params., tags. "
                        "or attributes.",
                        field=field,
                        position=start,
                    )
                key, position = _key(text, position + 1, field=field)
                if entity == "attribute":
                    _attribute(key, start, field)
                tokens.append(Token("ident", text[start:position], (entity, key), start))
            else:
                _attribute(name, start, field)
                tokens.append(Token("ident", name, ("attribute", name.lower()), start))
        else:
            raise SearchError(
                f"unexpected character {character!r} at position {start}.", field=field, position=start
            )
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _quoted(text: str, position: int, *, field: str) -> tuple[str, int]:
    """Read a quoted string ('it''s' or 'it\\'s'); return its value and the position after it."""
    quote, start, position = text[position], position, position + 1
    out = []
    while position < len(text):
        character = text[position]
        if character == "\\" and position + 1 < len(text):
            out.append(text[position + 1])
            position += 2
        elif character == quote:
            if text.startswith(quote * 2, position):
                out.append(quote)
                position += 2
            else:
                return "".join(out), position + 1
        else:
            out.append(character)
            position += 1
    raise SearchError(f"the string starting at position {start} is not closed.", field=field, position=start)


def _key(text: str, position: int, *, field: str) -> tuple[str, int]:
    if position < len(text) and text[position] in '`"':
        quote, start = text[position], position
        end = text.find(quote, position + 1)
        if end == -1:
            raise SearchError(
                f"the key quoted at position {start} is not closed.", field=field, position=start
            )
        key = text[position + 1 : end]
        if not key:
            raise SearchError(f"empty key at position {start}.", field=field, position=start)
        return key, end + 1
    match = _BARE_KEY.match(text, position)
    if match is None:
        raise SearchError(
            f"expected a key after the '.' at position {position - 1}.", field=field, position=position
        )
    return match.group(), match.end()


def _attribute(name: str, position: int, field: str) -> None:
    if name.lower() not in ATTRIBUTES:
        raise SearchError(
            f"unknown attribute {name!r} at position {position}; use metrics.<key>, params.<key>, "
            f"tags.<key> or one of: {', '.join(sorted(ATTRIBUTES))}.",
            field=field,
            position=position,
        )


# --- parser --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    entity: str
    key: str
    operator: str  # exact ne lt lte gt gte in like ilike isnull
    value: Any  # a literal; a tuple for IN; a bool (is null) for isnull
    negated: bool
    token: Token


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens, self.index, self.clauses = tokens, 0, 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        return self.current.kind == "keyword" and self.current.value in words

    def fail(self, expected: str) -> SearchError:
        return SearchError(
            f"expected {expected}, found {self.current.describe()}.", position=self.current.position
        )

    def parse(self) -> Q:
        if self.current.kind == "end":
            return Q()
        query = self.parse_or(0)
        if self.current.kind != "end":
            raise self.fail("AND, OR or the end of the filter")
        return query

    def parse_or(self, depth: int) -> Q:
        query = self.parse_and(depth)
        while self.is_keyword("OR"):
            self.take()
            query = query | self.parse_and(depth)
        return query

    def parse_and(self, depth: int) -> Q:
        query = self.parse_unary(depth)
        while self.is_keyword("AND"):
            self.take()
            query = query & self.parse_unary(depth)
        return query

    def parse_unary(self, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise SearchError(f"nested deeper than {MAX_DEPTH} levels.", position=self.current.position)
        if self.is_keyword("NOT"):
            self.take()
            return ~self.parse_unary(depth + 1)
        if self.current.kind == "(":
            self.take()
            query = self.parse_or(depth + 1)
            if self.current.kind != ")":
                raise self.fail("')'")
            self.take()
            return query
        return compile_comparison(self.parse_comparison())

    def parse_comparison(self) -> Comparison:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise SearchError(f"at most {MAX_CLAUSES} comparisons.", position=self.current.position)
        if self.current.kind != "ident":
            raise self.fail("a name such as metrics.accuracy, params.lr, tags.team or status")
        ident = self.take()
        entity, key = ident.value
        if self.is_keyword("IS"):
            self.take()
            negated = False
            if self.is_keyword("NOT"):
                self.take()
                negated = True
            if not self.is_keyword("NULL"):
                raise self.fail("NULL")
            self.take()
            return Comparison(entity, key, "isnull", True, negated, ident)
        negated = False
        if self.is_keyword("NOT"):
            self.take()
            negated = True
            if not self.is_keyword("IN", "LIKE", "ILIKE"):
                raise self.fail("IN, LIKE or ILIKE after NOT")
        if self.is_keyword("IN"):
            self.take()
            if self.current.kind != "(":
                raise self.fail("'(' after IN")
            self.take()
            values = [self.literal()]
            while self.current.kind == ",":
                self.take()
                values.append(self.literal())
            if self.current.kind != ")":
                raise self.fail("',' or ')' in the IN list")
            self.take()
            return Comparison(entity, key, "in", tuple(values), negated, ident)
        if self.is_keyword("LIKE", "ILIKE"):
            operator = self.take().value.lower()
            if self.current.kind != "string":
                raise self.fail(f"a quoted pattern after {operator.upper()}")
            return Comparison(entity, key, operator, self.take(), negated, ident)
        if self.current.kind != "op":
            raise self.fail(f"a comparison (=, !=, <, <=, >, >=, IN, LIKE, IS NULL) after {ident.text!r}")
        operator = COMPARISONS[self.take().text]
        return Comparison(entity, key, operator, self.literal(), False, ident)

    def literal(self) -> Token:
        if self.current.kind not in ("string", "number"):
            raise self.fail("a value (a number or a quoted string)")
        return self.take()


def parse_filter(text: str | None) -> Q:
    """Compile a filter expression into a Q on Run; raise SearchError naming the bad token."""
    if not text or not text.strip():
        return Q()
    return _Parser(tokenize(text)).parse()


# --- compiling -----------------------------------------------------------------------------------


class _Pattern(Lookup):
    """`lhs LIKE pattern` with `%`, `_` and backslash escapes meaning the same on both databases.

    SQLite's LIKE ignores ASCII case, so case-sensitive LIKE becomes GLOB there.
    """

    lookup_name = "studio_pattern"
    prepare_rhs = False
    case_sensitive = True

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        pattern = self.rhs
        if connection.vendor == "sqlite":
            if self.case_sensitive:
                return f"{lhs} GLOB %s", [*lhs_params, _like_to_glob(pattern)]
            return f"{lhs} LIKE %s ESCAPE '\\'", [*lhs_params, pattern]
        operator = "LIKE" if self.case_sensitive else "ILIKE"
        return f"{lhs} {operator} %s ESCAPE '\\'", [*lhs_params, pattern]


class _CaseInsensitivePattern(_Pattern):
    lookup_name = "studio_ipattern"
    case_sensitive = False


def _like_to_glob(pattern: str) -> str:
    out, index = [], 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            literal = pattern[index + 1]
            out.append(f"[{literal}]" if literal in "*?[" else literal)
            index += 2
            continue
        out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(character, character))
        index += 1
    return "".join(out)


def _pattern(field: str, token: Token, case_sensitive: bool) -> Q:
    lookup = _Pattern if case_sensitive else _CaseInsensitivePattern
    return Q(lookup(F(field), token.value))


def _lookup(field: str, operator: str, value: Any) -> Q:
    if operator == "ne":
        return ~Q(**{field: value})
    return Q(**{f"{field}__{operator}": value})


def _number(token: Token, comparison: Comparison, *, integer: bool = False) -> float | int:
    if token.kind != "number" or (integer and not isinstance(token.value, int)):
        kind = "an integer" if integer else "a number"
        raise SearchError(
            f"{comparison.token.text} compares with {kind}, not {token.describe()}.", position=token.position
        )
    return token.value


def _text(token: Token) -> str:
    return token.value if token.kind == "string" else token.text


def compile_comparison(comparison: Comparison) -> Q:
    compile_ = {"metric": _metric, "param": _param, "tag": _tag, "attribute": _attribute_clause}
    query = compile_[comparison.entity](comparison)
    return ~query if comparison.negated else query


def _runs_with(model, key: str, condition: Q) -> Q:
    return Q(pk__in=model.objects.filter(condition, key=key).values("run_id"))


def _metric(comparison: Comparison) -> Q:
    key, operator = comparison.key, comparison.operator
    if operator == "isnull":
        return ~_runs_with(LatestMetric, key, Q())
    if operator in ("like", "ilike"):
        raise SearchError(
            f"{comparison.token.text} is a number: LIKE does not apply.", position=comparison.token.position
        )
    if operator == "in":
        values = [_number(token, comparison) for token in comparison.value]
        return _runs_with(LatestMetric, key, Q(value__in=values))
    value = _number(comparison.value, comparison)
    if operator == "ne":
        return _runs_with(LatestMetric, key, Q(value__isnull=False) & ~Q(value=value))
    return _runs_with(LatestMetric, key, Q(**{f"value__{operator}": value}))


def _text_condition(comparison: Comparison, *, numeric: bool) -> Q:
    """The condition on a RunParam/RunTag row; a number literal compares `value_number` when `numeric`."""
    operator = comparison.operator
    if operator in ("like", "ilike"):
        return _pattern("value", comparison.value, operator == "like")
    if operator == "in":
        numbers = [token.value for token in comparison.value if token.kind == "number"] if numeric else []
        texts = [_text(token) for token in comparison.value if not numeric or token.kind != "number"]
        condition = Q(pk__in=[])
        if numbers:
            condition |= Q(value_number__in=numbers)
        if texts:
            condition |= Q(value__in=texts)
        return condition
    token = comparison.value
    if numeric and token.kind == "number":
        return _lookup("value_number", operator, token.value)  # != keeps values that are not numbers
    text = _text(token)
    if operator == "exact":
        return Q(value_prefix=text[:VALUE_PREFIX_CHARS], value=text)
    return _lookup("value", operator, text)


def _param(comparison: Comparison) -> Q:
    if comparison.operator == "isnull":
        return ~_runs_with(RunParam, comparison.key, Q())
    return _runs_with(RunParam, comparison.key, _text_condition(comparison, numeric=True))


def _tag(comparison: Comparison) -> Q:
    if comparison.operator == "isnull":
        return ~_runs_with(RunTag, comparison.key, Q())
    return _runs_with(RunTag, comparison.key, _text_condition(comparison, numeric=False))


def _datetime(token: Token, comparison: Comparison) -> datetime:
    if token.kind == "number":  # MLflow's start_time: milliseconds since 1970
        try:
            return datetime.fromtimestamp(token.value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise SearchError(f"{token.describe()} is not a time.", position=token.position) from None
    try:
        moment = datetime.fromisoformat(token.value)
    except ValueError:
        raise SearchError(
            f"{comparison.token.text} compares with an ISO time such as '2025-01-31T12:00:00Z', "
            f"not {token.describe()}.",
            position=token.position,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _attribute_clause(comparison: Comparison) -> Q:
    name = comparison.key.lower()
    field, kind = ATTRIBUTES[name]
    operator = comparison.operator
    if operator == "isnull":
        if name not in NULLABLE_ATTRIBUTES:
            raise SearchError(f"{comparison.token.text} is never null.", position=comparison.token.position)
        return Q(**{f"{field}__isnull": True})
    if operator in ("like", "ilike"):
        if kind not in ("string", "status"):
            raise SearchError(
                f"LIKE applies to text, and {comparison.token.text} is not text.",
                position=comparison.token.position,
            )
        return _pattern(field, comparison.value, operator == "like")

    def convert(token: Token):
        if kind == "int":
            return _number(token, comparison, integer=True)
        if kind == "datetime":
            return _datetime(token, comparison)
        text = _text(token)
        if kind == "status" and text not in RunStatus.values:
            raise SearchError(
                f"{token.describe()} is not a status; use one of {', '.join(RunStatus.values)}.",
                position=token.position,
            )
        return text

    if operator == "in":
        return Q(**{f"{field}__in": [convert(token) for token in comparison.value]})
    return _lookup(field, operator, convert(comparison.value))


# --- ordering ------------------------------------------------------------------------------------

DEFAULT_ORDER = ["-created_at", "-id"]


def apply_order(runs: QuerySet, text: str | None) -> QuerySet:
    """Order runs by `metrics.x desc, params.y, created_at`; runs lacking a key come last either way."""
    if not text or not text.strip():
        return runs.order_by(*DEFAULT_ORDER)
    tokens = tokenize(text, field="order_by")
    annotations: dict[str, Any] = {}
    ordering = []
    index = terms = 0
    while True:
        token = tokens[index]
        if token.kind != "ident":
            raise SearchError(
                f"expected a name such as metrics.accuracy, params.lr or created_at, "
                f"found {token.describe()}.",
                field="order_by",
                position=token.position,
            )
        index += 1
        descending = False
        if tokens[index].kind == "keyword" and tokens[index].value in ("ASC", "DESC"):
            descending = tokens[index].value == "DESC"
            index += 1
        terms += 1
        if terms > MAX_ORDER_TERMS:
            raise SearchError(f"at most {MAX_ORDER_TERMS} terms.", field="order_by", position=token.position)
        for expression in _order_expressions(token, annotations):
            ordering.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        if tokens[index].kind == "end":
            break
        if tokens[index].kind != ",":
            raise SearchError(
                f"expected ',', ASC, DESC or the end, found {tokens[index].describe()}.",
                field="order_by",
                position=tokens[index].position,
            )
        index += 1
    return runs.annotate(**annotations).order_by(*ordering, "-id")


def _order_expressions(token: Token, annotations: dict) -> list[F]:
    entity, key = token.value
    name = f"_order_{len(annotations)}"
    if entity == "metric":
        # A LEFT JOIN on the (run, key) unique row: PostgreSQL hash-joins it, SQLite probes the index.
        annotations[name] = FilteredRelation("latest_metrics", condition=Q(latest_metrics__key=key))
        return [F(f"{name}__value")]
    if entity == "param":  # numbers in numeric order first, then the text
        annotations[name] = FilteredRelation("param_rows", condition=Q(param_rows__key=key))
        return [F(f"{name}__value_number"), F(f"{name}__value")]
    if entity == "tag":
        annotations[name] = FilteredRelation("tag_rows", condition=Q(tag_rows__key=key))
        return [F(f"{name}__value")]
    field, _kind = ATTRIBUTES[key.lower()]
    return [F(field)]
