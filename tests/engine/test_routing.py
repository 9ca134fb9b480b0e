"""Every routing action and rule type, on small cascades."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_helpers import config, returning
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadence import CadenceHooks, CascadeEngine


def engine_for(stages: dict[str, Any], handlers: dict[str, Any], **extra: Any) -> CascadeEngine:
    """An engine over `stages` with `handlers` registered."""
    engine = CascadeEngine(config(stages, **extra))
    engine.register_stages(handlers)
    return engine


async def test_skip_to_jumps_over_stages() -> None:
    """skip_to runs its target next and records the stages jumped over."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "jump",
                        "condition": "stages.A.result == 'x'",
                        "action": {"type": "skip_to", "target": "C"},
                    }
                ]
            },
            "B": {},
            "C": {},
        },
        {"A": returning("x"), "B": returning("b"), "C": returning("c")},
        execution_order=["A", "B", "C"],
    )
    result = await engine.execute({})
    assert result["path"] == ["A", "C"]
    assert result["skipped_stages"] == {"B": "skipped by skip_to 'C'"}


async def test_enable_and_disable_stages() -> None:
    """enable_stages turns on a disabled stage; disable_stages turns off an enabled one."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "on",
                        "condition": "amount > 100",
                        "action": {"type": "enable_stages", "stages": ["C"]},
                    },
                    {
                        "name": "off",
                        "condition": "amount > 100",
                        "action": {"type": "disable_stages", "stages": ["B"]},
                    },
                ]
            },
            "B": {},
            "C": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2), "C": returning(3)},
        execution_order=["A", "B", "C"],
    )
    assert (await engine.execute({"amount": 500}))["path"] == ["A", "C"]
    assert (await engine.execute({"amount": 5}))["path"] == ["A", "B"]


async def test_set_field_is_visible_to_later_stages_and_rules() -> None:
    """set_field writes the context; later handlers and rules read it; the input is untouched."""
    seen: list[Any] = []

    async def b(ctx: Any) -> dict:
        seen.append(ctx.get("user.risk_level"))
        return {"result": "ok"}

    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "mark",
                        "condition": "amount >= 10000",
                        "action": {
                            "type": "set_field",
                            "field": "user.risk_level",
                            "value": "high",
                        },
                    }
                ]
            },
            "B": {
                "routing_rules": [
                    {
                        "name": "stop",
                        "condition": "user.risk_level == 'high'",
                        "action": {"type": "terminate"},
                    }
                ]
            },
            "C": {},
        },
        {"A": returning(1), "B": b, "C": returning(3)},
        execution_order=["A", "B", "C"],
    )
    data = {"amount": 20000, "user": {"id": 7}}
    result = await engine.execute(data)
    assert seen == ["high"]
    assert result["path"] == ["A", "B"]
    assert result["terminated_by"] == "stop"
    assert data == {"amount": 20000, "user": {"id": 7}}
    assert result["data"]["user"] == {"id": 7, "risk_level": "high"}


@pytest.mark.parametrize("explain", [False, True])
async def test_a_rule_sees_the_field_an_earlier_rule_of_its_stage_set(explain: bool) -> None:
    """Rules of one stage run in priority order on the context as the earlier ones left it;
    every rule that holds after a match is applied, not only the first."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "mark",
                        "priority": 30,
                        "condition": "amount >= 100",
                        "action": {"type": "set_field", "field": "flag", "value": "big"},
                    },
                    {
                        "name": "unrelated",
                        "priority": 25,
                        "condition": "amount < 0",
                        "action": {"type": "terminate"},
                    },
                    {
                        "name": "use_mark",
                        "priority": 20,
                        "condition": "flag == 'big'",
                        "action": {"type": "enable_stages", "stages": ["B"]},
                    },
                    {
                        "name": "also",
                        "priority": 10,
                        "condition": "amount >= 100",
                        "action": {"type": "enable_stages", "stages": ["C"]},
                    },
                ]
            },
            "B": {"enabled": False},
            "C": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2), "C": returning(3)},
        execution_order=["A", "B", "C"],
    )
    result = await engine.execute({"amount": 500}, explain=explain)
    assert result["path"] == ["A", "B", "C"]
    assert [d["rule"] for d in result["routing_decisions"]] == ["mark", "use_mark", "also"]
    result = await engine.execute({"amount": 5}, explain=explain)
    assert result["path"] == ["A"]
    assert result["routing_decisions"] == []


async def test_after_a_terminal_action_only_postconditions_apply() -> None:
    """A terminate stops the stage's lower-priority routing rules; its postconditions that
    hold still apply, in order."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "first",
                        "priority": 40,
                        "condition": "x == 1",
                        "action": {"type": "enable_stages", "stages": ["B"]},
                    },
                    {
                        "name": "stop",
                        "priority": 30,
                        "condition": "x == 1",
                        "action": {"type": "terminate"},
                    },
                    {
                        "name": "ignored",
                        "priority": 20,
                        "condition": "x == 1",
                        "action": {"type": "set_field", "field": "routed", "value": True},
                    },
                    {
                        "name": "audit",
                        "type": "postcondition",
                        "priority": 10,
                        "condition": "x == 1",
                        "action": {"type": "set_field", "field": "audited", "value": True},
                    },
                    {
                        "name": "audit_never",
                        "type": "postcondition",
                        "priority": 5,
                        "condition": "x == 2",
                        "action": {"type": "set_field", "field": "never", "value": True},
                    },
                ]
            },
            "B": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2)},
    )
    result = await engine.execute({"x": 1})
    assert result["path"] == ["A"]
    assert result["terminated_by"] == "stop"
    assert [d["rule"] for d in result["routing_decisions"]] == ["first", "stop", "audit"]
    assert result["data"] == {"x": 1, "audited": True}


async def test_rules_apply_in_priority_order_and_terminal_action_wins() -> None:
    """Higher priority first; after a terminate, lower-priority routing rules are not applied."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "low",
                        "priority": 1,
                        "condition": "x == 1",
                        "action": {"type": "enable_stages", "stages": ["B"]},
                    },
                    {
                        "name": "high",
                        "priority": 10,
                        "condition": "x == 1",
                        "action": {"type": "terminate"},
                    },
                ]
            },
            "B": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2)},
    )
    result = await engine.execute({"x": 1})
    assert [d["rule"] for d in result["routing_decisions"]] == ["high"]
    assert result["path"] == ["A"]


async def test_precondition_can_prevent_execution() -> None:
    """A precondition that disables its own stage stops it from running."""
    engine = engine_for(
        {
            "A": {},
            "B": {
                "routing_rules": [
                    {
                        "name": "guard",
                        "type": "precondition",
                        "condition": "exists(skip_b)",
                        "action": {"type": "disable_stages", "stages": ["B"]},
                    }
                ]
            },
            "C": {},
        },
        {"A": returning(1), "B": returning(2), "C": returning(3)},
        execution_order=["A", "B", "C"],
    )
    assert (await engine.execute({"skip_b": True}))["path"] == ["A", "C"]
    assert (await engine.execute({}))["path"] == ["A", "B", "C"]


@pytest.mark.parametrize("explain", [False, True])
async def test_preconditions_stop_at_a_terminal_one(explain: bool) -> None:
    """Preconditions apply in priority order up to a terminal one; lower ones are not applied."""

    def pre(name: str, priority: int, action: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "type": "precondition",
            "priority": priority,
            "condition": "x == 1",
            "action": action,
        }

    engine = engine_for(
        {
            "A": {},
            "B": {
                "routing_rules": [
                    pre("mark", 30, {"type": "set_field", "field": "marked", "value": True}),
                    pre("jump", 20, {"type": "skip_to", "target": "D"}),
                    pre("late", 10, {"type": "enable_stages", "stages": ["C"]}),
                ]
            },
            "C": {"enabled": False},
            "D": {},
        },
        {"A": returning(1), "B": returning(2), "C": returning(3), "D": returning(4)},
        execution_order=["A", "B", "C", "D"],
    )
    result = await engine.execute({"x": 1}, explain=explain)
    assert result["path"] == ["A", "D"]
    assert [d["rule"] for d in result["routing_decisions"]] == ["mark", "jump"]
    assert result["data"]["marked"] is True


async def test_postcondition_runs_even_after_terminate() -> None:
    """Postconditions of a stage are evaluated after its routing rules, even a terminate."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {"name": "stop", "condition": "x == 1", "action": {"type": "terminate"}},
                    {
                        "name": "note",
                        "type": "postcondition",
                        "condition": "x == 1",
                        "action": {"type": "set_field", "field": "audited", "value": True},
                    },
                ]
            },
            "B": {},
        },
        {"A": returning(1), "B": returning(2)},
    )
    result = await engine.execute({"x": 1})
    assert [d["rule"] for d in result["routing_decisions"]] == ["stop", "note"]
    assert result["data"]["audited"] is True


async def test_global_termination_conditions() -> None:
    """A termination condition ends the run after the stage that satisfies it."""
    engine = engine_for(
        {"A": {}, "B": {}},
        {"A": returning("deny", 0.99), "B": returning("x")},
        termination_conditions=["stages.A.confidence >= 0.95"],
    )
    result = await engine.execute({})
    assert result["path"] == ["A"]
    assert result["terminated_by"] == "termination_conditions[0]"


async def test_domain_agnostic_rules_on_flat_event_fields() -> None:
    """Rules on trust_score / account_age_days work on an EventWithContext input."""
    from datetime import datetime

    from cascadence import (
        DomainType,
        EventContext,
        EventWithContext,
        HistoricalContext,
        UniversalEvent,
    )

    engine = engine_for(
        {
            "SCREEN": {
                "routing_rules": [
                    {
                        "name": "high_trust_approve",
                        "condition": {"field": "trust_score", "operator": ">=", "value": 0.95},
                        "action": {"type": "terminate"},
                    },
                    {
                        "name": "new_account_escalate",
                        "condition": {"field": "account_age_days", "operator": "<", "value": 30},
                        "action": {"type": "enable_stages", "stages": ["DEEP_ANALYSIS"]},
                    },
                ]
            },
            "DEEP_ANALYSIS": {"enabled": False},
        },
        {"SCREEN": returning("ok"), "DEEP_ANALYSIS": returning("deep")},
    )

    def event(trust: float, age: int) -> EventWithContext:
        return EventWithContext(
            event=UniversalEvent(
                id="e",
                domain=DomainType.FINANCE,
                event_type="transaction",
                timestamp=datetime(2026, 1, 1),
                primary_entity="alice",
            ),
            context=EventContext(
                historical=HistoricalContext(account_age_days=age, trust_score=trust)
            ),
        )

    assert (await engine.execute(event(0.99, 400)))["path"] == ["SCREEN"]
    assert (await engine.execute(event(0.5, 10)))["path"] == ["SCREEN", "DEEP_ANALYSIS"]
    assert (await engine.execute(event(0.5, 400).to_flat_dict()))["path"] == ["SCREEN"]


async def test_failing_stage_is_recorded_and_the_cascade_goes_on() -> None:
    """A handler error is recorded on its result and in errors; later stages still run."""

    async def broken(_ctx: Any) -> dict:
        raise ValueError("model unavailable")

    engine = engine_for({"A": {}, "B": {}}, {"A": broken, "B": returning("b")})
    result = await engine.execute({})
    assert result["success"] is False
    assert result["stage_results"]["A"]["error"] == "model unavailable"
    assert result["errors"] == [{"stage": "A", "error": "model unavailable", "type": "ValueError"}]
    assert result["path"] == ["A", "B"]


async def test_stop_on_failure_ends_the_run() -> None:
    """With stop_on_failure a failing stage ends the cascade."""

    async def broken(_ctx: Any) -> dict:
        raise ValueError("x")

    engine = engine_for(
        {"A": {"stop_on_failure": True}, "B": {}}, {"A": broken, "B": returning("b")}
    )
    result = await engine.execute({})
    assert result["path"] == ["A"]
    assert result["terminated_by"] == "failure of A"


async def test_dependent_of_a_failed_stage_is_skipped() -> None:
    """A stage whose dependency failed does not run, and says why."""

    async def broken(_ctx: Any) -> dict:
        raise ValueError("x")

    engine = engine_for({"A": {}, "B": {"depends_on": ["A"]}}, {"A": broken, "B": returning(1)})
    result = await engine.execute({})
    assert result["path"] == ["A"]
    assert result["skipped_stages"] == {"B": "dependency 'A' failed"}


async def test_explain_reports_operands_and_matches() -> None:
    """explain=True records every rule evaluated, its resolved operands and the action."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "big",
                        "condition": "amount > 100",
                        "action": {"type": "enable_stages", "stages": ["B"]},
                    },
                    {"name": "vip", "condition": "tier == 'gold'", "action": {"type": "terminate"}},
                ]
            },
            "B": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2)},
    )
    plain = await engine.execute({"amount": 500})
    assert "explanation" not in plain
    result = await engine.execute({"amount": 500}, explain=True)
    big, vip = result["explanation"]
    assert big["rule"] == "big" and big["matched"] is True
    assert big["action"] == "enable_stages B"
    assert big["condition"]["value"] == 500
    assert vip["matched"] is False
    assert vip["condition"]["missing"] is True


async def test_type_mismatch_is_false_and_warned() -> None:
    """A rule comparing a string to a number does not match and adds a warning."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {"name": "r", "condition": "amount > 100", "action": {"type": "terminate"}}
                ]
            },
            "B": {},
        },
        {"A": returning(1), "B": returning(2)},
    )
    result = await engine.execute({"amount": "lots"})
    assert result["path"] == ["A", "B"]
    assert result["warnings"] and result["warnings"][0]["path"] == "amount"


async def test_thresholds_on_one_field_route_by_the_first_that_holds() -> None:
    """Rules comparing one field with several literals (scanned together) pick the first in
    priority order; a value of the wrong type matches none of them and is warned about once per
    rule evaluated, as rule-by-rule evaluation would."""

    def threshold(name: str, priority: int, op: str, value: float, target: str) -> dict[str, Any]:
        return {
            "name": name,
            "priority": priority,
            "condition": {"field": "stages.A.confidence", "operator": op, "value": value},
            "action": {"type": "enable_stages", "stages": [target]},
        }

    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    threshold("very_low", 30, "<", 0.3, "C"),
                    threshold("low", 20, "<", 0.6, "B"),
                    threshold("high", 10, ">=", 0.9, "D"),
                ]
            },
            "B": {"enabled": False},
            "C": {"enabled": False},
            "D": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2), "C": returning(3), "D": returning(4)},
    )

    async def route(confidence: Any) -> tuple[list[str], list[str], int]:
        engine.register_stage("A", lambda ctx: {"result": 1, "confidence": confidence})
        result = await engine.execute({})
        decisions = [d["rule"] for d in result["routing_decisions"]]
        return decisions, result["path"], len(result["warnings"])

    assert await route(0.1) == (["very_low", "low"], ["A", "B", "C"], 0)
    assert await route(0.5) == (["low"], ["A", "B"], 0)
    assert await route(0.7) == ([], ["A"], 0)
    assert await route(0.95) == (["high"], ["A", "D"], 0)
    assert await route(1) == (["high"], ["A", "D"], 0)  # an int compares as a number
    assert await route(None) == ([], ["A"], 0)  # null: no match, nothing to warn about
    assert await route("0.1") == ([], ["A"], 3)  # a string: each rule warns


def _jump(target: str) -> dict[str, Any]:
    return {
        "name": f"to_{target}",
        "condition": {"field": "stages.A.confidence", "operator": ">=", "value": 0},
        "action": {"type": "skip_to", "target": target},
    }


async def test_only_the_skip_to_target_is_exempt_from_its_dependencies() -> None:
    """A jump to C (which depends on the skipped B) runs C; D, also depending on B, does not
    run; C sees no result for B; a handler's own `skipped` key is kept on its result."""
    seen: dict[str, Any] = {}

    async def c(ctx: Any) -> dict[str, Any]:
        seen["B"] = ctx.get_stage_result("B")
        return {"result": "c", "skipped": True}

    engine = engine_for(
        {
            "A": {"routing_rules": [_jump("C")]},
            "B": {},
            "C": {"depends_on": ["B"]},
            "D": {"depends_on": ["B"]},
        },
        {"A": returning("a", 0.5), "B": returning("b"), "C": c, "D": returning("d")},
    )
    result = await engine.execute({})
    assert result["path"] == ["A", "C"]
    assert seen["B"] is None
    assert result["stage_results"]["C"]["skipped"] is True
    assert result["final_stage"] == "C"
    assert set(result["skipped_stages"]) == {"B", "D"}


async def test_each_parallel_member_honours_its_preconditions() -> None:
    """A precondition of a group member other than the first is evaluated before it starts."""
    stop = {
        "name": "not_for_vip",
        "type": "precondition",
        "condition": {"field": "vip", "operator": "==", "value": True},
        "action": {"type": "disable_stages", "stages": ["B"]},
    }
    group = {"can_run_parallel": True, "parallel_group": "g"}
    engine = engine_for(
        {"A": dict(group), "B": {**group, "routing_rules": [stop]}},
        {"A": returning("a"), "B": returning("b")},
    )
    vip = await engine.execute({"vip": True})
    assert vip["path"] == ["A"]
    assert vip["routing_decisions"][0]["rule"] == "not_for_vip"
    assert (await engine.execute({"vip": False}))["path"] == ["A", "B"]


async def test_a_parallel_group_records_plan_order_with_hooks_too() -> None:
    """Hooks or policies do not change a group's path: it is in plan order, not finish order."""
    import asyncio

    from cascadence import TimingHooks

    def sleeping(seconds: float, value: str) -> Any:
        async def handler(_ctx: Any) -> dict[str, Any]:
            await asyncio.sleep(seconds)
            return {"result": value}

        return handler

    group = {"can_run_parallel": True, "parallel_group": "g"}
    for hooks in ((), (TimingHooks(),)):
        engine = CascadeEngine(config({"A": dict(group), "B": dict(group)}), hooks=hooks)
        engine.register_stages({"A": sleeping(0.05, "a"), "B": sleeping(0.0, "b")})
        result = await engine.execute({})
        assert result["path"] == ["A", "B"] and result["final_result"] == "b"
        assert list(result["stage_results"]) == ["A", "B"]
        assert [t["stage"] for t in result["timeline"]] == ["A", "B"]


async def test_each_result_has_decisions_of_its_own() -> None:
    """A rule's decision is shown from one description built at compile time; every result
    gets its own copy, so changing one result changes no other."""
    engine = engine_for(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "go_on",
                        "condition": "amount > 1",
                        "action": {
                            "type": "enable_stages",
                            "stages": ["B"],
                            "reason": "big enough",
                        },
                    }
                ]
            },
            "B": {"enabled": False},
        },
        {"A": returning(1), "B": returning(2)},
        execution_order=["A", "B"],
    )
    first = await engine.execute({"amount": 5})
    shown = {"stage": "A", "rule": "go_on", "type": "routing", "action": "enable_stages"}
    assert first["routing_decisions"] == [{**shown, "reason": "big enough"}]
    first["routing_decisions"][0]["rule"] = "edited"
    first["routing_decisions"][0].pop("reason")
    second = await engine.execute({"amount": 5})
    assert second["routing_decisions"] == [{**shown, "reason": "big enough"}]


async def test_escalated_marks_skip_a_final_parallel_batch_and_keep_a_handlers_own() -> None:
    """Every stage the run went on from is marked `escalated`, except where the handler said
    otherwise; the stages of a final parallel batch decided together and get no mark."""
    group = {"can_run_parallel": True, "parallel_group": "g"}
    engine = engine_for(
        {"A": {}, "B": {}, "C": {**group}, "D": {**group}},
        {
            "A": returning(1),
            "B": lambda ctx: {"result": 2, "confidence": 0.5, "escalated": False},
            "C": returning(3),
            "D": returning(4),
        },
        execution_order=["A", "B", "C", "D"],
    )
    result = await engine.execute({})
    assert result["path"] == ["A", "B", "C", "D"]
    marks = {name: sr.get("escalated") for name, sr in result["stage_results"].items()}
    assert marks == {"A": True, "B": False, "C": None, "D": None}


_TABLE_OPS = st.sampled_from(("<", "<=", ">", ">=", "==", "!="))
_TABLE_LITERALS = st.one_of(st.integers(-2, 2), st.floats(-2, 2, allow_nan=False))
_TABLE_VALUES = st.one_of(
    st.integers(-2, 2),
    st.floats(-2, 2, allow_nan=False),
    st.none(),
    st.text(max_size=2),
    st.booleans(),
    st.just("missing"),
)
_TABLE_ACTIONS = st.sampled_from(
    (
        {"type": "enable_stages", "stages": ["B"]},
        {"type": "enable_stages", "stages": ["C"]},
        {"type": "disable_stages", "stages": ["B"]},
        {"type": "terminate"},
        {"type": "skip_to", "target": "C"},
    )
)


@settings(max_examples=150, deadline=None)
@given(
    rules=st.lists(st.tuples(_TABLE_OPS, _TABLE_LITERALS, _TABLE_ACTIONS), min_size=2, max_size=5),
    value=_TABLE_VALUES,
    staged=st.booleans(),
)
def test_rules_on_one_field_route_as_the_rules_one_by_one(
    rules: list[tuple[str, float, dict[str, Any]]], value: Any, staged: bool
) -> None:
    """Several routing rules that compare one field are decided by one read of the field
    (the stage's rule table); the run routes exactly as evaluating the rules one by one
    (the `explain` path) does, including values the table does not decide."""
    field = "stages.A.confidence" if staged else "score"
    spec = {
        "A": {
            "routing_rules": [
                {
                    "name": f"r{i}",
                    "type": "routing",
                    "priority": 100 - i,
                    "condition": {"field": field, "operator": op, "value": literal},
                    "action": action,
                }
                for i, (op, literal, action) in enumerate(rules)
            ]
        },
        "B": {"enabled": False},
        "C": {"enabled": False},
        "D": {},
    }
    engine = CascadeEngine(config(spec))
    confidence = None if value == "missing" else value

    async def stage_a(_ctx: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"result": "a", "data": {}}
        if not (staged and value == "missing"):
            result["confidence"] = confidence
        return result

    engine.register_stage("A", stage_a)
    for name in "BCD":
        engine.register_stage(name, returning(name, 0.5))
    assert engine._plan.stages[0].post_table is not None  # the table is in use
    data = {} if value == "missing" else {"score": value}
    fast = asyncio.run(engine.execute(dict(data)))
    slow = asyncio.run(engine.execute(dict(data), explain=True))
    engine.add_hooks(CadenceHooks())  # stages observed: the table applies outside the hot path
    hooked = asyncio.run(engine.execute(dict(data)))
    for key in ("path", "routing_decisions", "terminated_by", "skipped_stages", "warnings"):
        assert fast[key] == slow[key] == hooked[key], key
