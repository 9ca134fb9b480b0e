"""What an execution reports: the result dict, its routing decisions, and per-stage statistics.

`build_result` turns the state of a finished `_Run` (see `cascade_runner`) into the result dict
`CascadeEngine.execute` returns; `StageStats` are the per-stage counters behind
`CascadeEngine.get_statistics`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cascadence.runtime.plan import CascadePlan, RulePlan
from cascadence.runtime.result import RUN_LINKS, StageResult

if TYPE_CHECKING:
    from cascadence.runtime.cascade_runner import _Run

__all__ = ["Decision", "StageStats", "build_result", "decision_dicts"]

# faster on a `StageResult` than its own method (see `cascade_runner`)
_dict_get: Callable[..., Any] = dict.get

Decision = RulePlan | dict[str, Any]
"""A routing decision taken: the rule, or the decision as the result shows it (restored from a
checkpoint)."""


class Executions:
    """How many executions of an engine finished (`CascadeEngine.executions`)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class StageStats:
    """Counters of one stage across executions (`CascadeEngine.get_statistics`)."""

    __slots__ = ("cache_hits", "count", "errors", "timeouts", "total_cost", "total_time_ms")

    def __init__(self) -> None:
        self.count = 0
        self.total_time_ms = 0.0
        self.errors = 0
        self.timeouts = 0
        self.total_cost = 0.0
        self.cache_hits = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters, plus the derived average and success rate."""
        count = self.count
        return {
            "count": count,
            "total_time_ms": self.total_time_ms,
            "avg_time_ms": self.total_time_ms / count if count else 0.0,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "success_rate": 100.0 * (count - self.errors) / count if count else 0.0,
            "total_cost": self.total_cost,
        }


def _terminating_member(run: _Run, final: str) -> str:
    """The decision of a run that a member of a parallel batch terminated is that member's,
    not the result of the batch's last stage in plan order."""
    for taken in reversed(run.decisions):
        shown = taken.shown if isinstance(taken, RulePlan) else taken
        if shown.get("action") == "terminate" and shown.get("rule") == run.terminated_by:
            stage = shown.get("stage")
            if isinstance(stage, str) and stage in run.ctx.stage_results:
                return stage
            break
    return final


def _last_decided(entries: list[tuple[str, float, float, bool]], final: str) -> str:
    """The decision of a run cut off by its global timeout: the last stage that finished
    without an error (what had been decided when time ran out), or the last stage run."""
    for name, _started, _time_ms, failed in reversed(entries):
        if not failed:
            return name
    return final


def build_result(run: _Run, elapsed: float) -> dict[str, Any]:
    """The result dict of a finished (or timed-out) execution."""
    ctx = run.ctx
    t0 = run.t0
    results = ctx.stage_results
    entries = run.timeline  # the path is the names of its entries
    # every stage the run went on from to a later one escalated (see `_escalated_count`)
    escalated = 0
    if entries:
        final = entries[-1][0]
        if len(entries) > 1:
            escalated = len(entries) - 1
            if run.plan.group_of.get(final) is not None:  # it ended in a parallel batch
                escalated = _escalated_count(run.plan, run.path)
                if run.terminated_by is not None:
                    final = _terminating_member(run, final)
        if run.timed_out and entries[-1][3]:
            final = _last_decided(entries, final)
        final_stage: str | None = final
        last = results[final]
        final_result, final_confidence = _dict_get(last, "result"), _dict_get(last, "confidence")
    else:
        final_stage = final_result = final_confidence = None
    path: list[str] = []
    timeline: list[dict[str, Any]] = []
    went_on: list[Any] | None = None  # the stage results of the stages the run went on from
    for name, start, time_ms, failed in entries:  # a loop: a comprehension is one more frame
        path.append(name)
        start_ms = (start - t0) * 1000.0
        timeline.append(
            {
                "stage": name,
                "start_ms": start_ms,
                "end_ms": start_ms + time_ms,
                "status": "error" if failed else "ok",
            }
        )
        if escalated:  # the timeline is in path order
            escalated -= 1
            sr = results.get(name)
            if sr is not None:
                if "escalated" not in sr:  # a handler's own mark stands
                    sr["escalated"] = True
                if RUN_LINKS.on:
                    if went_on is None:
                        went_on = []
                    went_on.append(sr)
    decisions: list[dict[str, Any]] = []
    for taken in run.decisions:  # `decision_dicts`, inlined
        if type(taken) is RulePlan:
            decisions.append(taken.shown.copy())
        else:
            decisions.append(dict(taken))  # type: ignore[arg-type]
    errors = run.errors
    terminated_by = run.terminated_by
    timed_out = run.timed_out
    warnings = ctx.warnings
    plan = run.plan
    # A copy of a template and a store per key: cheaper than a 20-key literal, same key order.
    result = _TEMPLATE.copy()
    result["success"] = not errors and not timed_out
    result["execution_time_ms"] = elapsed * 1000.0
    result["stages_executed"] = len(path)
    result["stage_results"] = results
    result["path"] = path
    result["final_stage"] = final_stage
    result["final_result"] = final_result
    result["final_confidence"] = final_confidence
    if terminated_by is not None:
        result["terminated"] = True
        result["terminated_by"] = terminated_by
    result["timed_out"] = timed_out
    result["cost"] = run.cost
    result["errors"] = errors if errors is not None else []
    result["routing_decisions"] = decisions
    result["skipped_stages"] = run.skipped if run.skipped is not None else {}
    result["timeline"] = timeline
    result["warnings"] = [_warning(w) for w in warnings] if warnings else warnings  # the run's
    result["cascade"] = plan.name
    result["version"] = plan.version
    result["input"] = run.input
    if run.run_id is not None:
        result["run_id"] = run.run_id
    if run.explain is not None:
        result["explanation"] = run.explain
    data = ctx.data
    if ctx._owned is not None or (data is not run.input and data != run.input):
        result["data"] = data  # the run set fields (a resumed run: restored with them)
    if went_on is not None:
        for sr in went_on:
            if type(sr) is StageResult:
                sr._run = result  # see `StageResult`
    return result


_TEMPLATE: dict[str, Any] = {
    "success": True,
    "execution_time_ms": 0.0,
    "stages_executed": 0,
    "stage_results": None,
    "path": None,
    "final_stage": None,
    "final_result": None,
    "final_confidence": None,
    "terminated": False,
    "terminated_by": None,
    "timed_out": False,
    "cost": 0.0,
    "errors": None,
    "routing_decisions": None,
    "skipped_stages": None,
    "timeline": None,
    "warnings": None,
    "cascade": None,
    "version": None,
    "input": None,
    "run_id": None,
}
"""The keys of a result, in order; `build_result` fills a copy."""


def _escalated_count(plan: CascadePlan, path: list[str]) -> int:
    """How many stages at the start of `path` the run went on from to a later stage: all but
    the stage that ended the run, or all but its final parallel batch. Those stage results
    get `escalated: True`; the deciding stage gets no mark."""
    final = len(path) - 1
    group_of = plan.group_of
    group = group_of.get(path[final])
    if group is not None:  # the final batch: the group's stages at the end of the path
        while final and group_of.get(path[final - 1]) == group:
            final -= 1
    return final


def decision_dicts(decisions: list[Decision]) -> list[dict[str, Any]]:
    """The routing decisions of a run as the result shows them."""
    return [
        taken.shown.copy() if isinstance(taken, RulePlan) else dict(taken) for taken in decisions
    ]


def _warning(w: Any) -> Any:
    path = getattr(w, "path", None)
    if path is not None:
        return {"path": path, "message": getattr(w, "message", str(w))}
    return str(w)
