"""`ConditionEvaluator`: the same answers as a freshly compiled condition, compiled once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from cascadence import (
    Condition,
    ConditionEvaluator,
    DomainType,
    EventContext,
    EventWithContext,
    ExecutionContext,
    StageResult,
    UniversalEvent,
)
from cascadence.conditions import (
    ConditionSyntaxError,
    EvalWarning,
    compile_condition,
    parse_condition,
    to_expression,
)
from strategies import condition_dicts, documents, stage_results


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(condition=condition_dicts(), data=documents(), stages=stage_results())
def test_answers_like_a_fresh_compile_in_every_spelling(
    condition: dict[str, Any], data: Any, stages: Any
) -> None:
    """The dict, the expression string and the parsed tree of one condition evaluate alike,
    and alike to `compile_condition`, sharing one compiled closure."""
    evaluator = ConditionEvaluator()
    expected = compile_condition(condition)(data, stages)
    text = to_expression(parse_condition(condition))
    for spelling in (condition, text, parse_condition(condition)):
        assert evaluator.evaluate(spelling, data, stages) is expected
    fns = {evaluator.compile(s).fn for s in (condition, text)}
    assert len(fns) == 1
    assert len(evaluator) == 1


def test_reads_an_execution_context_and_an_event() -> None:
    """A context supplies its data and its stage results; an event its flat fields."""
    evaluator = ConditionEvaluator()
    ctx = ExecutionContext({"amount": 20000, "user": {"tier": "gold"}})
    ctx.stage_results["FAST"] = StageResult(result="review", confidence=0.4)
    assert evaluator.evaluate("stages.FAST.confidence < 0.8 and amount >= 10000", ctx)
    assert evaluator.evaluate({"field": "user.tier", "operator": "==", "value": "gold"}, ctx)
    assert not evaluator.evaluate("stages.FAST.result == 'pass'", ctx)
    assert evaluator.evaluate("stages.FAST.result == 'pass'", ctx, {"FAST": {"result": "pass"}})

    event = EventWithContext(
        event=UniversalEvent(
            id="e1",
            domain=DomainType.FINANCE,
            event_type="transfer",
            timestamp="2026-01-01T00:00:00Z",
            primary_entity="u1",
            secondary_entity="m1",
            value=500.0,
            unit="USD",
        ),
        context=EventContext(),
    )
    flat = event.to_flat_dict()
    field = next(k for k in flat if flat[k] == 500.0)
    assert evaluator.evaluate({"field": field, "operator": ">", "value": 100}, event)


def test_takes_a_condition_model_and_keeps_each_spelling() -> None:
    """A `Condition` from a config evaluates; the compiled form remembers how it was written."""
    evaluator = ConditionEvaluator()
    model = Condition(field="amount", operator=">", value=100)
    assert evaluator.evaluate(model, {"amount": 101})
    assert not evaluator.evaluate(model, {"amount": 100})
    assert evaluator.compile("amount > 100").source == "amount > 100"
    assert evaluator.compile(model).source == model.to_dict()


def test_type_mismatch_is_false_and_reported() -> None:
    """Evaluation never raises: a string against a number is false, with a warning."""
    warnings: list[EvalWarning] = []
    assert not ConditionEvaluator().evaluate("amount > 5", {"amount": "many"}, warnings=warnings)
    assert warnings and warnings[0].path == "amount"


def test_bad_conditions_fail_clearly() -> None:
    """A condition that does not parse, or that is not a condition at all, is a clear error."""
    evaluator = ConditionEvaluator()
    with pytest.raises(ConditionSyntaxError, match="operator"):
        evaluator.compile({"field": "amount", "operator": "GREATER", "value": 1})
    with pytest.raises(TypeError, match="expression string"):
        evaluator.compile(42)
    with pytest.raises(ValueError, match="max_cached"):
        ConditionEvaluator(max_cached=0)


def test_the_cache_is_bounded() -> None:
    """The oldest conditions are dropped beyond `max_cached`; dropped ones compile again."""
    evaluator = ConditionEvaluator(max_cached=3)
    for limit in range(10):
        assert evaluator.evaluate(f"x > {limit}", {"x": 5}) is (limit < 5)
    assert len(evaluator) == 3
    assert evaluator.evaluate("x > 0", {"x": 5})
    evaluator.clear()
    assert len(evaluator) == 0


def test_true_and_one_are_different_conditions_in_the_cache() -> None:
    """`flag == true` and `flag == 1` (and `IN [false]` / `IN [0]`) are compiled apart: the
    language tells booleans from numbers, although Python's `True == 1`."""
    evaluator = ConditionEvaluator()
    assert evaluator.evaluate("flag == true", {"flag": True})
    assert evaluator.evaluate("flag == 1", {"flag": 1})
    assert not evaluator.evaluate("flag == 1", {"flag": True})
    assert evaluator.evaluate({"field": "f", "operator": "IN", "value": [0]}, {"f": 0})
    assert not evaluator.evaluate({"field": "f", "operator": "IN", "value": [False]}, {"f": 0})


async def test_an_engine_with_both_spellings_routes_each_by_its_own() -> None:
    """Rules on `flag == true` and on `flag == 1` in one cascade each act on their own values."""
    from cascadence import CascadeEngine

    def rule(name: str, condition: str, target: str) -> dict[str, Any]:
        return {
            "name": name,
            "condition": condition,
            "action": {"type": "enable_stages", "stages": [target]},
        }

    engine = CascadeEngine(
        {
            "name": "flags",
            "stages": {
                "A": {"routing_rules": [rule("is_true", "flag == true", "B")]},
                "B": {"enabled": False},
                "C": {"routing_rules": [rule("is_one", "flag == 1", "D")]},
                "D": {"enabled": False},
            },
        }
    )

    async def ok(_ctx: Any) -> dict[str, Any]:
        return {"result": "ok"}

    engine.register_stages(dict.fromkeys("ABCD", ok))
    assert (await engine.execute({"flag": 1}))["path"] == ["A", "C", "D"]
    assert (await engine.execute({"flag": True}))["path"] == ["A", "B", "C"]


def test_a_full_cache_stays_bounded_and_consistent() -> None:
    """Past `max_cached`, the oldest conditions (and every spelling of them) are dropped, the
    caches stay at the bound, and whatever is compiled again still answers correctly."""
    evaluator = ConditionEvaluator(max_cached=20)
    for i in range(200):
        evaluator.compile(f"amount > {i}")
        evaluator.compile({"field": "amount", "operator": ">", "value": i})
        evaluator.compile(f"amount  >  {i}")  # another spelling of the same tree
    assert len(evaluator) == 20
    assert len(evaluator._by_text) <= 20 and len(evaluator._tree_of) == len(evaluator._by_text)
    assert sum(map(len, evaluator._texts.values())) == len(evaluator._by_text)
    for i in (0, 150, 199):
        assert evaluator.evaluate(f"amount > {i}", {"amount": i + 1}) is True
        assert evaluator.evaluate(f"amount > {i}", {"amount": i}) is False


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected", "warned"),
    [
        ("NOT_IN", ["1"], 1, False, True),  # as '!=' on a mismatch: false, with a warning
        ("IN", ["1"], 1, False, True),
        ("IN", [1, 2], "1", False, True),
        ("NOT_IN", [1, 2], "x", False, True),
        ("IN", ["a", 1], "b", False, False),  # a mixed list: simply not found
        ("NOT_IN", ["a", 1], "b", True, False),
        ("NOT_IN", ["a", "b"], "c", True, False),
        ("IN", [1.5, 2], 2, True, False),
    ],
)
def test_membership_follows_the_equality_rules(
    operator: str, values: list[Any], value: Any, expected: bool, warned: bool
) -> None:
    """IN and NOT_IN treat a string against numbers (or the reverse) as '==' and '!=' do."""
    from cascadence.conditions import compile_condition

    condition = compile_condition({"field": "a", "operator": operator, "value": values})
    warnings: list[Any] = []
    assert condition({"a": value}, None, warnings) is expected
    assert bool(warnings) is warned
