"""Checkpointed flow runs: each finished top-level step is recorded with the score after it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from cascadence.runtime.durable import durable_run, finish
from cascadence.runtime.flow_runner import run_flow

if TYPE_CHECKING:
    from cascadence.checkpoint.base import CheckpointStore
    from cascadence.flow.cadence import Cadence

__all__ = ["run_durable"]

S = TypeVar("S")


async def run_durable(
    cadence: Cadence[S],
    score: S,
    store: CheckpointStore,
    run_id: str,
    *,
    lease_seconds: float = 60.0,
) -> S:
    """Run `cadence` under `run_id`, resuming after the last step a previous attempt finished.

    A completed `run_id` returns its stored final score without running any step.
    """
    plan = cadence.plan
    async with durable_run(
        store, run_id, kind="cadence", name=plan.name, lease_seconds=lease_seconds
    ) as run:
        if run.completed:
            stored: S = run.record.result
            return stored
        start_at = 0
        if run.record.steps:
            last = run.record.steps[-1].payload
            start_at = int(last["index"]) + 1
            score = last["score"]

        async def checkpoint(index: int, name: str, current: Any) -> None:
            await run.save_step(f"{index}:{name}", {"index": index, "score": current})

        final: S = await run_flow(
            plan,
            score,
            observers=cadence._observers,
            run_id=run_id,
            start_at=start_at,
            on_node=checkpoint,
        )
        await finish(run, final)
        return final
