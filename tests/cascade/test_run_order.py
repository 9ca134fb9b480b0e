"""The order stages run in without `execution_order`: dependencies, and what routing implies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadence import CascadeConfig, CascadeEngine
from cascadence.cascade.compile import stage_order
from cascadence.cascade.optimizer import ExecutionOptimizer
from cascadence.cascade.order import dependency_order, run_order
from cascadence.errors import ConfigError

LOW = {"field": "stages.A.confidence", "operator": "<", "value": 0.8}


def load(stages: dict[str, Any], **extra: Any) -> CascadeConfig:
    return CascadeConfig.from_dict({"name": "t", "stages": stages, **extra})


def rule(condition: Any, action: dict[str, Any], name: str = "r") -> dict[str, Any]:
    return {"name": name, "condition": condition, "action": action}


def orders(config: CascadeConfig) -> list[list[str]]:
    """The order as every reader of a config computes it."""
    return [
        config.ordered_stage_names(),
        stage_order(config),
        ExecutionOptimizer().order(config),
        [st.name for st in ExecutionOptimizer().plan(config).stages],
        run_order(config.to_dict()["stages"]),
    ]


def test_a_stage_enabled_by_a_later_declared_stage_runs_after_it() -> None:
    """enable_stages of a stage declared earlier puts it after the rule's stage, in every
    reader of the order."""
    config = load(
        {
            "B": {"enabled": False},
            "A": {"routing_rules": [rule(LOW, {"type": "enable_stages", "stages": ["B"]})]},
        }
    )
    assert orders(config) == [["A", "B"]] * 5


def test_skip_to_and_disable_put_their_target_after_the_rules_stage() -> None:
    """skip_to and disable_stages name stages that run later: declared earlier, they move."""
    config = load(
        {
            "D": {},
            "E": {},
            "B": {},
            "A": {
                "routing_rules": [
                    rule(LOW, {"type": "skip_to", "target": "D"}, "jump"),
                    rule("amount > 5", {"type": "disable_stages", "stages": ["E"]}, "off"),
                ]
            },
        }
    )
    assert orders(config) == [["B", "A", "D", "E"]] * 5


def test_a_condition_or_cache_key_reading_a_stage_puts_that_stage_first() -> None:
    """A rule that cannot hold without stages.X, or a cache key read from X, runs X first
    (otherwise the earliest declared stage that can run comes first)."""
    config = load(
        {
            "SCORE": {
                "cache_enabled": True,
                "cache_key_fields": ["stages.FEATURES.data.vector"],
            },
            "DECIDE": {
                "routing_rules": [
                    rule("stages.RISK.confidence < 0.5 and amount > 3", {"type": "terminate"})
                ]
            },
            "RISK": {},
            "FEATURES": {},
        }
    )
    assert orders(config) == [["RISK", "DECIDE", "FEATURES", "SCORE"]] * 5


@pytest.mark.parametrize("condition", ["stages.B.result", "stages.B.result and amount > 3"])
def test_a_bare_path_into_a_stage_puts_that_stage_first(condition: str) -> None:
    """A truthiness test cannot hold without the stage's result, as a comparison cannot."""
    config = load({"A": {"routing_rules": [rule(condition, {"type": "terminate"})]}, "B": {}})
    assert orders(config) == [["B", "A"]] * 5


def test_a_condition_that_may_hold_without_a_stage_moves_nothing() -> None:
    """A stage read only under OR (or tested for absence) is not needed first: the order is
    the declaration order, as before."""
    config = load(
        {
            "A": {
                "routing_rules": [
                    rule("stages.B.confidence < 0.5 or amount > 3", {"type": "terminate"})
                ]
            },
            "B": {},
        }
    )
    assert orders(config) == [["A", "B"]] * 5


async def test_the_quickstart_listed_backwards_without_order_runs_as_written() -> None:
    """The spec's quickstart with execution_order and depends_on removed and its stages
    listed in reverse loads, and runs FAST_CHECK, MEDIUM_CHECK, EXPENSIVE_CHECK."""
    config = CascadeConfig.from_yaml(
        """
name: trust_scoring_cascade
version: "1.0"
stages:
  EXPENSIVE_CHECK:
    enabled: false
    timeout_ms: 2000
  MEDIUM_CHECK:
    enabled: false
    timeout_ms: 500
    routing_rules:
      - name: still_uncertain
        priority: 100
        condition: {field: stages.MEDIUM_CHECK.confidence, operator: "<", value: 0.9}
        action: {type: enable_stages, stages: ["EXPENSIVE_CHECK"]}
  FAST_CHECK:
    timeout_ms: 100
    routing_rules:
      - name: low_confidence_escalate
        priority: 100
        condition: {field: stages.FAST_CHECK.confidence, operator: "<", value: 0.8}
        action: {type: enable_stages, stages: ["MEDIUM_CHECK"]}
      - name: high_confidence_terminate
        priority: 90
        condition: {field: stages.FAST_CHECK.confidence, operator: ">=", value: 0.95}
        action: {type: terminate}
global_timeout_ms: 5000
"""
    )
    assert orders(config) == [["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]] * 5
    engine = CascadeEngine(config)
    for name, confidence in (("FAST_CHECK", 0.5), ("MEDIUM_CHECK", 0.6), ("EXPENSIVE_CHECK", 1)):
        engine.register_stage(name, lambda _ctx, c=confidence: {"result": "ok", "confidence": c})
    result = await engine.execute({"user_id": "u1"})
    assert result["path"] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]


def test_routing_that_contradicts_depends_on_is_still_refused() -> None:
    """A routing edge against depends_on is left out, so the rule is reported as before."""
    with pytest.raises(ConfigError) as info:
        load(
            {
                "B": {"enabled": False},
                "A": {
                    "depends_on": ["B"],
                    "routing_rules": [rule(LOW, {"type": "enable_stages", "stages": ["B"]})],
                },
            }
        )
    (issue,) = info.value.issues
    assert issue.path == "stages.A.routing_rules[0].action.stages[0]"
    assert "enable_stages of 'B' does nothing: 'B' runs before 'A'" in issue.message
    with pytest.raises(ConfigError, match="skip_to only jumps forward, but 'D' runs before 'A'"):
        load(
            {
                "D": {},
                "A": {
                    "depends_on": ["D"],
                    "routing_rules": [rule(LOW, {"type": "skip_to", "target": "D"})],
                },
            }
        )


def test_conflicting_routing_keeps_the_first_edge_and_reports_the_other() -> None:
    """Two rules wanting opposite orders: the one declared first decides the order, and the
    other is reported, naming the order it contradicts."""
    with pytest.raises(ConfigError) as info:
        load(
            {
                "A": {"routing_rules": [rule(LOW, {"type": "enable_stages", "stages": ["B"]})]},
                "B": {"routing_rules": [rule("x > 1", {"type": "skip_to", "target": "A"})]},
            }
        )
    (issue,) = info.value.issues
    assert issue.path == "stages.B.routing_rules[0].action.target"
    assert issue.message == "skip_to only jumps forward, but 'A' runs before 'B'"


def test_a_dependency_cycle_is_reported_as_before() -> None:
    """depends_on cycles are errors whatever routing says, and the order is the dependency
    order's (routing adds nothing to it)."""
    stages = {
        "A": {"depends_on": ["B"]},
        "B": {"depends_on": ["A"]},
        "C": {"routing_rules": [rule("x > 1", {"type": "enable_stages", "stages": ["A"]})]},
    }
    with pytest.raises(ConfigError, match=r"dependency cycle: A -> B -> A"):
        load(stages)
    assert run_order(stages) == dependency_order({"A": ["B"], "B": ["A"], "C": []})


def test_routing_between_members_of_one_parallel_group_moves_nothing() -> None:
    """Members of one parallel group keep their order: their rules apply after the whole
    group ran, so a member's rule may read another member's result."""
    config = load(
        {
            "A": {
                "can_run_parallel": True,
                "parallel_group": "g",
                "routing_rules": [rule("stages.B.confidence < 0.5", {"type": "terminate"})],
            },
            "B": {"can_run_parallel": True, "parallel_group": "g"},
        }
    )
    assert orders(config) == [["A", "B"]] * 5
    # members of different groups are ordered like any two stages
    config = load(
        {
            "A": {
                "can_run_parallel": True,
                "parallel_group": "g",
                "routing_rules": [rule("stages.B.confidence < 0.5", {"type": "terminate"})],
            },
            "B": {"can_run_parallel": True, "parallel_group": "h"},
        }
    )
    assert orders(config) == [["B", "A"]] * 5


def test_an_explicit_execution_order_is_kept_as_written() -> None:
    """With execution_order, routing moves nothing and contradictions are errors."""
    with pytest.raises(ConfigError, match="'B' runs before 'A'"):
        load(
            {
                "B": {"enabled": False},
                "A": {"routing_rules": [rule(LOW, {"type": "enable_stages", "stages": ["B"]})]},
            },
            execution_order=["B", "A"],
        )


# -- every config: the order as before when routing agrees with it ---------------------------

NAMES = [f"S{i}" for i in range(6)]


@st.composite
def cascades(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Random stages (plain data) and the routing edges (first, then) they imply."""
    names = NAMES[: draw(st.integers(1, len(NAMES)))]
    groups = {n: draw(st.sampled_from([None, None, "g", "h"])) for n in names}
    stages: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for name in names:
        stage: dict[str, Any] = {}
        deps = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
        if deps:
            stage["depends_on"] = deps
        if groups[name] is not None:
            stage["can_run_parallel"] = True
            stage["parallel_group"] = groups[name]
        rules = []
        for index in range(draw(st.integers(0, 2))):
            read = draw(st.sampled_from(names))
            kind = draw(st.sampled_from(["needs", "either", "input"]))
            condition = {
                "needs": f"stages.{read}.confidence < 0.5 and amount > 1",
                "either": f"stages.{read}.confidence < 0.5 or amount > 1",
                "input": "amount > 1",
            }[kind]
            if kind == "needs":
                edges.append((read, name))
            target = draw(st.sampled_from(names))
            action = draw(
                st.sampled_from(
                    [
                        {"type": "enable_stages", "stages": [target]},
                        {"type": "disable_stages", "stages": [target]},
                        {"type": "skip_to", "target": target},
                        {"type": "terminate"},
                    ]
                )
            )
            if action["type"] != "terminate":
                edges.append((name, target))
            rules.append(rule(condition, action, f"r{index}"))
        if rules:
            stage["routing_rules"] = rules
        if draw(st.booleans()):
            read = draw(st.sampled_from(names))
            stage["cache_key_fields"] = [f"stages.{read}.result"]
            edges.append((read, name))
        stages[name] = stage

    def joined(first: str, then: str) -> bool:
        return groups[first] is not None and groups[first] == groups[then]

    kept = [(a, b) for a, b in edges if a != b and not joined(a, b)]
    return stages, kept


def _reaches(start: str, goal: str, edges: set[tuple[str, str]]) -> bool:
    seen, pending = {start}, [start]
    while pending:
        here = pending.pop()
        for first, then in edges:
            if first == here and then == goal:
                return True
            if first == here and then not in seen:
                seen.add(then)
                pending.append(then)
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cascades())
def test_the_order_is_the_dependency_order_wherever_routing_agrees(
    drawn: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    """For any stages: when every routing edge already agrees with the order of depends_on
    alone, that order is kept exactly (so every config that loaded before runs as before);
    otherwise the order still honours depends_on, and each routing edge it does not honour
    would have closed a cycle."""
    stages, edges = drawn
    deps = {name: stage.get("depends_on", []) for name, stage in stages.items()}
    before = dependency_order(deps)
    order = run_order(stages)
    assert sorted(order) == sorted(stages)
    place = {name: index for index, name in enumerate(order)}
    old = {name: index for index, name in enumerate(before)}
    if all(old[first] < old[then] for first, then in edges):
        assert order == before
    hard = {(dep, name) for name, ds in deps.items() for dep in ds}
    if not any(_reaches(name, name, hard) for name in stages):
        assert all(place[first] < place[then] for first, then in hard)
        honoured = hard | {(a, b) for a, b in edges if place[a] < place[b]}
        for first, then in edges:
            if place[first] > place[then]:
                assert _reaches(then, first, honoured)
    else:
        assert order == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cascades())
def test_every_reader_of_a_loaded_config_sees_one_order(
    drawn: tuple[dict[str, Any], list[tuple[str, str]]],
) -> None:
    """Whatever loads is run, drawn and checked in one order: the one its plain data gives."""
    stages, _ = drawn
    try:
        config = load(stages)
    except ConfigError:
        return
    assert orders(config) == [run_order(stages)] * 5
