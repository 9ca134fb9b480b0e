"""Find the first of several compiled conditions that holds, reading shared fields once.

A stage's routing rules are scanned in priority order until one matches, and most of them
usually read the same field (`stages.FAST_CHECK.confidence < 0.5`, `... < 0.8`, `... >= 0.95`).
`compile_scan` turns such a list into one function that, for each run of consecutive
comparisons of one field with literals of one kind (numbers, or strings), reads the field once
and compares it with each literal by a C-level `operator` call, instead of calling one closure
per rule that reads the field again.

The shortcut only decides where the rules' own closures would take their fast path too: both
the input and the value read are plain dicts and values of the literal's kind (`int`/`float`
for numbers, `str` for strings), where every comparison leaf returns exactly `value op
literal`. Anything else (a missing field, a value of another type, objects, longer paths) falls
back to calling the closures in order, so warnings and edge cases are those of the closures.

A scan returns the 1-based position of the first condition that holds, and 0 when none does, so
that the scan of a single parsed condition is that condition's own closure (True is 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cascadence.conditions.compiler import field_path
from cascadence.conditions.leaves import COMPARE_FUNCS, Fn, Warnings
from cascadence.conditions.paths import MISSING, PLAIN_DICTS, make_access
from cascadence.conditions.tree import Compare, Node

__all__ = ["Check", "FieldTable", "Scan", "compile_scan", "decided_value", "field_table"]

Scan = Callable[[Any, Any, Warnings], int]
"""`scan(data, stages, warnings) -> 1 + index of the first condition that holds, or 0`."""

_Field = tuple[bool, str, "str | None"]
"""Where a comparison reads: staged, first segment, second segment (see `paths.Access`)."""
_Check = tuple[type, type, Callable[[Any, Any], Any], Any, Fn, int]
"""One comparison: the value classes it decides, its operator, literal, closure and position."""


def _comparison(node: Node | None) -> tuple[_Field, type, type] | None:
    """Where a comparison the shortcut can decide reads, and the value classes it decides."""
    if not isinstance(node, Compare) or node.op not in COMPARE_FUNCS:
        return None
    v = node.value
    if type(v) is str:
        kinds: tuple[type, type] = (str, str)
    elif type(v) is int or type(v) is float:
        kinds = (int, float)
    else:  # bools, None: the leaves compare by identity
        return None
    access = make_access(field_path(node.field))  # as the leaf reads it
    if not access.fast:
        return None
    return (access.staged, access.k1, access.k2), *kinds


Check = tuple[Callable[[Any, Any], Any], Any]
"""(operator, literal): `operator(value, literal)` decides one condition."""
FieldTable = tuple[bool, str, "str | None", type, type, tuple[Check, ...]]
"""Conditions that all compare one field with literals of one kind: where the field is read
(staged, first segment, second segment), the two value classes the comparisons decide, and
(operator, literal) per condition, in order."""


def field_table(nodes: Sequence[Node | None]) -> FieldTable | None:
    """The `FieldTable` of `nodes`, or None unless every one is a comparison of the same field
    with a literal of the same kind.

    For a value of one of the table's classes read from a plain dict, `operator(value,
    literal)` is exactly what each condition's closure returns (see the module docstring);
    for anything else the closures decide.
    """
    key: tuple[_Field, type, type] | None = None
    checks: list[Check] = []
    for node in nodes:
        found = _comparison(node)
        if found is None or (key is not None and found != key):
            return None
        assert isinstance(node, Compare)
        key = found
        checks.append((COMPARE_FUNCS[node.op], node.value))
    if key is None:
        return None
    (staged, k1, k2), kind1, kind2 = key
    return staged, k1, k2, kind1, kind2, tuple(checks)


def compile_scan(conditions: Sequence[tuple[Fn, Node | None]]) -> Scan:
    """Build the scan of `conditions`, given as `(compiled closure, parsed tree or None)`.

    `scan(data, stages, warnings)` returns 1 + the index of the first condition that holds, or
    0; it evaluates exactly what calling the closures in order until one holds would evaluate.
    """
    if len(conditions) == 1 and conditions[0][1] is not None:
        return conditions[0][0]  # a compiled tree returns a bool: True is position 1
    parts: list[Scan] = []
    tests: list[tuple[Fn, int]] = []
    run: list[_Check] = []
    run_key: tuple[_Field, type, type] | None = None  # comparisons of one field and one kind

    def close_run() -> None:
        nonlocal run_key
        if len(run) == 1:  # a lone comparison: its closure is as fast
            tests.append((run[0][4], run[0][5]))
        elif run:
            close_tests()
            assert run_key is not None
            parts.append(_same_field(run_key[0], tuple(run)))
        run.clear()
        run_key = None

    def close_tests() -> None:
        if tests:
            parts.append(_tests(tuple(tests)))
            tests.clear()

    for position, (fn, node) in enumerate(conditions, 1):
        found = _comparison(node)
        if found is not None and found != run_key:
            close_run()
            run_key = found
        if found is not None:
            assert isinstance(node, Compare)
            run.append((found[1], found[2], COMPARE_FUNCS[node.op], node.value, fn, position))
            continue
        close_run()
        tests.append((fn, position))
    close_run()
    close_tests()
    if not parts:
        return _none
    if len(parts) == 1:
        return parts[0]
    return _chain(tuple(parts))


def _none(data: Any, stages: Any, warnings: Warnings) -> int:
    return 0


def _chain(parts: tuple[Scan, ...]) -> Scan:
    def chain(data: Any, stages: Any, warnings: Warnings) -> int:
        for part in parts:
            found = part(data, stages, warnings)
            if found:
                return found
        return 0

    return chain


def _tests(tests: tuple[tuple[Fn, int], ...]) -> Scan:
    if len(tests) == 1:
        ((test, position),) = tests

        def scan_test(data: Any, stages: Any, warnings: Warnings) -> int:
            return position if test(data, stages, warnings) else 0

        return scan_test

    def scan_tests(data: Any, stages: Any, warnings: Warnings) -> int:
        for test, position in tests:
            if test(data, stages, warnings):
                return position
        return 0

    return scan_tests


def _same_field(field: _Field, checks: tuple[_Check, ...]) -> Scan:
    """Consecutive comparisons of one field: read it once, compare it with each literal."""
    staged, k1, k2 = field
    missing = MISSING
    compares = tuple((compare, literal, pos) for _k1, _k2, compare, literal, _t, pos in checks)
    kind1, kind2 = checks[0][0], checks[0][1]  # the same for every check of the run
    fallback = _tests(tuple((test, pos) for _k1, _k2, _c, _l, test, pos in checks))

    def scan_field(data: Any, stages: Any, warnings: Warnings) -> int:
        x = decided_value(staged, k1, k2, kind1, kind2, data, stages)
        if x is missing:
            return fallback(data, stages, warnings)
        for compare, literal, position in compares:
            if compare(x, literal):
                return position
        return 0

    return scan_field


def decided_value(
    staged: bool, k1: str, k2: str | None, kind1: type, kind2: type, data: Any, stages: Any
) -> Any:
    """The value a run of comparisons (or a `FieldTable`) decides by itself: the field read
    from a plain dict, when it is of one of the two classes; else `MISSING`, and the
    conditions' own closures must decide."""
    src = stages if staged else data
    if src.__class__ is not dict:
        return MISSING
    x = src.get(k1, MISSING)
    if k2 is not None:
        if x.__class__ in PLAIN_DICTS:
            x = _dict_get(x, k2, MISSING)
        else:
            x = x.get(k2, MISSING) if isinstance(x, dict) else MISSING
    cls = x.__class__
    return x if cls is kind1 or cls is kind2 else MISSING


_dict_get: Callable[..., Any] = dict.get
