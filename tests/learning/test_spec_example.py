"""The config document's APLS example runs as written (only the package name changed)."""

from __future__ import annotations

import copy
import json
import pickle
import random
import warnings
from typing import Any

import pytest
from learning_helpers import KeepContext

from cascadence import CascadeConfig, CascadeEngine, ExecutionContext
from cascadence.learning import merge_rules

SPEC_CASCADE = {
    "name": "spec_apls",
    "stages": {
        "RULES": {
            "cost": "RULES",
            "routing_rules": [
                {
                    "name": "escalate",
                    "condition": "stages.RULES.escalated == true",
                    "action": {"type": "enable_stages", "stages": ["STATISTICAL_ML"]},
                }
            ],
        },
        "STATISTICAL_ML": {
            "enabled": False,
            "cost": "STATISTICAL_ML",
            "routing_rules": [
                {
                    "name": "escalate",
                    "condition": "stages.STATISTICAL_ML.escalated == true",
                    "action": {"type": "enable_stages", "stages": ["SINGLE_AI"]},
                }
            ],
        },
        "SINGLE_AI": {"enabled": False, "cost": "SINGLE_AI"},
    },
}


def rules_stage(ctx: Any) -> dict[str, Any]:
    if ctx.data["amount"] < 10:
        return {"result": "approve", "confidence": 0.99}
    return {"result": "review", "confidence": 0.4, "escalated": True}


def model(ctx: Any) -> dict[str, Any]:
    if ctx.data["amount"] < 60:
        return {"result": "approve", "confidence": 0.95}
    return {"result": "review", "confidence": 0.6, "escalated": True}


def llm(ctx: Any) -> dict[str, Any]:
    verdict = "decline" if ctx.data["amount"] >= 400 else "approve"
    return {"result": verdict, "confidence": 0.9, "data": {"reasoning": "Judged on amount."}}


async def test_spec_apls_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Extract, generate, analyze, propose, approve, activate and read the active rules."""
    keep = KeepContext()
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE), hooks=[keep])
    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model, "SINGLE_AI": llm})
    rng = random.Random(5)

    from cascadence.learning import (
        CostAnalyzer,
        PatternExtractor,
        ProposalManager,
        RuleGenerator,
    )

    # Extract patterns from cascade execution failures
    extractor = PatternExtractor()

    for _ in range(4000):
        execution_result = await engine.execute({"amount": round(rng.lognormvariate(4.5, 1), 2)})
        context = keep.contexts.pop()
        # After each cascade execution
        for stage_name, result in execution_result["stage_results"].items():
            if result.get("escalated"):
                pattern = extractor.learn_from_failure(context, stage_name, result)

    # Get migration candidates (patterns that could move to cheaper stages)
    candidates = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)

    # Generate rules from patterns
    generator = RuleGenerator()
    rules = [generator.generate_from_pattern(p) for p in candidates]

    # Analyze ROI
    analyzer = CostAnalyzer()
    for rule, pattern in zip(rules, candidates):  # noqa: B007 - the spec's loop, as written
        roi = analyzer.calculate_migration_roi(pattern, target_stage="RULES", volume=10000)
        print(f"Pattern {pattern.id}: {roi.cost_reduction_percentage:.1f}% savings")
        print(f"  Recommendation: {roi.recommendation}")

    # Create proposals for human review
    manager = ProposalManager()
    for rule, pattern in zip(rules, candidates):
        roi = analyzer.calculate_migration_roi(pattern, "RULES", 10000)
        if roi.recommendation == "MIGRATE":
            proposal = manager.create_proposal(rule, roi)
            print(f"Created proposal {proposal.proposal_id} for review")

    proposal_id = proposal.proposal_id
    # Approve and activate rules
    proposal = manager.approve(proposal_id, reviewer="admin@example.com")
    proposal = manager.activate(proposal_id)

    # Get active rules to add to cascade config
    active_rules = manager.get_active_rules()

    out = capsys.readouterr().out
    assert "Recommendation: MIGRATE" in out
    assert f"Created proposal {proposal_id} for review" in out
    assert {p.target_stage for p in candidates} == {"RULES", "STATISTICAL_ML"}
    assert "Recommendation: REJECT" in out  # STATISTICAL_ML patterns cannot move to RULES
    assert [r.stage for r in active_rules] == ["RULES"]
    merged = merge_rules(engine.config, active_rules)
    assert CascadeConfig.from_yaml(merged.to_yaml()) == merged
    manager.close()


async def test_the_spec_loop_gets_each_runs_pattern_back_as_soon_as_one_is_found() -> None:
    """`pattern = extractor.learn_from_failure(...)` in a 300-run loop: once a stage has enough
    runs, the call returns the pattern its run falls under, with no other call first."""
    keep = KeepContext()
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE), hooks=[keep])
    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model, "SINGLE_AI": llm})
    rng = random.Random(5)

    from cascadence.learning import PatternExtractor

    extractor = PatternExtractor()
    returned = []
    for _ in range(300):
        execution_result = await engine.execute({"amount": round(rng.lognormvariate(4.5, 1), 2)})
        context = keep.contexts.pop()
        through: dict[str, Any] = {}
        for stage_name, result in execution_result["stage_results"].items():
            through[stage_name] = result
            if result.get("escalated"):
                pattern = extractor.learn_from_failure(context, stage_name, result)
                if pattern is not None:
                    assert pattern.target_stage == stage_name
                    assert pattern.matches(context.data, through)
                    returned.append(pattern)
    assert len(returned) >= 20
    assert {p.id for p in returned} <= {p.id for p in extractor.get_migration_candidates()}


@pytest.mark.parametrize("with_input", [False, True])
async def test_the_execution_result_itself_serves_as_the_context(with_input: bool) -> None:
    """The spec leaves `context` undefined; the execution result in scope works, since it
    carries its input. Every escalated run here ends in the same decision: no condition beats
    that 100% base rate, and the pattern is still found."""
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE))

    def always_decline(ctx: Any) -> dict[str, Any]:
        return {"result": "decline", "confidence": 0.97}

    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": always_decline})
    engine.register_stage("SINGLE_AI", llm)
    rng = random.Random(3)

    from cascadence.learning import PatternExtractor

    extractor = PatternExtractor()
    for _ in range(600):
        data = {"amount": round(rng.uniform(10, 1000), 2), "country": rng.choice("ABC")}
        execution_result = await engine.execute(data)
        assert execution_result["input"] is data
        context = {"input": data, **execution_result} if with_input else execution_result
        for stage_name, result in execution_result["stage_results"].items():
            if result.get("escalated"):
                extractor.learn_from_failure(context, stage_name, result)
    assert len(extractor) == 600
    candidates = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)
    assert [(p.target_stage, p.decision) for p in candidates] == [("RULES", "decline")]
    assert candidates[0].confidence == 1.0


async def test_a_rare_second_decision_is_never_taken_for_a_single_one() -> None:
    """Escalated runs end in "decline" 98% of the time, independently of every feature. The
    held-out draw may hold none of the rare "approve" runs; the runs as a whole do, so no
    extractor seed yields a pattern from this noise."""
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE))
    noise = random.Random(99)

    def model_noise(ctx: Any) -> dict[str, Any]:
        return {"result": "decline" if noise.random() < 0.98 else "approve", "confidence": 0.9}

    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model_noise})
    engine.register_stage("SINGLE_AI", llm)
    rng = random.Random(1)
    results = []
    for _ in range(400):
        data = {"amount": round(rng.uniform(10, 3000), 2), "age": rng.randint(0, 2000)}
        results.append(await engine.execute(data))
    assert any(r["final_result"] == "approve" for r in results)

    from cascadence.learning import PatternExtractor

    for seed in range(10):
        extractor = PatternExtractor(seed=seed)
        for result in results:
            extractor.learn_from_failure(result, "RULES", result["stage_results"]["RULES"])
        assert extractor.get_migration_candidates(min_confidence=0.9, min_samples=100) == []


async def test_an_execution_result_gives_its_decision_including_a_learned_rules() -> None:
    """With the execution result as the context, a run's decision is `decision_of(result)`:
    a learned rule's `set_field` decision, as `observe` reads it."""
    config = dict(SPEC_CASCADE)
    stages = {name: dict(stage) for name, stage in SPEC_CASCADE["stages"].items()}  # type: ignore[attr-defined]
    stages["STATISTICAL_ML"]["routing_rules"] = [
        {
            "name": "learned",
            "type": "precondition",
            "condition": "amount >= 60",
            "action": {"type": "set_field", "field": "decision", "value": "decline"},
        },
        *stages["STATISTICAL_ML"]["routing_rules"],
    ]
    config["stages"] = stages
    engine = CascadeEngine(CascadeConfig.from_dict(config))
    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model, "SINGLE_AI": llm})

    from cascadence.learning import PatternExtractor, decision_of

    extractor = PatternExtractor()
    result = await engine.execute({"amount": 500.0})
    assert decision_of(result) == "decline" and result["final_result"] == "decline"
    result = await engine.execute({"amount": 100.0})
    assert decision_of(result) == "decline" and result["final_result"] == "approve"
    extractor.learn_from_failure(result, "RULES", result["stage_results"]["RULES"])
    assert [r.decision for r in extractor.records] == ["decline"]


async def test_the_spec_loop_learns_from_routing_alone() -> None:
    """Handlers that say nothing about escalation: the engine marks each stage the run went
    on from, so the spec's `if result.get("escalated")` loop finds what to learn from."""
    config = CascadeConfig.from_dict(
        {
            "name": "by_confidence",
            "stages": {
                "RULES": {
                    "cost": "RULES",
                    "routing_rules": [
                        {
                            "name": "unsure",
                            "condition": "stages.RULES.confidence < 0.8",
                            "action": {"type": "enable_stages", "stages": ["SINGLE_AI"]},
                        }
                    ],
                },
                "SINGLE_AI": {"enabled": False, "cost": "SINGLE_AI"},
            },
        }
    )
    engine = CascadeEngine(config)

    def rules(ctx: Any) -> dict[str, Any]:
        small = ctx.data["amount"] < 10
        return {"result": "approve" if small else "review", "confidence": 0.99 if small else 0.4}

    engine.register_stages({"RULES": rules, "SINGLE_AI": llm})
    rng = random.Random(7)

    from cascadence.learning import PatternExtractor

    extractor = PatternExtractor()
    for _ in range(600):
        execution_result = await engine.execute({"amount": round(rng.uniform(1, 1000), 2)})
        context = execution_result
        for stage_name, result in execution_result["stage_results"].items():
            if result.get("escalated"):
                extractor.learn_from_failure(context, stage_name, result)
    assert 0 < len(extractor) < 600  # the runs RULES decided were not escalations
    candidates = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)
    # what SINGLE_AI decides on amount (approve under 400, decline above), learned for RULES
    assert {(p.target_stage, p.decision) for p in candidates} == {
        ("RULES", "approve"),
        ("RULES", "decline"),
    }


async def learned(kind: str) -> list[tuple[str, str, Any]]:
    """The candidates of the spec's loop when its `context` is `kind`."""
    from cascadence.learning import PatternExtractor

    keep = KeepContext()
    extractor = PatternExtractor()  # made before the runs, as in the spec
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE), hooks=[keep])
    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model, "SINGLE_AI": llm})
    rng = random.Random(5)
    for _ in range(2500):
        data = {"amount": round(rng.lognormvariate(4.5, 1), 2)}
        execution_result = await engine.execute(data)
        kept = keep.contexts.pop()
        context = {
            "hook": kept,
            "input": data,
            "new context": ExecutionContext(data),
            "execution result": execution_result,
        }[kind]
        for stage_name, result in execution_result["stage_results"].items():
            if result.get("escalated"):
                extractor.learn_from_failure(context, stage_name, result)
    found = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)
    return [(p.target_stage, p.decision, p.condition) for p in found]


async def test_the_spec_loop_learns_the_same_from_any_context() -> None:
    """The spec leaves `context` open: the run's input, a context made from it, the
    execution result and the run's own ExecutionContext all give the same candidates. The
    stages after the one that escalated come with its stage result."""
    expected = await learned("hook")
    assert expected
    for kind in ("input", "new context", "execution result"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing is skipped with a warning
            assert await learned(kind) == expected, kind


async def test_the_link_to_the_run_is_not_part_of_the_stage_result() -> None:
    """The stage result of a stage the run went on from leads to its run, but copies,
    pickles and JSON hold its items only."""
    from cascadence.learning import PatternExtractor
    from cascadence.runtime.result import run_of

    PatternExtractor()
    engine = CascadeEngine(CascadeConfig.from_dict(SPEC_CASCADE))
    engine.register_stages({"RULES": rules_stage, "STATISTICAL_ML": model, "SINGLE_AI": llm})
    result = await engine.execute({"amount": 500})
    stages = result["stage_results"]
    assert run_of(stages["RULES"]) is result and run_of(stages["STATISTICAL_ML"]) is result
    assert run_of(stages["SINGLE_AI"]) is None  # the deciding stage
    for copied in (
        copy.copy(stages["RULES"]),
        copy.deepcopy(stages["RULES"]),
        pickle.loads(pickle.dumps(stages["RULES"])),
    ):
        assert copied == stages["RULES"] and run_of(copied) is None
    assert json.loads(json.dumps(stages["RULES"])) == dict(stages["RULES"])
    assert stages["RULES"]._run is result  # an attribute, not an item
    assert "_run" not in stages["RULES"]
    # what an extractor keeps of the run: the stage results' items, not the whole run
    extractor = PatternExtractor()
    extractor.learn_from_failure({"amount": 500}, "RULES", stages["RULES"])
    (record,) = extractor.records
    assert record.stage_results == {name: dict(r) for name, r in stages.items()}
    assert all(run_of(r) is None for r in record.stage_results.values())
