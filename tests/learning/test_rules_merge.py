"""Generated rules are valid routing rules; merged into a config they go through YAML into a
working engine that decides early and agrees with the original cascade."""

from __future__ import annotations

import pytest
from learning_helpers import CASCADE, engine, inputs

from cascadence import CascadeConfig, CascadeEngine
from cascadence.cascade.config import RoutingRule
from cascadence.errors import ConfigError
from cascadence.learning import (
    GeneratedRule,
    Pattern,
    PatternExtractor,
    RuleGenerator,
    decision_of,
    learned_rule_ids,
    merge_rules,
    merge_to_yaml,
    next_version,
)


async def learn(count: int = 6000) -> tuple[CascadeEngine, list[Pattern]]:
    cascade = engine(sync_in_thread=False)
    extractor = PatternExtractor()
    for data in inputs(count):
        extractor.observe(data, await cascade.execute(data))
    found = extractor.get_migration_candidates(0.98, 50, target_stage="RULES")
    return cascade, found


async def test_patterns_learned_through_the_engine() -> None:
    """Runs recorded from a real engine yield the expensive stage's own rules."""
    _, found = await learn()
    conditions = {p.expression: p.decision for p in found}
    assert conditions["amount >= 500"] == "decline"
    assert all(p.target_stage == "RULES" and p.source_stage == "EXPENSIVE" for p in found)
    assert any("is_new_device == true" in e for e in conditions)


async def test_generated_rule_is_a_pair_of_valid_routing_rules() -> None:
    """A rule is a set_field of the decision then a terminate, both valid `RoutingRule`s."""
    _, found = await learn()
    rule = RuleGenerator().generate_from_pattern(found[0])
    decide, stop = rule.routing_rules(priority=-10)
    assert decide["name"] == rule.rule_id and stop["name"] == rule.rule_id + "_stop"
    assert decide["action"] == {
        "type": "set_field",
        "field": "decision",
        "value": rule.decision,
        "reason": f"APLS {rule.pattern_id}",
    }
    assert stop["action"]["type"] == "terminate"
    assert (decide["priority"], stop["priority"]) == (-10, -11)
    assert decide["condition"] == stop["condition"] == found[0].condition
    assert all(isinstance(m, RoutingRule) for m in rule.to_models())
    assert GeneratedRule.from_dict(rule.to_dict()) == rule
    assert rule.rule_id.startswith("apls_") and rule.stage == "RULES"


async def test_rules_round_trip_through_yaml_into_a_working_engine() -> None:
    """Merged rules survive YAML, load into an engine, decide early, and agree with the
    original cascade on fresh inputs at a lower cost."""
    original, found = await learn()
    generator = RuleGenerator()
    rules = [generator.generate_from_pattern(p) for p in found]
    merged = merge_rules(original.config, rules)
    text = merged.to_yaml()
    reloaded = CascadeConfig.from_yaml(text)
    assert reloaded == merged
    assert reloaded.version == "1.1"
    assert learned_rule_ids(reloaded) == [r.rule_id for r in rules]
    assert merge_to_yaml(original.config, rules) == text

    learned = engine(reloaded, sync_in_thread=False)
    high = await learned.execute({**inputs(1)[0], "amount": 900.0})
    assert high["path"] == ["RULES"]
    assert decision_of(high) == "decline"
    assert high["cost"] == 1.0
    assert high["terminated_by"].endswith("_stop")

    fresh = inputs(3000, seed=99)
    before = [await original.execute(d) for d in fresh]
    after = [await learned.execute(d) for d in fresh]
    agree = sum(decision_of(b) == decision_of(a) for b, a in zip(before, after)) / len(fresh)
    assert agree >= 0.99
    assert sum(r["cost"] for r in after) < 0.9 * sum(r["cost"] for r in before)


async def test_learned_rules_sit_below_the_stages_own_rules() -> None:
    """A learned rule acts only on runs its stage passes on: the stage's own terminate wins."""
    rule = GeneratedRule(
        "apls_all", "pat_all", "RULES", {"field": "amount", "operator": ">=", "value": 0}, "decline"
    )
    merged = merge_rules(CascadeConfig.from_dict(CASCADE), [rule])
    priorities = {r.name: r.priority for r in merged.stages["RULES"].routing_rules}
    assert priorities == {"small_approve": 100, "escalate": 50, "apls_all": 40, "apls_all_stop": 39}
    learned = engine(merged, sync_in_thread=False)
    small = await learned.execute({**inputs(1)[0], "amount": 5.0})
    assert decision_of(small) == "approve" and small["terminated_by"] == "small_approve"
    medium = await learned.execute({**inputs(1)[0], "amount": 50.0})
    assert decision_of(medium) == "decline" and medium["path"] == ["RULES"]


async def test_a_rules_routing_rule_models_can_be_added_to_a_stage_by_hand() -> None:
    """`to_models()` gives the `RoutingRule`s a loaded config's stage holds (the spec's "add
    active rules to cascade config"); appended there, they decide as a merged rule does."""
    rule = GeneratedRule(
        "apls_big",
        "pat_big",
        "RULES",
        {"field": "amount", "operator": ">=", "value": 500},
        "decline",
    )
    models = rule.to_models(priority=40)
    assert models == [RoutingRule.model_validate(r) for r in rule.routing_rules(40)]
    config = CascadeConfig.from_dict(CASCADE)
    config.stages[rule.stage].routing_rules.extend(models)
    by_hand = engine(config, sync_in_thread=False)
    merged = engine(merge_rules(CascadeConfig.from_dict(CASCADE), [rule]), sync_in_thread=False)
    for amount in (5.0, 50.0, 900.0):
        data = {**inputs(1)[0], "amount": amount, "is_new_device": False}
        hand, merge = await by_hand.execute(dict(data)), await merged.execute(dict(data))
        assert (decision_of(hand), hand["path"]) == (decision_of(merge), merge["path"])
    big = await by_hand.execute({**inputs(1)[0], "amount": 900.0})
    assert decision_of(big) == "decline" and big["path"] == ["RULES"]


def test_merging_again_replaces_earlier_learned_rules() -> None:
    """A second merge replaces the first one's rules; merging none removes them all."""
    base = CascadeConfig.from_dict(CASCADE)
    one = GeneratedRule(
        "apls_one",
        "pat_one",
        "RULES",
        {"field": "amount", "operator": ">=", "value": 900},
        "decline",
        confidence=0.99,
    )
    two = GeneratedRule(
        "apls_two",
        "pat_two",
        "RULES",
        {"field": "amount", "operator": "<", "value": 20},
        "approve",
        confidence=1.0,
    )
    first = merge_rules(base, [one])
    second = merge_rules(first, [one, two])
    names = [r.name for r in second.stages["RULES"].routing_rules]
    assert names == [
        "small_approve",
        "escalate",
        "apls_two",
        "apls_two_stop",
        "apls_one",
        "apls_one_stop",
    ]
    assert second.version == "1.2"
    cleared = merge_rules(second, [], version="2.0")
    assert [r.name for r in cleared.stages["RULES"].routing_rules] == ["small_approve", "escalate"]
    assert cleared.version == "2.0"


def test_rule_for_an_unknown_stage_is_a_config_error() -> None:
    """Merging a rule for a stage the cascade lacks names the closest stage."""
    rule = GeneratedRule(
        "apls_x", "pat_x", "RULE", {"field": "a", "operator": "==", "value": 1}, "approve"
    )
    with pytest.raises(ConfigError) as caught:
        merge_rules(CascadeConfig.from_dict(CASCADE), [rule])
    assert caught.value.issues[0].suggestion == "RULES"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.0", "1.1"),
        ("1.9", "1.10"),
        ("v7", "v8"),
        ("2024.05.1", "2024.05.2"),
        ("beta", "beta.1"),
        ("2024-01", "2024-02"),
        ("1.01", "1.02"),
        ("1.09", "1.10"),
        ("", "1"),
    ],
)
def test_next_version(version: str, expected: str) -> None:
    """The next version bumps the trailing number, keeping its zero padding, or appends
    `.1`."""
    assert next_version(version) == expected


def test_rule_name_prefix_is_checked() -> None:
    """A prefix that cannot start a rule name is refused."""
    with pytest.raises(ValueError, match="prefix"):
        RuleGenerator(prefix="no spaces")


def test_merging_nothing_keeps_the_version() -> None:
    """No rules and no earlier learned rules: the same config comes back, version unchanged."""
    from cascadence import CascadeConfig
    from cascadence.learning import merge_rules

    config = CascadeConfig.from_dict({"name": "m", "version": "1.0", "stages": {"A": {}}})
    assert merge_rules(config, []) is config


def test_merge_rules_refuses_what_is_not_a_generated_rule() -> None:
    """A list of anything but GeneratedRules is a TypeError naming what to pass."""
    config = CascadeConfig.from_dict(CASCADE)
    with pytest.raises(TypeError, match=r"takes GeneratedRules.*got str: 'x'"):
        merge_rules(config, ["x"])  # type: ignore[list-item]
