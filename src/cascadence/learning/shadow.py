"""Shadow testing: evaluate rules in TESTING on live runs without changing them.

For each live run and each proposal in TESTING, the evaluator asks what the proposed rule would
have done had it been in place: it is evaluated after its stage exactly when that stage ran and
none of the stage's own routing rules ended or redirected the run (a learned rule sits below
them). A rule deciding *before* its stage (a precondition, `GeneratedRule.before`) is evaluated
exactly when that stage ran, on the input and the results of the stages before it; had it
matched, the stage and everything after it would have been skipped. On the runs it would have
decided, the evaluator records whether its decision equals the cascade's, and the cost of the
stages it would have skipped. The run itself is never touched:
conditions are read-only closures evaluated on the finished result.

Statistics accumulate in memory and are added to the proposals' stored statistics by `flush()`
(automatically every `flush_every` runs), where `ProposalManager.activate` reads them.

Three ways to feed it:

```python
shadow = ShadowEvaluator(manager)
result = await shadow.execute(engine, data)        # run, then evaluate; returns the result
shadow.observe(data, result)                       # evaluate a result you already have
engine = CascadeEngine(config, hooks=[shadow.hooks()])   # evaluate every run of an engine
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cascadence.conditions import compile_condition
from cascadence.events import ROUTING_DECISION, CadenceEvent
from cascadence.hooks import CadenceHooks
from cascadence.learning.models import ShadowStats
from cascadence.learning.proposals import ProposalManager
from cascadence.learning.records import decision_of, eligible_stages, stage_cost

__all__ = ["ShadowEvaluator", "ShadowHooks", "ShadowOutcome"]


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """What one proposed rule would have done on one run it was evaluated on.

    Attributes:
        proposal_id: The proposal.
        stage: The stage the rule sits after (or before, for a precondition).
        matched: Whether it would have decided the run.
        proposed: Its decision (when matched).
        actual: The cascade's decision.
        saved_cost: Cost of the stages it would have skipped (when matched).
    """

    proposal_id: str
    stage: str
    matched: bool
    proposed: Any
    actual: Any
    saved_cost: float

    @property
    def agreed(self) -> bool:
        """Matched, with the same decision as the cascade."""
        return self.matched and self.proposed == self.actual


@dataclass(slots=True)
class _Probe:
    proposal_id: str
    stage: str
    test: Callable[[Any, Any, Any], bool]
    decision: Any
    decision_field: str
    before: bool = False
    executions: int = 0
    eligible: int = 0
    matched: int = 0
    agreed: int = 0
    saved_cost: float = 0.0
    total_cost: float = 0.0

    def take(self) -> ShadowStats:
        stats = ShadowStats(
            self.executions,
            self.eligible,
            self.matched,
            self.agreed,
            self.saved_cost,
            self.total_cost,
        )
        self.executions = self.eligible = self.matched = self.agreed = 0
        self.saved_cost = self.total_cost = 0.0
        return stats


class ShadowEvaluator:
    """Evaluates the rules of proposals in TESTING on live runs and records how they fare.

    Args:
        manager: Where the proposals are, and where their statistics go.
        flush_every: Runs between automatic `flush()`es (0: only explicit ones).
    """

    def __init__(self, manager: ProposalManager, *, flush_every: int = 1000) -> None:
        self.manager = manager
        self.flush_every = flush_every
        self._probes: list[_Probe] = []
        self._since_flush = 0
        self.refresh()

    def refresh(self) -> None:
        """Flush, then reload the proposals in TESTING (call after starting or ending tests)."""
        if self._probes:
            self.flush()
        self._probes = [
            _Probe(
                p.proposal_id,
                p.rule.stage,
                compile_condition(p.rule.condition).fn,
                p.rule.decision,
                p.rule.decision_field,
                p.rule.before,
            )
            for p in self.manager.proposals("TESTING")
        ]

    @property
    def proposal_ids(self) -> list[str]:
        """The proposals being tested."""
        return [p.proposal_id for p in self._probes]

    def pending(self) -> dict[str, ShadowStats]:
        """Statistics gathered since the last flush, per proposal (not reset)."""
        return {
            p.proposal_id: ShadowStats(
                p.executions, p.eligible, p.matched, p.agreed, p.saved_cost, p.total_cost
            )
            for p in self._probes
        }

    def observe(self, data: Mapping[str, Any], result: Mapping[str, Any]) -> list[ShadowOutcome]:
        """Evaluate every tested rule on one finished run; the run is not changed.

        Args:
            data: The run's input.
            result: What `CascadeEngine.execute` returned for it.

        Returns:
            One outcome per tested rule that would have been evaluated on this run.
        """
        probes = self._probes
        if not probes or not result.get("success", True) or result.get("timed_out"):
            return []
        eligible = eligible_stages(result)
        stage_results: Mapping[str, Any] = result.get("stage_results") or {}
        path = result.get("path") or ()
        ran = frozenset(n for n in path if n in stage_results)  # where preconditions are seen
        cost = result.get("cost")
        if not isinstance(cost, (int, float)):
            cost = sum(stage_cost(n, r) for n, r in stage_results.items())
        outcomes: list[ShadowOutcome] = []
        decisions: dict[str, Any] = {}
        for probe in probes:
            probe.executions += 1
            probe.total_cost += cost
            stage = probe.stage
            if stage not in (ran if probe.before else eligible):
                continue
            probe.eligible += 1
            field = probe.decision_field
            actual = decisions.get(field)
            if actual is None and field not in decisions:
                actual = decisions[field] = decision_of(result, field)
            position = path.index(stage)
            # a precondition sees the stages before its own; a routing rule its own too
            seen = position if probe.before else position + 1
            through = {n: stage_results[n] for n in path[:seen] if n in stage_results}
            if probe.test(data, through, None):
                saved = sum(
                    stage_cost(n, stage_results[n]) for n in path[seen:] if n in stage_results
                )
                probe.matched += 1
                probe.saved_cost += saved
                if probe.decision == actual:
                    probe.agreed += 1
                outcomes.append(
                    ShadowOutcome(probe.proposal_id, stage, True, probe.decision, actual, saved)
                )
            else:
                outcomes.append(ShadowOutcome(probe.proposal_id, stage, False, None, actual, 0.0))
        self._since_flush += 1
        if self.flush_every and self._since_flush >= self.flush_every:
            self.flush()
        return outcomes

    async def execute(self, engine: Any, data: Any, **options: Any) -> dict[str, Any]:
        """Run `engine.execute(data, **options)`, evaluate the tested rules, return the result."""
        result: dict[str, Any] = await engine.execute(data, **options)
        source = data.to_flat_dict() if hasattr(data, "to_flat_dict") else data
        self.observe(source, result)
        return result

    def flush(self) -> dict[str, ShadowStats]:
        """Add the gathered statistics to the stored proposals; returns their new totals.

        A proposal that left TESTING in the meantime gets nothing and stops being evaluated.
        """
        totals: dict[str, ShadowStats] = {}
        kept: list[_Probe] = []
        for probe in self._probes:
            total = self.manager.record_shadow(probe.proposal_id, probe.take())
            if total is not None:
                totals[probe.proposal_id] = total
                kept.append(probe)
        self._probes = kept
        self._since_flush = 0
        return totals

    def hooks(self) -> ShadowHooks:
        """Hooks to attach to a `CascadeEngine`, evaluating every run it makes."""
        return ShadowHooks(self)


class ShadowHooks(CadenceHooks):
    """Engine hooks feeding a `ShadowEvaluator` (`CascadeEngine(config, hooks=[...])`).

    Routing decisions arrive as events while the run goes; the finished run's context then
    gives the input and the stage results. Decisions are kept per asyncio task, the task the
    engine runs each execution in, so concurrent executions do not mix.
    """

    def __init__(self, evaluator: ShadowEvaluator) -> None:
        self.evaluator = evaluator
        self._decisions: dict[int, list[dict[str, Any]]] = {}

    @staticmethod
    def _key() -> int:
        task = asyncio.current_task()
        return id(task) if task is not None else 0

    async def before_cadence(self, cadence_name: str, score: Any) -> None:
        """Start the run with no routing decisions (a task id may be reused)."""
        self._decisions.pop(self._key(), None)

    async def handle_event(self, event: CadenceEvent) -> None:
        """Collect the run's routing decisions."""
        if event.type == ROUTING_DECISION and event.data is not None:
            # the event does not say whether the rule was a routing rule or a postcondition;
            # treating both as routing can only make the test more conservative
            self._decisions.setdefault(self._key(), []).append(
                {
                    "type": "routing",
                    "stage": event.data.get("stage"),
                    "action": event.data.get("action"),
                }
            )

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Evaluate the tested rules on the finished run."""
        decisions = self._decisions.pop(self._key(), [])
        stage_results = getattr(score, "stage_results", None)
        if error is not None or not isinstance(stage_results, Mapping):
            return
        ran = {n: r for n, r in stage_results.items() if not r.get("skipped")}
        path = list(ran)
        last = ran[path[-1]] if path else None
        result = {
            "success": True,
            "path": path,
            "stage_results": ran,
            "routing_decisions": decisions,
            "final_result": last.get("result") if last is not None else None,
            "data": score.data,
        }
        self.evaluator.observe(score.data, result)
