"""The scan of a rule list finds the same first match, with the same warnings, as calling the
compiled conditions one by one; runs of comparisons on one field read it once."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cascadence.conditions import compile_condition
from cascadence.conditions.scan import compile_scan
from strategies import KEYS, condition_dicts, documents, hostile_documents, stage_results

_SHARED_FIELDS = ("a", "a.b", "stages.S1.confidence", "stages.S1.result", "stages.S2.data")
_ORDERED = st.one_of(
    st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.sampled_from(("a", "b", ""))
)
_LITERALS = st.one_of(_ORDERED, st.booleans(), st.none())


def _compare_dicts() -> st.SearchStrategy[dict[str, Any]]:
    """Comparisons that often share a field, so that runs of them form."""
    field = st.sampled_from(_SHARED_FIELDS)
    return st.one_of(
        st.builds(
            lambda f, o, v: {"field": f, "operator": o, "value": v},
            field,
            st.sampled_from(("==", "!=")),
            _LITERALS,
        ),
        st.builds(
            lambda f, o, v: {"field": f, "operator": o, "value": v},
            field,
            st.sampled_from((">", ">=", "<", "<=")),
            _ORDERED,
        ),
    )


_rule_lists = st.lists(
    st.one_of(_compare_dicts(), _compare_dicts(), condition_dicts(max_leaves=3)), max_size=8
)
_inputs = st.one_of(documents(), hostile_documents())
_values = st.one_of(
    _LITERALS, st.floats(allow_nan=True), st.dictionaries(st.sampled_from(KEYS), _LITERALS)
)


def _first(compiled: list[Any], data: Any, stages: Any, warnings: list[Any]) -> int:
    """1 + the index of the first condition that holds, or 0."""
    for index, condition in enumerate(compiled):
        if condition.fn(data, stages, warnings):
            return index + 1
    return 0


def _check(rules: list[dict[str, Any]], data: Any, stages: Any) -> None:
    compiled = [compile_condition(rule) for rule in rules]
    scan = compile_scan([(c.fn, c.node) for c in compiled])
    expected_warnings: list[Any] = []
    found_warnings: list[Any] = []
    expected = _first(compiled, data, stages, expected_warnings)
    assert scan(data, stages, found_warnings) == expected
    assert found_warnings == expected_warnings


@settings(max_examples=400, deadline=None)
@given(_rule_lists, _inputs, stage_results())
def test_scan_finds_the_first_match_with_the_same_warnings(
    rules: list[dict[str, Any]], data: Any, stages: Any
) -> None:
    _check(rules, data, stages)


@settings(max_examples=400, deadline=None)
@given(st.lists(_compare_dicts(), min_size=2, max_size=10), _values, _values, _values)
def test_runs_on_one_field_agree_for_any_value(
    rules: list[dict[str, Any]], a: Any, confidence: Any, result: Any
) -> None:
    data = {"a": a}
    stages = {"S1": {"confidence": confidence, "result": result}, "S2": {"data": a}}
    _check(rules, data, stages)


def test_a_run_reads_its_field_once() -> None:
    reads = []

    class Counting(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            reads.append(key)
            return super().get(key, default)

    rules = [
        {"field": "stages.S1.confidence", "operator": "<", "value": threshold}
        for threshold in (0.1, 0.2, 0.3, 0.4)
    ]
    compiled = [compile_condition(rule) for rule in rules]
    scan = compile_scan([(c.fn, c.node) for c in compiled])
    stages = {"S1": Counting(confidence=0.35)}
    assert scan({}, stages, None) == 4
    assert reads == ["confidence"]


def test_empty_and_unparsed_rule_lists() -> None:
    assert compile_scan([])({}, None, None) == 0

    def always(data: Any, stages: Any, warnings: Any) -> bool:
        return True

    assert compile_scan([(always, None)])({}, None, None) == 1
