"""Pattern extraction: each pattern type is recovered from data with a known rule, noise gives
nothing, and every pattern is measured on held-out runs only."""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learning_helpers import WATCHLIST, otherwise, records

from cascadence.conditions import compile_condition
from cascadence.learning import ExecutionRecord, Pattern, PatternExtractor, PatternType
from cascadence.learning.features import FeatureSpec, infer_specs
from cascadence.learning.literals import build_literals, nice_cut
from cascadence.runtime.context import ExecutionContext
from cascadence.runtime.result import StageResult


def candidates(runs: list[ExecutionRecord], **options: Any) -> list[Pattern]:
    confidence = options.pop("min_confidence", 0.95)
    samples = options.pop("min_samples", 100)
    extractor = PatternExtractor(**options).fit(runs)
    return extractor.get_migration_candidates(min_confidence=confidence, min_samples=samples)


def leaves(pattern: Pattern) -> list[dict[str, Any]]:
    condition = pattern.condition
    return list(condition["conditions"]) if condition.get("operator") == "AND" else [condition]


def test_threshold_pattern_recovered() -> None:
    """Declining every amount of 150 or more is found as `amount >= 150` (THRESHOLD)."""
    runs = records(6000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r))
    found = candidates(runs)
    assert len(found) == 1
    (pattern,) = found
    assert pattern.pattern_type is PatternType.THRESHOLD
    assert pattern.decision == "decline"
    assert pattern.target_stage == "RULES" and pattern.source_stage == "AI"
    assert pattern.condition == {"field": "amount", "operator": ">=", "value": 150}
    assert pattern.confidence == 1.0


def test_correlation_pattern_recovered() -> None:
    """A decision taken on a new device for young accounts is found as that conjunction."""

    def decide(d: dict[str, Any], rng: random.Random) -> str:
        if d["is_new_device"] and d["account_age_days"] < 700:
            return "decline"
        return otherwise(rng, 0.9)

    found = candidates(records(10_000, decide))
    assert found
    pattern = found[0]
    assert pattern.pattern_type is PatternType.CORRELATION
    assert pattern.decision == "decline"
    by_field = {leaf["field"]: leaf for leaf in leaves(pattern)}
    assert set(by_field) == {"is_new_device", "account_age_days"}
    assert by_field["is_new_device"]["value"] is True
    assert by_field["account_age_days"]["operator"] == "<"
    assert 650 <= by_field["account_age_days"]["value"] <= 720
    assert pattern.confidence >= 0.95


def test_temporal_pattern_recovered_from_timestamps() -> None:
    """Declining every payment before 05:00 is found as a test on the timestamp's hour."""
    runs = records(6000, lambda d, r: "decline" if d["timestamp"][11:13] < "05" else otherwise(r))
    found = candidates(runs)
    assert len(found) == 1
    (pattern,) = found
    assert pattern.pattern_type is PatternType.TEMPORAL
    assert pattern.decision == "decline"
    test = compile_condition(pattern.condition)
    hours = {h for h in range(24) if test({"timestamp": f"2024-05-04T{h:02d}:30:00"})}
    assert hours == {0, 1, 2, 3, 4}


def test_temporal_pattern_recovered_from_weekend_flag() -> None:
    """Declining weekend payments is found as `is_weekend == true` (TEMPORAL)."""
    found = candidates(records(5000, lambda d, r: "decline" if d["is_weekend"] else otherwise(r)))
    assert [(p.pattern_type, p.condition) for p in found] == [
        (PatternType.TEMPORAL, {"field": "is_weekend", "operator": "==", "value": True})
    ]


def test_behavioral_pattern_recovered() -> None:
    """Declining after three failed attempts in an hour is found as `failed_attempts_1h >= 3`."""
    runs = records(5000, lambda d, r: "decline" if d["failed_attempts_1h"] >= 3 else otherwise(r))
    found = candidates(runs)
    assert [(p.pattern_type, p.condition, p.decision) for p in found] == [
        (
            PatternType.BEHAVIORAL,
            {"field": "failed_attempts_1h", "operator": ">=", "value": 3},
            "decline",
        )
    ]


def test_reasoning_pattern_recovered() -> None:
    """A phrase of the expensive stage's reasoning leads to the cheap facts behind it."""

    def decide(d: dict[str, Any], rng: random.Random) -> str:
        return "decline" if d["merchant_id"] in WATCHLIST else otherwise(rng)

    def explain(d: dict[str, Any], decision: str) -> str:
        if d["merchant_id"] in WATCHLIST:
            return f"The merchant appears on the fraud watchlist. Amount {d['amount']}."
        return "Consistent with history." if decision == "approve" else "Odd; step up."

    found = candidates(records(12_000, decide, explain=explain), min_samples=50)
    assert len(found) == 1
    (pattern,) = found
    assert pattern.pattern_type is PatternType.REASONING
    assert pattern.condition == {
        "field": "merchant_id",
        "operator": "IN",
        "value": sorted(WATCHLIST),
    }
    assert pattern.evidence["phrase"] == "the merchant appears on the fraud watchlist"
    assert pattern.evidence["phrase_stage"] == "AI"


@pytest.mark.parametrize("approve_share", [0.5, 0.9, 0.98])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pure_noise_yields_no_pattern(approve_share: float, seed: int) -> None:
    """Decisions independent of every feature give no candidate, even when one dominates."""
    runs = records(6000, lambda d, r: otherwise(r, approve_share), seed=seed)
    assert candidates(runs, min_confidence=0.8, min_samples=50) == []


def test_patterns_meet_both_thresholds() -> None:
    """Every candidate matches at least min_samples runs (training and held-out together, at
    least 10 held-out) with held-out precision >= min_confidence; asking for more support
    than exists removes the pattern."""
    runs = records(6000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r))
    extractor = PatternExtractor().fit(runs)
    for min_confidence, min_samples in [(0.9, 50), (0.95, 100), (0.99, 300)]:
        for p in extractor.get_migration_candidates(min_confidence, min_samples):
            assert p.train_support + p.support >= min_samples and p.support >= 10
            assert p.confidence >= min_confidence
    assert extractor.get_migration_candidates(0.95, 10_000) == []


def test_a_clean_boundary_is_found_from_a_few_hundred_runs() -> None:
    """Decline exactly above 10,000: 300 runs give both sides of the boundary at 100%
    precision with min_samples=100, and the cut is the boundary itself, not a quantile that
    only looks precise once the other side is decided."""
    rng = random.Random(0)
    runs = []
    for _ in range(300):
        data = {"amount": rng.uniform(0, 20000)}
        decision = "decline" if data["amount"] > 10000 else "approve"
        stages = {
            "RULES": {"result": "review", "confidence": 0.5, "data": {}, "cost": 1.0},
            "AI": {"result": decision, "confidence": 0.9, "data": {}, "cost": 25.0},
        }
        runs.append(ExecutionRecord(data, stages, ("RULES", "AI"), decision, frozenset(stages)))
    found = PatternExtractor().fit(runs).get_migration_candidates(0.8, 100)
    assert sorted((p.expression, p.decision, p.confidence) for p in found) == [
        ("amount < 10000", "approve", 1.0),
        ("amount >= 10000", "decline", 1.0),
    ]


def test_support_and_confidence_come_from_heldout_runs_only() -> None:
    """A pattern's support counts held-out runs matching it, never the training runs."""
    runs = records(6000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r))
    extractor = PatternExtractor(holdout=0.25, seed=5).fit(runs)
    (pattern,) = extractor.get_migration_candidates(0.95, 100)
    kept = extractor.records
    held = [r for r in kept if r.holdout]
    matched = [r for r in held if pattern.matches(r.data, r.stages_through("RULES"))]
    assert pattern.population == len(held) < len(kept) * 0.3
    assert pattern.support == len(matched)
    assert pattern.confidence == sum(r.decision == "decline" for r in matched) / len(matched)
    train_matched = [r for r in kept if not r.holdout and pattern.matches(r.data)]
    assert pattern.train_support == len(train_matched)


def test_same_runs_and_seed_give_the_same_patterns() -> None:
    """Learning is deterministic: the same runs and seed give the same pattern ids."""
    runs = records(5000, lambda d, r: "decline" if d["failed_attempts_1h"] >= 3 else otherwise(r))
    first = [p.id for p in candidates(runs, seed=11)]
    again = [p.id for p in candidates(runs, seed=11)]
    assert first == again and first


def test_learn_from_failure_records_and_returns_matching_pattern() -> None:
    """The spec's `learn_from_failure` records escalations and returns the pattern covering
    the run, from the patterns of the last `get_migration_candidates` call."""
    extractor = PatternExtractor()
    for run in records(5000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r)):
        context = ExecutionContext(
            run.data, {n: StageResult(r) for n, r in run.stage_results.items()}
        )
        found = extractor.learn_from_failure(context, "RULES", run.stage_results["RULES"])
        assert found is None or found.matches(run.data, run.stages_through("RULES"))
    (pattern,) = extractor.get_migration_candidates(0.95, 100)
    high = {"amount": 900.0}
    stages: dict[str, dict[str, Any]] = {
        "RULES": {"result": "review", "confidence": 0.5, "data": {}},
        "AI": {"result": "decline"},
    }
    found = extractor.learn_from_failure(
        {"input": high, "stage_results": stages}, "RULES", stages["RULES"]
    )
    assert found is pattern
    low = {"amount": 20.0}
    wrote = {"input": low, "stage_results": stages}
    assert extractor.learn_from_failure(wrote, "RULES", stages["RULES"], decision="approve") is None
    assert len(extractor) == 5002
    # an execution result without its input: recorded without features, with a warning
    with pytest.warns(UserWarning, match="no input"):
        extractor.learn_from_failure({"stage_results": stages}, "RULES", stages["RULES"])


def test_bad_arguments_name_what_was_expected() -> None:
    """Thresholds, stage names and options are checked, with the closest valid name."""
    extractor = PatternExtractor().fit(records(300, lambda d, r: otherwise(r)))
    with pytest.raises(ValueError, match="min_confidence"):
        extractor.get_migration_candidates(min_confidence=0.0)
    with pytest.raises(ValueError, match="min_samples"):
        extractor.get_migration_candidates(min_samples=0)
    with pytest.raises(ValueError, match="did you mean 'RULES'"):
        extractor.get_migration_candidates(target_stage="RULS")
    with pytest.raises(TypeError, match="did you mean 'beam_width'"):
        PatternExtractor(beam_widht=3)
    with pytest.raises(ValueError, match="holdout"):
        PatternExtractor(holdout=1.0)
    with pytest.raises(TypeError, match="did you mean 'max_records'"):
        PatternExtractor(max_record=10)
    with pytest.raises(TypeError, match="did you mean 'decision_field'"):
        PatternExtractor(decison_field="x")
    with pytest.raises(TypeError, match=r"pass it to get_migration_candidates\(min_confidence"):
        PatternExtractor(min_confidence=0.9)
    for option, value in [
        ("max_conditions", 0),
        ("max_conditions", -1),
        ("passes", 1.5),
        ("significance", 0),
        ("train_margin", 2),
    ]:
        with pytest.raises(ValueError, match=option):
            PatternExtractor(**{option: value})
    for argument, value in [("max_records", 0), ("decision_field", "")]:
        with pytest.raises(ValueError, match=argument):
            PatternExtractor(**{argument: value})
    with pytest.raises(TypeError, match="ignore is a list of field paths"):
        PatternExtractor(ignore=[1])


def test_a_single_path_for_a_list_option_is_a_list_of_one() -> None:
    """`ignore="amount"` leaves out `amount`, as `ignore=["amount"]` does (not its letters)."""
    runs = records(6000, lambda d, r: "decline" if d["amount"] >= 150 else otherwise(r))
    assert any("amount" in str(p.condition) for p in candidates(runs))
    for ignore in ("amount", ["amount"]):
        assert all("amount" not in str(p.condition) for p in candidates(runs, ignore=ignore))


def test_runs_whose_decision_is_not_a_single_value_are_skipped_with_a_warning() -> None:
    """A decision that is a dict or a list cannot be learned: the run is not recorded, and
    the extractor says why (once)."""
    extractor = PatternExtractor()
    result = {
        "success": True,
        "path": ["RULES"],
        "stage_results": {"RULES": {"result": {"v": 1}}},
        "final_result": {"v": 1},
    }
    with pytest.warns(UserWarning, match="decision is a dict are not recorded"):
        assert extractor.observe({"amount": 1}, result) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extractor.observe({"amount": 1}, result) is None  # said once
    assert len(extractor) == 0


def test_pattern_round_trips_through_plain_data() -> None:
    """`Pattern.from_dict(p.to_dict())` equals `p`."""
    runs = records(5000, lambda d, r: "decline" if d["failed_attempts_1h"] >= 3 else otherwise(r))
    (pattern,) = candidates(runs)
    assert Pattern.from_dict(pattern.to_dict()) == pattern
    assert "failed_attempts_1h >= 3" in pattern.description


scalars = st.one_of(
    st.integers(-50, 50),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.booleans(),
    st.sampled_from(["a", "b", "c", "red fox", "big red dog"]),
    st.sampled_from(["2024-01-01T03:00:00", "2024-01-02T17:45:00", "2024-01-03 23:59:59"]),
    st.lists(st.integers(0, 3), max_size=4),
    st.none(),
)
rows_strategy = st.lists(
    st.dictionaries(st.sampled_from(["x", "y", "z", "w"]), scalars, max_size=4),
    min_size=4,
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(rows_strategy)
def test_literal_bitsets_agree_with_compiled_conditions(rows: list[dict[str, Any]]) -> None:
    """The bits a literal is searched with equal what its compiled condition says, row by row."""
    specs = infer_specs(rows)
    literals, _ = build_literals(specs, rows, n_cuts=4, min_cover=1, max_words=5)
    for literal in literals:
        test = compile_condition(literal.condition).fn
        expected = sum(1 << i for i, row in enumerate(rows) if test(row, {}, None))
        assert literal.bits == expected, literal.condition


def test_feature_kinds_are_inferred_from_values() -> None:
    """Numbers, flags, categories, free text, timestamps and lists each get their kind."""
    rows = [
        {
            "n": i,
            "b": i % 2 == 0,
            "c": "xyz"[i % 3],
            "t": f"note number {i}",
            "ts": f"2024-01-01T{i % 24:02d}:00:00",
            "l": [1] * (i % 3),
            "id": f"unique-{i}",
            "mixed": i if i % 2 else "x",
        }
        for i in range(40)
    ]
    kinds = {s.path: s.kind for s in infer_specs(rows)}
    assert kinds == {
        "n": "numeric",
        "b": "boolean",
        "c": "categorical",
        "t": "text",
        "ts": "hour",
        "l": "count",
    }
    assert FeatureSpec("ts", "hour", "temporal") in infer_specs(rows)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-9, 1e6, allow_nan=False))
def test_nice_cut_lies_in_the_gap(low: float, width: float) -> None:
    """A rounded cut point always falls strictly above `low` and at most `high`."""
    high = low + width
    if high <= low:
        return
    cut = nice_cut(low, high)
    assert low < cut <= high


def test_behavioral_names_are_whole_words_of_the_field_name() -> None:
    """`txn_count_24h` or `failed_logins` make a feature behavioral; `country`,
    `account_age_days` and `discount` (which merely contain such letters) do not."""
    rows = [
        {
            "txn_count_24h": i % 5,
            "failed_logins": i % 3,
            "country": ["NG", "US", "DE"][i % 3],
            "account_age_days": i,
            "discount": i / 10,
        }
        for i in range(60)
    ]
    families = {spec.path: spec.family for spec in infer_specs(rows)}
    assert families["txn_count_24h"] == families["failed_logins"] == "behavioral"
    assert families["country"] == families["account_age_days"] == families["discount"] == "plain"


def test_runs_of_the_wrong_shape_are_refused() -> None:
    """observe takes (input, result dict); fit takes records or such pairs."""
    extractor = PatternExtractor()
    with pytest.raises(TypeError, match="got dict and list"):
        extractor.observe({"a": 1}, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int: 1"):
        extractor.fit([1, 2, 3])  # type: ignore[list-item]
    result = {"success": True, "path": ["RULES"], "stage_results": {"RULES": {"result": "a"}}}
    extractor.fit([[{"amount": 1}, {**result, "final_result": "a"}]])  # a pair as a list
    assert len(extractor) == 1
