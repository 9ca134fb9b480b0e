"""What a replay found: per-version summaries, the events two versions decided differently.

A replay keeps one small `Outcome` per event and version (never the full results), so a report
over millions of recorded events fits in memory and travels cheaply between Dask workers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascadence.learning.records import decision_of

__all__ = [
    "DecisionKey",
    "Disagreement",
    "Outcome",
    "ReplayReport",
    "VersionSummary",
    "build_report",
    "final_decision",
    "final_result",
    "outcome_of",
]

DecisionKey = Callable[[dict[str, Any]], Any]
"""Reads the decision out of a result; two versions agree on an event when it is equal."""


def final_result(result: dict[str, Any]) -> Any:
    """The result of the stage the run ended on (a decision key that ignores rule decisions)."""
    return result.get("final_result")


def final_decision(result: dict[str, Any]) -> Any:
    """The default decision: the value a routing rule wrote to `data.decision` during the run
    (learned APLS rules decide that way), else the result of the stage the run ended on."""
    return decision_of(result)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One version's decision on one event, as much of the result as a report needs.

    Attributes:
        decision: What the decision key read from the result.
        final_stage: The stage the run ended on (None when no stage ran).
        path: The stages that ran, in order.
        cost: The cost the run spent.
        time_ms: The run's wall time.
        success: Whether the run finished without errors and in time.
        timed_out: Whether the global timeout fired.
        error: The first error's message, when the run had one.
    """

    decision: Any
    final_stage: str | None
    path: tuple[str, ...]
    cost: float
    time_ms: float
    success: bool
    timed_out: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready values."""
        return {
            "decision": _jsonable(self.decision),
            "final_stage": self.final_stage,
            "path": list(self.path),
            "cost": self.cost,
            "time_ms": self.time_ms,
            "success": self.success,
            "timed_out": self.timed_out,
            "error": self.error,
        }


def outcome_of(result: dict[str, Any], decision: DecisionKey = final_decision) -> Outcome:
    """Reduce a cascade result to its `Outcome`."""
    errors = result.get("errors") or ()
    return Outcome(
        decision=decision(result),
        final_stage=result.get("final_stage"),
        path=tuple(result.get("path", ())),
        cost=float(result.get("cost", 0.0)),
        time_ms=float(result.get("execution_time_ms", 0.0)),
        success=bool(result.get("success", False)),
        timed_out=bool(result.get("timed_out", False)),
        error=str(errors[0].get("error")) if errors else None,
    )


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """How one version of a cascade did over the replayed events.

    Attributes:
        cascade: The cascade's name.
        version: Its config version.
        events: How many events it decided.
        succeeded: Runs that finished without errors and in time.
        timed_out: Runs the global timeout cut short.
        total_cost: Cost spent over all events.
        decisions: How often each decision was taken (decisions shown as text).
        final_stages: How often each stage was the one the run ended on.
        p50_ms: Median run time.
        p95_ms: 95th percentile run time.
    """

    cascade: str
    version: str
    events: int
    succeeded: int
    timed_out: int
    total_cost: float
    decisions: dict[str, int]
    final_stages: dict[str, int]
    p50_ms: float
    p95_ms: float

    @property
    def failed(self) -> int:
        """Runs that had an error or timed out."""
        return self.events - self.succeeded

    @property
    def mean_cost(self) -> float:
        """Cost per event (0 without events)."""
        return self.total_cost / self.events if self.events else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return {
            "cascade": self.cascade,
            "version": self.version,
            "events": self.events,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timed_out": self.timed_out,
            "total_cost": self.total_cost,
            "mean_cost": self.mean_cost,
            "decisions": dict(self.decisions),
            "final_stages": dict(self.final_stages),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
        }


@dataclass(frozen=True, slots=True)
class Disagreement:
    """An event the two versions decided differently.

    Attributes:
        index: The event's position in the replayed sequence.
        event_id: The event's id (from the id field), when it has one.
        baseline: The baseline version's outcome.
        candidate: The candidate version's outcome.
    """

    index: int
    event_id: str | None
    baseline: Outcome
    candidate: Outcome

    def to_dict(self) -> dict[str, Any]:
        """The disagreement as JSON-ready values."""
        return {
            "index": self.index,
            "event_id": self.event_id,
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The result of replaying recorded events through one cascade, or two side by side.

    Attributes:
        baseline: The first (or only) version's summary.
        candidate: The second version's summary, when two were compared.
        disagreements: Events the versions decided differently, in event order (at most
            `max_disagreements` are kept; `disagreement_count` counts them all).
        disagreement_count: How many events the versions decided differently.
    """

    baseline: VersionSummary
    candidate: VersionSummary | None = None
    disagreements: tuple[Disagreement, ...] = field(default=())
    disagreement_count: int = 0

    @property
    def events(self) -> int:
        """How many events were replayed."""
        return self.baseline.events

    @property
    def agreement(self) -> float | None:
        """Share of events both versions decided alike (None with one version or no events)."""
        if self.candidate is None or not self.events:
            return None
        return 1.0 - self.disagreement_count / self.events

    @property
    def cost_change(self) -> float | None:
        """Relative change of the total cost, candidate against baseline (-0.25: 25% cheaper).

        None with one version, or when the baseline spent nothing.
        """
        if self.candidate is None or not self.baseline.total_cost:
            return None
        return self.candidate.total_cost / self.baseline.total_cost - 1.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "events": self.events,
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict() if self.candidate is not None else None,
            "agreement": self.agreement,
            "cost_change": self.cost_change,
            "disagreement_count": self.disagreement_count,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def build_report(
    names: tuple[tuple[str, str], tuple[str, str] | None],
    pairs: Sequence[tuple[Outcome, Outcome | None]],
    event_ids: Sequence[str | None],
    *,
    max_disagreements: int = 1000,
) -> ReplayReport:
    """Summarize the outcomes of every event (in event order) into a report.

    Args:
        names: (cascade, version) of the baseline and of the candidate (None: one version).
        pairs: Per event, the baseline's outcome and the candidate's (None: one version).
        event_ids: Per event, its id or None.
        max_disagreements: How many disagreements the report lists.
    """
    baseline = _summary(names[0], [b for b, _ in pairs])
    if names[1] is None:
        return ReplayReport(baseline)
    candidates = [c for _, c in pairs if c is not None]
    kept: list[Disagreement] = []
    count = 0
    for index, (b, c) in enumerate(pairs):
        if c is None or (_decided(b) and _decided(c) and _same(b.decision, c.decision)):
            continue  # an event neither version decided is no agreement
        count += 1
        if len(kept) < max_disagreements:
            kept.append(Disagreement(index, event_ids[index], b, c))
    return ReplayReport(baseline, _summary(names[1], candidates), tuple(kept), count)


def _summary(name: tuple[str, str], outcomes: Sequence[Outcome]) -> VersionSummary:
    times = sorted(o.time_ms for o in outcomes)
    return VersionSummary(
        cascade=name[0],
        version=name[1],
        events=len(outcomes),
        succeeded=sum(o.success for o in outcomes),
        timed_out=sum(o.timed_out for o in outcomes),
        total_cost=math.fsum(o.cost for o in outcomes),
        decisions=dict(Counter(_label(o.decision) for o in outcomes).most_common()),
        final_stages=dict(Counter(o.final_stage or "(none)" for o in outcomes).most_common()),
        p50_ms=_percentile(times, 0.50),
        p95_ms=_percentile(times, 0.95),
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 without values)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _decided(outcome: Outcome) -> bool:
    return bool(outcome.success) and not outcome.timed_out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an odd __eq__: fall back to identity
        return a is b


def _label(decision: Any) -> str:
    return decision if isinstance(decision, str) else repr(decision)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN or infinity
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
