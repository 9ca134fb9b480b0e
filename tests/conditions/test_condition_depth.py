"""Conditions nested past `MAX_DEPTH`, as dicts or as trees built by hand, are a
`ConditionSyntaxError` naming where, at any depth, never a `RecursionError`."""

from __future__ import annotations

from typing import Any

import pytest

from cascadence.conditions import (
    Aggregate,
    Compare,
    ConditionEvaluator,
    ConditionSyntaxError,
    Logical,
    Node,
    compile_condition,
    parse_condition,
)
from cascadence.conditions.structured import MAX_DEPTH, TOO_DEEP

PAST_THE_LIMIT = ".".join(["conditions[0]"] * (MAX_DEPTH + 1))


def nots(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": "x", "operator": "==", "value": 1}
    for _ in range(depth):
        condition = {"operator": "NOT", "conditions": [condition]}
    return condition


def not_tree(depth: int) -> Node:
    node: Node = Compare("x", "==", 1)
    for _ in range(depth):
        node = Logical("NOT", (node,))
    return node


def only_issue(raw: Any) -> str:
    """Compile `raw`, expecting one too-deep issue; return its path."""
    with pytest.raises(ConditionSyntaxError) as info:
        compile_condition(raw)
    assert len(info.value.issues) == 1
    assert info.value.issues[0].message == TOO_DEEP
    return info.value.issues[0].path


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1000, 10000])
def test_deep_dict_is_one_issue_at_the_limit(depth: int) -> None:
    """compile_condition stops at the 101st level of a dict however deep it goes."""
    assert only_issue(nots(depth)) == PAST_THE_LIMIT


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 10000])
def test_deep_tree_built_by_hand_is_refused(depth: int) -> None:
    """A tree built by hand past the limit is refused where it passes it, by parse_condition,
    compile_condition and ConditionEvaluator alike."""
    tree = not_tree(depth)
    assert only_issue(tree) == PAST_THE_LIMIT
    with pytest.raises(ConditionSyntaxError, match="nested more than"):
        parse_condition(tree)
    with pytest.raises(ConditionSyntaxError, match="nested more than"):
        ConditionEvaluator().compile(tree)


def test_tree_inside_a_dict_counts_from_where_it_sits() -> None:
    """A tree given inside a condition mapping is measured from its place in the mapping."""
    raw = {"operator": "AND", "conditions": [{"field": "y", "operator": "EXISTS"}, not_tree(100)]}
    assert only_issue(raw) == "conditions[1]." + ".".join(["conditions[0]"] * MAX_DEPTH)
    assert compile_condition({"operator": "NOT", "conditions": [not_tree(MAX_DEPTH - 1)]})


def test_per_item_conditions_count_as_levels() -> None:
    """ALL/ANY/NONE per-item conditions are levels of a tree too."""
    node: Node = Compare("", ">", 0)
    for _ in range(MAX_DEPTH + 5):
        node = Aggregate("items", "ALL", condition=node)
    assert only_issue(node) == ".".join(["condition"] * (MAX_DEPTH + 1))


def test_tree_at_the_limit_compiles_and_runs() -> None:
    """A tree exactly MAX_DEPTH levels deep is accepted and evaluates."""
    compiled = compile_condition(not_tree(MAX_DEPTH))
    assert compiled({"x": 1}) is True  # an even number of NOTs
    assert parse_condition(not_tree(MAX_DEPTH)) == not_tree(MAX_DEPTH)
