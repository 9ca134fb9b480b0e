"""The operator table: every operator name, its category and what its `value` must be."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from cascadence.errors import closest

__all__ = [
    "AGGREGATIONS",
    "COMPARISONS",
    "LOGICAL",
    "OPERATORS",
    "OPERATOR_SPECS",
    "ORDERING",
    "OperatorSpec",
    "STATISTICS",
    "canonical_operator",
    "suggest_operator",
]

COMPARISONS: tuple[str, ...] = ("==", "!=", ">", ">=", "<", "<=")
"""Comparison operators; also the values `compare:` accepts in aggregations and statistics."""

ORDERING: frozenset[str] = frozenset((">", ">=", "<", "<="))
"""Comparisons that order their operands (they need numbers or strings on both sides)."""

LOGICAL: tuple[str, ...] = ("AND", "OR", "NOT")
AGGREGATIONS: tuple[str, ...] = ("ALL", "ANY", "NONE")
STATISTICS: tuple[str, ...] = ("SUM", "AVG", "MIN", "MAX", "COUNT")

OPERATORS: tuple[str, ...] = (
    *COMPARISONS,
    *LOGICAL,
    "IN",
    "NOT_IN",
    "CONTAINS",
    "MATCHES",
    "EXISTS",
    "IS_NULL",
    "TRUTHY",
    *AGGREGATIONS,
    *STATISTICS,
)
"""Every operator name, in the order the configuration reference lists them (`TRUTHY`, the
structured spelling of a bare path in an expression, sits with the existence tests)."""


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """What one operator is and what it needs.

    Attributes:
        name: Canonical (upper-case) name.
        category: `comparison`, `logical`, `collection`, `pattern`, `existence`,
            `aggregation` or `statistical`.
        value: What the `value` key must hold, in words, or None when it takes no value.
        description: One line for documentation and error messages.
    """

    name: str
    category: str
    value: str | None
    description: str


_SPECS = (
    OperatorSpec("==", "comparison", "a scalar", "equal to"),
    OperatorSpec("!=", "comparison", "a scalar", "not equal to"),
    OperatorSpec(">", "comparison", "a number or a string", "greater than"),
    OperatorSpec(">=", "comparison", "a number or a string", "greater than or equal to"),
    OperatorSpec("<", "comparison", "a number or a string", "less than"),
    OperatorSpec("<=", "comparison", "a number or a string", "less than or equal to"),
    OperatorSpec("AND", "logical", None, "every condition holds"),
    OperatorSpec("OR", "logical", None, "at least one condition holds"),
    OperatorSpec("NOT", "logical", None, "the condition does not hold"),
    OperatorSpec("IN", "collection", "a list of scalars", "the value is one of a list"),
    OperatorSpec("NOT_IN", "collection", "a list of scalars", "the value is none of a list"),
    OperatorSpec("CONTAINS", "collection", "a scalar", "a list, string or mapping contains"),
    OperatorSpec("MATCHES", "pattern", "a regular expression", "a regex search finds a match"),
    OperatorSpec("EXISTS", "existence", None, "the field is present and not null"),
    OperatorSpec("IS_NULL", "existence", None, "the field is missing or null"),
    OperatorSpec("TRUTHY", "existence", None, "the field is present, not null and truthy"),
    OperatorSpec("ALL", "aggregation", "a scalar", "every list item matches"),
    OperatorSpec("ANY", "aggregation", "a scalar", "at least one list item matches"),
    OperatorSpec("NONE", "aggregation", "a scalar", "no list item matches"),
    OperatorSpec("SUM", "statistical", "a number", "sum of a list of numbers"),
    OperatorSpec("AVG", "statistical", "a number", "mean of a non-empty list of numbers"),
    OperatorSpec("MIN", "statistical", "a number", "smallest of a non-empty list of numbers"),
    OperatorSpec("MAX", "statistical", "a number", "largest of a non-empty list of numbers"),
    OperatorSpec("COUNT", "statistical", "a number", "number of items of a list"),
)

OPERATOR_SPECS: MappingProxyType[str, OperatorSpec] = MappingProxyType(
    {spec.name: spec for spec in _SPECS}
)
"""Operator name -> its spec."""

# Names people reach for from other languages; used only to suggest, never accepted.
_ALIASES = {
    "=": "==",
    "EQ": "==",
    "EQUALS": "==",
    "IS": "==",
    "NE": "!=",
    "NEQ": "!=",
    "<>": "!=",
    "GT": ">",
    "GTE": ">=",
    "GE": ">=",
    "=>": ">=",
    "LT": "<",
    "LTE": "<=",
    "LE": "<=",
    "=<": "<=",
    "&&": "AND",
    "||": "OR",
    "!": "NOT",
    "NOTIN": "NOT_IN",
    "NOT IN": "NOT_IN",
    "NOT-IN": "NOT_IN",
    "HAS": "CONTAINS",
    "INCLUDES": "CONTAINS",
    "REGEX": "MATCHES",
    "MATCH": "MATCHES",
    "LIKE": "MATCHES",
    "EXIST": "EXISTS",
    "ISNULL": "IS_NULL",
    "IS NULL": "IS_NULL",
    "NULL": "IS_NULL",
    "AVERAGE": "AVG",
    "MEAN": "AVG",
    "LEN": "COUNT",
    "LENGTH": "COUNT",
    "EVERY": "ALL",
    "SOME": "ANY",
    "===": "==",
    "!==": "!=",
    "NOT_EQUALS": "!=",
    "NOT_EQUAL": "!=",
    "NOTEQUAL": "!=",
    "EQUAL": "==",
    "GREATER": ">",
    "GREATER_THAN": ">",
    "GREATER_EQUAL": ">=",
    "GREATER_THAN_OR_EQUAL": ">=",
    "LESS": "<",
    "LESS_THAN": "<",
    "LESS_EQUAL": "<=",
    "LESS_THAN_OR_EQUAL": "<=",
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "NOT_NULL": "EXISTS",
    "NOTNULL": "EXISTS",
    "IS_NOT_NULL": "EXISTS",
    "IS NOT NULL": "EXISTS",
    "NOT_EXISTS": "IS_NULL",
    "NOT EXISTS": "IS_NULL",
    "NOTEXISTS": "IS_NULL",
    "MISSING": "IS_NULL",
    "TRUE": "TRUTHY",
    "IS_TRUE": "TRUTHY",
    "BOOL": "TRUTHY",
    "IS_TRUTHY": "TRUTHY",
}
"""Checked before the closest name: a near spelling of the opposite operator (`IS_NOT_NULL`
is one edit from `IS_NULL`) must not be what is suggested."""


def canonical_operator(name: str) -> str | None:
    """Return the canonical spelling of an operator name, or None if it is not one.

    Word operators are case-insensitive (`and`, `not_in`); symbols must match exactly.
    """
    upper = name.strip().upper()
    return upper if upper in OPERATOR_SPECS else None


_SPELLINGS: dict[str, str] = {**{name: name for name in OPERATORS}, **_ALIASES}
"""Every name an operator is written as or reached for -> the operator it means."""


def suggest_operator(name: str) -> str | None:
    """Return the operator the user most likely meant by `name`, or None.

    A misspelt alias counts as the alias (`EQULS` is near `EQUALS`, so `==`; `NOT_EQULS` is
    `!=`, not the nearer-looking operator `NOT_IN`).
    """
    upper = name.strip().upper()
    if upper in _ALIASES:
        return _ALIASES[upper]
    near = closest(upper, _SPELLINGS)
    return _SPELLINGS[near] if near is not None else None
