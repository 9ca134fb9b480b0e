"""Checkpointed cascade executions: each finished stage is recorded with the routing state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascadence.checkpoint.serde import register_type
from cascadence.errors import CheckpointError
from cascadence.runtime.cascade_result import decision_dicts
from cascadence.runtime.cascade_runner import run_cascade
from cascadence.runtime.durable import durable_run, finish
from cascadence.runtime.plan import CascadePlan
from cascadence.runtime.result import StageResult

if TYPE_CHECKING:
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.checkpoint.base import CheckpointStore

__all__ = ["execute_durable"]

register_type(StageResult, dict, StageResult, "cascadence.StageResult")


def _state(run: Any) -> dict[str, Any]:
    return {
        "index": run.index,
        "data": run.ctx.data,
        "stage_results": {k: dict(v) for k, v in run.ctx.stage_results.items()},
        "enabled": sorted(run.plan.names(run.enabled)),
        "path": list(run.path),
        "cost": run.cost,
        "errors": list(run.errors or ()),
        "decisions": decision_dicts(run.decisions),
        "skipped": dict(run.skipped or {}),
        "timeline": [list(item) for item in run.timeline],
        "timeline_format": 2,  # (stage, started, time_ms, failed)
        "terminated_by": run.terminated_by,
        "version": run.plan.version,  # the config it ran on: a resume must run the same
    }


def _check_same_config(plan: CascadePlan, state: dict[str, Any], run_id: str) -> None:
    """Refuse to resume a run on a config other than the one it started on: its stored
    results and routing state would mix with the other config's rules."""
    started_on = state.get("version")
    if started_on is not None and started_on != plan.version:
        raise CheckpointError(
            f"run {run_id!r} started on version {started_on!r} of cascade {plan.name!r}, and "
            f"this engine runs version {plan.version!r}: resume it with the config it started "
            "on, or use a new run id"
        )
    known = {st.name for st in plan.stages}
    named = set(state.get("stage_results", {})) | set(state.get("enabled", []))
    unknown = sorted(named - known)
    if unknown:
        raise CheckpointError(
            f"run {run_id!r} was checkpointed with stage(s) {', '.join(map(repr, unknown))}, "
            f"which cascade {plan.name!r} no longer has: resume it with the config it started "
            "on, or use a new run id"
        )


async def execute_durable(
    engine: CascadeEngine,
    plan: CascadePlan,
    data: Any,
    *,
    store: CheckpointStore,
    run_id: str | None,
    explain: bool,
    lease_seconds: float = 60.0,
) -> dict[str, Any]:
    """Execute with a checkpoint after every stage; resume an interrupted `run_id`.

    A resumed run takes the same path: stage results, enabled stages and routing decisions are
    restored, and the stages that finished are not called again.
    """
    if not run_id:
        raise ValueError(
            "a checkpointed execution needs a run_id: execute(data, run_id=..., checkpoint=store)"
        )
    async with durable_run(
        store,
        run_id,
        kind="cascade",
        name=plan.name,
        meta={"version": plan.version},
        lease_seconds=lease_seconds,
    ) as run:
        if run.completed:
            stored: dict[str, Any] = run.record.result
            return stored
        # a resumed run continues on the fields its finished stages set (`restore["data"]`);
        # its `input` stays the input as given
        restore = _last_clean_step(run.record.steps)
        if restore is not None:
            _check_same_config(plan, restore, run_id)

        async def checkpoint(name: str, _result: Any, state: Any) -> None:
            await run.save_step(f"{len(state.path)}:{name}", _state(state))

        result = await run_cascade(
            plan,
            data,
            stats=engine._stats,
            observers=engine._observers,
            explain=explain,
            run_id=run_id,
            on_stage=checkpoint,
            restore=restore,
        )
        if result.get("success", True) and not result.get("timed_out"):
            await finish(run, result)
        else:  # a stage failed or time ran out: resumable, from before the first failure
            reason = "timed out" if result.get("timed_out") else "a stage failed"
            await run.store.fail(run_id, f"cascade {reason}", owner=run.owner)
        return result


def _last_clean_step(steps: Any) -> dict[str, Any] | None:
    """The latest checkpoint taken before any stage failed: a run that stopped on a failure
    (or ran out of time) resumes from there, and the failed stages run again."""
    for step in reversed(list(steps or ())):
        payload = step.payload
        results = payload.get("stage_results", {}) if isinstance(payload, dict) else {}
        if not any(r.get("error") is not None for r in results.values()):
            return payload  # type: ignore[no-any-return]
    return None
