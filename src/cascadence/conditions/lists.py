"""Closures for the list operators: `ALL`, `ANY`, `NONE` and `SUM`, `AVG`, `MIN`, `MAX`, `COUNT`.

The field must be a list (or tuple). A missing or null field makes the test False quietly;
anything else that is not a list is a type mismatch (False plus a warning). The statistics need
numbers (never bools); `AVG`, `MIN` and `MAX` of an empty list are False.
"""

from __future__ import annotations

from typing import Any

from cascadence.conditions.leaves import COMPARE_FUNCS, Fn, Warnings, fail, is_number, warn
from cascadence.conditions.paths import MISSING, Access

__all__ = ["aggregate_leaf", "statistic_leaf"]


def _not_a_list(x: Any, warnings: Warnings, path: str, op: str) -> bool:
    if x is MISSING or x is None:
        return False
    kind = "null" if x is None else type(x).__name__
    return warn(warnings, path, f"{op} needs a list, got {kind}")


def aggregate_leaf(access: Access, op: str, test: Fn, path: str) -> Fn:
    """Build the closure for `ALL`, `ANY` or `NONE`, applying `test` to each item.

    `test` is called as `test(item, stages, warnings)`; it is either a comparison of the item
    itself or a per-item condition compiled with paths relative to the item.
    """
    get, fast, k1, k2, staged = access
    fast = fast and not staged  # list leaves read stage paths through `get`
    missing = MISSING
    if op == "ANY":

        def any_item(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                if fast and data.__class__ is dict:
                    items = data.get(k1, missing)
                    if k2 is not None:
                        items = (
                            items.get(k2, missing) if items.__class__ is dict else get(data, stages)
                        )
                else:
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
                if fast and data.__class__ is dict:
                    items = data.get(k1, missing)
                    if k2 is not None:
                        items = (
                            items.get(k2, missing) if items.__class__ is dict else get(data, stages)
                        )
                else:
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
            if fast and data.__class__ is dict:
                items = data.get(k1, missing)
                if k2 is not None:
                    items = items.get(k2, missing) if items.__class__ is dict else get(data, stages)
            else:
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


_BOOLS = frozenset((True, False))


def _non_number(items: Any) -> str | None:
    """Describe the first item that is not a number, or None when all are."""
    for item in items:
        if not is_number(item):
            return "null" if item is None else type(item).__name__
    return None


def statistic_leaf(access: Access, op: str, compare: str, value: float, path: str) -> Fn:
    """Build the closure for `op(field) compare value` with `op` a statistic."""
    get, fast, k1, k2, staged = access
    fast = fast and not staged  # list leaves read stage paths through `get`
    missing = MISSING
    cmp = COMPARE_FUNCS[compare]
    no_bools = _BOOLS.isdisjoint

    def not_a_list(items: Any, warnings: Warnings) -> bool:
        if items is MISSING or items is None:
            return False
        return _not_a_list(items, warnings, path, op)

    if op == "COUNT":

        def count(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                if fast and data.__class__ is dict:
                    items = data.get(k1, missing)
                    if k2 is not None:
                        items = (
                            items.get(k2, missing) if items.__class__ is dict else get(data, stages)
                        )
                else:
                    items = get(data, stages)
                cls = items.__class__
                if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                    return not_a_list(items, warnings)
                return cmp(len(items), value)
            except Exception as exc:
                return fail(warnings, path, exc)

        return count

    def refuse(items: Any, warnings: Warnings) -> bool | None:
        bad = _non_number(items)
        if bad is None:
            return None
        return warn(warnings, path, f"{op} needs numbers, found a {bad}")

    # sum() rejects strings, nulls and containers in C; bools are the only non-numbers it
    # accepts, and one set lookup finds them (a 0 or 1 item sends it to the exact check).
    if op in ("SUM", "AVG"):
        average = op == "AVG"

        def total(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                if fast and data.__class__ is dict:
                    items = data.get(k1, missing)
                    if k2 is not None:
                        items = (
                            items.get(k2, missing) if items.__class__ is dict else get(data, stages)
                        )
                else:
                    items = get(data, stages)
                cls = items.__class__
                if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                    return not_a_list(items, warnings)
                try:
                    result = sum(items)
                except TypeError:
                    refused = refuse(items, warnings)
                    if refused is None:
                        raise
                    return refused
                if not no_bools(items):
                    refused = refuse(items, warnings)
                    if refused is not None:
                        return refused
                if average:
                    if not items:
                        return False
                    return cmp(result / len(items), value)
                return cmp(result, value)
            except Exception as exc:
                return fail(warnings, path, exc)

        return total
    pick = min if op == "MIN" else max

    def extreme(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            if fast and data.__class__ is dict:
                items = data.get(k1, missing)
                if k2 is not None:
                    items = items.get(k2, missing) if items.__class__ is dict else get(data, stages)
            else:
                items = get(data, stages)
            cls = items.__class__
            if cls is not list and cls is not tuple and not isinstance(items, (list, tuple)):
                return not_a_list(items, warnings)
            if not items:
                return False
            try:
                sum(items)
            except TypeError:
                refused = refuse(items, warnings)
                if refused is None:
                    raise
                return refused
            if not no_bools(items):
                refused = refuse(items, warnings)
                if refused is not None:
                    return refused
            return cmp(pick(items), value)
        except Exception as exc:
            return fail(warnings, path, exc)

    return extreme
