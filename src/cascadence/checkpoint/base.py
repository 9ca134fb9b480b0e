"""The checkpoint contract: run and step records, the `CheckpointStore` protocol, leases.

A *run* is one execution of a flow (`kind="cadence"`) or a cascade (`kind="cascade"`) under a
caller-chosen `run_id`. Whoever executes it first `acquire`s it, which takes a time-limited
*lease* naming an `owner`; while the lease is held, the owner appends finished *steps*
(`save_step`), may snapshot its whole state (`save_state`), and finally `complete`s or `fail`s
the run, which releases the lease. If the process dies, the lease runs out and another owner's
`acquire` takes the run over together with every finished step, so those steps are not run again.

Lease rules, identical in every store:

- `acquire` creates a new run, or takes over a RUNNING run whose lease has expired (or was
  released, or is held by the same owner), or resumes a FAILED run. Another owner's unexpired
  lease raises `RunLockedError`. A COMPLETED run is returned as it is, without a lease.
- A lease that expired but was not taken over still belongs to its owner: `renew`, `save_step`,
  `complete` and `fail` succeed. Once another owner takes the run over, they raise
  `RunLockedError`.
- Steps are keyed: `index` grows with every save, in completion order. Saving a key again
  replaces the earlier entry (the step moves to the end with a new index).
- All times are wall-clock seconds from the store's injected `Clock` (`clock.time()`).
"""

from __future__ import annotations

import abc
import enum
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn, Protocol, TypeVar, runtime_checkable

from cascadence.checkpoint.serde import loads
from cascadence.errors import CheckpointError, RunLockedError
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "BaseCheckpointStore",
    "CheckpointStore",
    "FINISHED",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "StepRecord",
    "check_acquire_args",
    "check_key",
    "check_lease",
    "check_owner",
    "check_run_id",
    "check_writable",
    "decide_acquire",
    "default_owner",
    "make_record",
    "mismatch_error",
    "not_writable_error",
    "refuse_write",
]


class RunStatus(str, enum.Enum):
    """Where a run stands. The value is what the stores write."""

    RUNNING = "running"
    """Acquired and not finished; may be held by a lease or free to take over."""
    COMPLETED = "completed"
    """Finished successfully; `RunRecord.result` holds the result."""
    FAILED = "failed"
    """Finished with an error; a later `acquire` resumes it after its last saved step."""


FINISHED: tuple[RunStatus, RunStatus] = (RunStatus.COMPLETED, RunStatus.FAILED)
"""The statuses `expire` deletes by default."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One finished step of a run.

    Attributes:
        run_id: The run it belongs to.
        key: The step's stable key (the same on every execution of the run).
        index: Position in completion order; grows with every save.
        payload: The decoded value saved with the step.
        created_at: Wall-clock seconds when it was saved.
    """

    run_id: str
    key: str
    index: int
    payload: Any
    created_at: float


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored.

    Attributes:
        run_id: The caller-chosen id.
        kind: `"cadence"` or `"cascade"`.
        name: The flow's or cascade's name.
        status: RUNNING, COMPLETED or FAILED.
        owner: Who holds the lease, or None.
        lease_expires_at: Wall-clock seconds when the lease runs out, or None.
        created_at: Wall-clock seconds when the run was first acquired.
        updated_at: Wall-clock seconds of the last change.
        steps: Finished steps ordered by index (empty in `list_runs`).
        result: The result passed to `complete`, else None.
        error: The error passed to `fail`, else None.
        meta: Free-form metadata given to `acquire`.
        state: The latest `save_state` snapshot, else None.
    """

    run_id: str
    kind: str
    name: str
    status: RunStatus
    owner: str | None
    lease_expires_at: float | None
    created_at: float
    updated_at: float
    steps: list[StepRecord] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    state: Any = None

    @property
    def completed(self) -> bool:
        """Whether the run finished successfully (its `result` is final)."""
        return self.status is RunStatus.COMPLETED

    def step_payloads(self) -> dict[str, Any]:
        """Map each finished step's key to its payload, in completion order."""
        return {s.key: s.payload for s in self.steps}


class RunNotFoundError(CheckpointError, LookupError):
    """The run id is unknown to the store, or the run is not running (so cannot be written)."""


@runtime_checkable
class CheckpointStore(Protocol):
    """What every checkpoint backend implements. All methods are coroutines.

    See the module docstring for the lease rules every implementation follows; the contract
    suite in `tests/checkpoint/test_contract.py` checks them against every built-in store.
    """

    async def acquire(
        self,
        run_id: str,
        *,
        owner: str,
        lease_seconds: float,
        kind: str,
        name: str,
        meta: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create or take over a run and lease it to `owner`; return it with its steps.

        A COMPLETED run is returned as it is and not leased. `meta`, when given, replaces the
        stored metadata.

        Raises:
            RunLockedError: Another owner holds an unexpired lease.
            CheckpointError: The run exists with another kind or name.
        """
        ...

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend `owner`'s lease to `lease_seconds` from now.

        Raises:
            RunLockedError: Another owner has taken the run over.
            RunNotFoundError: The run is unknown or not running.
        """
        ...

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append one finished step atomically; `payload` is serialized now.

        Raises:
            SerializationError: `payload` holds a value that cannot be checkpointed.
            RunLockedError: Another owner has taken the run over.
            RunNotFoundError: The run is unknown or not running.
        """
        ...

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Store a snapshot of the run's whole state, replacing the previous one."""
        ...

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Mark the run COMPLETED with `result` and release the lease."""
        ...

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Mark the run FAILED with `error` and release the lease; steps are kept."""
        ...

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up `owner`'s lease without finishing the run (a no-op if not the owner)."""
        ...

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None if unknown."""
        ...

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs (without steps), newest first, optionally filtered."""
        ...

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's finished steps ordered by index (empty if unknown)."""
        ...

    async def delete(self, run_id: str) -> bool:
        """Delete the run and its steps; return whether it existed."""
        ...

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete runs in `statuses` last updated more than `older_than_seconds` ago."""
        ...

    async def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""
        ...


def default_owner() -> str:
    """Return an owner name unique to this process: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_S = TypeVar("_S", bound="BaseCheckpointStore")


class BaseCheckpointStore(abc.ABC):
    """Base class of the built-in stores: clock, `async with` support, and the abstract API.

    Subclass it to write a store of your own, or implement `CheckpointStore` directly.

    Args:
        clock: Source of wall-clock time for leases and timestamps (the system clock by default).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK

    @abc.abstractmethod
    async def acquire(
        self,
        run_id: str,
        *,
        owner: str,
        lease_seconds: float,
        kind: str,
        name: str,
        meta: dict[str, Any] | None = None,
    ) -> RunRecord:
        """See `CheckpointStore.acquire`."""

    @abc.abstractmethod
    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """See `CheckpointStore.renew`."""

    @abc.abstractmethod
    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """See `CheckpointStore.save_step`."""

    @abc.abstractmethod
    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """See `CheckpointStore.save_state`."""

    @abc.abstractmethod
    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """See `CheckpointStore.complete`."""

    @abc.abstractmethod
    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """See `CheckpointStore.fail`."""

    @abc.abstractmethod
    async def release(self, run_id: str, *, owner: str) -> None:
        """See `CheckpointStore.release`."""

    @abc.abstractmethod
    async def load(self, run_id: str) -> RunRecord | None:
        """See `CheckpointStore.load`."""

    @abc.abstractmethod
    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """See `CheckpointStore.list_runs`."""

    @abc.abstractmethod
    async def history(self, run_id: str) -> list[StepRecord]:
        """See `CheckpointStore.history`."""

    @abc.abstractmethod
    async def delete(self, run_id: str) -> bool:
        """See `CheckpointStore.delete`."""

    @abc.abstractmethod
    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """See `CheckpointStore.expire`."""

    async def close(self) -> None:  # noqa: B027 - optional: stores without resources keep it
        """Release resources (nothing by default)."""

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def check_acquire_args(run_id: str, owner: str, lease_seconds: float, kind: str, name: str) -> None:
    """Reject arguments no store can honour, with a message naming what was expected."""
    check_run_id(run_id)
    check_owner(owner)
    check_lease(lease_seconds)
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string such as 'cadence', got {kind!r}")
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")


def check_run_id(run_id: str) -> None:
    """Raise ValueError unless `run_id` is a non-empty string."""
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")


def check_owner(owner: str) -> None:
    """Raise ValueError unless `owner` is a non-empty string."""
    if not isinstance(owner, str) or not owner:
        raise ValueError(f"owner must be a non-empty string, got {owner!r}")


def check_lease(lease_seconds: float) -> None:
    """Raise ValueError unless `lease_seconds` is a positive number."""
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")


def check_key(key: str) -> None:
    """Raise ValueError unless `key` is a non-empty string."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"step key must be a non-empty string, got {key!r}")


def mismatch_error(
    run_id: str, kind: str, name: str, stored_kind: str, stored_name: str
) -> CheckpointError:
    """The error for acquiring a run id that belongs to another flow or cascade."""
    return CheckpointError(
        f"run {run_id!r} belongs to {stored_kind} {stored_name!r}, not {kind} {name!r}; "
        "use a distinct run_id per flow or cascade"
    )


def not_writable_error(run_id: str, status: str | None, action: str) -> RunNotFoundError:
    """The error for writing to a run that is unknown or already finished."""
    if status is None:
        return RunNotFoundError(f"cannot {action}: run {run_id!r} does not exist; acquire it first")
    return RunNotFoundError(
        f"cannot {action}: run {run_id!r} is {status}, not running; acquire it again to resume"
    )


def decide_acquire(
    run_id: str,
    *,
    status: RunStatus,
    current_owner: str | None,
    lease_expires_at: float | None,
    stored_kind: str,
    stored_name: str,
    owner: str,
    kind: str,
    name: str,
    now: float,
) -> bool:
    """Apply the lease rules to an existing run.

    Returns:
        True if `owner` may take the run, False if it is COMPLETED (returned as is).

    Raises:
        CheckpointError: The run belongs to another kind or name.
        RunLockedError: Another owner holds an unexpired lease.
    """
    if stored_kind != kind or stored_name != name:
        raise mismatch_error(run_id, kind, name, stored_kind, stored_name)
    if status is RunStatus.COMPLETED:
        return False
    if (
        status is RunStatus.RUNNING
        and current_owner is not None
        and current_owner != owner
        and lease_expires_at is not None
        and lease_expires_at > now
    ):
        raise RunLockedError(run_id, current_owner, lease_expires_at)
    return True


def check_writable(
    run_id: str,
    status: RunStatus | None,
    current_owner: str | None,
    owner: str,
    lease_expires_at: float | None,
    action: str,
) -> None:
    """Raise unless `owner` may write to a run in this state (see the module's lease rules)."""
    if status is not RunStatus.RUNNING:
        raise not_writable_error(run_id, None if status is None else status.value, action)
    if current_owner != owner:
        raise RunLockedError(run_id, current_owner, lease_expires_at)


def refuse_write(run_id: str, row: Any, owner: str, action: str) -> NoReturn:
    """Explain why a guarded write matched no run: `row` is the run's (status, owner,
    lease_expires_at) as read afterwards, or None when the run does not exist."""
    if row is None:
        check_writable(run_id, None, None, owner, None, action)
    else:
        check_writable(run_id, RunStatus(row[0]), row[1], owner, row[2], action)
    raise CheckpointError(f"cannot {action}: run {run_id!r} changed concurrently; retry")


def make_record(row: tuple[Any, ...] | Any, steps: list[StepRecord] | None = None) -> RunRecord:
    """Build a `RunRecord` from a stored row.

    The row holds, in order: run_id, kind, name, status, owner, lease_expires_at, created_at,
    updated_at, result bytes, error, meta bytes, state bytes.
    """
    run_id, kind, name, status, owner, lease, created, updated, result, error, meta, state = row
    return RunRecord(
        run_id=run_id,
        kind=kind,
        name=name,
        status=RunStatus(status),
        owner=owner,
        lease_expires_at=lease,
        created_at=created,
        updated_at=updated,
        steps=steps if steps is not None else [],
        result=None if result is None else loads(result),
        error=error,
        meta=loads(meta) if meta else {},
        state=None if state is None else loads(state),
    )
