"""The expression form: `"stages.FAST.confidence < 0.8 and amount >= 10000"`.

A hand-written tokenizer and a precedence-climbing parser turn the string into the same tree the
structured form produces; nothing is ever evaluated as Python. Grammar (lowest precedence first):

```
expr        := unary (("or" | "||" | "and" | "&&") unary)*      and binds tighter than or
unary       := ("not" | "!") unary | primary
primary     := "(" expr ")" | test | function
test        := path ("==" | "!=" | ">" | ">=" | "<" | "<=") scalar
             | path ["not"] "in" list | path "contains" scalar | path "matches" string
             | path "is" ["not"] "null"
             | path                                           present, not null and truthy
function    := ("exists" | "is_null") "(" path ")"
             | ("sum" | "avg" | "min" | "max" | "count") "(" path ")" comparison number
             | ("all" | "any" | "none") "(" path comparison scalar ")"
             | ("all" | "any" | "none") "(" path "," expr ")"     paths in expr are per item
path        := name ("." (name | integer))* | "`" any text "`" | "."  (the item itself)
scalar      := number | string | "true" | "false" | "null"
list        := "[" [scalar ("," scalar)* [","]] "]"
```

Keywords are case-insensitive. Strings take single or double quotes and the escapes `\\\\`,
`\\"`, `\\'`, `\\n`, `\\r`, `\\t`, `\\uXXXX` and `\\UXXXXXXXX`; any other backslash is kept as
written, so regular expressions such as `"\\d+"` need no doubling.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from cascadence.conditions.operators import COMPARISONS, ORDERING
from cascadence.conditions.paths import split_path
from cascadence.conditions.regex import RegexRejected, compile_pattern
from cascadence.conditions.tree import (
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Scalar,
    Statistic,
    Truthy,
)
from cascadence.errors import closest

__all__ = ["ExpressionError", "FUNCTIONS", "KEYWORDS", "PLAIN_PATH", "parse_expression"]

KEYWORDS: Final = frozenset(
    ("and", "or", "not", "in", "contains", "matches", "is", "true", "false", "null")
)
"""Words that cannot be a bare one-segment path (quote such a field with backticks)."""

FUNCTIONS: Final = (
    "exists",
    "is_null",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "all",
    "any",
    "none",
)
"""Function names; a word is a function only when `(` follows it."""

PLAIN_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.(?:[A-Za-z0-9_]+|-[0-9]+))*")
"""A path that needs no backticks (unless it is a single keyword)."""

_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"\s+")
_SYMBOLS = ("==", "!=", ">=", "<=", "&&", "||", ">", "<", "!", "(", ")", "[", "]", ",")
_TESTS = "==, !=, >, >=, <, <=, in, not in, contains, matches, is null, is not null"
_OPERATOR_WORDS = ("in", "not", "contains", "matches", "is")
_MISTYPED = {"=": "==", "=>": ">=", "=<": "<=", "<>": "!=", "&": "&&", "|": "||"}
_MISTYPED_LONG = {"===": "==", "!==": "!=", "<>": "!="}
"""Spellings from other languages that begin with a valid symbol, checked before symbols."""
_OPERATOR_ALIASES = {
    "like": "matches",
    "has": "contains",
    "eq": "==",
    "ne": "!=",
    "neq": "!=",
    "gt": ">",
    "ge": ">=",
    "gte": ">=",
    "lt": "<",
    "le": "<=",
    "lte": "<=",
    "not_in": "not in",
    "notin": "not in",
    "nin": "not in",
    "isnull": "is null",
    "is_null": "is null",
    "notnull": "is not null",
    "not_null": "is not null",
    "is_not_null": "is not null",
    "not_exists": "is null",
    "greater": ">",
    "less": "<",
    "startswith": "matches '^...'",
    "starts_with": "matches '^...'",
    "endswith": "matches '...$'",
    "ends_with": "matches '...$'",
}
_NULL_SPELLINGS = frozenset(("none", "nil", "undefined", "nan"))
_FUNCTION_ALIASES = {
    "len": "count",
    "length": "count",
    "mean": "avg",
    "average": "avg",
    "notnull": "exists",
    "not_null": "exists",
    "is_not_null": "exists",
    "isnotnull": "exists",
    "not_exists": "is_null",
    "missing": "is_null",
}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
_MAX_DEPTH: Final = 100


class ExpressionError(ValueError):
    """A syntax error at `column` (1-based) of the expression."""

    def __init__(
        self,
        message: str,
        column: int,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.expected = expected
        self.suggestion = suggestion


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # path, item, word, op, bool, not, num, str, sym, end
    text: str
    column: int
    value: Any = None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    length = len(source)
    while pos < length:
        space = _SPACE.match(source, pos)
        if space:
            pos = space.end()
            continue
        column = pos + 1
        char = source[pos]
        if char in "\"'":
            text, pos = _read_string(source, pos)
            tokens.append(_Token("str", source[column - 1 : pos], column, text))
            continue
        if char == "`":
            end = source.find("`", pos + 1)
            if end < 0:
                raise ExpressionError("unterminated `quoted` path", column)
            tokens.append(_Token("path", source[pos : end + 1], column, source[pos + 1 : end]))
            pos = end + 1
            continue
        number = _NUMBER.match(source, pos)
        if number and (char != "." or number.end() > pos + 1):
            text = number.group()
            pos = number.end()
            tokens.append(_Token("num", text, column, _number(text, column)))
            continue
        path = PLAIN_PATH.match(source, pos)
        if path:
            text = path.group()
            pos = path.end()
            if source.startswith(".", pos):
                raise ExpressionError(
                    f"field path {text + '.'!r} has an empty segment", pos + 1, "a path segment"
                )
            lower = text.lower()
            if lower in KEYWORDS:
                kind = {"and": "bool", "or": "bool", "not": "not"}.get(lower, "word")
                tokens.append(_Token(kind, lower, column, text))
            else:
                tokens.append(_Token("path", text, column, text))
            continue
        if char == ".":
            if pos + 1 < length and (source[pos + 1].isalnum() or source[pos + 1] == "_"):
                raise ExpressionError(
                    "a path cannot start with '.'; write the name alone "
                    "('.' by itself is the list item inside all/any/none)",
                    column,
                )
            tokens.append(_Token("item", ".", column, ""))
            pos += 1
            continue
        for wrong, right in _MISTYPED_LONG.items():
            if source.startswith(wrong, pos):
                raise ExpressionError(f"unexpected {wrong!r}", column, suggestion=right)
        for symbol in _SYMBOLS:
            if source.startswith(symbol, pos):
                break
        else:
            two = source[pos : pos + 2]
            wrong = two if two in _MISTYPED else char
            raise ExpressionError(
                f"unexpected {wrong!r}",
                column,
                suggestion=_MISTYPED.get(wrong),
            )
        pos += len(symbol)
        if symbol in ("&&", "||"):
            tokens.append(_Token("bool", "and" if symbol == "&&" else "or", column, symbol))
        elif symbol == "!":
            tokens.append(_Token("not", "not", column, symbol))
        elif symbol in COMPARISONS:
            tokens.append(_Token("op", symbol, column, symbol))
        else:
            tokens.append(_Token("sym", symbol, column, symbol))
    tokens.append(_Token("end", "", length + 1))
    return tokens


def _number(text: str, column: int) -> int | float:
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise ExpressionError(f"number {text} is out of range", column)
        return value
    return int(text)


def _read_string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    parts: list[str] = []
    pos = start + 1
    length = len(source)
    while pos < length:
        char = source[pos]
        if char == quote:
            return "".join(parts), pos + 1
        if char == "\\" and pos + 1 < length:
            nxt = source[pos + 1]
            if nxt in _ESCAPES:
                parts.append(_ESCAPES[nxt])
                pos += 2
                continue
            if nxt in "uU":
                size = 4 if nxt == "u" else 8
                digits = source[pos + 2 : pos + 2 + size]
                if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise ExpressionError(
                        f"\\{nxt} needs {size} hex digits", pos + 1, f"\\{nxt}" + "0" * size
                    )
                code = int(digits, 16)
                if code > 0x10FFFF:
                    raise ExpressionError(f"\\{nxt}{digits} is not a character", pos + 1)
                parts.append(chr(code))
                pos += 2 + size
                continue
            parts.append(char + nxt)  # unknown escapes stay as written (regex friendly)
            pos += 2
            continue
        parts.append(char)
        pos += 1
    raise ExpressionError("unterminated string", start + 1, f"a closing {quote}")


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the expression"
    return repr(token.text)


class _Parser:
    def __init__(self, source: str, tokens: list[_Token], item: bool, depth: int) -> None:
        self.source = source
        self.tokens = tokens
        self.pos = 0
        self.item = 1 if item else 0
        self.depth = depth

    # -- token helpers --------------------------------------------------------------------------

    @property
    def token(self) -> _Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def error(
        self,
        message: str,
        token: _Token | None = None,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> ExpressionError:
        column = (token or self.token).column
        return ExpressionError(message, column, expected, suggestion)

    def expect_symbol(self, symbol: str, context: str) -> _Token:
        token = self.token
        if token.kind != "sym" or token.text != symbol:
            raise self.error(f"expected {symbol!r} {context}, got {_describe(token)}")
        return self.advance()

    # -- grammar --------------------------------------------------------------------------------

    def parse(self) -> Node:
        node = self.binary(1)
        token = self.token
        if token.kind != "end":
            if token.kind == "sym" and token.text == ")":
                raise self.error("unmatched ')'")
            suggestion = None
            if token.kind in ("path", "word"):
                suggestion = closest(token.text.lower(), ("and", "or"))
            raise self.error(
                f"unexpected {_describe(token)}",
                expected="'and', 'or' or the end of the expression",
                suggestion=suggestion,
            )
        return node

    def binary(self, min_precedence: int) -> Node:
        operands = [self.unary()]
        chain: str | None = None
        while self.token.kind == "bool":
            op = self.token.text
            precedence = 2 if op == "and" else 1
            if precedence < min_precedence:
                break
            self.advance()
            right = self.binary(precedence + 1)
            name = op.upper()
            if chain is not None and chain != name:
                operands = [Logical(chain, tuple(operands))]
            chain = name
            operands.append(right)
        if chain is None:
            return operands[0]
        return Logical(chain, tuple(operands))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"the expression is nested more than {_MAX_DEPTH} levels deep")

    def unary(self) -> Node:
        if self.token.kind == "not":
            self.advance()
            self.enter()
            node = Logical("NOT", (self.unary(),))
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        token = self.token
        if token.kind == "sym" and token.text == "(":
            self.advance()
            self.enter()
            node = self.binary(1)
            if self.token.kind != "sym" or self.token.text != ")":
                raise self.error(
                    f"expected ')' to close the '(' at column {token.column}, "
                    f"got {_describe(self.token)}"
                )
            self.advance()
            self.depth -= 1
            return node
        if token.kind == "path" and not token.text.startswith("`"):
            following = self.peek()
            if following.kind == "sym" and following.text == "(":
                return self.function()
        if token.kind in ("path", "item"):
            return self.test()
        if token.kind == "end":
            raise self.error("expected a condition at the end of the expression")
        raise self.error(
            f"expected a condition, got {_describe(token)}",
            expected="a test such as 'amount > 100', a field path, or '(', 'not', exists(...)",
        )

    def path(self) -> str:
        token = self.token
        if token.kind == "item":
            if not self.item:
                raise self.error(
                    "'.' (the list item itself) can only be used inside all(), any() or none()"
                )
            self.advance()
            return ""
        if token.kind != "path":
            raise self.error(f"expected a field path, got {_describe(token)}")
        text = str(token.value)
        try:
            segments = split_path(text, allow_item=bool(self.item))
        except ValueError as exc:
            raise self.error(str(exc)) from None
        self.advance()
        return ".".join(segments)

    def scalar(self, after: str) -> tuple[Scalar, _Token]:
        token = self.token
        if token.kind in ("num", "str"):
            self.advance()
            return token.value, token
        if token.kind == "word" and token.text in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[token.text], token
        if token.kind == "end":
            raise self.error(f"expected a value after {after!r}")
        hint = suggestion = None
        if token.kind == "path" and token.text.lower() in _NULL_SPELLINGS:
            hint, suggestion = "a number, a quoted string, true, false or null", "null"
        elif token.kind == "path":
            hint = "a literal: comparing two fields is not supported"
            suggestion = closest(token.text.lower(), ("true", "false", "null"))
        elif token.kind == "sym" and token.text == "[":
            hint = "a single value: lists go after 'in' / 'not in'"
        raise self.error(
            f"expected a value after {after!r}, got {_describe(token)}",
            expected=hint or "a number, a quoted string, true, false or null",
            suggestion=suggestion,
        )

    def ordered(self, op: str, value: Scalar, token: _Token) -> Scalar:
        if op in ORDERING and (value is None or isinstance(value, bool)):
            raise self.error(
                f"{op!r} orders values and cannot compare with {token.text}",
                token,
                expected="a number or a string",
            )
        return value

    def literal_list(self, after: str) -> tuple[Scalar, ...]:
        if self.token.kind != "sym" or self.token.text != "[":
            raise self.error(
                f"expected a list after {after!r}, got {_describe(self.token)}",
                expected='a list such as ["a", "b"]',
            )
        self.advance()
        items: list[Scalar] = []
        while not (self.token.kind == "sym" and self.token.text == "]"):
            value, _ = self.scalar("[" if not items else ",")
            items.append(value)
            if self.token.kind == "sym" and self.token.text == ",":
                self.advance()
            elif not (self.token.kind == "sym" and self.token.text == "]"):
                raise self.error(f"expected ',' or ']' in the list, got {_describe(self.token)}")
        self.advance()
        return tuple(items)

    def test(self) -> Node:
        start = self.token
        field = self.path()
        token = self.token
        if token.kind in ("end", "bool") or (token.kind == "sym" and token.text == ")"):
            return Truthy(field)  # a bare path: the field is present, not null and truthy
        if token.kind == "op":
            self.advance()
            value, value_token = self.scalar(token.text)
            return Compare(field, token.text, self.ordered(token.text, value, value_token))
        if token.kind == "word" and token.text == "in":
            self.advance()
            return Membership(field, "IN", self.literal_list("in"))
        if token.kind == "not":
            self.advance()
            if not (self.token.kind == "word" and self.token.text == "in"):
                raise self.error(
                    f"expected 'in' after 'not', got {_describe(self.token)}",
                    expected="not in [...]",
                )
            self.advance()
            return Membership(field, "NOT_IN", self.literal_list("not in"))
        if token.kind == "word" and token.text == "contains":
            self.advance()
            value, _ = self.scalar("contains")
            return Membership(field, "CONTAINS", value)
        if token.kind == "word" and token.text == "matches":
            self.advance()
            pattern = self.token
            if pattern.kind != "str":
                raise self.error(
                    f"expected a quoted regular expression after 'matches', "
                    f"got {_describe(pattern)}"
                )
            try:
                compile_pattern(str(pattern.value))
            except RegexRejected as exc:
                raise self.error(str(exc), pattern, expected=exc.hint) from None
            self.advance()
            return Pattern(field, str(pattern.value))
        if token.kind == "word" and token.text == "is":
            self.advance()
            negated = self.token.kind == "not"
            if negated:
                self.advance()
            if not (self.token.kind == "word" and self.token.text == "null"):
                raise self.error(
                    f"expected 'null' after 'is{' not' if negated else ''}', "
                    f"got {_describe(self.token)}",
                    expected=f"{field} is{' not' if negated else ''} null",
                    suggestion="null" if self.token.text.lower() in _NULL_SPELLINGS else None,
                )
            self.advance()
            return Exists(field, "EXISTS" if negated else "IS_NULL")
        suggestion = None
        if token.kind in ("path", "word"):
            lowered = token.text.lower()
            suggestion = _OPERATOR_ALIASES.get(lowered) or closest(lowered, _OPERATOR_WORDS)
            if lowered == "between":
                suggestion = f"{field} >= low and {field} <= high"
        raise self.error(
            f"expected an operator after {start.text!r}, got {_describe(token)}",
            expected=f"{_TESTS}; or the path alone (followed by and, or, ')' or the end) to "
            "test that the field is truthy",
            suggestion=suggestion,
        )

    def function(self) -> Node:
        name_token = self.advance()
        name = name_token.text.lower()
        if name not in FUNCTIONS:
            raise self.error(
                f"unknown function {name_token.text!r}",
                name_token,
                expected=", ".join(f"{f}()" for f in FUNCTIONS),
                suggestion=_FUNCTION_ALIASES.get(name) or closest(name, FUNCTIONS),
            )
        self.advance()  # "("
        if name in ("exists", "is_null"):
            field = self.path()
            self.expect_symbol(")", f"to close {name}(")
            return Exists(field, name.upper())
        if name in ("all", "any", "none"):
            return self.aggregate(name)
        field = self.path()
        self.expect_symbol(")", f"to close {name}(")
        token = self.token
        if token.kind != "op":
            raise self.error(
                f"expected a comparison after {name}(...), got {_describe(token)}",
                expected=f"{name}({field}) >= 10",
            )
        self.advance()
        value, value_token = self.scalar(token.text)
        if isinstance(value, (bool, str)) or value is None:
            raise self.error(
                f"{name}() compares with a number, got {value_token.text}", value_token
            )
        return Statistic(field, name.upper(), token.text, value)

    def aggregate(self, name: str) -> Node:
        field = self.path()
        token = self.token
        if token.kind == "op":
            self.advance()
            value, value_token = self.scalar(token.text)
            value = self.ordered(token.text, value, value_token)
            self.expect_symbol(")", f"to close {name}(")
            return Aggregate(field, name.upper(), token.text, value)
        if token.kind == "sym" and token.text == ",":
            self.advance()
            self.enter()
            self.item += 1
            condition = self.binary(1)
            self.item -= 1
            self.depth -= 1
            self.expect_symbol(")", f"to close {name}(")
            return Aggregate(field, name.upper(), condition=condition)
        raise self.error(
            f"expected a comparison or ',' after {name}({field or '.'}, got {_describe(token)}",
            expected=(
                f"{name}(list > 1), {name}(list, item_field > 1), "
                f"or {name}(list, .) for the items that are truthy"
            ),
        )


def parse_expression(source: str, *, item: bool = False, depth: int = 0) -> Node:
    """Parse an expression string into a condition tree.

    Args:
        source: The expression.
        item: Whether paths are relative to a list item (inside ALL/ANY/NONE).
        depth: Nesting depth already used by an enclosing structured condition.

    Raises:
        ExpressionError: At the first syntax error, with its 1-based column.
    """
    tokens = _tokenize(source)
    return _Parser(source, tokens, item, depth).parse()
