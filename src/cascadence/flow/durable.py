"""Checkpointed flow runs: each finished top-level step is recorded with the score after it.

A resumed run, and a re-run of a finished run id, continue on the score the caller passed in:
the stored field values are written into it (so code that keeps its own reference to the score
sees the outcome, and attributes `__post_init__` set outside the fields are kept). A frozen
score cannot be written to; the stored one is used instead.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from cascadence.errors import CheckpointError
from cascadence.runtime.durable import durable_run, finish, stop_unfinished
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

    A completed `run_id` returns its stored final score without running any step. A run
    that an `on_error(stop=True)` handler stopped at a failed step returns its score but is
    not completed: a re-run resumes at that step.
    """
    plan = cadence.plan
    async with durable_run(
        store, run_id, kind="cadence", name=plan.name, lease_seconds=lease_seconds
    ) as run:
        if run.completed:
            return _into(score, run.record.result)
        start_at = 0
        if run.record.steps:
            step = run.record.steps[-1]
            start_at = _after_step(plan.nodes, step.key, int(step.payload["index"]), run_id)
            score = _into(score, step.payload["score"])

        async def checkpoint(index: int, name: str, current: Any) -> None:
            await run.save_step(f"{index}:{name}", {"index": index, "score": current})

        final: S
        final, handled = await run_flow(
            plan,
            score,
            observers=cadence._observers,
            run_id=run_id,
            start_at=start_at,
            on_node=checkpoint,
        )
        if handled is not None:  # stopped at a failed step by its error handler: resume there
            await stop_unfinished(run, handled)
        else:
            await finish(run, final)
        return final


def _into(score: S, stored: Any) -> S:
    """Write the stored score's fields into the caller's score, when it can take them."""
    cls = type(score)
    if (
        type(stored) is not cls
        or not dataclasses.is_dataclass(score)
        or cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    ):
        return stored  # type: ignore[no-any-return]
    for f in dataclasses.fields(score):
        setattr(score, f.name, getattr(stored, f.name))
    return score


def _after_step(nodes: Any, key: str, index: int, run_id: str) -> int:
    """Where a resumed run goes on: after the step the checkpoint names, found by its name (a
    flow that gained or lost steps before it since the run began still resumes in place)."""
    name = key.partition(":")[2]
    names = [node.name for node in nodes]
    if index < len(names) and names[index] == name:
        return index + 1
    if name in names:
        return names.index(name) + 1
    raise CheckpointError(
        f"run {run_id!r} was checkpointed after step {name!r}, which this flow no longer has "
        f"(its steps: {', '.join(names)}); resume it with the flow it started on, or use a "
        "new run id"
    )
