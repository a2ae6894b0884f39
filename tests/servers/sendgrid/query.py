"""The subsets of SendGrid's query languages the test server understands (reference §2.2, §2b).

Activity (GET /v3/messages?query=): ``= != < > <= >=``, ``LIKE``/``NOT LIKE`` with ``%``,
``BETWEEN TIMESTAMP "…" AND TIMESTAMP "…"``, ``IN (…)``, ``AND OR NOT``, parentheses,
``unique_args['k']="v"`` and ``Contains(field, "x")``. Email Logs (POST /v3/logs): a few fields,
conditions joined by AND only. A query is compiled to a predicate over a row dict; errors raise
QueryError carrying SendGrid's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.servers.sendgrid.timeline import parse_iso

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

ACTIVITY_FIELDS = frozenset(
    {
        "to_email", "from_email", "subject", "msg_id", "status", "last_event_time", "template_id",
        "template_name", "campaign_name", "marketing_campaign_name", "campaign_id", "api_key_id",
        "outbound_ip", "originating_ip", "clicks", "asm_group_id", "teammate", "events", "categories",
        "unique_args", "opens_count", "clicks_count",
    }
)  # fmt: skip
ARRAY_FIELDS = frozenset({"events", "categories", "unique_args"})
LOGS_FIELDS = {
    "sg_message_id": {"="},
    "subject": {"="},
    "to_email": {"="},
    "reason": {"="},
    "status": {"IN"},
    "categories": {"IN"},
    "sg_message_id_created_at": {">", "<", ">=", "<="},
}
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)
    |(?P<op><=|>=|!=|=|<|>|\(|\)|\[|\]|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "TIMESTAMP", "IS", "NULL", "TRUE", "FALSE"}


class QueryError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str, *, logs: bool) -> None:
        self.tokens: list[tuple[str, Any]] = []
        self.logs = logs
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise QueryError(f"invalid syntax: unexpected {text[pos : pos + 10]!r}")
            pos = match.end()
            if match.group("str") is not None:
                self.tokens.append(("str", match.group("str")[1:-1].replace('\\"', '"').replace("\\'", "'")))
            elif match.group("num") is not None:
                self.tokens.append(("num", float(match.group("num"))))
            elif match.group("op") is not None:
                self.tokens.append(("op", match.group("op")))
            elif match.group("word") is not None:
                word = match.group("word")
                upper = word.upper()
                self.tokens.append(("kw", upper) if upper in _KEYWORDS else ("word", word))
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", None)

    def take(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise QueryError(f"invalid syntax: expected {value or kind}, found {token[1]!r}")
        self.pos += 1
        return token[1]

    def accept(self, kind: str, value: Any) -> bool:
        if self.peek() == (kind, value):
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek()[0] != "end":
            raise QueryError(f"invalid syntax: unexpected {self.peek()[1]!r}")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.accept("kw", "OR"):
            if self.logs:
                raise QueryError("invalid query: conditions can only be joined with AND")
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else lambda row: any(p(row) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.accept("kw", "AND"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else lambda row: all(p(row) for p in parts)

    def not_expr(self) -> Predicate:
        if self.accept("kw", "NOT"):
            if self.logs:
                raise QueryError("invalid query: NOT is not supported")
            inner = self.not_expr()
            return lambda row: not inner(row)
        if self.peek() == ("op", "("):
            if self.logs:
                raise QueryError("invalid query: nesting is not supported")
            self.pos += 1
            inner = self.or_expr()
            self.take("op", ")")
            return inner
        return self.condition()

    def value(self) -> Any:
        if self.accept("kw", "TIMESTAMP"):
            text = self.take("str")
            try:
                return parse_iso(text)
            except ValueError:
                raise QueryError(f"invalid syntax: {text!r} is not a timestamp") from None
        kind, value = self.peek()
        if kind in ("str", "num"):
            self.pos += 1
            return value
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            self.pos += 1
            return {"TRUE": True, "FALSE": False, "NULL": None}[value]
        raise QueryError(f"invalid syntax: expected a value, found {value!r}")

    def condition(self) -> Predicate:
        name = self.take("word")
        if self.peek() == ("op", "(") and name.lower() == "contains" and not self.logs:
            self.pos += 1
            target = self.take("word")
            self.take("op", ",")
            wanted = self.value()
            self.take("op", ")")
            if target not in ARRAY_FIELDS:
                if target not in ACTIVITY_FIELDS:
                    raise QueryError(f"invalid syntax: '{target}' is not a known field")
                raise QueryError("CONTAINS expects an array or map type as the first argument")
            return lambda row: wanted in (row.get(target) or ())
        known = set(LOGS_FIELDS) if self.logs else ACTIVITY_FIELDS
        if name not in known:
            raise QueryError(f"invalid syntax: '{name}' is not a known field")
        key: str | None = None
        if self.accept("op", "["):
            key = self.take("str")
            self.take("op", "]")

        def get(row: Row) -> Any:
            value = row.get(name)
            return value.get(key) if key is not None and isinstance(value, dict) else value

        negate = self.accept("kw", "NOT")
        kind, op = self.peek()
        comparison = kind == "op" and op in ("=", "!=", "<", ">", "<=", ">=")
        if comparison or (kind == "kw" and op in ("LIKE", "BETWEEN", "IN", "IS")):
            self.pos += 1
            operator = op
        else:
            raise QueryError(f"invalid syntax: expected an operator after '{name}', found {op!r}")
        if self.logs and operator not in LOGS_FIELDS[name]:
            raise QueryError(f"invalid query: operator {operator} is not supported for {name}")
        predicate = self._compare(get, operator)
        return (lambda row: not predicate(row)) if negate else predicate

    def _compare(self, get: Callable[[Row], Any], operator: str) -> Predicate:
        if operator == "BETWEEN":
            low = self.value()
            self.take("kw", "AND")
            high = self.value()

            def between(row: Row) -> bool:
                have = get(row)
                try:
                    return have is not None and bool(low <= have <= high)
                except TypeError:
                    return False

            return between
        if operator == "IN":
            self.take("op", "(")
            values = [self.value()]
            while self.accept("op", ","):
                values.append(self.value())
            self.take("op", ")")
            return lambda row: _in(get(row), values)
        if operator == "IS":
            negate = self.accept("kw", "NOT")
            self.take("kw", "NULL")
            return lambda row: (get(row) in (None, "")) != negate
        if operator == "LIKE":
            pattern = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(self.value())),
                re.DOTALL,
            )
            return lambda row: pattern.fullmatch(str(get(row) or "")) is not None
        wanted = self.value()
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
        }
        check = compare[operator]

        def predicate(row: Row) -> bool:
            have = get(row)
            try:
                return have is not None and check(have, wanted)
            except TypeError:
                return False

        return predicate


def _in(have: Any, values: list[Any]) -> bool:
    if isinstance(have, list | tuple | set):
        return any(v in values for v in have)
    return have in values


def compile_activity(query: str) -> Predicate:
    return _Parser(query, logs=False).parse()


def compile_logs(query: str) -> Predicate:
    return _Parser(query, logs=True).parse()
