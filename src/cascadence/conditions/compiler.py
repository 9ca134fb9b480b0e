"""Compile a condition tree, once, into nested closures.

The closure tree mirrors the condition tree: each leaf closure holds its getter (the path split
at compile time), its literal (a frozenset for `IN`), its compiled regex and its comparison; each
logical closure holds its children and short-circuits. Evaluating walks no dicts of the condition,
builds no strings and generates no code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cascadence.conditions.issues import EvalWarning
from cascadence.conditions.leaves import (
    COMPARE_FUNCS,
    Fn,
    Warnings,
    compare_leaf,
    contains_leaf,
    exists_leaf,
    fail,
    is_number,
    membership_leaf,
    pattern_leaf,
    warn,
)
from cascadence.conditions.paths import MISSING, STAGES, Getter, make_getter, split_path, stage_name
from cascadence.conditions.regex import compile_pattern
from cascadence.conditions.tree import (
    Aggregate,
    Compare,
    Exists,
    Logical,
    Membership,
    Node,
    Pattern,
    Statistic,
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
    path = warning_path(node.field, base)  # type: ignore[attr-defined]
    get = make_getter(field_path(node.field))  # type: ignore[attr-defined]
    if isinstance(node, Compare):
        return compare_leaf(get, node.op, node.value, path)
    if isinstance(node, Membership):
        if node.op == "CONTAINS":
            assert not isinstance(node.value, tuple)
            return contains_leaf(get, node.value, path)
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        return membership_leaf(get, node.op == "NOT_IN", values, path)
    if isinstance(node, Pattern):
        search, _engine = compile_pattern(node.pattern)
        return pattern_leaf(get, search, path)
    if isinstance(node, Exists):
        return exists_leaf(get, node.op == "EXISTS", path)
    if isinstance(node, Aggregate):
        if node.condition is not None:
            test = compile_node(node.condition, path)
        else:
            test = compare_leaf(make_getter(()), node.compare, node.value, f"{path}[]")
        return _aggregate(get, node.op, test, path)
    if isinstance(node, Statistic):
        return _statistic(get, node.op, node.compare, node.value, path)
    raise TypeError(f"not a condition node: {node!r}")


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
    fns = tuple(children)

    def or_n(data: Any, stages: Any, warnings: Warnings) -> bool:
        for fn in fns:  # noqa: SIM110
            if fn(data, stages, warnings):
                return True
        return False

    return or_n


# -- lists ------------------------------------------------------------------------------------


def _not_a_list(x: Any, warnings: Warnings, path: str, op: str) -> bool:
    if x is MISSING or x is None:
        return False
    kind = "null" if x is None else type(x).__name__
    return warn(warnings, path, f"{op} needs a list, got {kind}")


def _aggregate(get: Getter, op: str, test: Fn, path: str) -> Fn:
    if op == "ANY":

        def any_item(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                items = get(data, stages)
                cls = items.__class__
                if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                    return _not_a_list(items, warnings, path, op)
                for item in items:  # noqa: SIM110
                    if test(item, stages, warnings):
                        return True
                return False
            except Exception as exc:
                return fail(warnings, path, exc)

        return any_item
    if op == "NONE":

        def no_item(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                items = get(data, stages)
                cls = items.__class__
                if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                    return _not_a_list(items, warnings, path, op)
                for item in items:  # noqa: SIM110
                    if test(item, stages, warnings):
                        return False
                return True
            except Exception as exc:
                return fail(warnings, path, exc)

        return no_item

    def every_item(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            items = get(data, stages)
            cls = items.__class__
            if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                return _not_a_list(items, warnings, path, op)
            for item in items:  # noqa: SIM110
                if not test(item, stages, warnings):
                    return False
            return True
        except Exception as exc:
            return fail(warnings, path, exc)

    return every_item


def _avg(items: Any) -> Any:
    return sum(items) / len(items)


_STAT_FUNCS: dict[str, Callable[[Any], Any]] = {
    "SUM": sum,
    "AVG": _avg,
    "MIN": min,
    "MAX": max,
    "COUNT": len,
}


def _non_number(items: Any) -> str | None:
    """Describe the first item that is not a number, or None when all are."""
    for item in items:
        if not is_number(item):
            return "null" if item is None else type(item).__name__
    return None


def _statistic(get: Getter, op: str, compare: str, value: float, path: str) -> Fn:
    cmp = COMPARE_FUNCS[compare]
    func = _STAT_FUNCS[op]
    needs_items = op in ("AVG", "MIN", "MAX")

    if op == "COUNT":

        def count(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                items = get(data, stages)
                cls = items.__class__
                if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                    return _not_a_list(items, warnings, path, op)
                return bool(cmp(len(items), value))
            except Exception as exc:
                return fail(warnings, path, exc)

        return count

    def statistic(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            items = get(data, stages)
            cls = items.__class__
            if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                return _not_a_list(items, warnings, path, op)
            # A plain loop over item classes is the cheapest exact check for short lists.
            for item in items:
                kind = item.__class__
                if kind is not int and kind is not float:
                    bad = _non_number(items)
                    if bad is not None:
                        return warn(warnings, path, f"{op} needs numbers, found a {bad}")
                    break
            if needs_items and not items:
                return False
            return bool(cmp(func(items), value))
        except Exception as exc:
            return fail(warnings, path, exc)

    return statistic


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
        field: str = current.field  # type: ignore[attr-defined]
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

    def __repr__(self) -> str:
        from cascadence.conditions.render import to_expression

        return f"CompiledCondition({to_expression(self.node)!r})"
