"""Patterns of runs a stage decided itself: the spec's workflow end to end, with rules that
decide before that stage runs, so a real engine skips it on the inputs they match."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from learning_helpers import KeepContext

from cascadence import CascadeConfig, CascadeEngine, ExecutionContext
from cascadence.cascade.config import RoutingRule
from cascadence.learning import (
    GeneratedRule,
    Pattern,
    PatternExtractor,
    ProposalManager,
    RuleGenerator,
    ShadowEvaluator,
    decision_of,
    merge_rules,
)
from cascadence.replay import replay

ALONE = {"name": "review", "version": "1.0", "stages": {"SINGLE_AI": {"cost": "SINGLE_AI"}}}
"""One expensive stage deciding every payment."""

PAYMENTS = {
    "name": "payments",
    "version": "1.0",
    "stages": {
        "RULES": {
            "cost": "RULES",
            "routing_rules": [
                {
                    "name": "tiny",
                    "priority": 100,
                    "condition": {
                        "field": "stages.RULES.result",
                        "operator": "==",
                        "value": "approve",
                    },
                    "action": {"type": "terminate"},
                }
            ],
        },
        "SINGLE_AI": {"cost": "SINGLE_AI", "depends_on": ["RULES"]},
    },
}
"""RULES approves tiny amounts itself and passes every other payment to SINGLE_AI."""


def by_amount(ctx: Any) -> dict[str, Any]:
    """The brief's judge: fraud above 10,000."""
    return {"result": "fraud" if ctx.data["amount"] > 10000 else "ok", "confidence": 0.9}


def rules_stage(ctx: Any) -> dict[str, Any]:
    """Approves amounts below 20; passes the rest on without flagging them itself."""
    if ctx.data["amount"] < 20:
        return {"result": "approve", "confidence": 0.99}
    return {"result": "review", "confidence": 0.5, "escalated": False}


def llm(ctx: Any) -> dict[str, Any]:
    """Large amounts are fraud and small ones fine; in between the verdict turns on details no
    field shows (a hash of the id). Flags every verdict for learning (`escalated`)."""
    amount = ctx.data["amount"]
    if amount >= 10000:
        verdict = "fraud"
    elif amount < 2000:
        verdict = "ok"
    else:
        digest = hashlib.sha256(ctx.data["id"].encode()).digest()
        verdict = "fraud" if digest[0] % 2 else "ok"
    return {"result": verdict, "confidence": 0.9, "escalated": True}


def payments(count: int, seed: int) -> list[dict[str, Any]]:
    """Small (1-1,000), middling (3,000-4,000) and large (12,000-20,000) payments."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        low, high = rng.choice([(1, 1000), (3000, 4000), (12000, 20000)])
        out.append({"id": f"{seed}-{index}", "amount": round(rng.uniform(low, high), 2)})
    return out


def mean_cost(results: list[dict[str, Any]]) -> float:
    return sum(r["cost"] for r in results) / len(results)


async def test_the_spec_workflow_with_hand_built_contexts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every line of the spec's Basic Usage on runs SINGLE_AI decided itself, then the active
    rules merged into the cascade: SINGLE_AI no longer runs, and decides nothing differently."""
    from cascadence.learning import CostAnalyzer

    extractor = PatternExtractor()
    random.seed(1)
    for _ in range(300):
        a = random.uniform(0, 20000)
        result = {"result": "fraud" if a > 10000 else "ok", "confidence": 0.9, "escalated": True}
        for stage_name, stage_result in {"SINGLE_AI": result}.items():
            if stage_result.get("escalated"):
                extractor.learn_from_failure(
                    ExecutionContext({"amount": a}), stage_name, stage_result
                )
    candidates = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)
    generator = RuleGenerator()
    rules = [generator.generate_from_pattern(p) for p in candidates]
    analyzer = CostAnalyzer()
    for rule, pattern in zip(rules, candidates):  # noqa: B007 - the spec's loop, as written
        roi = analyzer.calculate_migration_roi(pattern, target_stage="RULES", volume=10000)
        print(f"Pattern {pattern.id}: {roi.cost_reduction_percentage:.1f}% savings")
        print(f"  Recommendation: {roi.recommendation}")
    manager = ProposalManager()
    created = []
    for rule, pattern in zip(rules, candidates):
        roi = analyzer.calculate_migration_roi(pattern, "RULES", 10000)
        if roi.recommendation == "MIGRATE":
            proposal = manager.create_proposal(rule, roi)
            created.append(proposal.proposal_id)
            print(f"Created proposal {proposal.proposal_id} for review")
    for proposal_id in created:
        proposal = manager.approve(proposal_id, reviewer="admin@example.com")
        proposal = manager.activate(proposal_id)
    active_rules = manager.get_active_rules()

    out = capsys.readouterr().out
    assert sorted((p.expression, p.decision) for p in candidates) == [
        ("amount < 10000", "ok"),
        ("amount >= 10000", "fraud"),
    ]
    # (25 - 1) / 25 of the cost of each pattern's matches, on its share of the runs
    shares = {p.id: 96.0 * p.coverage for p in candidates}
    for pattern in candidates:
        assert f"Pattern {pattern.id}: {shares[pattern.id]:.1f}% savings" in out
    assert out.count("Recommendation: MIGRATE") == 2 and len(created) == 2
    assert {(r.stage, r.rule_type) for r in active_rules} == {("SINGLE_AI", "precondition")}

    before = CascadeEngine(CascadeConfig.from_dict(ALONE))
    merged = merge_rules(before.config, active_rules)
    assert merged.version == "1.1"
    assert [r.type for r in merged.stages["SINGLE_AI"].routing_rules] == ["precondition"] * 4
    assert CascadeConfig.from_yaml(merged.to_yaml()) == merged
    after = CascadeEngine(merged)
    calls: list[float] = []

    def judge(ctx: Any) -> dict[str, Any]:
        calls.append(ctx.data["amount"])
        return by_amount(ctx)

    for engine in (before, after):
        engine.register_stage("SINGLE_AI", judge, in_thread=False)
    rng = random.Random(2)
    data = [{"amount": round(rng.uniform(0, 20000), 2)} for _ in range(200)]
    old = [await before.execute(dict(d)) for d in data]
    assert len(calls) == 200
    new = [await after.execute(dict(d)) for d in data]
    assert len(calls) == 200  # SINGLE_AI never ran on the new version
    assert [decision_of(r) for r in new] == [decision_of(r) for r in old]
    assert all(r["path"] == [] and r["terminated_by"].endswith("_stop") for r in new)
    assert (mean_cost(old), mean_cost(new)) == (25.0, 0.0)
    manager.close()


async def test_learned_from_engine_runs_then_decided_before_the_stage() -> None:
    """The spec's loop over a real engine's runs, where SINGLE_AI flags its own verdicts;
    proposals approved, shadow-tested and activated; the next version skips SINGLE_AI on the
    payments the rules match, with the same decisions, and still calls it on the others."""
    keep = KeepContext()
    v1 = CascadeEngine(CascadeConfig.from_dict(PAYMENTS), hooks=[keep])
    v1.register_stages({"RULES": rules_stage, "SINGLE_AI": llm})
    from cascadence.learning import CostAnalyzer

    extractor = PatternExtractor()
    for data in payments(3000, seed=1):
        execution_result = await v1.execute(data)
        context = keep.contexts.pop()
        for stage_name, result in execution_result["stage_results"].items():
            if result.get("escalated"):
                extractor.learn_from_failure(context, stage_name, result)
    # at 0.8, cuts reach into the middling payments that SINGLE_AI splits evenly
    candidates = extractor.get_migration_candidates(min_confidence=0.99, min_samples=100)
    assert {(p.expression, p.decision, p.self_decided) for p in candidates} == {
        ("amount >= 10000", "fraud", True),
        ("amount < 3000", "ok", True),
    }
    assert all(p.target_stage == p.source_stage == "SINGLE_AI" for p in candidates)
    assert all(p.stage_order == ("RULES", "SINGLE_AI") for p in candidates)
    generator = RuleGenerator()
    rules = [generator.generate_from_pattern(p) for p in candidates]
    analyzer = CostAnalyzer()
    manager = ProposalManager(min_agreement=0.99, min_shadow_samples=50)
    created = []
    for rule, pattern in zip(rules, candidates):
        roi = analyzer.calculate_migration_roi(pattern, "RULES", 10000)
        # RULES runs right before SINGLE_AI: a matched run costs 1 instead of 26
        assert (roi.target_stage, roi.placement) == ("RULES", "after")
        assert (roi.cost_per_decision_before, roi.cost_per_decision_after) == (26.0, 1.0)
        assert roi.recommendation == "MIGRATE", roi.rationale
        created.append(manager.create_proposal(rule, roi).proposal_id)
    for proposal_id in created:
        manager.approve(proposal_id, reviewer="admin@example.com")
        manager.start_testing(proposal_id)

    # shadow: live runs of v1 unchanged; each rule evaluated where SINGLE_AI was about to run
    shadow = ShadowEvaluator(manager)
    live = payments(600, seed=2)
    for data in live:
        await shadow.execute(v1, data)
    shadow.flush()
    reached = [d for d in live if d["amount"] >= 20]
    for proposal_id, pattern in zip(created, candidates):
        stats = manager.get(proposal_id).shadow
        matched = [d for d in reached if pattern.matches(d)]
        assert (stats.executions, stats.eligible) == (600, len(reached))
        assert stats.matched == len(matched) > 100
        assert stats.agreed == stats.matched
        assert stats.saved_cost == 25.0 * len(matched)
    for proposal_id in created:
        manager.activate(proposal_id, actor="admin@example.com")
    active_rules = manager.get_active_rules()

    merged = merge_rules(v1.config, active_rules)
    merged = CascadeConfig.from_yaml(merged.to_yaml())
    assert merged.version == "1.1"
    v2 = CascadeEngine(merged)
    calls: list[str] = []

    def counted(ctx: Any) -> dict[str, Any]:
        calls.append(ctx.data["id"])
        return llm(ctx)

    v2.register_stages({"RULES": rules_stage, "SINGLE_AI": counted})
    fresh = payments(900, seed=3)
    old = [await v1.execute(dict(d)) for d in fresh]
    new = [await v2.execute(dict(d)) for d in fresh]
    assert [decision_of(r) for r in new] == [decision_of(r) for r in old]
    middling = [d["id"] for d in fresh if 3000 <= d["amount"] < 4000]
    assert calls == middling  # SINGLE_AI runs on the payments no rule matches, and only there
    for data, result in zip(fresh, new):
        if data["amount"] < 20:  # RULES's own decision stands
            assert (result["path"], result["terminated_by"], result["cost"]) == (
                ["RULES"],
                "tiny",
                1.0,
            )
        elif data["id"] in middling:
            assert result["path"] == ["RULES", "SINGLE_AI"] and result["cost"] == 26.0
        else:
            assert result["path"] == ["RULES"] and result["cost"] == 1.0
            assert result["terminated_by"] in {r.rule_names[1] for r in active_rules}
            assert result["data"]["decision"] == llm(ExecutionContext(data))["result"]
    assert mean_cost(new) < mean_cost(old) / 2
    expected = sum(26.0 if d["id"] in middling else 1.0 for d in fresh) / len(fresh)
    assert mean_cost(new) == pytest.approx(expected)

    # a replay of both versions says the same
    report = await replay(v1, fresh, candidate=v2)
    assert report.agreement == 1.0
    assert report.candidate is not None
    assert report.candidate.total_cost == pytest.approx(sum(r["cost"] for r in new))
    assert report.cost_change is not None and report.cost_change < -0.5
    manager.close()


def own_pattern(**changes: Any) -> Pattern:
    """A pattern of runs SINGLE_AI decided itself after RULES."""
    values: dict[str, Any] = {
        "id": "pat_own",
        "pattern_type": "THRESHOLD",
        "target_stage": "SINGLE_AI",
        "source_stage": "SINGLE_AI",
        "condition": {"field": "amount", "operator": ">=", "value": 10000},
        "decision": "fraud",
        "confidence": 1.0,
        "support": 120,
        "coverage": 0.5,
        "population": 240,
        "base_rate": 0.5,
        "lower_bound": 0.97,
        "train_confidence": 1.0,
        "train_support": 280,
        "features": ["amount"],
        "stage_order": ["RULES", "SINGLE_AI"],
        "stage_share": {"RULES": 1.0, "SINGLE_AI": 1.0},
        "stage_cost": {"RULES": 1.0, "SINGLE_AI": 25.0},
        "population_stage_share": {"RULES": 1.0, "SINGLE_AI": 1.0},
        "population_stage_cost": {"RULES": 1.0, "SINGLE_AI": 25.0},
        "self_decided": True,
    }
    return Pattern.from_dict({**values, **changes})


def test_a_self_decided_pattern_gives_two_preconditions_of_its_stage() -> None:
    """set_field of the decision, then terminate, both preconditions of SINGLE_AI; the
    same pattern learned after SINGLE_AI would give routing rules with another name."""
    rule = RuleGenerator().generate_from_pattern(own_pattern())
    assert (rule.stage, rule.rule_type, rule.before) == ("SINGLE_AI", "precondition", True)
    decide, stop = rule.routing_rules(priority=-10)
    assert decide == {
        "name": "apls_own",
        "type": "precondition",
        "priority": -10,
        "condition": {"field": "amount", "operator": ">=", "value": 10000},
        "action": {
            "type": "set_field",
            "field": "decision",
            "value": "fraud",
            "reason": "APLS pat_own",
        },
        "description": rule.description,
    }
    assert stop == {
        "name": "apls_own_stop",
        "type": "precondition",
        "priority": -11,
        "condition": {"field": "amount", "operator": ">=", "value": 10000},
        "action": {"type": "terminate", "reason": "APLS pat_own"},
        "description": "ends the run decided by apls_own before SINGLE_AI runs",
    }
    assert all(isinstance(m, RoutingRule) and m.type == "precondition" for m in rule.to_models())
    assert GeneratedRule.from_dict(rule.to_dict()) == rule
    # a rule stored before rule types were recorded reads back as a routing rule
    older = {k: v for k, v in rule.to_dict().items() if k != "rule_type"}
    assert GeneratedRule.from_dict(older).rule_type == "routing"
    ordinary = RuleGenerator().generate_from_pattern(own_pattern(self_decided=False))
    assert (ordinary.rule_type, ordinary.before) == ("routing", False)
    assert {r["type"] for r in ordinary.routing_rules()} == {"routing"}


def test_a_precondition_cannot_read_its_own_stage() -> None:
    """A self-decided pattern whose condition reads its own stage's result is refused: the
    stage has not run when the rule is evaluated."""
    bad = own_pattern(condition="stages.SINGLE_AI.confidence >= 0.9")
    with pytest.raises(ValueError, match=r"cannot read stages\.SINGLE_AI.*earlier stages"):
        RuleGenerator().generate_from_pattern(bad)


def test_learned_patterns_of_the_stage_itself_have_their_own_ids() -> None:
    """Mined self-decided patterns are flagged, and their ids (and rule names) differ from a
    pattern of the same stage, condition and decision placed after the stage."""
    extractor = PatternExtractor()
    rng = random.Random(4)
    for _ in range(300):
        a = rng.uniform(0, 20000)
        extractor.learn_from_failure(
            ExecutionContext({"amount": a}), "SINGLE_AI", {"result": "fraud" if a > 10000 else "ok"}
        )
    candidates = extractor.get_migration_candidates()
    assert candidates and all(p.self_decided for p in candidates)
    from cascadence.learning.patterns import pattern_id

    for p in candidates:
        assert p.id == pattern_id(p.target_stage, p.condition, p.decision, before=True)
        assert p.id != pattern_id(p.target_stage, p.condition, p.decision)
        assert p.avg_saved_cost == pytest.approx(25.0)
        assert Pattern.from_dict(p.to_dict()) == p


def test_merged_preconditions_go_below_the_stages_own() -> None:
    """The stage's own preconditions keep acting first: learned ones get lower priorities,
    and the next merge replaces them."""
    data = {
        "name": "gate",
        "version": "2.0",
        "stages": {
            "RULES": {"cost": "RULES"},
            "SINGLE_AI": {
                "cost": "SINGLE_AI",
                "routing_rules": [
                    {
                        "name": "vip",
                        "type": "precondition",
                        "priority": 5,
                        "condition": "vip == true",
                        "action": {"type": "terminate"},
                    }
                ],
            },
        },
    }
    rule = RuleGenerator().generate_from_pattern(own_pattern())
    merged = merge_rules(CascadeConfig.from_dict(data), [rule])
    rules = merged.stages["SINGLE_AI"].routing_rules
    assert [(r.name, r.type, r.priority) for r in rules] == [
        ("vip", "precondition", 5),
        ("apls_own", "precondition", -5),
        ("apls_own_stop", "precondition", -6),
    ]
    again = merge_rules(merged, [rule])
    assert [r.name for r in again.stages["SINGLE_AI"].routing_rules] == [r.name for r in rules]


async def test_shadow_sees_a_precondition_where_its_stage_was_about_to_run() -> None:
    """A precondition in TESTING is evaluated on runs where its stage ran, on the input and
    the stages before it; had it matched, its stage would have been saved. Fed by hooks or
    by `execute`, the statistics are the same."""
    rule = RuleGenerator().generate_from_pattern(own_pattern())
    stats = []
    for by_hooks in (False, True):
        manager = ProposalManager()
        proposal_id = manager.create_proposal(rule).proposal_id
        manager.approve(proposal_id)
        manager.start_testing(proposal_id)
        shadow = ShadowEvaluator(manager)
        hooks = [shadow.hooks()] if by_hooks else []
        engine = CascadeEngine(CascadeConfig.from_dict(PAYMENTS), hooks=hooks)
        engine.register_stages({"RULES": rules_stage, "SINGLE_AI": llm})
        data = [*payments(300, seed=5), {"id": "t", "amount": 15.0}]
        outcomes = []
        for item in data:
            if by_hooks:
                await engine.execute(item)
            else:
                result = await engine.execute(item)
                outcomes.extend(shadow.observe(item, result))
        shadow.flush()
        stats.append(manager.get(proposal_id).shadow)
        if not by_hooks:
            assert all(o.stage == "SINGLE_AI" for o in outcomes)
            assert sum(o.matched for o in outcomes) == sum(d["amount"] >= 10000 for d in data)
        manager.close()
    reached = sum(1 for d in payments(300, seed=5) if d["amount"] >= 20)
    large = sum(1 for d in payments(300, seed=5) if d["amount"] >= 10000)
    assert stats[0] == stats[1]
    assert (stats[0].executions, stats[0].eligible) == (301, reached)
    assert (stats[0].matched, stats[0].agreed) == (large, large)
    assert stats[0].saved_cost == 25.0 * large
