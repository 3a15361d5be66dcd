"""A small evaluator for the subset of KQL the alert rules use, so their queries run in tests.

There is no Kusto engine offline. This one implements, over lists of dict rows, exactly
what infra/modules/alerts.bicep uses, with Kusto's documented semantics (Kusto Query
Language reference, learn.microsoft.com/kusto): tabular operators ``where``, ``extend``,
``project``, ``summarize count() [by]`` and ``union``; scalar ``parse_json``, ``extract``,
``tostring``, ``toint``, ``todouble``, ``tobool``, ``iff``, ``now``, ``datetime``; ``==``,
``!=``, ``<``, ``<=``, ``>``, ``>=``, ``contains`` (case-insensitive), ``and``, ``or``,
``.`` on dynamic values, and null propagation (a comparison with null is null, which
``where`` drops; ``tostring(null)`` is ""). Anything else raises, so a query that starts
using more KQL fails its test until this learns it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]
Tables = dict[str, list[Row]]

_TOKEN = re.compile(
    r"""\s*(?:(?P<dt>datetime\([^)]*\))|(?P<num>\d+(?:\.\d+)?)|(?P<vstr>@"[^"]*")|(?P<str>"(?:[^"\\]|\\.)*")
    |(?P<op>==|!=|<=|>=|=~|[|(),.=<>])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))""",
    re.VERBOSE,
)


class KqlError(Exception):
    """The query uses KQL this evaluator does not implement."""


def run(query: str, tables: Tables, now: datetime) -> list[Row]:
    parser = _Parser(_tokens(query), tables, now)
    rows = parser.query()
    if parser.peek() is not None:
        raise KqlError(f"unexpected {parser.peek()!r}")
    return rows


def _tokens(text: str) -> list[str]:
    found, at = [], 0
    text = text.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise KqlError(f"cannot read {text[at : at + 20]!r}")
        found.append(match.group().strip())
        at = match.end()
        while at < len(text) and text[at].isspace():
            at += 1
    return found


class _Parser:
    def __init__(self, tokens: list[str], tables: Tables, now: datetime) -> None:
        self.tokens, self.at, self.tables, self.now = tokens, 0, tables, now

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise KqlError(f"expected {expected!r}, found {token!r}")
        self.at += 1
        return token

    # ----- tabular ------------------------------------------------------------------------

    def query(self) -> list[Row]:
        rows = self.source()
        while self.peek() == "|":
            self.take("|")
            rows = self.operator(rows)
        return rows

    def source(self) -> list[Row]:
        name = self.take()
        if name != "union":
            return [dict(r) for r in self.tables[name]]
        rows: list[Row] = []
        while True:
            self.take("(")
            rows += self.query()
            self.take(")")
            if self.peek() != ",":
                return rows
            self.take(",")

    def operator(self, rows: list[Row]) -> list[Row]:
        verb = self.take()
        if verb == "where":
            test = self.expr()
            return [r for r in rows if test(r) is True]
        if verb in ("extend", "project"):
            columns = self.columns()
            if verb == "extend":
                return [{**r, **{n: f(r) for n, f in columns}} for r in rows]
            return [{n: f(r) for n, f in columns} for r in rows]
        if verb == "summarize":
            return self.summarize(rows)
        raise KqlError(f"unknown operator {verb!r}")

    def columns(self) -> list[tuple[str, Callable[[Row], Any]]]:
        columns = []
        while True:
            name = self.take()
            if self.peek() == "=":
                self.take("=")
                columns.append((name, self.expr()))
            else:
                columns.append((name, lambda r, n=name: r.get(n)))
            if self.peek() != ",":
                return columns
            self.take(",")

    def summarize(self, rows: list[Row]) -> list[Row]:
        name = self.take()
        self.take("=")
        for token in ("count", "(", ")"):
            self.take(token)
        keys: list[str] = []
        if self.peek() == "by":
            self.take("by")
            keys = [n for n, _ in self.columns()]
        groups: dict[tuple[Any, ...], int] = {}
        for row in rows:
            key = tuple(row.get(k) for k in keys)
            groups[key] = groups.get(key, 0) + 1
        if not keys and not groups:
            groups[()] = 0  # summarize without `by` always yields one row
        return [{**dict(zip(keys, k, strict=True)), name: n} for k, n in groups.items()]

    # ----- scalar -------------------------------------------------------------------------

    def expr(self) -> Callable[[Row], Any]:
        return self.binary(["or"], lambda: self.binary(["and"], self.comparison))

    def binary(self, ops: list[str], operand: Callable[[], Callable[[Row], Any]]) -> Any:
        left = operand()
        while self.peek() in ops:
            op = self.take()
            right = operand()
            left = _logic(op, left, right)
        return left

    def comparison(self) -> Callable[[Row], Any]:
        left = self.postfix()
        if self.peek() in ("==", "!=", "<", "<=", ">", ">=", "=~", "contains"):
            op = self.take()
            right = self.postfix()
            return lambda r: _compare(op, left(r), right(r))
        return left

    def postfix(self) -> Callable[[Row], Any]:
        value = self.primary()
        while self.peek() == ".":
            self.take(".")
            member = self.take()
            value = (lambda v, m: lambda r: _member(v(r), m))(value, member)
        return value

    def primary(self) -> Callable[[Row], Any]:
        token = self.take()
        if token == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if token[0].isdigit():
            number = float(token) if "." in token else int(token)
            return lambda r: number
        if token.startswith('@"'):
            return lambda r, s=token[2:-1]: s
        if token.startswith('"'):
            text = json.loads(token)
            return lambda r: text
        if token in ("true", "false"):
            return lambda r, b=token == "true": b
        if token.startswith("datetime("):
            moment = datetime.fromisoformat(token[9:-1].strip().replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return lambda r: moment
        if self.peek() == "(":
            return self.call(token)
        return lambda r: r.get(token)

    def call(self, name: str) -> Callable[[Row], Any]:
        self.take("(")
        args: list[Callable[[Row], Any]] = []
        while self.peek() != ")":
            args.append(self.expr())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        if name == "now":
            return lambda r: self.now
        if name == "iff":
            return lambda r: args[1](r) if args[0](r) is True else args[2](r)
        if name not in _FUNCTIONS:
            raise KqlError(f"unknown function {name}()")
        function = _FUNCTIONS[name]
        return lambda r: function(*(a(r) for a in args))


def _logic(op: str, left: Callable[[Row], Any], right: Callable[[Row], Any]) -> Any:
    def evaluate(row: Row) -> bool | None:
        a, b = left(row), right(row)
        if op == "and":
            return False if a is False or b is False else (None if None in (a, b) else True)
        return True if a is True or b is True else (None if None in (a, b) else False)

    return evaluate


def _compare(op: str, a: Any, b: Any) -> bool | None:
    if op == "contains":
        return None if a is None else str(b).lower() in str(a).lower()
    if a is None or b is None:
        return None
    if op == "=~":
        return str(a).lower() == str(b).lower()
    operations: dict[str, Callable[[Any, Any], bool]] = {
        "==": lambda x, y: x == y,
        "!=": lambda x, y: x != y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
    }
    return operations[op](a, b)


def _member(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _extract(pattern: Any, group: Any, text: Any) -> str | None:
    match = re.search(str(pattern), str(text)) if text is not None else None
    return match.group(int(group)) if match else None


def _tostring(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _number(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | dict | list):
            return None
        try:
            return kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            return None

    return convert


def _tobool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return value != 0
    return None


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "parse_json": _parse_json,
    "extract": _extract,
    "tostring": _tostring,
    "toint": _number(int),
    "todouble": _number(float),
    "tobool": _tobool,
}
