"""Hypothesis strategies shared by the test suite: condition trees, documents and stage results.

Conditions are drawn in the structured (dict) form with `st.recursive`, from a small vocabulary
of field names that the generated documents also use, so that most paths resolve to something
and every operator meets present, missing, null and wrongly typed values.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = [
    "KEYS",
    "PATTERNS",
    "STAGE_NAMES",
    "Explosive",
    "condition_dicts",
    "documents",
    "field_values",
    "hostile_documents",
    "leaf_dicts",
    "literals",
    "stage_results",
]

KEYS = ("a", "b", "l", "s")
"""Field names used by both the documents and the condition paths."""

STAGE_NAMES = ("S1", "S2")
"""Stage names that `stages.NAME...` paths refer to."""

PATTERNS = ("^a", "b$", "a.c", "[0-9]+", "^$", "(ab|cd)", "x*y", "A", "a|b", "\\d", "^[a-c]+$")
"""Regular expressions whose meaning is the same under re2 and Python's re for ASCII text."""

_TEXT = st.text(alphabet="abcdxyAB01 -_.@", max_size=6)
# Small values dominate so that literals and document values often coincide (0 and 1 also meet
# the booleans, which must never equal them).
_INTS = st.one_of(st.integers(min_value=-2, max_value=2), st.integers(-1000, 1000))
_FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)

literals: st.SearchStrategy[Any] = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT)
"""Scalars a condition may compare with (finite numbers, short strings, bools, null)."""

_ordered_literals = st.one_of(_INTS, _FLOATS, _TEXT)
_numbers = st.one_of(_INTS, _FLOATS)

_segments = st.sampled_from((*KEYS, "0", "1", "-1"))
_data_paths = st.builds(
    lambda first, rest: ".".join((first, *rest)),
    st.sampled_from(KEYS),
    st.lists(_segments, max_size=2),
)
_stage_paths = st.builds(
    lambda name, rest: f"stages.{name}.{rest}",
    st.sampled_from(STAGE_NAMES),
    st.sampled_from(("confidence", "result", "data.a", "data.l", "missing")),
)


def _paths(item: bool) -> st.SearchStrategy[str]:
    options = [_data_paths, _stage_paths]
    if item:
        options.append(st.sampled_from(("", ".")))
    return st.one_of(*options)


def _leaves(
    item: bool, field: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    field = field if field is not None else _paths(item)

    def leaf(operator: Any, value: st.SearchStrategy[Any] | None = None, **extra: Any) -> Any:
        if value is None:
            return st.builds(lambda f, o: {"field": f, "operator": o, **extra}, field, operator)
        return st.builds(
            lambda f, o, v: {"field": f, "operator": o, "value": v, **extra},
            field,
            operator,
            value,
        )

    return st.one_of(
        leaf(st.sampled_from(("==", "!=")), literals),
        leaf(st.sampled_from((">", ">=", "<", "<=")), _ordered_literals),
        leaf(st.sampled_from(("IN", "NOT_IN", "in", "not_in")), st.lists(literals, max_size=4)),
        leaf(st.sampled_from(("CONTAINS", "contains")), literals),
        leaf(st.just("MATCHES"), st.sampled_from(PATTERNS)),
        leaf(st.sampled_from(("EXISTS", "IS_NULL", "exists", "is_null"))),
        st.builds(
            lambda f, o, c, v: {"field": f, "operator": o, "compare": c, "value": v},
            field,
            st.sampled_from(("SUM", "AVG", "MIN", "MAX", "COUNT")),
            st.sampled_from(("==", "!=", ">", ">=", "<", "<=")),
            _numbers,
        ),
        leaf(st.sampled_from(("SUM", "AVG", "MIN", "MAX", "COUNT")), _numbers),
        leaf(st.sampled_from(("ALL", "ANY", "NONE")), literals),
        st.builds(
            lambda f, o, c, v: {"field": f, "operator": o, "compare": c, "value": v},
            field,
            st.sampled_from(("ALL", "ANY", "NONE")),
            st.sampled_from((">", ">=", "<", "<=")),
            _ordered_literals,
        ),
    )


def condition_dicts(item: bool = False, max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """Valid conditions in the structured form, nested with AND, OR, NOT and per-item conditions.

    Args:
        item: Draw conditions relative to a list item (paths may be `""` or `"."`).
        max_leaves: Bound on the number of leaves of one tree.
    """
    per_item = st.deferred(lambda: condition_dicts(item=True, max_leaves=3))
    aggregate = st.builds(
        lambda f, o, c: {"field": f, "operator": o, "condition": c},
        _paths(item),
        st.sampled_from(("ALL", "ANY", "NONE", "all", "any")),
        per_item,
    )
    base = st.one_of(_leaves(item), aggregate) if max_leaves > 3 else _leaves(item)

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.one_of(
            st.builds(
                lambda o, cs: {"operator": o, "conditions": cs},
                st.sampled_from(("AND", "OR", "and", "or")),
                st.lists(children, min_size=1, max_size=3),
            ),
            st.builds(lambda c: {"operator": "NOT", "conditions": [c]}, children),
            st.builds(lambda c: {"operator": "not", "condition": c}, children),
        )

    return st.recursive(base, extend, max_leaves=max_leaves)


def leaf_dicts(field: str = "x") -> st.SearchStrategy[dict[str, Any]]:
    """Single-operator conditions (no nesting) that all read `field`."""
    return _leaves(False, st.just(field))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _INTS,
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    _TEXT,
)


def documents() -> st.SearchStrategy[Any]:
    """Input documents: nested dicts and lists over `KEYS`, with every kind of scalar.

    Keys are often absent, values are sometimes null or of the wrong type, and lists of numbers
    are common so the statistics and aggregations have something to chew on.
    """
    values = st.recursive(
        st.one_of(_scalars, st.lists(_numbers, max_size=5)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
        ),
        max_leaves=12,
    )
    return st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def field_values() -> st.SearchStrategy[Any]:
    """One value for a field: any scalar, or a flat list or mapping of scalars."""
    return st.one_of(
        _scalars,
        st.lists(_scalars, max_size=5),
        st.lists(_numbers, max_size=5),
        st.dictionaries(_TEXT, _scalars, max_size=3),
    )


def stage_results() -> st.SearchStrategy[dict[str, Any] | None]:
    """The stage-results mapping given at evaluation (stage results as dicts), or None."""
    result = st.fixed_dictionaries(
        {},
        optional={
            "confidence": st.one_of(_FLOATS, st.none(), _TEXT),
            "result": literals,
            "data": documents(),
        },
    )
    return st.one_of(st.none(), st.dictionaries(st.sampled_from(STAGE_NAMES), result, max_size=2))


class Explosive:
    """A value that raises from every operation a condition might apply to it."""

    def _boom(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("explosive value")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _boom
    __hash__ = __bool__ = __len__ = __iter__ = __contains__ = _boom
    __getitem__ = _boom

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"explosive attribute {name}")


def hostile_documents() -> st.SearchStrategy[Any]:
    """Documents that also hold values no JSON parser produces: objects that raise from every
    operation, tuples, sets, bytes, huge ints, non-finite floats and long strings."""
    odd = st.one_of(
        st.builds(Explosive),
        st.tuples(_scalars, _scalars),
        st.frozensets(_INTS, max_size=3),
        st.binary(max_size=4),
        st.integers(min_value=10**300, max_value=10**310),
        st.sampled_from((float("nan"), float("inf"), float("-inf"))),
        st.sampled_from("ab").map(lambda c: c * 10_001),
    )
    values = st.recursive(
        st.one_of(_scalars, odd, st.lists(st.one_of(_numbers, odd), max_size=4)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
        ),
        max_leaves=10,
    )
    return st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=6), values)
