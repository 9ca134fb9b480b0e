"""Closure factories for the leaf tests: comparisons, membership, patterns, existence, statistics.

A bare path's truthiness test (`truthy_leaf`) sits with the existence tests. Every closure has
the signature `fn(data, stages, warnings) -> bool`, reads its field through a getter built once,
and never raises: a missing field is a quiet False, a type mismatch is False plus an
`EvalWarning`, and anything unexpected (a property that raises, a custom `__eq__` gone wrong) is
False plus a warning naming the exception. The common types are tested with
`x.__class__ is int` before any slower `isinstance`, which keeps the hot path short.

Every closure opens with the same few lines reading its field: the dict lookups of a one- or
two-segment path inline, the full getter otherwise (see `paths.Access`). They are repeated in
each closure rather than called because, at this size, the call costs more than the lookups.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from cascadence.conditions.issues import EvalWarning
from cascadence.conditions.paths import MISSING, PLAIN_DICTS, Access
from cascadence.conditions.regex import HAVE_RE2, CompiledPattern
from cascadence.conditions.tree import Scalar

__all__ = [
    "COMPARE_FUNCS",
    "Fn",
    "Warnings",
    "compare_leaf",
    "contains_leaf",
    "exists_leaf",
    "fail",
    "is_number",
    "membership_leaf",
    "pattern_leaf",
    "statistic_value",
    "truthy_leaf",
    "warn",
]

_dict_get: Callable[..., Any] = dict.get
_plain = PLAIN_DICTS  # dicts read by `dict.get` directly (see `paths.PLAIN_DICTS`)

Warnings = list[EvalWarning] | None
Fn = Callable[[Any, Any, Warnings], bool]
"""A compiled condition: `fn(data, stages, warnings) -> bool`."""

COMPARE_FUNCS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def warn(warnings: Warnings, path: str, message: str) -> bool:
    """Record a type mismatch (when a sink is given) and return False."""
    if warnings is not None:
        warnings.append(EvalWarning(path, message))
    return False


def fail(warnings: Warnings, path: str, exc: BaseException) -> bool:
    """Record an unexpected error raised while reading or testing a value; return False."""
    try:
        detail = f"{type(exc).__name__}: {exc}"
    except Exception:  # an exception whose __str__ raises
        detail = type(exc).__name__
    return warn(warnings, path, f"could not evaluate: {detail}")


def is_number(x: Any) -> bool:
    """True for ints, floats and other real numbers; False for bools."""
    cls = x.__class__
    if cls is int or cls is float:
        return True
    if cls is bool:
        return False
    return isinstance(x, (numbers.Real, Decimal)) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    return "null" if x is None else type(x).__name__


# -- comparisons ------------------------------------------------------------------------------


def _equal(x: Any, v: Scalar) -> bool:
    """Equality as the language defines it: bools equal only bools; numbers compare by value."""
    if v is None:
        return x is None
    if v is True or v is False:
        return x is v
    if x.__class__ is bool or x is MISSING:
        return False
    return bool(x == v)


def _mismatch(x: Any, v: Scalar) -> bool:
    """True when x and v are a string and a number (in either order)."""
    if isinstance(v, str):
        return is_number(x)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return isinstance(x, str)
    return False


def _slow_order(x: Any, v: Scalar, cmp: Callable[[Any, Any], Any], op: str) -> bool | str:
    """Ordering outside the fast path: returns the result, or a mismatch message."""
    if isinstance(v, str):
        if isinstance(x, str):
            return bool(cmp(x, v))
    elif is_number(x):
        return bool(cmp(x, v))
    return f"{op!r} compares {_kind(v)} {v!r} with a {_kind(x)}"


def compare_leaf(access: Access, op: str, v: Scalar, path: str) -> Fn:
    """Build the closure for `field op v`."""
    if op == "==":
        return _eq_leaf(access, v, path)
    if op == "!=":
        return _ne_leaf(access, v, path)
    get, fast, k1, k2, staged = access
    missing = MISSING
    cmp = COMPARE_FUNCS[op]
    fast1: type = str if isinstance(v, str) else int
    fast2: type = str if isinstance(v, str) else float

    def slow(x: Any, warnings: Warnings) -> bool:
        if x is missing or x is None:
            return False
        result = _slow_order(x, v, cmp, op)
        if result.__class__ is str:
            return warn(warnings, path, str(result))
        return bool(result)

    # One closure per operator so the fast path compares inline instead of calling `cmp`.
    if op == ">":

        def greater(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                cls = x.__class__
                if cls is fast1 or cls is fast2:
                    return x > v  # type: ignore[no-any-return]
                return slow(x, warnings)
            except Exception as exc:
                return fail(warnings, path, exc)

        return greater
    if op == ">=":

        def greater_equal(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                cls = x.__class__
                if cls is fast1 or cls is fast2:
                    return x >= v  # type: ignore[no-any-return]
                return slow(x, warnings)
            except Exception as exc:
                return fail(warnings, path, exc)

        return greater_equal
    if op == "<":

        def less(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                cls = x.__class__
                if cls is fast1 or cls is fast2:
                    return x < v  # type: ignore[no-any-return]
                return slow(x, warnings)
            except Exception as exc:
                return fail(warnings, path, exc)

        return less

    def less_equal(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            cls = x.__class__
            if cls is fast1 or cls is fast2:
                return x <= v  # type: ignore[no-any-return]
            return slow(x, warnings)
        except Exception as exc:
            return fail(warnings, path, exc)

    return less_equal


def _eq_leaf(access: Access, v: Scalar, path: str) -> Fn:
    get, fast, k1, k2, staged = access
    missing = MISSING
    if v is None or v is True or v is False:

        def identical(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                return x is v
            except Exception as exc:
                return fail(warnings, path, exc)

        return identical
    fast1: type = str if isinstance(v, str) else int
    fast2: type = str if isinstance(v, str) else float

    def equal(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            cls = x.__class__
            if cls is fast1 or cls is fast2:
                return x == v  # type: ignore[no-any-return]
            if x is missing:
                return False
            if _mismatch(x, v):
                return warn(warnings, path, f"'==' compares {_kind(v)} {v!r} with a {_kind(x)}")
            return _equal(x, v)
        except Exception as exc:
            return fail(warnings, path, exc)

    return equal


def _ne_leaf(access: Access, v: Scalar, path: str) -> Fn:
    get, fast, k1, k2, staged = access
    missing = MISSING
    if v is None or v is True or v is False:

        def not_identical(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                return x is not v and x is not missing
            except Exception as exc:
                return fail(warnings, path, exc)

        return not_identical
    fast1: type = str if isinstance(v, str) else int
    fast2: type = str if isinstance(v, str) else float

    def not_equal(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            cls = x.__class__
            if cls is fast1 or cls is fast2:
                return x != v  # type: ignore[no-any-return]
            if x is missing:
                return False
            if _mismatch(x, v):
                return warn(warnings, path, f"'!=' compares {_kind(v)} {v!r} with a {_kind(x)}")
            return not _equal(x, v)
        except Exception as exc:
            return fail(warnings, path, exc)

    return not_equal


# -- collections ------------------------------------------------------------------------------


def membership_leaf(access: Access, negate: bool, values: tuple[Scalar, ...], path: str) -> Fn:
    """Build the closure for `field IN values` (or `NOT_IN` when `negate`)."""
    get, fast, k1, k2, staged = access
    missing = MISSING
    bools = frozenset(v for v in values if v is True or v is False)
    others = frozenset(v for v in values if not (v is True or v is False))
    name = "NOT_IN" if negate else "IN"
    # Like '==' and '!=': a string against a list holding no string (or a number against one
    # holding no number) is a type mismatch, false for IN and NOT_IN alike, with a warning.
    text_mismatch = bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    )
    number_mismatch = bool(values) and all(isinstance(v, str) for v in values)

    def mismatch(x: Any, warnings: Warnings) -> bool:
        listed = "numbers" if x.__class__ is str else "strings"
        return warn(warnings, path, f"{name} looks for {_kind(x)} {x!r} in a list of {listed}")

    def slow(x: Any, warnings: Warnings) -> bool:
        if x is missing:
            return False
        if x.__class__ is bool:
            return (x in bools) is not negate
        try:
            found = x in others
        except TypeError:
            return warn(warnings, path, f"{name} cannot look up an unhashable {_kind(x)}")
        return found is not negate

    if negate:

        def not_in(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                cls = x.__class__
                if cls is str:
                    return mismatch(x, warnings) if text_mismatch else x not in others
                if cls is int or cls is float:
                    return mismatch(x, warnings) if number_mismatch else x not in others
                return slow(x, warnings)
            except Exception as exc:
                return fail(warnings, path, exc)

        return not_in

    def is_in(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            cls = x.__class__
            if cls is str or cls is int or cls is float:
                if x in others:
                    return True
                if text_mismatch if cls is str else number_mismatch:
                    return mismatch(x, warnings)
                return False
            return slow(x, warnings)
        except Exception as exc:
            return fail(warnings, path, exc)

    return is_in


def _strict_contains(container: Any, v: Scalar) -> bool:
    """`v in container`, except that bools never match numbers (and numbers never bools)."""
    if v in container:
        if v is True or v is False:
            return any(item is v for item in container)
        if isinstance(v, (int, float)):
            return any(item.__class__ is not bool and item == v for item in container)
        return True
    return False


def contains_leaf(access: Access, v: Scalar, path: str) -> Fn:
    """Build the closure for `field CONTAINS v` (list item, substring, or mapping key)."""
    get, fast, k1, k2, staged = access
    missing = MISSING
    v_is_str = isinstance(v, str)

    def contains(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            cls = x.__class__
            if cls is list or cls is tuple:
                return _strict_contains(x, v)
            if cls is str:
                if v_is_str:
                    return v in x
                return warn(warnings, path, f"CONTAINS looks for {_kind(v)} {v!r} in a string")
            if x is missing or x is None:
                return False
            if isinstance(x, str):
                if v_is_str:
                    return v in x  # type: ignore[operator]
                return warn(warnings, path, f"CONTAINS looks for {_kind(v)} {v!r} in a string")
            if isinstance(x, (list, tuple, set, frozenset, Mapping)):
                return _strict_contains(x, v)
            return warn(warnings, path, f"CONTAINS needs a list, string or mapping, got {_kind(x)}")
        except Exception as exc:
            return fail(warnings, path, exc)

    return contains


def pattern_leaf(access: Access, pattern: CompiledPattern, path: str) -> Fn:
    """Build the closure for `field MATCHES pattern` around a compiled pattern."""
    get, fast, k1, k2, staged = access
    missing = MISSING
    search = pattern.search
    limit = pattern.limit
    long_search = pattern.long_search

    def other(x: Any, warnings: Warnings) -> bool:
        if x is missing or x is None:
            return False
        if isinstance(x, str):
            text = str(x)
            if limit is not None and len(text) > limit:
                return too_long(text, warnings)
            return bool(search(text))
        return warn(warnings, path, f"MATCHES needs a string, got {_kind(x)}")

    def too_long(text: str, warnings: Warnings) -> bool:
        if long_search is not None:  # linear-time re2 takes the subjects too long for re
            return bool(long_search(text))
        fix = (
            "re2 cannot run this pattern (a backreference or lookaround): simplify it"
            if HAVE_RE2
            else "install google-re2 (cascadence[re2]) to lift the limit"
        )
        return warn(
            warnings,
            path,
            f"a string of {len(text)} characters is longer than the {limit} the re engine "
            f"matches with this pattern; {fix}",
        )

    if limit is None:

        def matches(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                if x.__class__ is str:
                    return bool(search(x))
                return other(x, warnings)
            except Exception as exc:
                return fail(warnings, path, exc)

        return matches

    def matches_capped(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            if x.__class__ is str:
                if len(x) > limit:
                    return too_long(x, warnings)
                return search(x) is not None
            return other(x, warnings)
        except Exception as exc:
            return fail(warnings, path, exc)

    return matches_capped


def exists_leaf(access: Access, present: bool, path: str) -> Fn:
    """Build the closure for `EXISTS field` (`present`) or `IS_NULL field`."""
    get, fast, k1, k2, staged = access
    missing = MISSING
    if present:

        def exists(data: Any, stages: Any, warnings: Warnings) -> bool:
            try:
                src = stages if staged else data
                if fast and src.__class__ is dict:
                    x = src.get(k1, missing)
                    if k2 is not None:
                        x = (
                            _dict_get(x, k2, missing)
                            if x.__class__ in _plain
                            else get(data, stages)
                        )
                else:
                    x = get(data, stages)
                return x is not None and x is not missing
            except Exception as exc:
                return fail(warnings, path, exc)

        return exists

    def is_null(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            return x is None or x is missing
        except Exception as exc:
            return fail(warnings, path, exc)

    return is_null


def truthy_leaf(access: Access, path: str) -> Fn:
    """Build the closure for a bare `field`: present, not null and truthy (`MISSING` is falsy)."""
    get, fast, k1, k2, staged = access
    missing = MISSING

    def truthy(data: Any, stages: Any, warnings: Warnings) -> bool:
        try:
            src = stages if staged else data
            if fast and src.__class__ is dict:
                x = src.get(k1, missing)
                if k2 is not None:
                    x = _dict_get(x, k2, missing) if x.__class__ in _plain else get(data, stages)
            else:
                x = get(data, stages)
            return x if x.__class__ is bool else bool(x)
        except Exception as exc:  # a value whose __bool__ raises (an array, a custom object)
            return fail(warnings, path, exc)

    return truthy


# -- statistics -------------------------------------------------------------------------------

_NUMERIC_TYPES = frozenset((int, float))
_numeric_type = _NUMERIC_TYPES.__contains__


def statistic_value(op: str, items: Any) -> Any:
    """Compute a statistic over a list: the value, `MISSING` for an empty list where the
    statistic is undefined, or a `str` describing why the items are not numbers."""
    if op == "COUNT":
        return len(items)
    if not all(map(_numeric_type, map(type, items))):
        for item in items:
            if not is_number(item):
                return f"{op} needs numbers, found a {_kind(item)}"
    if op == "SUM":
        return sum(items)
    if not items:
        return MISSING
    if op == "AVG":
        return sum(items) / len(items)
    if op == "MIN":
        return min(items)
    return max(items)
