"""Execution records: what the learner keeps of one cascade run, and how a run's decision is read.

A record holds the input, the results of the stages in the order they ran, the run's decision
and the set of stages whose learned rules would have been evaluated on this run (the stages it is
*eligible* at). Nothing is copied: the record references the input and the stage results.

The decision of a run is `result["data"][decision_field]` when a routing rule wrote it with
`set_field` (that is how a learned rule decides early), and the `final_result` otherwise.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cascadence.cascade.config import STAGE_COSTS

__all__ = [
    "DEFAULT_DECISION_FIELD",
    "ExecutionRecord",
    "decision_of",
    "eligible_stages",
    "stage_cost",
]

DEFAULT_DECISION_FIELD = "decision"
"""The input field a learned rule writes its decision to (`set_field`)."""

_TERMINAL_ACTIONS = frozenset({"terminate", "skip_to"})
_MISSING: Any = object()


def decision_of(result: Mapping[str, Any], decision_field: str = DEFAULT_DECISION_FIELD) -> Any:
    """The decision of one cascade run.

    Args:
        result: What `CascadeEngine.execute` returned.
        decision_field: The field learned rules write with `set_field`.

    Returns:
        `result["data"][decision_field]` when a rule set it during the run, else the
        `final_result` (the `result` of the last stage that ran).
    """
    data = result.get("data")
    if isinstance(data, Mapping):
        value = data.get(decision_field, _MISSING)
        if value is not _MISSING:
            return value
    return result.get("final_result")


def stage_cost(name: str, stage_result: Mapping[str, Any]) -> float:
    """The cost a stage spent: its reported `cost`, else the spec's cost of its kind, else 1."""
    cost = stage_result.get("cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return float(cost)
    return STAGE_COSTS.get(name.upper(), 1.0)


def eligible_stages(result: Mapping[str, Any]) -> frozenset[str]:
    """Stages after which a rule added below the existing ones would have been evaluated.

    A stage qualifies when it ran and none of its own routing rules ended or redirected the run
    (`terminate`, `skip_to`): learned rules sit below the existing rules of their stage, so they
    are reached exactly then.
    """
    path = result.get("path") or ()
    blocked: set[str] = set()
    for decision in result.get("routing_decisions") or ():
        if decision.get("type") == "routing" and decision.get("action") in _TERMINAL_ACTIONS:
            stage = decision.get("stage")
            if isinstance(stage, str):
                blocked.add(stage)
    return frozenset(s for s in path if s not in blocked)


@dataclass(slots=True)
class ExecutionRecord:
    """One observed cascade run.

    Attributes:
        data: The input the run started from.
        stage_results: Each stage's result (`result`, `confidence`, `data`, `cost`), in the
            order the stages ran.
        path: Names of the stages that ran, in order.
        decision: The run's decision (see `decision_of`).
        eligible: Stages at which a learned rule would have been evaluated on this run.
        holdout: Whether the record is kept aside to measure patterns rather than find them.
        self_decided: The last stage of `path` made the decision itself, and nothing that ran
            after it is known (`learn_from_failure` given no later stage). Its output is then
            left out of `stage_results` (only its cost is kept), so rules after it are learned
            from the input and the stages before it, never from the answer they are to predict.
    """

    data: Mapping[str, Any]
    stage_results: Mapping[str, Mapping[str, Any]]
    path: tuple[str, ...]
    decision: Hashable
    eligible: frozenset[str]
    holdout: bool = False
    self_decided: bool = False

    @classmethod
    def from_result(
        cls,
        data: Mapping[str, Any],
        result: Mapping[str, Any],
        *,
        decision_field: str = DEFAULT_DECISION_FIELD,
        holdout: bool = False,
    ) -> ExecutionRecord | None:
        """Build a record from an input and the result `CascadeEngine.execute` returned for it.

        Returns:
            None for runs that cannot teach anything: failed or timed-out runs, runs without a
            stage, and runs without a decision or whose decision is not a hashable value.
        """
        if not result.get("success", True) or result.get("timed_out"):
            return None
        path = tuple(result.get("path") or ())
        if not path:
            return None
        decision = decision_of(result, decision_field)
        if decision is None or not isinstance(decision, Hashable):
            return None
        results = result.get("stage_results") or {}
        ordered = {name: results[name] for name in path if name in results}
        return cls(data, ordered, path, decision, eligible_stages(result), holdout)

    def cost(self) -> float:
        """Total cost the run spent."""
        return sum(stage_cost(n, r) for n, r in self.stage_results.items())

    def cost_after(self, stage: str) -> float:
        """Cost spent by the stages that ran after `stage` (what deciding at `stage` saves)."""
        total = 0.0
        seen = False
        for name in self.path:
            if seen:
                result = self.stage_results.get(name)
                if result is not None:
                    total += stage_cost(name, result)
            elif name == stage:
                seen = True
        return total

    def stages_through(self, stage: str) -> dict[str, Mapping[str, Any]]:
        """The results a rule evaluated after `stage` can read: those of `stage` and before."""
        out: dict[str, Mapping[str, Any]] = {}
        for name in self.path:
            result = self.stage_results.get(name)
            if result is not None:
                out[name] = result
            if name == stage:
                break
        return out
