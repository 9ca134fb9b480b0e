"""A config whose lists and dicts were changed in place after it was validated."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from engine_helpers import config, returning

from cascadence import CascadeEngine, RoutingRule, StageConfig
from cascadence.cascade.optimizer import ExecutionOptimizer
from cascadence.errors import ConfigError
from cascadence.learning import GeneratedRule

LOW = "stages.FAST.confidence < 0.8"


def two_stages() -> Any:
    return config(
        {
            "FAST": {
                "routing_rules": [
                    {
                        "name": "escalate",
                        "condition": LOW,
                        "action": {"type": "enable_stages", "stages": ["DEEP"]},
                    }
                ]
            },
            "DEEP": {"enabled": False, "depends_on": ["FAST"]},
        }
    )


def learned(condition: Any = None, stage: str = "FAST") -> GeneratedRule:
    return GeneratedRule(
        rule_id="apls_1",
        pattern_id="p1",
        stage=stage,
        condition=condition or {"field": "amount", "operator": ">", "value": 100},
        decision="approve",
    )


def issues(error: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(issue.path, issue.message) for issue in error.value.issues]


async def test_a_learned_rule_appended_to_a_stage_runs_as_its_routing_rules() -> None:
    """manager.get_active_rules() appended as they come: each stands for its two rules."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(learned())
    engine = CascadeEngine(cascade)
    engine.register_stages({"FAST": returning("ok", 0.5), "DEEP": returning("deep", 0.9)})
    result = await engine.execute({"amount": 500})
    assert result["data"]["decision"] == "approve"
    assert result["terminated_by"] == "apls_1_stop"
    assert result["path"] == ["FAST"]
    rules = engine.config.stages["FAST"].routing_rules
    assert [r.name for r in rules] == ["escalate", "apls_1", "apls_1_stop"]
    assert all(isinstance(r, RoutingRule) for r in rules)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.config.to_dict()["stages"]["FAST"]["routing_rules"][1]["name"] == "apls_1"
    small = await engine.execute({"amount": 5})
    assert small["path"] == ["FAST", "DEEP"]


async def test_a_rule_appended_as_a_dict_is_validated_and_runs() -> None:
    """A mapping appended to routing_rules becomes a RoutingRule."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(
        {"name": "stop", "condition": "amount < 10", "action": {"type": "terminate"}}
    )
    engine = CascadeEngine(cascade)
    engine.register_stages({"FAST": returning("ok", 0.5), "DEEP": returning("deep")})
    result = await engine.execute({"amount": 1})
    assert result["terminated_by"] == "stop"


def test_a_bad_rule_appended_is_a_config_error_at_its_place() -> None:
    """A mapping that is no valid rule: ConfigError naming stages.X.routing_rules[i], what is
    wrong and the closest valid value; never an AttributeError."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(
        {"name": "bad", "condition": "amount < 10", "action": {"type": "enable_stage"}}
    )
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    (issue,) = error.value.issues
    assert issue.path == "stages.FAST.routing_rules[1].action.type"
    assert issue.suggestion == "enable_stages"


def test_cross_references_of_rules_added_are_checked() -> None:
    """An added rule naming an unknown stage, or skipping backwards, is refused as loading
    refuses it, with the closest stage name."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(
        {
            "name": "more",
            "condition": "amount > 1",
            "action": {"type": "enable_stages", "stages": ["DEPE"]},
        }
    )
    cascade.stages["DEEP"].routing_rules.append(
        RoutingRule(
            name="back", condition="amount > 1", action={"type": "skip_to", "target": "FAST"}
        )
    )
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    found = {issue.path: issue for issue in error.value.issues}
    unknown = found["stages.FAST.routing_rules[1].action.stages[0]"]
    assert unknown.message == "unknown stage 'DEPE' in enable_stages stages"
    assert unknown.suggestion == "DEEP"
    back = found["stages.DEEP.routing_rules[0].action.target"]
    assert back.message == "skip_to only jumps forward, but 'FAST' runs before 'DEEP'"


def test_a_problem_in_a_learned_rule_names_the_entry_and_which_of_its_rules() -> None:
    """The index is the learned rule's own in the list as changed, and the message says which
    of the rules it stands for is wrong."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(
        learned({"field": "stages.FAZT.confidence", "operator": ">", "value": 0.5})
    )
    cascade.stages["FAST"].routing_rules.append(
        {"name": "last", "condition": "stages.NOPE.result == 1", "action": {"type": "terminate"}}
    )
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    paths = issues(error)
    assert (
        "stages.FAST.routing_rules[1].condition.field",
        "rule 0 of GeneratedRule.routing_rules(): unknown stage 'FAZT' in stages.FAZT",
    ) in paths
    assert (
        "stages.FAST.routing_rules[1].condition.field",
        "rule 1 of GeneratedRule.routing_rules(): unknown stage 'FAZT' in stages.FAZT",
    ) in paths
    assert (
        "stages.FAST.routing_rules[2].condition",
        "unknown stage 'NOPE' in stages.NOPE",
    ) in paths


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        (42, "int 42"),
        ("stop when amount < 10", "str 'stop when amount < 10'"),
        ([{"name": "x"}], "list [{'name': 'x'}]"),
    ],
)
def test_anything_else_appended_names_the_stage_the_index_and_the_type(
    entry: Any, found: str
) -> None:
    """An entry that is neither a rule, a mapping nor an object with routing_rules()."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(entry)
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    (issue,) = error.value.issues
    assert issue.path == "stages.FAST.routing_rules[1]"
    assert issue.message.startswith(f"routing rule is {found}, not a routing rule")
    assert issue.expected is not None and "RoutingRule" in issue.expected
    assert "GeneratedRule" in issue.expected
    if isinstance(entry, list):
        assert "extend routing_rules with it instead" in issue.message


async def test_a_stage_added_to_the_stages_dict_as_a_model_or_a_mapping_runs() -> None:
    """A StageConfig or a mapping added under a new key is a stage; a mapping is validated,
    its name defaulting to the key."""
    cascade = two_stages()
    cascade.stages["NOTE"] = StageConfig(name="NOTE")
    cascade.stages["LAST"] = {"depends_on": ["FAST"], "cost": "SINGLE_AI"}
    engine = CascadeEngine(cascade)
    engine.register_stages(
        {"FAST": returning("ok", 0.9), "DEEP": returning("d"), "NOTE": returning("n")}
    )
    engine.register_stage("LAST", returning("last"))
    result = await engine.execute({})
    assert result["path"] == ["FAST", "NOTE", "LAST"]
    assert result["stage_results"]["LAST"]["cost"] == 25.0


def test_a_bad_stage_or_stage_name_added_in_place_is_a_config_error() -> None:
    """A stage that is no mapping, a field of the wrong kind, and names that are no strings
    are each reported at their place."""
    cascade = two_stages()
    cascade.stages["A"] = 3
    cascade.stages["B"] = {"timeout_ms": -1}
    cascade.stages["DEEP"].depends_on.append(cascade.stages["FAST"])
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    found = {issue.path: issue for issue in error.value.issues}
    assert found["stages.A"].message == "stage 'A' is int 3, not a stage"
    assert "stages.B.timeout_ms" in found
    named = found["stages.DEEP.depends_on[1]"]
    assert named.message.startswith("depends_on holds StageConfig")
    assert named.suggestion == "FAST"


def test_execution_order_and_depends_on_changed_in_place_are_checked() -> None:
    """Names added to execution_order or depends_on must be stages, in a valid order."""
    cascade = config({"A": {}, "B": {}}, execution_order=["A", "B"])
    cascade.execution_order.append("C")
    cascade.stages["A"].depends_on.append("B")
    with pytest.raises(ConfigError) as error:
        CascadeEngine(cascade)
    found = {issue.path: issue.message for issue in error.value.issues}
    assert found["execution_order[2]"] == "unknown stage 'C' in execution_order"
    assert found["execution_order[0]"] == "'A' comes before 'B', which it depends on"


async def test_changes_between_runs_are_checked_when_the_engine_builds_its_next_plan() -> None:
    """register_stage and update_config rebuild the plan: a rule added in place since then
    takes effect, and a bad one is refused with the running plan kept."""
    cascade = two_stages()
    engine = CascadeEngine(cascade)
    engine.register_stage("FAST", returning("ok", 0.5))
    cascade.stages["FAST"].routing_rules.append(learned())
    engine.register_stage("DEEP", returning("deep"))
    assert (await engine.execute({"amount": 500}))["terminated_by"] == "apls_1_stop"

    engine.config.stages["FAST"].routing_rules.append(object())
    before = engine.plan
    with pytest.raises(ConfigError, match=r"stages\.FAST\.routing_rules\[\d\]: routing rule is"):
        engine.register_stage("DEEP", returning("deep 2"))
    assert engine.plan is before
    engine.config.stages["FAST"].routing_rules.pop()
    engine.register_stage("DEEP", returning("deep 2"))

    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append({"name": "x"})
    with pytest.raises(ConfigError, match="routing_rules"):
        engine.update_config(cascade)
    assert engine.plan is not None and engine.config.stages["FAST"].routing_rules[-1].name == (
        "apls_1_stop"
    )


def test_an_untouched_config_is_used_as_it_is() -> None:
    """A config nobody changed is the engine's config itself."""
    cascade = two_stages()
    assert CascadeEngine(cascade).config is cascade


def test_the_optimizer_converts_a_changed_config_too() -> None:
    """Building a plan directly converts learned rules and mappings, never an AttributeError."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules.append(learned())
    cascade.termination_conditions.append({"field": "amount", "operator": ">", "value": 9})
    plan = ExecutionOptimizer().plan(cascade)
    assert [r.name for r in plan.stages[0].post_rules] == ["escalate", "apls_1", "apls_1_stop"]
    assert len(plan.termination) == 1
    cascade.stages["FAST"].routing_rules.append(5)
    with pytest.raises(ConfigError, match=r"stages\.FAST\.routing_rules\[2\]"):
        ExecutionOptimizer().plan(cascade)


def test_a_stage_list_inside_a_rule_changed_in_place_is_checked() -> None:
    """An enable_stages list given something other than a stage name is a ConfigError at its
    place, also when the plan is built directly."""
    cascade = two_stages()
    cascade.stages["FAST"].routing_rules[0].action.stages.append({"name": "DEEP"})
    for build in (CascadeEngine, ExecutionOptimizer().plan):
        with pytest.raises(ConfigError) as error:
            build(cascade)
        (issue,) = error.value.issues
        assert issue.path == "stages.FAST.routing_rules[0].action.stages[1]"
        assert issue.message == "enable_stages stages holds dict {'name': 'DEEP'}, not a stage name"
