"""The spec's `learn_from_failure`: what each call returns, and what a context without the
later stages teaches."""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from learning_helpers import otherwise, records

from cascadence import ExecutionContext
from cascadence.learning import Pattern, PatternExtractor, PatternType
from cascadence.runtime.result import StageResult


def spec_call(
    extractor: PatternExtractor, data: dict[str, Any], stages: dict[str, dict[str, Any]]
) -> Pattern | None:
    """The spec's call for a RULES -> AI run where RULES escalated, with the run's context."""
    context = ExecutionContext(data, {n: StageResult(r) for n, r in stages.items()})
    return extractor.learn_from_failure(context, "RULES", stages["RULES"])


def test_each_call_returns_the_pattern_of_its_run_once_the_stage_has_enough_runs() -> None:
    """Without any other call: None while RULES has fewer than 100 runs, then the pattern the
    run falls under, deciding as the run was decided; at the end, the candidates' patterns."""
    runs = records(2000, lambda d, r: "decline" if d["amount"] >= 150 else "approve")
    extractor = PatternExtractor()
    returned = [spec_call(extractor, run.data, dict(run.stage_results)) for run in runs]
    assert returned[:99] == [None] * 99
    for run, pattern in zip(runs, returned):
        if pattern is not None:
            assert pattern.target_stage == "RULES"
            assert pattern.decision == run.decision
            assert pattern.matches(run.data, run.stages_through("RULES"))
    assert all(p is not None for p in returned[-1000:])
    last = {p.id for p in returned[-500:] if p is not None}
    candidates = extractor.get_migration_candidates()
    assert {p.expression for p in candidates} == {"amount < 150", "amount >= 150"}
    assert last == {p.id for p in candidates}
    # forgetting the runs forgets the patterns
    extractor.clear()
    assert spec_call(extractor, runs[0].data, dict(runs[0].stage_results)) is None


def test_calls_answer_with_the_thresholds_of_the_last_candidates_call() -> None:
    """After `get_migration_candidates(0.95, 100)`, a call returns one of its patterns (the
    same object) or None, never a pattern those thresholds refused."""
    runs = records(5000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r))
    extractor = PatternExtractor()
    early = [spec_call(extractor, run.data, dict(run.stage_results)) for run in runs]
    # with the default thresholds (0.8), patterns of approvals turn up along the way
    assert {p.decision for p in early if p is not None} == {"approve", "decline"}
    (pattern,) = extractor.get_migration_candidates(0.95, 100)
    assert pattern.decision == "decline"
    for run in records(300, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r), seed=2):
        found = spec_call(extractor, run.data, dict(run.stage_results))
        assert found is (pattern if run.data["amount"] >= 150 else None)


def test_a_context_without_later_stages_learns_the_stages_own_decisions() -> None:
    """The spec's call with a hand-built context: the stage's own `result` is the decision,
    learned from the input alone (never from the stage's own output, which gives it away)."""
    extractor = PatternExtractor()
    rng = random.Random(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped with a warning
        for _ in range(300):
            a = rng.uniform(0, 20000)
            fraud = a > 10000
            extractor.learn_from_failure(
                ExecutionContext({"amount": a}),
                "SINGLE_AI",
                {
                    "result": "fraud" if fraud else "ok",
                    "confidence": 0.97 if fraud else 0.9,
                    "data": {"reasoning": "fraud" if fraud else "fine"},
                    "escalated": True,
                },
            )
    assert len(extractor) == 300
    record = extractor.records[0]
    assert record.self_decided and record.stage_results == {"SINGLE_AI": {}}
    candidates = extractor.get_migration_candidates(min_confidence=0.8, min_samples=100)
    assert sorted((p.expression, p.decision) for p in candidates) == [
        ("amount < 10000", "ok"),
        ("amount >= 10000", "fraud"),
    ]
    for pattern in candidates:
        assert pattern.pattern_type is PatternType.THRESHOLD
        assert pattern.features == ("amount",)
        assert pattern.target_stage == pattern.source_stage == "SINGLE_AI"
    fraud = next(p for p in candidates if p.decision == "fraud")
    assert fraud.description.startswith("when amount >= 10000: SINGLE_AI decides 'fraud'")
    # from then on, a call returns the pattern of its run
    found = extractor.learn_from_failure(
        ExecutionContext({"amount": 15000.0}), "SINGLE_AI", {"result": "fraud"}
    )
    assert found is fraud


def test_a_stage_that_decided_after_earlier_stages_learns_from_them_too() -> None:
    """With earlier stages in the context, their results are features of the pattern; the
    deciding stage's cost is kept, its answer is not."""
    extractor = PatternExtractor()
    rng = random.Random(8)
    for _ in range(400):
        score = rng.randint(0, 100)
        context = ExecutionContext(
            {"country": rng.choice("ABC")},
            {"RULES": StageResult(result="review", confidence=0.5, data={"score": score})},
        )
        result = {"result": "decline" if score >= 70 else "approve", "cost": 25.0}
        extractor.learn_from_failure(context, "AI", result)
    record = extractor.records[0]
    assert record.path == ("RULES", "AI") and record.eligible == {"AI"}
    assert record.stage_results["AI"] == {"cost": 25.0}
    candidates = extractor.get_migration_candidates(min_confidence=0.95, min_samples=100)
    assert {(p.expression, p.decision) for p in candidates} == {
        ("stages.RULES.data.score >= 70", "decline"),
        ("stages.RULES.data.score < 70", "approve"),
    }


def test_the_runs_own_context_ending_at_the_stage_is_its_decision() -> None:
    """The run's own results ending with a stage that marked itself escalated: that stage was
    the last to run, so its result is the run's decision."""
    extractor = PatternExtractor()
    stages = {
        "RULES": StageResult(result="review", confidence=0.4, time_ms=0.1, escalated=True),
        "AI": StageResult(result="human", confidence=0.5, time_ms=9.0, escalated=True),
    }
    context = ExecutionContext({"amount": 5.0}, stages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extractor.learn_from_failure(context, "AI", stages["AI"]) is None
    (record,) = extractor.records
    assert record.decision == "human" and record.self_decided
    assert record.stage_results["AI"] == {"time_ms": 9.0}


def test_nothing_is_recorded_only_when_nothing_usable_is_given() -> None:
    """No later stage and no decision at all, or an engine's stage result given with the input
    alone (its run may have gone on; its answer may be provisional): a warning, once."""
    extractor = PatternExtractor()
    data = {"amount": 20.0}
    with pytest.warns(UserWarning, match="holds no `result` to use as the decision"):
        assert extractor.learn_from_failure(data, "RULES", {"confidence": 0.5}) is None
    engine_made = {"result": "review", "confidence": 0.5, "time_ms": 0.2, "escalated": True}
    for result in (engine_made, StageResult(engine_made)):
        with pytest.warns(UserWarning, match="may have gone on to later stages"):
            assert extractor.learn_from_failure(data, "RULES", result) is None
        extractor._warned.clear()
    assert len(extractor) == 0
    # the decision given: usable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extractor.learn_from_failure(data, "RULES", StageResult(engine_made), decision="approve")
        extractor.learn_from_failure(data, "RULES", {}, decision="approve")
    assert [r.decision for r in extractor.records] == ["approve", "approve"]
    with pytest.raises(TypeError, match="stage's result dict"):
        extractor.learn_from_failure(data, "RULES", "review")  # type: ignore[arg-type]
