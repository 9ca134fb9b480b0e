"""`CostAnalyzer.calculate_migration_roi`: savings, percentages and recommendations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cascadence.learning import CostAnalyzer, MigrationROI, Pattern, PatternType

ORDER = ("RULES", "STATISTICAL_ML", "SINGLE_AI")
COSTS = {"RULES": 1.0, "STATISTICAL_ML": 5.0, "SINGLE_AI": 25.0}


def pattern(**changes: Any) -> Pattern:
    """A RULES pattern matching a quarter of the runs, all of which reach SINGLE_AI today."""
    base = Pattern(
        id="pat_0000000001",
        pattern_type=PatternType.THRESHOLD,
        target_stage="RULES",
        source_stage="SINGLE_AI",
        condition={"field": "amount", "operator": "<", "value": 50},
        decision="approve",
        confidence=0.99,
        support=500,
        coverage=0.25,
        population=2000,
        base_rate=0.8,
        lower_bound=0.98,
        train_confidence=0.995,
        train_support=1200,
        features=("amount",),
        stage_order=ORDER,
        stage_share={"RULES": 1.0, "STATISTICAL_ML": 1.0, "SINGLE_AI": 1.0},
        stage_cost=dict(COSTS),
        population_stage_share={"RULES": 1.0, "STATISTICAL_ML": 1.0, "SINGLE_AI": 0.4},
        population_stage_cost=dict(COSTS),
    )
    return replace(base, **changes)


def test_roi_of_a_migration() -> None:
    """Savings are the skipped stages' cost on the matched share of the volume."""
    roi = CostAnalyzer().calculate_migration_roi(pattern(), target_stage="RULES", volume=10_000)
    assert roi.migrated_volume == 2500
    assert roi.current_cost == pytest.approx(16 * 10_000)
    assert roi.cost_per_decision_before == pytest.approx(31)
    assert roi.cost_per_decision_after == pytest.approx(1)
    assert roi.savings == pytest.approx(2500 * 30)
    assert roi.projected_cost == pytest.approx(160_000 - 75_000)
    assert roi.cost_reduction_percentage == pytest.approx(46.875)
    assert roi.migrated_cost_reduction_percentage == pytest.approx(100 * 30 / 31)
    assert roi.expected_errors == pytest.approx(25)
    assert roi.recommendation == "MIGRATE"
    assert roi.source_stage == "SINGLE_AI" and roi.target_stage == "RULES"


@pytest.mark.parametrize(
    ("changes", "analyzer", "target", "expected"),
    [
        ({}, {}, None, "MIGRATE"),
        ({"confidence": 0.9}, {}, None, "MONITOR"),
        ({"confidence": 0.7}, {}, None, "REJECT"),
        ({"coverage": 0.0001}, {}, None, "MONITOR"),
        ({}, {"error_cost": 10_000.0}, None, "MONITOR"),
        ({}, {}, "STATISTICAL_ML", "REJECT"),
        ({"stage_share": {"RULES": 1.0}}, {}, None, "REJECT"),
        ({"confidence": 0.97}, {"migrate_at": 0.98}, None, "MONITOR"),
    ],
)
def test_recommendation(
    changes: dict[str, Any], analyzer: dict[str, Any], target: str | None, expected: str
) -> None:
    """MIGRATE needs precision, a real saving and savings above the cost of errors;
    a pattern learned for another stage, or saving nothing, is rejected."""
    roi = CostAnalyzer(**analyzer).calculate_migration_roi(pattern(**changes), target, 10_000)
    assert roi.recommendation == expected, roi.rationale
    assert roi.rationale


def test_stage_costs_can_be_overridden_for_a_what_if() -> None:
    """A price given to the analyzer replaces the observed cost of that stage."""
    roi = CostAnalyzer({"SINGLE_AI": 100.0}).calculate_migration_roi(pattern(), "RULES", 10_000)
    assert roi.cost_per_decision_before == pytest.approx(106)
    assert roi.savings == pytest.approx(2500 * 105)


def test_roi_round_trips_and_checks_its_arguments() -> None:
    """`MigrationROI.from_dict(roi.to_dict())` equals `roi`; bad arguments are refused."""
    roi = CostAnalyzer().calculate_migration_roi(pattern())
    assert MigrationROI.from_dict(roi.to_dict()) == roi
    for bad in (-1, float("nan"), float("inf"), "100"):
        with pytest.raises(ValueError, match="volume"):
            CostAnalyzer().calculate_migration_roi(pattern(), volume=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reject_below"):
        CostAnalyzer(migrate_at=0.5, reject_below=0.9)


def test_an_unknown_target_stage_is_refused_with_the_closest_name() -> None:
    """A target that is neither a stage the pattern's runs went through nor a cost tier is a
    clear error, not a REJECT."""
    with pytest.raises(ValueError, match=r"'RULE'.*did you mean 'RULES'"):
        CostAnalyzer().calculate_migration_roi(pattern(), target_stage="RULE", volume=10_000)
    with pytest.raises(ValueError, match="NOPE"):
        CostAnalyzer().calculate_migration_roi(pattern(), "NOPE", 10_000)


def test_a_cost_tier_names_the_stage_of_that_cost() -> None:
    """`target_stage="RULES"`, as the spec writes it, works when no stage is named RULES:
    a tier of the cost model stands for the pattern's stage of that cost."""
    names = {"RULES": "FAST_CHECK", "STATISTICAL_ML": "MEDIUM_CHECK", "SINGLE_AI": "LLM"}

    def renamed(mapping: dict[str, float]) -> dict[str, float]:
        return {names[k]: v for k, v in mapping.items()}

    base = pattern()
    quick = replace(
        base,
        target_stage="FAST_CHECK",
        source_stage="LLM",
        stage_order=tuple(names[n] for n in ORDER),
        stage_share=renamed(base.stage_share),
        stage_cost=renamed(base.stage_cost),
        population_stage_share=renamed(base.population_stage_share),
        population_stage_cost=renamed(base.population_stage_cost),
    )
    by_tier = CostAnalyzer().calculate_migration_roi(quick, target_stage="RULES", volume=10_000)
    by_name = CostAnalyzer().calculate_migration_roi(quick, "FAST_CHECK", 10_000)
    assert by_tier == by_name
    assert by_tier.target_stage == "FAST_CHECK" and by_tier.recommendation == "MIGRATE"
    assert by_tier.cost_reduction_percentage == pytest.approx(46.875)
    # a tier whose stage is not the pattern's: priced there, and rejected as for that stage
    ml = CostAnalyzer().calculate_migration_roi(quick, "statistical_ml", 10_000)
    assert ml.target_stage == "MEDIUM_CHECK" and ml.recommendation == "REJECT"
    # no stage as cheap as the tier: the error says what each stage costs
    pricey = CostAnalyzer({"FAST_CHECK": 3.0})
    with pytest.raises(ValueError, match=r"'RULES' is a cost tier.*FAST_CHECK \(3\)"):
        pricey.calculate_migration_roi(quick, "RULES", 10_000)
    # a tier no stage costs exactly: the pattern's own stage when it costs no more, else the
    # last stage that costs no more
    assert pricey.calculate_migration_roi(quick, "POD", 10_000).target_stage == "FAST_CHECK"
    dear = CostAnalyzer({"FAST_CHECK": 200.0})
    assert dear.calculate_migration_roi(quick, "POD", 10_000).target_stage == "LLM"


def test_analyzer_settings_are_checked() -> None:
    """Costs must be finite numbers >= 0; a non-pattern is refused; a what-if price for a
    stage the pattern's runs never reached is simply unused."""
    for bad in (-1.0, float("nan"), float("inf"), "cheap", True):
        with pytest.raises(ValueError, match="stage_costs\\['RULES'\\]"):
            CostAnalyzer({"RULES": bad})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="error_cost"):
        CostAnalyzer(error_cost=-5)
    with pytest.raises(TypeError, match="takes a Pattern"):
        CostAnalyzer().calculate_migration_roi({"x": 1}, "RULES", 10)  # type: ignore[arg-type]
    priced = CostAnalyzer({**COSTS, "HUMAN": 500.0}).calculate_migration_roi(pattern(), "RULES")
    assert priced.savings == CostAnalyzer().calculate_migration_roi(pattern(), "RULES").savings


def test_monitor_says_when_the_cost_of_errors_holds_a_migration_back() -> None:
    """With precision and saving above their thresholds, MONITOR names the error cost."""
    roi = CostAnalyzer(error_cost=10_000.0).calculate_migration_roi(pattern(), None, 10_000)
    assert roi.recommendation == "MONITOR"
    assert "error_cost 10000" in roi.rationale and "does not outweigh" in roi.rationale


def test_a_cost_tier_reads_the_full_cost_of_each_stage_not_the_cached_mean() -> None:
    """Results served from the cache cost nothing and pull a stage's mean cost down; a tier
    is matched against what each stage costs when it runs in full."""
    base = pattern()
    cached = replace(
        base,
        target_stage="STATISTICAL_ML",
        stage_cost={"RULES": 0.1, "STATISTICAL_ML": 0.5, "SINGLE_AI": 25.0},
        population_stage_cost={"RULES": 0.1, "STATISTICAL_ML": 0.5, "SINGLE_AI": 25.0},
        stage_unit_cost=dict(COSTS),
    )
    renamed = replace(
        cached,
        target_stage="MED",
        stage_order=("FAST", "MED", "LLM"),
        stage_share={"FAST": 1.0, "MED": 1.0, "LLM": 1.0},
        stage_cost={"FAST": 0.1, "MED": 0.5, "LLM": 25.0},
        population_stage_share={"FAST": 1.0, "MED": 1.0, "LLM": 0.4},
        population_stage_cost={"FAST": 0.1, "MED": 0.5, "LLM": 25.0},
        stage_unit_cost={"FAST": 1.0, "MED": 5.0, "LLM": 25.0},
    )
    rules = CostAnalyzer().calculate_migration_roi(renamed, "RULES", 10_000)
    assert rules.target_stage == "FAST" and rules.recommendation == "REJECT"
    ml = CostAnalyzer().calculate_migration_roi(renamed, "STATISTICAL_ML", 10_000)
    assert ml.target_stage == "MED" and ml.recommendation == "MIGRATE"
    assert Pattern.from_dict(renamed.to_dict()) == renamed


def own(**changes: Any) -> Pattern:
    """A pattern of runs SINGLE_AI decided itself, after RULES and STATISTICAL_ML: its rule
    goes before SINGLE_AI."""
    base = replace(
        pattern(),
        id="pat_0000000002",
        target_stage="SINGLE_AI",
        source_stage="SINGLE_AI",
        population_stage_share={"RULES": 1.0, "STATISTICAL_ML": 1.0, "SINGLE_AI": 1.0},
        self_decided=True,
    )
    return replace(base, **changes)


def alone(**changes: Any) -> Pattern:
    """A pattern SINGLE_AI decided itself with no stage before it (a hand-built context)."""
    only = {"SINGLE_AI": 1.0}
    values: dict[str, Any] = {
        "stage_order": ("SINGLE_AI",),
        "stage_share": only,
        "population_stage_share": only,
        "stage_cost": {"SINGLE_AI": 25.0},
        "population_stage_cost": {"SINGLE_AI": 25.0},
    }
    return own(**{**values, **changes})


def test_deciding_before_the_stage_saves_the_stage_on_its_matches() -> None:
    """With no target, a self-decided pattern is priced as its precondition runs: matched
    runs pay for the stages before SINGLE_AI (6) instead of 31; a rule costs nothing."""
    roi = CostAnalyzer().calculate_migration_roi(own(), volume=10_000)
    assert (roi.target_stage, roi.placement) == ("SINGLE_AI", "before")
    assert roi.source_stage == "SINGLE_AI"
    assert roi.migrated_volume == 2500
    assert roi.current_cost == pytest.approx(31 * 10_000)
    assert roi.cost_per_decision_before == pytest.approx(31)
    assert roi.cost_per_decision_after == pytest.approx(6)
    assert roi.savings == pytest.approx(2500 * 25)
    assert roi.projected_cost == pytest.approx(310_000 - 62_500)
    assert roi.cost_reduction_percentage == pytest.approx(100 * 62_500 / 310_000)
    assert roi.migrated_cost_reduction_percentage == pytest.approx(100 * 25 / 31)
    assert roi.expected_errors == pytest.approx(25)
    assert roi.recommendation == "MIGRATE"
    assert roi.rationale.startswith("deciding before SINGLE_AI by a rule (no cost) saves 20.2%")
    # naming the pattern's own stage means the same (as `pattern.target_stage` is passed)
    assert CostAnalyzer().calculate_migration_roi(own(), "SINGLE_AI", 10_000) == roi
    assert own().avg_saved_cost == pytest.approx(25)
    assert MigrationROI.from_dict(roi.to_dict()) == roi


def test_a_cost_tier_prices_a_check_of_that_cost_before_the_stage() -> None:
    """`target_stage="RULES"` moves a SINGLE_AI decision to a check costing 1: (25-1)/25 of
    the cost of its matches is saved; a tier costing as much as the stage or more saves
    nothing and is rejected."""
    analyzer = CostAnalyzer()
    rules = analyzer.calculate_migration_roi(alone(), target_stage="RULES", volume=10_000)
    assert (rules.target_stage, rules.placement) == ("SINGLE_AI", "before")
    assert rules.cost_per_decision_before == pytest.approx(25)
    assert rules.cost_per_decision_after == pytest.approx(1)
    assert rules.migrated_cost_reduction_percentage == pytest.approx(96.0)
    assert rules.savings == pytest.approx(2500 * 24)
    assert rules.current_cost == pytest.approx(250_000)
    assert rules.cost_reduction_percentage == pytest.approx(24.0)
    assert rules.recommendation == "MIGRATE"
    assert "by a RULES check (1)" in rules.rationale
    ml = analyzer.calculate_migration_roi(alone(), "statistical_ml", 10_000)
    assert ml.cost_per_decision_after == pytest.approx(5)
    assert ml.migrated_cost_reduction_percentage == pytest.approx(80.0)
    assert ml.recommendation == "MIGRATE"
    # no target: nothing runs before SINGLE_AI, and the rule costs nothing
    free = analyzer.calculate_migration_roi(alone(), None, 10_000)
    assert free.cost_per_decision_after == 0 and free.migrated_cost_reduction_percentage == 100
    pod = analyzer.calculate_migration_roi(alone(), "POD", 10_000)
    assert pod.recommendation == "REJECT"
    assert pod.cost_per_decision_after == pytest.approx(100)
    assert pod.savings == pytest.approx(2500 * (25 - 100))
    assert pod.rationale == (
        "a POD check (100) costs more than SINGLE_AI does on its matches (25), and would "
        "replace it: deciding before SINGLE_AI saves nothing"
    )
    # a stage named otherwise that costs what its tier does: the tier's check saves nothing
    llm = alone(
        target_stage="LLM",
        source_stage="LLM",
        stage_order=("LLM",),
        stage_share={"LLM": 1.0},
        population_stage_share={"LLM": 1.0},
        stage_cost={"LLM": 25.0},
        population_stage_cost={"LLM": 25.0},
    )
    same = analyzer.calculate_migration_roi(llm, "SINGLE_AI", 10_000)
    assert same.recommendation == "REJECT" and same.savings == 0
    assert "costs as much as LLM" in same.rationale
    # the spec's thresholds still apply
    assert analyzer.calculate_migration_roi(alone(confidence=0.9), "RULES").recommendation == (
        "MONITOR"
    )
    assert analyzer.calculate_migration_roi(alone(confidence=0.7), "RULES").recommendation == (
        "REJECT"
    )


def test_a_stage_before_the_deciding_one_is_a_valid_target() -> None:
    """The stage right before SINGLE_AI: decided right after it, at the cost through it. An
    earlier stage, with STATISTICAL_ML still running in between, cannot hold the rule; a
    later stage is refused as for any pattern."""
    analyzer = CostAnalyzer()
    ml = analyzer.calculate_migration_roi(own(), "STATISTICAL_ML", 10_000)
    assert (ml.target_stage, ml.placement) == ("STATISTICAL_ML", "after")
    assert ml.cost_per_decision_after == pytest.approx(6)
    assert ml.savings == pytest.approx(2500 * 25)
    assert ml.recommendation == "MIGRATE"
    rules = analyzer.calculate_migration_roi(own(), "RULES", 10_000)
    assert rules.target_stage == "RULES" and rules.cost_per_decision_after == pytest.approx(1)
    assert rules.recommendation == "REJECT"
    assert "went through STATISTICAL_ML after RULES" in rules.rationale
    # when no matched run went through STATISTICAL_ML, RULES is right before SINGLE_AI
    skipped = own(stage_share={"RULES": 1.0, "SINGLE_AI": 1.0})
    direct = analyzer.calculate_migration_roi(skipped, "RULES", 10_000)
    assert direct.recommendation == "MIGRATE"
    assert direct.cost_per_decision_before == pytest.approx(26)
    assert direct.cost_per_decision_after == pytest.approx(1)
    later = own(stage_order=(*ORDER, "POD"), stage_cost={**COSTS, "POD": 100.0})
    after = analyzer.calculate_migration_roi(later, "POD", 10_000)
    assert after.recommendation == "REJECT" and "which runs later" in after.rationale
    with pytest.raises(ValueError, match=r"'RULE'.*did you mean 'RULES'"):
        analyzer.calculate_migration_roi(own(), "RULE", 10_000)
    assert Pattern.from_dict(own().to_dict()) == own()
