"""Parse the structured (dict / YAML) form of a condition into the frozen tree.

Every problem is collected, with its path inside the condition, before one
`ConditionSyntaxError` is raised. A string found where a condition is expected (at the root, in
`conditions`, or as `condition`) is parsed as an expression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cascadence.conditions.expression import ExpressionError, parse_expression
from cascadence.conditions.issues import ConditionIssue
from cascadence.conditions.operators import (
    COMPARISONS,
    OPERATOR_SPECS,
    OPERATORS,
    ORDERING,
    canonical_operator,
    suggest_operator,
)
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

__all__ = [
    "KEYS",
    "MAX_DEPTH",
    "TOO_DEEP",
    "TOO_DEEP_EXPECTED",
    "check_scalar",
    "join",
    "parse_structured",
]

MAX_DEPTH: Final = 100
"""Deepest nesting accepted (keeps parsing and evaluation far from recursion limits)."""

TOO_DEEP: Final = f"conditions are nested more than {MAX_DEPTH} levels deep"
"""The message of the issue raised where a condition passes `MAX_DEPTH` levels."""

TOO_DEEP_EXPECTED: Final = (
    f"at most {MAX_DEPTH} levels of nested conditions (AND and OR take any number of "
    "conditions, so a long chain need not nest)"
)
"""What that issue says would have been valid."""

KEYS: Final = ("field", "operator", "value", "conditions", "condition", "compare")
"""Every key a condition mapping may hold."""

_OPERATOR_LIST = ", ".join(OPERATORS)
_COMBINED = {
    "ALL": "every one holds",
    "ANY": "at least one holds",
    "NONE": "none holds",
}
"""What ALL / ANY / NONE mean over a list of conditions (no `field`)."""
_COMPARE_LIST = ", ".join(COMPARISONS)


def join(base: str, key: str) -> str:
    """Append `key` (a name, or `[i]`) to the issue path `base`."""
    if not base:
        return key
    return base + key if key.startswith("[") else f"{base}.{key}"


def check_scalar(value: Any) -> tuple[Scalar, str | None]:
    """Canonicalise a literal scalar, returning `(value, None)` or `(None, error message)`."""
    if value is None or value is True or value is False:
        return value, None
    if isinstance(value, bool):  # a bool subclass: keep its truth value
        return bool(value), None
    if isinstance(value, int):
        return int(value), None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, f"{value!r} is not a finite number"
        return float(value), None
    if isinstance(value, str):
        return str(value), None
    return None, f"expected a string, number, boolean or null, got {type(value).__name__}"


def _describe(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _too_deep_in(node: Node, levels: int) -> str | None:
    """The path, relative to `node`, of the first node nested more than `levels` below it; None
    when there is none. Walks with a stack, so a tree built by hand at any depth is measured."""
    # (node, its depth, (parent's chain, key)) with the chain kept as links, joined on failure
    stack: list[tuple[Node, int, tuple[Any, str] | None]] = [(node, 0, None)]
    while stack:
        current, depth, chain = stack.pop()
        if depth > levels:
            keys: list[str] = []
            while chain is not None:
                chain, key = chain
                keys.append(key)
            path = ""
            for key in reversed(keys):
                path = join(path, key)
            return path
        if isinstance(current, Logical):
            for index in range(len(current.conditions) - 1, -1, -1):
                link = (chain, f"conditions[{index}]")
                stack.append((current.conditions[index], depth + 1, link))
        elif isinstance(current, Aggregate) and current.condition is not None:
            stack.append((current.condition, depth + 1, (chain, "condition")))
    return None


class _Parser:
    """Walks one condition mapping, collecting issues instead of stopping at the first."""

    def __init__(self) -> None:
        self.issues: list[ConditionIssue] = []

    def issue(
        self,
        path: str,
        message: str,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.issues.append(ConditionIssue(path, message, expected, suggestion))

    # -- dispatch -------------------------------------------------------------------------------

    def condition(self, raw: Any, at: str, item: bool, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            self.issue(at, TOO_DEEP, TOO_DEEP_EXPECTED)
            return None
        if isinstance(raw, Node):
            deeper = _too_deep_in(raw, MAX_DEPTH - depth)
            if deeper is not None:
                self.issue(join(at, deeper) if deeper else at, TOO_DEEP, TOO_DEEP_EXPECTED)
                return None
            return raw
        if isinstance(raw, str):
            return self.expression(raw, at, item, depth)
        if not isinstance(raw, Mapping):
            self.issue(
                at,
                f"expected a condition, got {_describe(raw)}",
                expected="a mapping with 'field', 'operator' and 'value', or an expression string",
            )
            return None
        for key in raw:
            if key not in KEYS:
                name = str(key)
                self.issue(
                    join(at, name),
                    f"unknown key {name!r} in a condition",
                    expected=", ".join(KEYS),
                    suggestion=closest(name, KEYS),
                )
        operator = self.operator(raw, at)
        if operator is None:
            return None
        category = OPERATOR_SPECS[operator].category
        if category == "logical":
            return self.logical(raw, operator, at, item, depth)
        if category == "aggregation":
            return self.aggregate(raw, operator, at, item, depth)
        field = self.field(raw, at, item)
        if category == "comparison":
            self.forbid(raw, operator, at, ("conditions", "condition", "compare"))
            return self.compare(raw, operator, field, at)
        if category == "collection":
            self.forbid(raw, operator, at, ("conditions", "condition", "compare"))
            return self.membership(raw, operator, field, at)
        if category == "pattern":
            self.forbid(raw, operator, at, ("conditions", "condition", "compare"))
            return self.pattern(raw, field, at)
        if category == "existence":
            self.forbid(raw, operator, at, ("conditions", "condition", "compare"))
            return self.existence(raw, operator, field, at)
        self.forbid(raw, operator, at, ("conditions", "condition"))
        return self.statistic(raw, operator, field, at)

    def expression(self, text: str, at: str, item: bool, depth: int) -> Node | None:
        try:
            return parse_expression(text, item=item, depth=depth)
        except ExpressionError as exc:
            self.issues.append(
                ConditionIssue(at, exc.message, exc.expected, exc.suggestion, exc.column, text)
            )
            return None

    # -- shared pieces --------------------------------------------------------------------------

    def operator(self, raw: Mapping[Any, Any], at: str) -> str | None:
        where = join(at, "operator")
        value = raw.get("operator")
        if value is None:
            self.issue(where, "'operator' is required", expected=f"one of {_OPERATOR_LIST}")
            return None
        if not isinstance(value, str):
            self.issue(
                where,
                f"'operator' must be a string, got {_describe(value)}",
                expected=f"one of {_OPERATOR_LIST}",
            )
            return None
        operator = canonical_operator(value)
        if operator is None:
            self.issue(
                where,
                f"unknown operator {value!r}",
                expected=f"one of {_OPERATOR_LIST}",
                suggestion=suggest_operator(value),
            )
        return operator

    def field(
        self, raw: Mapping[Any, Any], at: str, item: bool, required: str | None = None
    ) -> str | None:
        where = join(at, "field")
        if "field" not in raw or raw["field"] is None:
            self.issue(
                where, "'field' is required", expected=required or "a dot path such as 'user.age'"
            )
            return None
        value = raw["field"]
        if not isinstance(value, str):
            self.issue(
                where,
                f"'field' must be a string, got {_describe(value)}",
                expected="a dot path such as 'user.age'",
            )
            return None
        try:
            split_path(value, allow_item=item)
        except ValueError as exc:
            self.issue(where, str(exc), expected="a dot path such as 'user.age'")
            return None
        return "" if value == "." else value

    def existence(
        self, raw: Mapping[Any, Any], operator: str, field: str | None, at: str
    ) -> Node | None:
        """EXISTS / IS_NULL / TRUTHY, with an optional `value: true` (the same) or `false`
        (negated)."""
        wanted = raw.get("value")
        if wanted is not None and not isinstance(wanted, bool):
            self.issue(
                join(at, "value"),
                f"{operator} takes no value other than true or false, got {_describe(wanted)}",
                expected=f"no 'value', or true ({operator}) or false (NOT {operator})",
            )
            return None
        if field is None:
            return None
        node = Truthy(field) if operator == "TRUTHY" else Exists(field, operator)
        return Logical("NOT", (node,)) if wanted is False else node

    def forbid(self, raw: Mapping[Any, Any], operator: str, at: str, keys: Sequence[str]) -> None:
        for key in keys:
            if raw.get(key) is not None:
                self.issue(join(at, key), f"{operator} takes no {key!r}")

    def scalar(self, value: Any, where: str, *, ordering: str | None = None) -> Scalar:
        scalar, error = check_scalar(value)
        if error is not None:
            self.issue(where, error, expected="a string, number, boolean or null")
        elif ordering is not None and (scalar is None or isinstance(scalar, bool)):
            self.issue(
                where,
                f"{ordering!r} orders values and cannot compare with {_describe(scalar)}",
                expected="a number or a string",
            )
        return scalar

    def required_value(self, raw: Mapping[Any, Any], operator: str, at: str) -> bool:
        if "value" not in raw:
            self.issue(
                join(at, "value"),
                f"{operator} needs a 'value'",
                expected=OPERATOR_SPECS[operator].value,
            )
            return False
        return True

    def compare_key(self, raw: Mapping[Any, Any], at: str) -> str | None:
        value = raw.get("compare")
        if value is None:
            return "=="
        if value not in COMPARISONS:
            text = str(value)
            self.issue(
                join(at, "compare"),
                f"unknown comparison {text!r}",
                expected=f"one of {_COMPARE_LIST}",
                suggestion=suggest_operator(text) if isinstance(value, str) else None,
            )
            return None
        return str(value)

    # -- one method per category ----------------------------------------------------------------

    def logical(
        self, raw: Mapping[Any, Any], operator: str, at: str, item: bool, depth: int
    ) -> Node | None:
        self.forbid(raw, operator, at, ("field", "value", "compare"))
        children_raw = raw.get("conditions")
        single = raw.get("condition")
        if operator == "NOT" and single is not None:
            if children_raw is not None:
                self.issue(at, "NOT takes either 'condition' or 'conditions', not both")
                return None
            child = self.condition(single, join(at, "condition"), item, depth + 1)
            return None if child is None else Logical("NOT", (child,))
        if operator != "NOT" and single is not None:
            self.issue(
                join(at, "condition"),
                f"{operator} takes a list under 'conditions'",
                suggestion="conditions",
            )
        if children_raw is None:
            self.issue(
                join(at, "conditions"),
                f"{operator} needs 'conditions'",
                expected="a list of conditions",
            )
            return None
        valid = self.children(children_raw, operator, at, item, depth)
        if valid is None:
            return None
        if operator != "NOT" and len(valid) == 1:
            return valid[0]
        return Logical(operator, valid)

    def children(
        self, listed: Any, operator: str, at: str, item: bool, depth: int
    ) -> tuple[Node, ...] | None:
        """The conditions listed under `conditions` (of `at`), or None after an issue."""
        where = join(at, "conditions")
        if isinstance(listed, (str, bytes, Mapping)) or not isinstance(listed, Sequence):
            self.issue(
                where,
                f"'conditions' must be a list, got {_describe(listed)}",
                expected="a list of conditions",
            )
            return None
        if not listed:
            self.issue(where, f"{operator} needs at least one condition")
            return None
        if operator == "NOT" and len(listed) != 1:
            self.issue(
                where,
                f"NOT takes exactly one condition, got {len(listed)}",
                expected="one condition (wrap several in AND or OR)",
            )
            return None
        children = [
            self.condition(child, join(where, f"[{i}]"), item, depth + 1)
            for i, child in enumerate(listed)
        ]
        valid = tuple(c for c in children if c is not None)
        return valid if len(valid) == len(children) else None

    def compare(
        self, raw: Mapping[Any, Any], operator: str, field: str | None, at: str
    ) -> Node | None:
        if not self.required_value(raw, operator, at):
            return None
        ordering = operator if operator in ORDERING else None
        before = len(self.issues)
        value = self.scalar(raw["value"], join(at, "value"), ordering=ordering)
        if field is None or len(self.issues) != before:
            return None
        return Compare(field, operator, value)

    def membership(
        self, raw: Mapping[Any, Any], operator: str, field: str | None, at: str
    ) -> Node | None:
        if not self.required_value(raw, operator, at):
            return None
        where = join(at, "value")
        value = raw["value"]
        before = len(self.issues)
        if operator == "CONTAINS":
            scalar = self.scalar(value, where)
            if field is None or len(self.issues) != before:
                return None
            return Membership(field, operator, scalar)
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            self.issue(
                where,
                f"{operator} needs a list of values, got {_describe(value)}",
                expected='a list, e.g. ["a", "b"]',
            )
            return None
        items = tuple(self.scalar(v, join(where, f"[{i}]")) for i, v in enumerate(value))
        if field is None or len(self.issues) != before:
            return None
        return Membership(field, operator, items)

    def pattern(self, raw: Mapping[Any, Any], field: str | None, at: str) -> Node | None:
        if not self.required_value(raw, "MATCHES", at):
            return None
        where = join(at, "value")
        value = raw["value"]
        if not isinstance(value, str):
            self.issue(
                where,
                f"MATCHES needs a regular expression string, got {_describe(value)}",
                expected="a regular expression string",
            )
            return None
        try:
            compile_pattern(value)
        except RegexRejected as exc:
            self.issue(where, str(exc), expected=exc.hint)
            return None
        return None if field is None else Pattern(field, str(value))

    def aggregate(
        self, raw: Mapping[Any, Any], operator: str, at: str, item: bool, depth: int
    ) -> Node | None:
        """ALL / ANY / NONE: over the items of `field` (compared with `value`, or tested with a
        per-item `condition` or the AND of `conditions`), or, with no `field`, over the listed
        `conditions` themselves (all hold, at least one holds, none holds)."""
        nested = raw.get("condition")
        listed = raw.get("conditions")
        if nested is not None and listed is not None:
            self.issue(
                at,
                f"{operator} takes either 'condition' or 'conditions', not both",
                expected="one per-item condition under 'condition', or a list under 'conditions'",
            )
            return None
        if listed is not None and raw.get("field") is None:
            return self.combined(raw, operator, at, item, depth)
        field = self.field(
            raw,
            at,
            item,
            required=(
                "a dot path such as 'items' (the list whose items are tested), or no 'field' "
                "and a list of conditions under 'conditions'"
            ),
        )
        compare = self.compare_key(raw, at)
        if listed is not None:
            if raw.get("value") is not None:
                self.issue(at, f"{operator} takes either 'value' or 'conditions', not both")
                return None
            if raw.get("compare") is not None:
                self.issue(join(at, "compare"), "'compare' applies to 'value', not 'conditions'")
            children = self.children(listed, operator, at, True, depth)
            if children is None or field is None:
                return None
            per_item = children[0] if len(children) == 1 else Logical("AND", children)
            return Aggregate(field, operator, condition=per_item)
        if nested is not None:
            if raw.get("value") is not None:
                self.issue(at, f"{operator} takes either 'value' or 'condition', not both")
                return None
            if raw.get("compare") is not None:
                self.issue(join(at, "compare"), "'compare' applies to 'value', not 'condition'")
            child = self.condition(nested, join(at, "condition"), True, depth + 1)
            if child is None or field is None:
                return None
            return Aggregate(field, operator, condition=child)
        if "value" not in raw:
            self.issue(
                join(at, "value"),
                f"{operator} needs a 'value' (each item is compared with it) or a 'condition' "
                "(or 'conditions') that each item is tested against",
                expected=(
                    "a scalar, or a per-item condition under 'condition' (or a list of them "
                    "under 'conditions')"
                ),
            )
            return None
        before = len(self.issues)
        ordering = compare if compare in ORDERING else None
        value = self.scalar(raw["value"], join(at, "value"), ordering=ordering)
        if field is None or compare is None or len(self.issues) != before:
            return None
        return Aggregate(field, operator, compare, value)

    def combined(
        self, raw: Mapping[Any, Any], operator: str, at: str, item: bool, depth: int
    ) -> Node | None:
        """ALL / ANY / NONE with no `field`: AND, OR or NOR of the listed `conditions`."""
        for key in ("value", "compare"):
            if raw.get(key) is not None:
                self.issue(
                    join(at, key),
                    f"{operator} without 'field' takes no {key!r}",
                    expected=(
                        f"a 'field' (the list whose items are compared with 'value'), "
                        f"or only 'conditions' ({_COMBINED[operator]})"
                    ),
                )
        children = self.children(raw["conditions"], operator, at, item, depth)
        if children is None:
            return None
        logical = "AND" if operator == "ALL" else "OR"
        either = children[0] if len(children) == 1 else Logical(logical, children)
        return Logical("NOT", (either,)) if operator == "NONE" else either

    def statistic(
        self, raw: Mapping[Any, Any], operator: str, field: str | None, at: str
    ) -> Node | None:
        compare = self.compare_key(raw, at)
        if not self.required_value(raw, operator, at):
            return None
        value = raw["value"]
        number, error = check_scalar(value)
        if error is not None or isinstance(number, (bool, str)) or number is None:
            self.issue(
                join(at, "value"),
                error or f"{operator} compares with a number, got {_describe(value)}",
                expected="a number",
            )
            return None
        if field is None or compare is None:
            return None
        return Statistic(field, operator, compare, number)


def parse_structured(raw: Any, *, item: bool = False) -> tuple[Node | None, list[ConditionIssue]]:
    """Parse a condition mapping (or expression string) into a tree.

    Args:
        raw: The condition as loaded from YAML/JSON, a string, or an already built node.
        item: Whether the condition is relative to a list item (inside ALL/ANY/NONE).

    Returns:
        `(node, issues)`; node is None exactly when issues is non-empty.
    """
    parser = _Parser()
    node = parser.condition(raw, "", item, 0)
    if parser.issues:
        return None, parser.issues
    if node is None:  # pragma: no cover - every None return records an issue
        return None, [ConditionIssue("", "invalid condition")]
    return node, []
