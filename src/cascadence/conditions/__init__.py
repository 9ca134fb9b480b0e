"""The condition language of cascadence: parse once, compile once, evaluate fast and safely.

A condition is written either in the structured form a YAML file holds::

    {"operator": "AND", "conditions": [
        {"field": "stages.FAST.confidence", "operator": "<", "value": 0.8},
        {"field": "amount", "operator": ">=", "value": 10000}]}

or as one expression string::

    "stages.FAST.confidence < 0.8 and amount >= 10000"

A bare field path is a test of its own: `"is_premium and amount > 100"` holds when `is_premium`
is present, not null and truthy (`{"field": "is_premium", "operator": "TRUTHY"}`).

Both parse into the same frozen tree (`parse_condition`), which compiles into nested closures
(`compile_condition`). Evaluation never raises: a missing field makes a test false, and a type
mismatch makes it false and records an `EvalWarning`. Problems with the condition itself are found
when it is parsed and reported all at once in a `ConditionSyntaxError`.

This package imports nothing else from cascadence except `cascadence.errors.closest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cascadence.conditions.compiler import CompiledCondition
from cascadence.conditions.evaluator import ConditionEvaluator
from cascadence.conditions.expression import ExpressionError, parse_expression
from cascadence.conditions.issues import ConditionIssue, ConditionSyntaxError, EvalWarning
from cascadence.conditions.operators import OPERATORS
from cascadence.conditions.paths import MISSING
from cascadence.conditions.render import to_dict, to_expression
from cascadence.conditions.structured import parse_structured
from cascadence.conditions.tree import (
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Statistic,
    Truthy,
)

__all__ = [
    "Aggregate",
    "Compare",
    "CompiledCondition",
    "ConditionEvaluator",
    "ConditionIssue",
    "ConditionSyntaxError",
    "EvalWarning",
    "Exists",
    "Logical",
    "MISSING",
    "Membership",
    "Node",
    "OPERATORS",
    "Pattern",
    "Statistic",
    "Truthy",
    "compile_condition",
    "parse_condition",
    "to_dict",
    "to_expression",
]


def parse_condition(raw: Mapping[str, Any] | str | Node) -> Node:
    """Parse a condition in either form into its frozen tree.

    Args:
        raw: A condition mapping (as loaded from YAML or JSON), an expression string, or a tree
            (returned unchanged once its depth is checked).

    Returns:
        The canonical tree.

    Raises:
        ConditionSyntaxError: With every issue found (for an expression, the first syntax error,
            with its column).
    """
    if isinstance(raw, str):
        try:
            return parse_expression(raw)
        except ExpressionError as exc:
            issue = ConditionIssue("", exc.message, exc.expected, exc.suggestion, exc.column, raw)
            raise ConditionSyntaxError([issue]) from None
    node, issues = parse_structured(raw)
    if issues or node is None:
        raise ConditionSyntaxError(issues)
    return node


def compile_condition(raw: Mapping[str, Any] | str | Node) -> CompiledCondition:
    """Parse (if needed) and compile a condition into a `CompiledCondition`.

    Raises:
        ConditionSyntaxError: When the condition does not parse.
    """
    node = parse_condition(raw)
    source: Mapping[str, Any] | str = to_dict(node) if isinstance(raw, Node) else raw
    return CompiledCondition.from_node(node, source)
