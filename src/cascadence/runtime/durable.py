"""Durable runs for both front ends: one run id at a time, leases kept alive, outcome recorded.

`durable_run` acquires the run's lease (raising `RunLockedError` while another process holds
it), renews it in the background while the run goes on, and records the outcome: `complete`
with the result, or `fail` with the error so that a later attempt resumes from the last
finished step. A run id that already completed is reported as such and nothing runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cascadence.checkpoint.base import CheckpointStore, RunRecord

__all__ = ["DEFAULT_LEASE_SECONDS", "DurableRun", "as_run_id", "durable_run"]


def as_run_id(run_id: str | uuid.UUID | int | None) -> str | None:
    """A run id given as a UUID or an int, as its text (the key a store keeps the run under);
    anything else as it is (a store refuses what is not a non-empty str)."""
    if isinstance(run_id, (uuid.UUID, int)) and not isinstance(run_id, bool):
        return str(run_id)
    return run_id  # type: ignore[return-value]  # what callers passed unchecked: refused later


DEFAULT_LEASE_SECONDS = 60.0
_log = logging.getLogger("cascadence.checkpoint")


@dataclass
class DurableRun:
    """A run holding its lease: what the executor needs to checkpoint and finish it."""

    store: CheckpointStore
    run_id: str
    owner: str
    record: RunRecord
    lease_seconds: float

    @property
    def completed(self) -> bool:
        """The run finished before: `record.result` is its result."""
        return bool(self.record.completed)

    async def save_step(self, key: str, payload: Any) -> None:
        """Record one finished step."""
        await self.store.save_step(self.run_id, key, payload, owner=self.owner)


async def _keep_alive(run: DurableRun) -> None:
    interval = max(run.lease_seconds / 3.0, 0.05)
    while True:
        await asyncio.sleep(interval)
        try:
            await run.store.renew(run.run_id, owner=run.owner, lease_seconds=run.lease_seconds)
        except Exception:  # the next write reports a lost lease precisely; keep trying here
            _log.warning("could not renew the lease of run %r", run.run_id, exc_info=True)


@contextlib.asynccontextmanager
async def durable_run(
    store: CheckpointStore,
    run_id: str,
    *,
    kind: str,
    name: str,
    owner: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    meta: dict[str, Any] | None = None,
) -> AsyncIterator[DurableRun]:
    """Hold the lease of `run_id` for the duration of the block.

    The block sets the run's outcome with `finish(run, result)`; if it raises, the run is
    marked failed (and resumable). For a run that already completed the block still runs, and
    must check `run.completed` first.

    Raises:
        RunLockedError: Another owner holds an unexpired lease on this run id.
    """
    from cascadence.checkpoint.base import default_owner

    who = owner or default_owner()
    acquiring = asyncio.ensure_future(
        store.acquire(
            run_id, owner=who, lease_seconds=lease_seconds, kind=kind, name=name, meta=meta
        )
    )
    try:
        record = await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        # Cancelled while the lease was being written: once the write is done, give the lease
        # back, or a retry of this run id would be refused until it expires.
        await asyncio.shield(_give_back(store, acquiring, run_id, who))
        raise
    run = DurableRun(store, run_id, who, record, lease_seconds)
    if run.completed:
        yield run
        return
    keeper = asyncio.ensure_future(_keep_alive(run))
    try:
        yield run
    except BaseException as exc:
        keeper.cancel()
        if isinstance(exc, Exception):
            await store.fail(run_id, f"{type(exc).__name__}: {exc}", owner=who)
        else:  # cancelled or interrupted: free the run for a prompt retry
            with contextlib.suppress(Exception):
                await asyncio.shield(store.release(run_id, owner=who))
        raise
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _give_back(
    store: CheckpointStore, acquiring: asyncio.Future[Any], run_id: str, owner: str
) -> None:
    try:
        await acquiring
    except Exception:
        return  # not acquired (locked by another owner, or the store failed)
    with contextlib.suppress(Exception):
        await store.release(run_id, owner=owner)


async def stop_unfinished(run: DurableRun, error: BaseException) -> None:
    """Mark the run failed, and so resumable, though it returned: an error handler handled
    `error` and stopped the run before its last step."""
    await run.store.fail(
        run.run_id,
        f"{type(error).__name__}: {error} (handled by on_error, which stopped the run)",
        owner=run.owner,
    )


async def finish(run: DurableRun, result: Any) -> None:
    """Mark the run completed with `result`."""
    await run.store.complete(run.run_id, result, owner=run.owner)
