"""What migrating a pattern is worth: `CostAnalyzer.calculate_migration_roi`.

Costs are the ones the runs reported (each stage result carries the `cost` it spent, from the
stage's `cost` in the config, whose names follow the spec's model: RULES 1, STATISTICAL_ML 5,
SINGLE_AI 25, POD 100, ADVERSARIAL 500). An analyzer may override them per stage to price a
what-if.

For a `volume` of runs reaching the target stage, the pattern matches `coverage * volume` of
them; each of those stops paying for the stages after the target. The reduction is reported
against the cost of the whole volume (`cost_reduction_percentage`) and against the cost of the
migrated runs alone (`migrated_cost_reduction_percentage`).

A pattern of runs its stage `S` decided itself (`Pattern.self_decided`) moves the decision to
*before* `S`: its rule is a precondition of `S`, and matched runs no longer pay for `S`.

- `target_stage=None` (or `S`): the rule as it runs in the engine, where a rule costs nothing:
  matched runs pay for the stages before `S` only (nothing at all when `S` comes first).
- a cost tier (`"RULES"`): the decision is made by a check of that tier's cost, before `S`:
  matched runs pay for the stages before `S` plus the tier (1 for RULES, the spec's "simple
  threshold checks"). A tier costing as much as `S` or more saves nothing.
- a stage that runs before `S`: the decision is made right after it; when matched runs went
  through other stages between the two, the rule cannot stand there (`REJECT`).

Recommendation:

- `REJECT` when the pattern cannot be placed at the target stage (it was learned for another
  stage, so its precision there is unknown), when it saves nothing, or when its precision is
  below `reject_below`;
- `MIGRATE` when its precision reaches `migrate_at`, it cuts at least `min_reduction` percent of
  the volume's cost, and the savings exceed the cost of its expected wrong decisions
  (`error_cost` each);
- `MONITOR` otherwise: worth watching as more runs arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cascadence.cascade.config import STAGE_COSTS
from cascadence.errors import closest
from cascadence.learning.patterns import Pattern

__all__ = ["CostAnalyzer", "MigrationROI", "Placement", "Recommendation"]

Recommendation = Literal["MIGRATE", "MONITOR", "REJECT"]
Placement = Literal["after", "before"]
"""Where a migrated decision is made: right after `MigrationROI.target_stage`, or before it."""


@dataclass(frozen=True)
class MigrationROI:
    """The expected return of moving a pattern's decision to an earlier stage.

    Attributes:
        pattern_id: The pattern evaluated.
        source_stage: The stage that decides those runs today.
        target_stage: The stage the decision would move to: made right after it, or, with
            `placement` "before", right before it runs (by a precondition, so it is skipped).
        volume: Runs reaching the target stage in the period considered.
        coverage: Share of those runs the pattern matches.
        migrated_volume: `coverage * volume`.
        confidence: The pattern's held-out precision.
        current_cost: Cost of the whole volume today.
        projected_cost: Cost of the whole volume with the migration.
        savings: `current_cost - projected_cost`.
        cost_reduction_percentage: Savings as a percentage of `current_cost`.
        cost_per_decision_before: Mean cost of a migrated run today.
        cost_per_decision_after: Mean cost of a migrated run once decided at the target.
        migrated_cost_reduction_percentage: The saving on migrated runs alone, in percent.
        expected_errors: Migrated runs expected to get a decision different from today's.
        recommendation: `MIGRATE`, `MONITOR` or `REJECT`.
        rationale: Why.
        placement: `after` or `before` `target_stage` (before: a pattern of runs that stage
            decided itself).
    """

    pattern_id: str
    source_stage: str
    target_stage: str
    volume: int
    coverage: float
    migrated_volume: float
    confidence: float
    current_cost: float
    projected_cost: float
    savings: float
    cost_reduction_percentage: float
    cost_per_decision_before: float
    cost_per_decision_after: float
    migrated_cost_reduction_percentage: float
    expected_errors: float
    recommendation: Recommendation
    rationale: str
    placement: Placement = "after"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MigrationROI:
        """Rebuild from `to_dict()` output."""
        return cls(**dict(data))


class CostAnalyzer:
    """Prices pattern migrations and recommends which to make.

    Args:
        stage_costs: Cost per stage name overriding the observed costs (for a what-if);
            by default the costs the runs reported.
        migrate_at: Least precision for `MIGRATE`.
        reject_below: Precision under which a pattern is `REJECT`ed.
        min_reduction: Least `cost_reduction_percentage` for `MIGRATE`.
        error_cost: Cost charged per expected wrong decision when weighing savings.
    """

    def __init__(
        self,
        stage_costs: Mapping[str, float] | None = None,
        *,
        migrate_at: float = 0.95,
        reject_below: float = 0.8,
        min_reduction: float = 1.0,
        error_cost: float = 0.0,
    ) -> None:
        if not 0.0 <= reject_below <= migrate_at <= 1.0:
            raise ValueError(
                "expected 0 <= reject_below <= migrate_at <= 1, "
                f"got reject_below={reject_below!r}, migrate_at={migrate_at!r}"
            )
        if stage_costs is not None:
            if not isinstance(stage_costs, Mapping):
                raise TypeError(
                    f"stage_costs maps stage names to costs, got {type(stage_costs).__name__}"
                )
            for name, cost in stage_costs.items():
                if (
                    isinstance(cost, bool)
                    or not isinstance(cost, (int, float))
                    or not 0.0 <= cost < float("inf")
                ):
                    raise ValueError(
                        f"stage_costs[{name!r}] must be a finite cost >= 0, got {cost!r}"
                    )
        for label, value in (("min_reduction", min_reduction), ("error_cost", error_cost)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{label} must be a number >= 0, got {value!r}")
        self.stage_costs = dict(stage_costs) if stage_costs is not None else None
        self.migrate_at = migrate_at
        self.reject_below = reject_below
        self.min_reduction = min_reduction
        self.error_cost = error_cost

    def stage_cost(self, name: str, pattern: Pattern | None = None) -> float:
        """The cost used for stage `name`: override, else observed, else the spec's model."""
        if self.stage_costs is not None and name in self.stage_costs:
            return float(self.stage_costs[name])
        if pattern is not None and name in pattern.population_stage_cost:
            return pattern.population_stage_cost[name]
        return STAGE_COSTS.get(name.upper(), 1.0)

    def _unit_cost(self, name: str, pattern: Pattern) -> float:
        """What stage `name` costs when it runs in full (a cached result's 0 aside)."""
        if self.stage_costs is not None and name in self.stage_costs:
            return float(self.stage_costs[name])
        unit = pattern.stage_unit_cost.get(name)
        return unit if unit is not None else self.stage_cost(name, pattern)

    def _target(self, pattern: Pattern, target: str) -> str:
        """The stage `target` names: a stage of the pattern's runs, or a cost tier of the
        spec's model (`"RULES"`), which stands for the pattern's stage of that cost."""
        order = pattern.stage_order
        if target in order:
            return target
        tier = STAGE_COSTS.get(target.upper()) if isinstance(target, str) else None
        if tier is not None:
            costs = {name: self._unit_cost(name, pattern) for name in order}
            for fits in (
                [name for name in order if costs[name] == tier],
                [name for name in order if costs[name] <= tier],
            ):
                if fits:  # the pattern's own stage when it is of that cost, else the last one
                    return pattern.target_stage if pattern.target_stage in fits else fits[-1]
            raise ValueError(
                f"target_stage {target!r} is a cost tier ({tier:g}), and no stage the pattern's "
                "runs went through costs that little: "
                + ", ".join(f"{name} ({costs[name]:g})" for name in order)
            )
        raise _unknown_target(target, order)

    def _before(
        self, pattern: Pattern, target: str | None, costs: Mapping[str, float]
    ) -> tuple[str, Placement, float, str | None, str]:
        """Where a `self_decided` pattern's decision moves, and what a matched run costs then.

        Returns:
            The ROI's target stage, the placement, the cost per matched run after the
            migration, why the pattern cannot stand there (None when it can), and what makes
            the decision, in words.
        """
        stage, order, share = pattern.target_stage, pattern.stage_order, pattern.stage_share
        ahead = _weighted(order, share, {**costs, stage: 0.0}, stop=stage)
        if target is None or target == stage:
            return stage, "before", ahead, None, "a rule (no cost)"
        if target in order:
            after = _weighted(order, share, costs, stop=target)
            why: str | None = None
            if stage not in order or order.index(target) > order.index(stage):
                why = (
                    f"the pattern is of runs {stage} decided itself; its precision after "
                    f"{target}, which runs later, is unknown (learn again for {target})"
                )
                return target, "after", after, why, f"a rule after {target}"
            between = order[order.index(target) + 1 : order.index(stage)]
            went = [name for name in between if share.get(name, 0.0) > 0]
            if went:
                why = (
                    f"its rule decides before {stage} runs, and matched runs went through "
                    f"{', '.join(went)} after {target}: its precision right after {target} is "
                    f"unknown (target_stage=None prices the rule before {stage})"
                )
            return target, "after", after, why, f"a rule after {target}"
        tier = STAGE_COSTS.get(target.upper()) if isinstance(target, str) else None
        if tier is None:
            raise _unknown_target(target, order)
        return stage, "before", ahead + tier, None, f"a {target.upper()} check ({tier:g})"

    def calculate_migration_roi(
        self, pattern: Pattern, target_stage: str | None = None, volume: int = 10_000
    ) -> MigrationROI:
        """The return of deciding `pattern`'s runs right after `target_stage`.

        Args:
            pattern: A pattern from `PatternExtractor.get_migration_candidates`.
            target_stage: Where the decision moves: a stage of the pattern's runs, or a cost
                tier of the spec's model (`"RULES"`, `"STATISTICAL_ML"`, ...) for the stage of
                that cost (the pattern's own stage when it is one; else the last stage costing
                no more); the pattern's own target when None. For a `self_decided` pattern,
                None (or its stage) is a rule before its stage, a tier a check of that cost
                before it, and a stage that runs before it the place right after that stage.
            volume: Runs reaching the target stage in the period considered.

        Raises:
            ValueError: `volume` is negative, or `target_stage` is neither a stage the
                pattern's runs went through nor a cost tier that one of them fits (the message
                names the closest one).
        """
        if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not volume >= 0:
            raise ValueError(f"volume must be a number of runs, zero or more, got {volume!r}")
        if volume == float("inf"):
            raise ValueError("volume must be a finite number of runs, got inf")
        if not isinstance(pattern, Pattern):
            raise TypeError(
                "calculate_migration_roi takes a Pattern (from get_migration_candidates), got "
                f"{type(pattern).__name__}"
            )
        costs = {
            name: self.stage_cost(name, pattern)
            for name in set(pattern.stage_order)
            | set(pattern.stage_share)
            | set(pattern.population_stage_share)
        }
        per_run_today = _weighted(pattern.stage_order, pattern.population_stage_share, costs)
        before = _weighted(pattern.stage_order, pattern.stage_share, costs)
        placement: Placement = "after"
        blocked: str | None = None  # why the pattern cannot stand at the target
        decider = ""  # what makes the decision before the stage, in words
        if pattern.self_decided:
            target, placement, after, blocked, decider = self._before(pattern, target_stage, costs)
        else:
            target = self._target(pattern, target_stage or pattern.target_stage)
            after = _weighted(pattern.stage_order, pattern.stage_share, costs, stop=target)
            if target != pattern.target_stage:
                blocked = (
                    f"the pattern was learned on runs reaching {pattern.target_stage}; its "
                    f"precision after {target} is unknown (learn again for {target})"
                )
        migrated = pattern.coverage * volume
        current = per_run_today * volume
        savings = migrated * (before - after)
        reduction = 100.0 * savings / current if current > 0 else 0.0
        migrated_reduction = 100.0 * (before - after) / before if before > 0 else 0.0
        errors = migrated * (1.0 - pattern.confidence)
        recommendation: Recommendation
        if blocked is not None:
            recommendation = "REJECT"
            rationale = blocked
        elif savings <= 0 and placement == "before":
            recommendation = "REJECT"
            replaced = before - _weighted(
                pattern.stage_order, pattern.stage_share, {**costs, target: 0.0}
            )
            rationale = (
                f"{decider} costs {'as much as' if savings == 0 else 'more than'} {target} does "
                f"on its matches ({replaced:g}), and would replace it: deciding before {target} "
                "saves nothing"
            )
        elif savings <= 0:
            recommendation = "REJECT"
            rationale = f"deciding after {target} saves nothing: no later stage runs on its matches"
        elif pattern.confidence < self.reject_below:
            recommendation = "REJECT"
            rationale = f"precision {pattern.confidence:.1%} is below {self.reject_below:.1%}"
        elif (
            pattern.confidence >= self.migrate_at
            and reduction >= self.min_reduction
            and savings > errors * self.error_cost
        ):
            recommendation = "MIGRATE"
            rationale = (
                f"saves {reduction:.1f}% of the cost at {pattern.confidence:.1%} precision "
                f"(~{errors:.0f} decisions out of {migrated:.0f} would differ)"
            )
            if placement == "before":
                rationale = f"deciding before {target} by {decider} {rationale}"
        else:
            recommendation = "MONITOR"
            rationale = (
                f"precision {pattern.confidence:.1%} (MIGRATE from {self.migrate_at:.1%}), "
                f"saving {reduction:.1f}% (MIGRATE from {self.min_reduction:.1f}%)"
            )
            if (
                pattern.confidence >= self.migrate_at
                and reduction >= self.min_reduction
                and savings <= errors * self.error_cost
            ):  # both thresholds met: what the wrong decisions would cost holds it back
                rationale = (
                    f"saving {savings:.0f} does not outweigh ~{errors:.0f} differing decisions "
                    f"at error_cost {self.error_cost:g} ({errors * self.error_cost:.0f})"
                )
        return MigrationROI(
            pattern_id=pattern.id,
            source_stage=pattern.source_stage,
            target_stage=target,
            volume=volume,
            coverage=pattern.coverage,
            migrated_volume=migrated,
            confidence=pattern.confidence,
            current_cost=current,
            projected_cost=current - savings,
            savings=savings,
            cost_reduction_percentage=reduction,
            cost_per_decision_before=before,
            cost_per_decision_after=after,
            migrated_cost_reduction_percentage=migrated_reduction,
            expected_errors=errors,
            recommendation=recommendation,
            rationale=rationale,
            placement=placement,
        )


def _unknown_target(target: str, order: tuple[str, ...]) -> ValueError:
    """The error for a `target_stage` that is neither a stage of the runs nor a cost tier."""
    hint = closest(target, [*order, *STAGE_COSTS])
    return ValueError(
        f"target_stage {target!r} is neither a stage the pattern's runs went through "
        f"({', '.join(order)}) nor a cost tier ({', '.join(STAGE_COSTS)})"
        + (f"; did you mean {hint!r}?" if hint else "")
    )


def _weighted(
    order: tuple[str, ...],
    share: Mapping[str, float],
    costs: Mapping[str, float],
    stop: str | None = None,
) -> float:
    total = 0.0
    for name in order:
        total += share.get(name, 0.0) * costs.get(name, 0.0)
        if name == stop:
            break
    return total
