"""Property tests: the compiled closures agree with a direct interpreter of the dict form.

The reference evaluator below is written for clarity, not speed: it walks the condition dict
on every call and spells out each rule of the language. Hypothesis generates condition trees and
documents (tests/strategies.py) and checks that the compiled callable gives the same answer,
never raises, and that both renderings of a tree parse back to it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadence.conditions import (
    EvalWarning,
    compile_condition,
    parse_condition,
    to_dict,
    to_expression,
)
from strategies import (
    KEYS,
    STAGE_NAMES,
    condition_dicts,
    documents,
    field_values,
    hostile_documents,
    leaf_dicts,
    stage_results,
)

_ABSENT = object()


def is_number(x: Any) -> bool:
    """Numbers of the language: int and float, never bool."""
    return type(x) in (int, float)


def read(path: str, data: Any, stages: Any) -> Any:
    """Resolve a dot path against a document of dicts and lists (or the stage results)."""
    if path in ("", "."):
        return data
    segments = path.split(".")
    obj = data
    if segments[0] == "stages":
        obj, segments = stages, segments[1:]
    for segment in segments:
        if isinstance(obj, dict):
            obj = obj.get(segment, _ABSENT)
        elif isinstance(obj, list) and re.fullmatch(r"-?\d+", segment):
            index = int(segment)
            obj = obj[index] if -len(obj) <= index < len(obj) else _ABSENT
        else:
            return _ABSENT
        if obj is _ABSENT:
            return _ABSENT
    return obj


def mismatch(x: Any, v: Any) -> bool:
    """A string compared with a number, either way round."""
    return (isinstance(x, str) and is_number(v)) or (is_number(x) and isinstance(v, str))


def equal(x: Any, v: Any) -> bool:
    """Equality: bools only equal bools, null only null, strings never numbers."""
    if isinstance(x, bool) or isinstance(v, bool):
        return type(x) is bool and type(v) is bool and x == v
    if x is None or v is None:
        return x is None and v is None
    if mismatch(x, v):
        return False
    return bool(x == v)


def compare(op: str, x: Any, v: Any) -> bool:
    """One comparison of a present value x with the literal v."""
    if op == "==":
        return equal(x, v)
    if op == "!=":
        return not mismatch(x, v) and not equal(x, v)
    if isinstance(v, str):
        if not isinstance(x, str):
            return False
    elif not is_number(x):
        return False
    if op == ">":
        return bool(x > v)
    if op == ">=":
        return bool(x >= v)
    if op == "<":
        return bool(x < v)
    return bool(x <= v)


def statistic(op: str, items: list[Any]) -> Any:
    """The statistic of a list, or _ABSENT when it is undefined or the items are not numbers."""
    if op == "COUNT":
        return len(items)
    if not all(is_number(i) for i in items):
        return _ABSENT
    if op == "SUM":
        return sum(items)
    if not items:
        return _ABSENT
    if op == "AVG":
        try:
            return sum(items) / len(items)
        except OverflowError:
            return _ABSENT
    return min(items) if op == "MIN" else max(items)


def evaluate(c: dict[str, Any] | str, data: Any, stages: Any) -> bool:
    """The reference: interpret the structured condition directly (a string is a bare path)."""
    if isinstance(c, str):
        c = {"field": c, "operator": "TRUTHY"}
    op = c["operator"].upper()
    if op in ("ALL", "ANY", "NONE") and c.get("field") is None:
        held = [evaluate(child, data, stages) for child in c["conditions"]]
        if op == "ALL":
            return all(held)
        return any(held) if op == "ANY" else not any(held)
    if op in ("AND", "OR", "NOT"):
        children = c.get("conditions") or [c["condition"]]
        results = [evaluate(child, data, stages) for child in children]
        if op == "AND":
            return all(results)
        if op == "OR":
            return any(results)
        return not results[0]
    x = read(c["field"], data, stages)
    if op == "EXISTS":
        return x is not _ABSENT and x is not None
    if op == "IS_NULL":
        return x is _ABSENT or x is None
    if op == "TRUTHY":
        return x is not _ABSENT and x is not None and bool(x)
    if x is _ABSENT:
        return False
    v: Any = c.get("value")
    if op in ("==", "!=", ">", ">=", "<", "<="):
        if op not in ("==", "!=") and x is None:
            return False
        return compare(op, x, v)
    if op in ("IN", "NOT_IN"):
        if isinstance(x, (list, dict)):
            return False
        if v and all(mismatch(x, item) for item in v):
            return False  # a string against only numbers (or the reverse): a type mismatch
        found = any(equal(x, item) for item in v)
        return found if op == "IN" else not found
    if op == "CONTAINS":
        if isinstance(x, str):
            return isinstance(v, str) and v in x
        if isinstance(x, (list, dict)):
            return any(equal(item, v) for item in x)
        return False
    if op == "MATCHES":
        return isinstance(x, str) and re.search(v, x) is not None
    if not isinstance(x, list):
        return False
    if op in ("ALL", "ANY", "NONE"):
        if "condition" in c:
            results = [evaluate(c["condition"], item, stages) for item in x]
        elif "conditions" in c:
            results = [all(evaluate(k, item, stages) for k in c["conditions"]) for item in x]
        else:
            cmp = c.get("compare", "==")
            results = [
                compare(cmp, item, v) if (item is not None or cmp in ("==", "!=")) else False
                for item in x
            ]
        if op == "ALL":
            return all(results)
        if op == "ANY":
            return any(results)
        return not any(results)
    value = statistic(op, x)
    if value is _ABSENT:
        return False
    return compare(c.get("compare", "=="), value, v)


PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.usefixtures("engine")
@PROPERTY_SETTINGS
@given(condition=condition_dicts(), data=documents(), stages=stage_results())
def test_compiled_agrees_with_the_reference(
    condition: dict[str, Any], data: Any, stages: Any
) -> None:
    """For any condition and document, the compiled closure answers like the reference."""
    compiled = compile_condition(condition)
    warnings: list[EvalWarning] = []
    assert compiled(data, stages, warnings) is evaluate(condition, data, stages)


@pytest.mark.usefixtures("engine")
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=leaf_dicts("x"), value=field_values(), present=st.booleans())
def test_every_leaf_agrees_with_the_reference(
    condition: dict[str, Any], value: Any, present: bool
) -> None:
    """Each operator, on every kind of value or a missing field, answers like the reference."""
    data = {"x": value} if present else {"y": value}
    assert compile_condition(condition)(data) is evaluate(condition, data, None)


@PROPERTY_SETTINGS
@given(condition=condition_dicts(), data=documents(), stages=stage_results())
def test_both_forms_compile_to_the_same_answers(
    condition: dict[str, Any], data: Any, stages: Any
) -> None:
    """The expression rendering of a condition evaluates exactly like its structured form."""
    structured = compile_condition(condition)
    expression = compile_condition(to_expression(structured.node))
    assert structured(data, stages) is expression(data, stages)


@PROPERTY_SETTINGS
@given(condition=condition_dicts(), data=hostile_documents(), stages=stage_results())
def test_evaluation_never_raises(condition: dict[str, Any], data: Any, stages: Any) -> None:
    """Hostile values (raising objects, sets, bytes, huge numbers, long strings) never raise."""
    compiled = compile_condition(condition)
    warnings: list[EvalWarning] = []
    assert compiled(data, stages, warnings) in (True, False)
    assert compiled(data, data, None) in (True, False)
    assert all(isinstance(w, EvalWarning) for w in warnings)
    report = compiled.explain(data, stages)
    assert report["matched"] is compiled(data, stages)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=condition_dicts())
def test_renderings_round_trip(condition: dict[str, Any]) -> None:
    """parse(to_expression(n)) and parse(to_dict(n)) rebuild exactly the tree n."""
    node = parse_condition(condition)
    from_expression = parse_condition(to_expression(node))
    from_dict = parse_condition(to_dict(node))
    assert from_expression == node
    assert from_dict == node
    assert repr(from_expression) == repr(node)
    assert repr(from_dict) == repr(node)


@given(text=st.text(max_size=30), number=st.floats(allow_nan=False, allow_infinity=False))
def test_any_literal_round_trips(text: str, number: float) -> None:
    """Every string and every finite float survives rendering as an expression literal."""
    node = parse_condition({"field": "x", "operator": "IN", "value": [text, number]})
    again = parse_condition(to_expression(node))
    assert again == node
    value = again.value  # type: ignore[attr-defined]
    assert value[0] == text
    assert math.copysign(1.0, value[1]) == math.copysign(1.0, number)


# -- bare paths and the `conditions` forms of ALL / ANY / NONE ---------------------------------

_AGGREGATIONS = st.sampled_from(("ALL", "ANY", "NONE", "all", "any", "none"))


def _field_paths(item: bool) -> st.SearchStrategy[str]:
    """Paths as `condition_dicts` draws them: into the document, a stage result or the item."""
    options = [
        st.builds(
            lambda first, rest: ".".join((first, *rest)),
            st.sampled_from(KEYS),
            st.lists(st.sampled_from((*KEYS, "0", "1", "-1")), max_size=2),
        ),
        st.builds(
            lambda name, rest: f"stages.{name}.{rest}",
            st.sampled_from(STAGE_NAMES),
            st.sampled_from(("confidence", "result", "data.a", "data.l", "missing")),
        ),
    ]
    if item:
        options.append(st.sampled_from(("", ".")))
    return st.one_of(*options)


def _truthy(item: bool) -> st.SearchStrategy[dict[str, Any] | str]:
    """A truthiness test: `{field, operator: TRUTHY}`, or a bare path written as a string."""
    structured = st.builds(
        lambda f, o: {"field": f, "operator": o},
        _field_paths(item),
        st.sampled_from(("TRUTHY", "truthy")),
    )
    bare = _field_paths(item).map(lambda f: f or ".")
    return st.one_of(structured, bare)


def shorthand_dicts(item: bool = False, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Conditions that also use truthiness tests and ALL / ANY / NONE over `conditions` (with a
    `field`: per item; without: over the listed conditions), mixed with every other form."""
    per_item = st.deferred(lambda: shorthand_dicts(item=True, max_leaves=3))
    base: st.SearchStrategy[Any] = st.one_of(
        condition_dicts(item=item, max_leaves=1), _truthy(item)
    )
    if max_leaves > 3:
        base = st.one_of(
            base,
            st.builds(
                lambda f, o, cs: {"field": f, "operator": o, "conditions": cs},
                _field_paths(item),
                _AGGREGATIONS,
                st.lists(per_item, min_size=1, max_size=3),
            ),
            st.builds(
                lambda f, o, c: {"field": f, "operator": o, "condition": c},
                _field_paths(item),
                _AGGREGATIONS,
                per_item,
            ),
        )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        listed = st.lists(children, min_size=1, max_size=3)
        return st.one_of(
            st.builds(lambda o, cs: {"operator": o, "conditions": cs}, _AGGREGATIONS, listed),
            st.builds(lambda o, cs: {"operator": o, "conditions": cs}, st.just("AND"), listed),
            st.builds(lambda o, cs: {"operator": o, "conditions": cs}, st.just("OR"), listed),
            st.builds(lambda c: {"operator": "NOT", "condition": c}, children),
        )

    return st.recursive(base, extend, max_leaves=max_leaves)


def _rooted(condition: Any) -> dict[str, Any]:
    """A bare-path string at the root, as the structured form a file would hold."""
    return {"field": condition, "operator": "TRUTHY"} if isinstance(condition, str) else condition


@pytest.mark.usefixtures("engine")
@PROPERTY_SETTINGS
@given(condition=shorthand_dicts(), data=documents(), stages=stage_results())
def test_shorthands_agree_with_the_reference(condition: Any, data: Any, stages: Any) -> None:
    """Bare paths and ALL / ANY / NONE over `conditions` compile to what the reference says."""
    compiled = compile_condition(_rooted(condition))
    assert compiled(data, stages, []) is evaluate(condition, data, stages)


@PROPERTY_SETTINGS
@given(condition=shorthand_dicts(), data=documents(), stages=stage_results())
def test_shorthands_render_to_what_they_mean(condition: Any, data: Any, stages: Any) -> None:
    """Both renderings of a tree with shorthands parse back to it and evaluate the same."""
    node = parse_condition(_rooted(condition))
    assert parse_condition(to_expression(node)) == node
    assert parse_condition(to_dict(node)) == node
    assert repr(parse_condition(to_expression(node))) == repr(node)
    structured = compile_condition(node)
    assert compile_condition(to_expression(node))(data, stages) is structured(data, stages)


@PROPERTY_SETTINGS
@given(condition=shorthand_dicts(), data=hostile_documents(), stages=stage_results())
def test_shorthands_never_raise(condition: Any, data: Any, stages: Any) -> None:
    """A truthiness test of a value whose `__bool__` raises is false with a warning."""
    compiled = compile_condition(_rooted(condition))
    warnings: list[EvalWarning] = []
    assert compiled(data, stages, warnings) in (True, False)
    assert compiled.explain(data, stages)["matched"] is compiled(data, stages)


@settings(max_examples=500, deadline=None)
@given(value=field_values(), present=st.booleans())
def test_truthy_leaf_agrees_with_the_reference(value: Any, present: bool) -> None:
    """A bare path, in either form, on every kind of value or a missing field."""
    data = {"x": value} if present else {"y": value}
    expected = evaluate({"field": "x", "operator": "TRUTHY"}, data, None)
    assert compile_condition("x")(data) is expected
    assert compile_condition({"field": "x", "operator": "TRUTHY"})(data) is expected
    assert compile_condition("not x")(data) is not expected


@settings(max_examples=200, deadline=None)
@given(
    operator=_AGGREGATIONS,
    listed=st.lists(shorthand_dicts(max_leaves=3), min_size=1, max_size=4),
)
def test_conditions_of_all_any_none_are_and_or_nor(operator: str, listed: list[Any]) -> None:
    """ALL / ANY / NONE over `conditions` (no `field`) parse to AND / OR / NOT(OR) of them."""
    logical = {"ALL": "AND", "ANY": "OR", "NONE": "OR"}[operator.upper()]
    combined = {"operator": logical, "conditions": listed}
    meant = combined if operator.upper() != "NONE" else {"operator": "NOT", "condition": combined}
    assert parse_condition({"operator": operator, "conditions": listed}) == parse_condition(meant)


@settings(max_examples=200, deadline=None)
@given(
    operator=_AGGREGATIONS,
    field=_field_paths(False),
    listed=st.lists(shorthand_dicts(item=True, max_leaves=3), min_size=1, max_size=4),
)
def test_per_item_conditions_are_one_and(operator: str, field: str, listed: list[Any]) -> None:
    """With a `field`, `conditions` is the per-item `condition` AND of them."""
    written = {"field": field, "operator": operator, "conditions": listed}
    meant = {
        "field": field,
        "operator": operator,
        "condition": {"operator": "AND", "conditions": listed},
    }
    assert parse_condition(written) == parse_condition(meant)
