"""The slow, explaining evaluation behind `CompiledCondition.explain`, for debugging rules."""

from __future__ import annotations

from typing import Any

from cascadence.conditions.compiler import compile_node, field_path, warning_path
from cascadence.conditions.issues import EvalWarning
from cascadence.conditions.leaves import statistic_value
from cascadence.conditions.paths import MISSING, STAGES, resolve
from cascadence.conditions.tree import (
    LEAF_TYPES,
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Statistic,
)

__all__ = ["explain_node"]


def _read(field: str, data: Any, stages: Any) -> Any:
    segments = field_path(field)
    try:
        if segments and segments[0] == STAGES:
            return resolve(stages, segments[1:])
        return resolve(data, segments)
    except Exception:  # the leaf itself reports the error as a warning
        return MISSING


def _expected(node: Node) -> Any:
    if isinstance(node, (Compare, Statistic)):
        return node.value
    if isinstance(node, Membership):
        return list(node.value) if isinstance(node.value, tuple) else node.value
    if isinstance(node, Pattern):
        return node.pattern
    if isinstance(node, Aggregate) and node.condition is None:
        return node.value
    return None


def explain_node(node: Node, data: Any, stages: Any, base: str | None) -> dict[str, Any]:
    """Evaluate `node` without short-circuiting and describe every step.

    Args:
        node: The tree (or subtree) to explain.
        data: The input document, or the list item inside a per-item condition.
        stages: The stage-results mapping, or None.
        base: Warning path of the enclosing list inside a per-item condition, else None.
    """
    if isinstance(node, Logical):
        children = [explain_node(child, data, stages, base) for child in node.conditions]
        if node.op == "AND":
            matched = all(child["matched"] for child in children)
        elif node.op == "OR":
            matched = any(child["matched"] for child in children)
        else:
            matched = not children[0]["matched"]
        return {
            "matched": matched,
            "operator": node.op,
            "field": None,
            "missing": False,
            "expected": None,
            "children": children,
        }
    if not isinstance(node, LEAF_TYPES):
        raise TypeError(f"not a condition node: {node!r}")
    field = node.field
    warnings: list[EvalWarning] = []
    matched = compile_node(node, base)(data, stages, warnings)
    value = _read(field, data, stages)
    entry: dict[str, Any] = {
        "matched": matched,
        "operator": "MATCHES" if isinstance(node, Pattern) else node.op,
        "field": warning_path(field, base),
    }
    if value is not MISSING:
        entry["value"] = value
    entry["missing"] = value is MISSING
    entry["expected"] = _expected(node)
    if isinstance(node, (Aggregate, Statistic)) and (
        isinstance(node, Statistic) or node.condition is None
    ):
        entry["compare"] = node.compare
    if isinstance(node, Statistic) and isinstance(value, (list, tuple)):
        try:
            statistic = statistic_value(node.op, value)
        except Exception:  # e.g. an int sum too large for a float mean
            statistic = MISSING
        if statistic is not MISSING and not isinstance(statistic, str):
            entry["statistic"] = statistic
    items: list[dict[str, Any]] = []
    if (
        isinstance(node, Aggregate)
        and node.condition is not None
        and isinstance(value, (list, tuple))
    ):
        path = warning_path(field, base)
        items = [explain_node(node.condition, item, stages, path) for item in value]
    entry["children"] = items
    if warnings:
        entry["warnings"] = [w.message for w in warnings]
    if isinstance(node, Exists):
        entry["expected"] = None
    return entry
