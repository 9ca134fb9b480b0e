"""Compile a condition tree, once, into nested closures.

The closure tree mirrors the condition tree: each leaf closure holds its getter (the path split
at compile time), its literal (a frozenset for `IN`), its compiled regex and its comparison; each
logical closure holds its children and short-circuits. Evaluating walks no dicts of the condition,
builds no strings and generates no code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cascadence.conditions.issues import EvalWarning
from cascadence.conditions.leaves import (
    Fn,
    Warnings,
    compare_leaf,
    contains_leaf,
    exists_leaf,
    membership_leaf,
    pattern_leaf,
    truthy_leaf,
)
from cascadence.conditions.lists import aggregate_leaf, statistic_leaf
from cascadence.conditions.paths import STAGES, make_access, split_path, stage_name
from cascadence.conditions.regex import compile_pattern
from cascadence.conditions.tree import (
    LEAF_TYPES,
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Truthy,
)

__all__ = [
    "CompiledCondition",
    "compile_node",
    "field_path",
    "referenced",
    "warning_path",
]


def field_path(field: str) -> tuple[str, ...]:
    """Split a field of a parsed tree (already validated) into segments."""
    return split_path(field, allow_item=True)


def warning_path(field: str, base: str | None) -> str:
    """The path a warning names: absolute, or `list[].field` inside a per-item condition."""
    if base is None or field == STAGES or field.startswith(STAGES + "."):
        return field
    return f"{base}[].{field}" if field else f"{base}[]"


def compile_node(node: Node, base: str | None = None) -> Fn:
    """Compile `node` into `fn(data, stages, warnings) -> bool`.

    Args:
        node: The tree to compile.
        base: The warning path of the list whose items `node` is evaluated on, or None at the
            top level.
    """
    if isinstance(node, Logical):
        children = [compile_node(child, base) for child in node.conditions]
        if node.op == "NOT":
            return _not(children[0])
        return _and(children) if node.op == "AND" else _or(children)
    if not isinstance(node, LEAF_TYPES):
        raise TypeError(f"not a condition node: {node!r}")
    path = warning_path(node.field, base)
    access = make_access(field_path(node.field))
    if isinstance(node, Compare):
        return compare_leaf(access, node.op, node.value, path)
    if isinstance(node, Membership):
        if node.op == "CONTAINS":
            if isinstance(node.value, tuple):
                raise TypeError("CONTAINS looks for one value, not a tuple")
            return contains_leaf(access, node.value, path)
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        return membership_leaf(access, node.op == "NOT_IN", values, path)
    if isinstance(node, Pattern):
        return pattern_leaf(access, compile_pattern(node.pattern), path)
    if isinstance(node, Exists):
        return exists_leaf(access, node.op == "EXISTS", path)
    if isinstance(node, Truthy):
        return truthy_leaf(access, path)
    if isinstance(node, Aggregate):
        if node.condition is not None:
            test = compile_node(node.condition, path)
        else:
            test = compare_leaf(make_access(()), node.compare, node.value, f"{path}[]")
        return aggregate_leaf(access, node.op, test, path)
    return statistic_leaf(access, node.op, node.compare, node.value, path)


# -- logical ----------------------------------------------------------------------------------


def _not(child: Fn) -> Fn:
    def negate(data: Any, stages: Any, warnings: Warnings) -> bool:
        return not child(data, stages, warnings)

    return negate


def _and(children: list[Fn]) -> Fn:
    if len(children) == 2:
        a, b = children

        def and2(data: Any, stages: Any, warnings: Warnings) -> bool:
            return a(data, stages, warnings) and b(data, stages, warnings)

        return and2
    if len(children) == 3:
        a, b, c = children

        def and3(data: Any, stages: Any, warnings: Warnings) -> bool:
            return (
                a(data, stages, warnings)
                and b(data, stages, warnings)
                and c(data, stages, warnings)
            )

        return and3
    if len(children) == 4:
        a, b, c, d = children

        def and4(data: Any, stages: Any, warnings: Warnings) -> bool:
            return (
                a(data, stages, warnings)
                and b(data, stages, warnings)
                and c(data, stages, warnings)
                and d(data, stages, warnings)
            )

        return and4
    fns = tuple(children)

    # Explicit loops instead of all()/any() over a generator: no generator object per call.
    def and_n(data: Any, stages: Any, warnings: Warnings) -> bool:
        for fn in fns:  # noqa: SIM110
            if not fn(data, stages, warnings):
                return False
        return True

    return and_n


def _or(children: list[Fn]) -> Fn:
    if len(children) == 2:
        a, b = children

        def or2(data: Any, stages: Any, warnings: Warnings) -> bool:
            return a(data, stages, warnings) or b(data, stages, warnings)

        return or2
    if len(children) == 3:
        a, b, c = children

        def or3(data: Any, stages: Any, warnings: Warnings) -> bool:
            return (
                a(data, stages, warnings) or b(data, stages, warnings) or c(data, stages, warnings)
            )

        return or3
    if len(children) == 4:
        a, b, c, d = children

        def or4(data: Any, stages: Any, warnings: Warnings) -> bool:
            return (
                a(data, stages, warnings)
                or b(data, stages, warnings)
                or c(data, stages, warnings)
                or d(data, stages, warnings)
            )

        return or4
    fns = tuple(children)

    def or_n(data: Any, stages: Any, warnings: Warnings) -> bool:
        for fn in fns:  # noqa: SIM110
            if fn(data, stages, warnings):
                return True
        return False

    return or_n


# -- the public compiled object ---------------------------------------------------------------


def referenced(node: Node) -> tuple[frozenset[str], frozenset[str]]:
    """Return `(fields, stage_refs)`: absolute paths read, and stage names read via `stages.`.

    Paths relative to list items are not included; the list's own path is.
    """
    fields: set[str] = set()
    stages: set[str] = set()

    def visit(current: Node, relative: bool) -> None:
        if isinstance(current, Logical):
            for child in current.conditions:
                visit(child, relative)
            return
        if not isinstance(current, LEAF_TYPES):
            raise TypeError(f"not a condition node: {current!r}")
        field = current.field
        segments = field_path(field)
        absolute = bool(segments) and segments[0] == STAGES
        if absolute or not relative:
            fields.add(field)
            name = stage_name(segments)
            if name is not None:
                stages.add(name)
        if isinstance(current, Aggregate) and current.condition is not None:
            visit(current.condition, True)

    visit(node, False)
    return frozenset(fields), frozenset(stages)


class CompiledCondition:
    """A condition compiled into a plain callable.

    Call it as `condition(data, stages=None, warnings=None) -> bool`; the hot path may call the
    raw closure `condition.fn(data, stages, warnings)` directly and save one call.

    Attributes:
        node: The parsed tree.
        source: What the condition was compiled from (a mapping or an expression string).
        fields: Every absolute path the condition reads.
        stage_refs: Names of the stages read through `stages.NAME...`.
        fn: The compiled closure `fn(data, stages, warnings) -> bool`.
    """

    __slots__ = ("fields", "fn", "node", "source", "stage_refs")

    def __init__(
        self,
        node: Node,
        source: Mapping[str, Any] | str,
        fields: frozenset[str],
        stage_refs: frozenset[str],
        fn: Fn,
    ) -> None:
        self.node = node
        self.source = source
        self.fields = fields
        self.stage_refs = stage_refs
        self.fn = fn

    @classmethod
    def from_node(cls, node: Node, source: Mapping[str, Any] | str) -> CompiledCondition:
        """Compile a parsed tree."""
        fields, stage_refs = referenced(node)
        return cls(node, source, fields, stage_refs, compile_node(node))

    def __call__(
        self,
        data: Any,
        stages: Mapping[str, Any] | None = None,
        warnings: list[EvalWarning] | None = None,
    ) -> bool:
        """Evaluate the condition; never raises.

        Args:
            data: The input document (mapping, object, or nested lists and mappings).
            stages: Stage name -> stage result (an object or a mapping), for `stages.` paths.
            warnings: A list that receives an `EvalWarning` per type mismatch seen.
        """
        return self.fn(data, stages, warnings)

    def explain(self, data: Any, stages: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Evaluate slowly, reporting for every node what it read and what it decided.

        Returns:
            A nested dict: `matched`, `operator`, `field`, `value` (left out when the field is
            missing), `missing`, `expected` and `children` (for logical nodes and per-item
            conditions), plus `warnings` where a type mismatch was seen.
        """
        from cascadence.conditions.explain import explain_node

        return explain_node(self.node, data, stages, None)

    def __reduce__(self) -> tuple[Any, ...]:
        # Closures do not pickle; the tree does, and recompiling it is cheap.
        return (_recompile, (self.node, self.source))

    def __repr__(self) -> str:
        from cascadence.conditions.render import to_expression

        return f"CompiledCondition({to_expression(self.node)!r})"


def _recompile(node: Node, source: Mapping[str, Any] | str) -> CompiledCondition:
    return CompiledCondition.from_node(node, source)
