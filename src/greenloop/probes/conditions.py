"""The probe condition language: small, safe, never `eval`.

In the spirit of Gatus: `status == 200`, `latency_ms < 2000`,
`body.status == "healthy"`, `headers.content-type contains "json"`,
`connected`, `not (close_code == 1011 or close_code == 1006)`.

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | compare
    compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "contains") operand]
    operand := NUMBER | STRING | true | false | null | PATH | "(" expr ")"

A PATH is a dotted name (`body.items[0].id`, `headers.content-type`) looked up
in the values a probe observed. A value that was not observed makes every
comparison false, so a missing field fails the check instead of passing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "contains")
KEYWORDS = {"and", "or", "not", "true", "false", "null", "contains"}


class ConditionError(ValueError):
    """A condition that does not parse; `column` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column


class _Missing:
    """The value of a path the probe did not observe."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class Document(str):
    """Text that may also be JSON: `body` compares as the text, `body.a.b` walks the JSON."""

    parsed: Any

    def __new__(cls, text: str, parsed: Any = None) -> Document:
        doc = super().__new__(cls, text)
        doc.parsed = parsed
        return doc


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | path | op | lparen | rparen | keyword | end
    text: str
    column: int
    value: Any = None


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<path>[A-Za-z_][A-Za-z0-9_\-]*(?:\[\d+\])*(?:\.[A-Za-z0-9_\-]+(?:\[\d+\])*)*)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def tokenize(text: str) -> list[Token]:
    """Split a condition into tokens; anything unrecognised is a ConditionError."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            if text[pos] in "\"'":
                raise ConditionError("unterminated string", pos + 1)
            if text[pos] == "=":
                raise ConditionError("unexpected '=' (use '==' to compare)", pos + 1)
            raise ConditionError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = match.lastgroup or ""
        raw = match.group()
        column = pos + 1
        pos = match.end()
        if kind == "space":
            continue
        if kind == "number":
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, column, number))
        elif kind == "string":
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw[1:-1])
            tokens.append(Token("string", raw, column, body))
        elif kind == "path" and raw in KEYWORDS:
            tokens.append(Token("op" if raw == "contains" else "keyword", raw, column))
        else:
            tokens.append(Token(kind, raw, column))
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Path:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


Node = Literal | Path | Compare | Not | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ConditionError("empty condition", 1)
        node = self.expr()
        token = self.peek()
        if token.kind != "end":
            raise ConditionError(f"unexpected {_describe(token)}", token.column)
        return node

    def expr(self) -> Node:
        return self._chain("or", self.conjunction)

    def conjunction(self) -> Node:
        return self._chain("and", self.unary)

    def _chain(self, word: str, inner: Any) -> Node:
        operands = [inner()]
        while self.peek().kind == "keyword" and self.peek().text == word:
            self.take()
            operands.append(inner())
        return operands[0] if len(operands) == 1 else BoolOp(word, tuple(operands))

    def unary(self) -> Node:
        if self.peek().kind == "keyword" and self.peek().text == "not":
            self.take()
            return Not(self.unary())
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        if self.peek().kind == "op":
            op = self.take().text
            return Compare(op, left, self.operand())
        return left

    def operand(self) -> Node:
        token = self.take()
        if token.kind in ("number", "string"):
            return Literal(token.value)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[token.text])
        if token.kind == "path":
            return Path(token.text, token.column)
        if token.kind == "lparen":
            node = self.expr()
            closing = self.take()
            if closing.kind != "rparen":
                raise ConditionError(f"expected ')' but found {_describe(closing)}", closing.column)
            return node
        raise ConditionError(f"expected a value but found {_describe(token)}", token.column)


def _describe(token: Token) -> str:
    return "end of condition" if token.kind == "end" else repr(token.text)


# --------------------------------------------------------------------------- evaluation


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """The observed value at a dotted path, or MISSING.

    An exact key wins (`latency_ms`, `body`); otherwise the path walks into
    nested mappings and lists (`body.items[0].id`, `headers.content-type`).
    Mapping keys match case-insensitively when there is no exact match, so
    `headers.Content-Type` finds `content-type`.
    """
    if path in values:
        return values[path]
    current: Any = values
    for part in re.sub(r"\[(\d+)\]", r".\1", path).split("."):
        if isinstance(current, Document):
            current = current.parsed
        if isinstance(current, Mapping):
            if part in current:
                current = current[part]
                continue
            folded = {str(k).lower(): v for k, v in current.items()}
            if part.lower() not in folded:
                return MISSING
            current = folded[part.lower()]
        elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is MISSING or right is MISSING:
        return False
    if op == "contains":
        if isinstance(left, str):
            return str(right) in left
        if isinstance(left, Mapping):
            return right in left
        if isinstance(left, list | tuple):
            return right in left or str(right) in [str(x) for x in left]
        return False
    ln, rn = _number(left), _number(right)
    numeric = ln is not None and rn is not None
    if op in ("==", "!="):
        # A header's "200" equals 200 in a condition; True never equals 1.
        if isinstance(left, bool) != isinstance(right, bool):
            equal = False
        else:
            equal = ln == rn if numeric else left == right
        return equal if op == "==" else not equal
    if numeric:
        return {"<": ln < rn, "<=": ln <= rn, ">": ln > rn, ">=": ln >= rn}[op]  # type: ignore[operator]
    if isinstance(left, str) and isinstance(right, str):
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    return False


def _truthy(value: Any) -> bool:
    return value is not MISSING and bool(value)


def _evaluate(node: Node, values: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return lookup(values, node.name)
    if isinstance(node, Compare):
        return _compare(node.op, _evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, Not):
        return not _truthy(_evaluate(node.operand, values))
    if node.op == "and":
        return all(_truthy(_evaluate(n, values)) for n in node.operands)
    return any(_truthy(_evaluate(n, values)) for n in node.operands)


def _paths(node: Node) -> list[Path]:
    if isinstance(node, Path):
        return [node]
    if isinstance(node, Compare):
        return _paths(node.left) + _paths(node.right)
    if isinstance(node, Not):
        return _paths(node.operand)
    if isinstance(node, BoolOp):
        return [p for n in node.operands for p in _paths(n)]
    return []


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition: its source text and syntax tree."""

    source: str
    tree: Node

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every value the condition reads, with its column (for config checks)."""
        return tuple(_paths(self.tree))

    def holds(self, values: Mapping[str, Any]) -> bool:
        return _truthy(_evaluate(self.tree, values))

    def explain(self, values: Mapping[str, Any]) -> str:
        """The condition with the observed values it read, for a failure detail."""
        seen = []
        for path in dict.fromkeys(p.name for p in self.paths):
            value = lookup(values, path)
            shown = "missing" if value is MISSING else _short(value)
            seen.append(f"{path}={shown}")
        return f"{self.source} ({', '.join(seen)})" if seen else self.source


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(text: str) -> Condition:
    """Parse one condition; a syntax error raises ConditionError with the column."""
    return Condition(text, _Parser(text).parse())
