"""What migrating a pattern is worth: `CostAnalyzer.calculate_migration_roi`.

Costs are the ones the runs reported (each stage result carries the `cost` it spent, from the
stage's `cost` in the config, whose names follow the spec's model: RULES 1, STATISTICAL_ML 5,
SINGLE_AI 25, POD 100, ADVERSARIAL 500). An analyzer may override them per stage to price a
what-if.

For a `volume` of runs reaching the target stage, the pattern matches `coverage * volume` of
them; each of those stops paying for the stages after the target. The reduction is reported
against the cost of the whole volume (`cost_reduction_percentage`) and against the cost of the
migrated runs alone (`migrated_cost_reduction_percentage`).

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

__all__ = ["CostAnalyzer", "MigrationROI", "Recommendation"]

Recommendation = Literal["MIGRATE", "MONITOR", "REJECT"]


@dataclass(frozen=True)
class MigrationROI:
    """The expected return of moving a pattern's decision to an earlier stage.

    Attributes:
        pattern_id: The pattern evaluated.
        source_stage: The stage that decides those runs today.
        target_stage: The stage the decision would move to.
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
        hint = closest(target, [*order, *STAGE_COSTS])
        raise ValueError(
            f"target_stage {target!r} is neither a stage the pattern's runs went through "
            f"({', '.join(order)}) nor a cost tier ({', '.join(STAGE_COSTS)})"
            + (f"; did you mean {hint!r}?" if hint else "")
        )

    def calculate_migration_roi(
        self, pattern: Pattern, target_stage: str | None = None, volume: int = 10_000
    ) -> MigrationROI:
        """The return of deciding `pattern`'s runs right after `target_stage`.

        Args:
            pattern: A pattern from `PatternExtractor.get_migration_candidates`.
            target_stage: Where the decision moves: a stage of the pattern's runs, or a cost
                tier of the spec's model (`"RULES"`, `"STATISTICAL_ML"`, ...) for the stage of
                that cost (the pattern's own stage when it is one; else the last stage costing
                no more); the pattern's own target when None.
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
        target = self._target(pattern, target_stage or pattern.target_stage)
        costs = {
            name: self.stage_cost(name, pattern)
            for name in set(pattern.stage_order)
            | set(pattern.stage_share)
            | set(pattern.population_stage_share)
        }
        per_run_today = _weighted(pattern.stage_order, pattern.population_stage_share, costs)
        before = _weighted(pattern.stage_order, pattern.stage_share, costs)
        after = _weighted(pattern.stage_order, pattern.stage_share, costs, stop=target)
        migrated = pattern.coverage * volume
        current = per_run_today * volume
        savings = migrated * (before - after)
        reduction = 100.0 * savings / current if current > 0 else 0.0
        migrated_reduction = 100.0 * (before - after) / before if before > 0 else 0.0
        errors = migrated * (1.0 - pattern.confidence)
        recommendation: Recommendation
        if target != pattern.target_stage:
            recommendation = "REJECT"
            rationale = (
                f"the pattern was learned on runs reaching {pattern.target_stage}; its precision "
                f"after {target} is unknown (learn again for {target})"
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
