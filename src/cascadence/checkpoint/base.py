"""The checkpoint contract: run and step records, the `CheckpointStore` protocol, leases.

A *run* is one execution of a flow (`kind="cadence"`) or a cascade (`kind="cascade"`) under a
caller-chosen `run_id`. Whoever executes it first `acquire`s it, which takes a time-limited
*lease* naming an `owner`; while the lease is held, the owner appends finished *steps*
(`save_step`), may snapshot its whole state (`save_state`), and finally `complete`s or `fail`s
the run, which releases the lease. If the process dies, another owner's `acquire` takes the run
over together with every finished step, so those steps are not run again: at once when the dead
process was on the same host, otherwise once its lease runs out.

Lease rules, identical in every store:

- `acquire` creates a new run, or takes over a RUNNING run whose lease has expired (or was
  released, or is held by the same owner, or is held by a dead process: see below), or
  resumes a FAILED run. Another owner's unexpired lease raises `RunLockedError`. A COMPLETED
  run is returned as it is, without a lease.
- A dead holder's lease does not have to run out. When the holder is an owner string made by
  `default_owner` on this host (same hostname, same boot, same PID namespace) and that
  process no longer runs (`owner_is_dead`: its PID is gone, is a zombie, or now belongs to a
  process with another start time), `acquire` takes the run over at once. Takeover is atomic
  like any acquire: it only replaces that exact owner, so of several racers one wins. A
  holder on another host, an owner in another format, or a process that cannot be checked
  is never presumed dead; its lease is waited out as before.
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
import hashlib
import logging
import os
import socket
import sys
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
    "check_writable_row",
    "decide_acquire",
    "default_owner",
    "lease_held_by_other",
    "make_record",
    "mismatch_error",
    "not_writable_error",
    "owner_is_dead",
    "refuse_write",
    "select_runs",
    "take_over_or_raise",
]

_log = logging.getLogger("cascadence.checkpoint")


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
    """Return a new owner name for this process: `host:pid:start:scope:random`.

    `start` is the process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22)
    and `scope` is 8 hex digits naming this boot and PID namespace; together with `host` and
    `pid` they let `owner_is_dead` tell, on this host, whether the owner still runs. `random`
    makes every call unique. Where `/proc` is not available (not Linux) the name is
    `host:pid:random`, which no process ever presumes dead.
    """
    pid = os.getpid()
    token = uuid.uuid4().hex[:8]
    ident = _process_identity(pid)
    if ident is None:
        return f"{socket.gethostname()}:{pid}:{token}"
    start, scope = ident
    return f"{socket.gethostname()}:{pid}:{start}:{scope}:{token}"


_IDENTITY: dict[int, tuple[int, str] | None] = {}


def _process_identity(pid: int) -> tuple[int, str] | None:
    """This process's (start time, scope), or None if they cannot be read reliably.

    Cached per PID, so a forked child computes its own.
    """
    if pid not in _IDENTITY:
        _IDENTITY[pid] = _read_identity(pid)
    return _IDENTITY[pid]


def _read_identity(pid: int) -> tuple[int, str] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read()
        if int(stat.split(b" ", 1)[0]) != pid:  # /proc belongs to another PID namespace
            return None
        parsed = _parse_stat(stat)
        scope = _scope()
    except (OSError, ValueError):
        return None
    if parsed is None or scope is None:
        return None
    return parsed[1], scope


def _scope() -> str | None:
    """8 hex digits naming this boot and this PID namespace (PIDs mean nothing elsewhere)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    if not boot or not namespace:
        return None
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:8]


def _parse_stat(stat: bytes) -> tuple[str, int] | None:
    """(state, start time) from the text of `/proc/<pid>/stat`, or None if malformed."""
    # Field 2, the command name, is in parentheses and may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    try:
        return fields[0].decode("ascii"), int(fields[19])  # fields 3 (state) and 22 (start)
    except (UnicodeDecodeError, ValueError):
        return None


def _is_hex8(text: str) -> bool:
    return len(text) == 8 and all(c in "0123456789abcdef" for c in text)


def _parse_owner(owner: str) -> tuple[str, int, int, str] | None:
    """(host, pid, start, scope) of an owner made by `default_owner`, else None."""
    parts = owner.rsplit(":", 4)
    if len(parts) != 5:
        return None
    host, pid, start, scope, token = parts
    if not (pid.isdigit() and pid.isascii() and start.isdigit() and start.isascii()):
        return None
    if not (host and _is_hex8(scope) and _is_hex8(token)) or int(pid) <= 0:
        return None
    return host, int(pid), int(start), scope


def owner_is_dead(owner: str | None) -> bool:
    """Whether `owner` is certainly a process of this host that no longer runs.

    True only for an owner made by `default_owner` with this hostname, this boot and this
    PID namespace, whose PID is gone (`os.kill(pid, 0)` raises `ProcessLookupError`), is a
    zombie, or runs a process started at another time (the PID was reused). Anything that
    cannot be checked (another host, another format, an unreadable `/proc`) returns False: an
    owner is never presumed dead. `PermissionError` from `os.kill` means the PID is alive.
    """
    if not owner:
        return False
    parsed = _parse_owner(owner)
    if parsed is None:
        return False
    host, pid, start, scope = parsed
    ours = _process_identity(os.getpid())
    # The scope check comes first: it also guarantees Linux, where kill(pid, 0) only probes.
    if ours is None or scope != ours[1] or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user; its start time still tells a reused PID apart
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = _parse_stat(fh.read())
    except (FileNotFoundError, ProcessLookupError):
        return True  # exited since the probe
    except OSError:
        return False
    if stat is None:
        return False
    state, started = stat
    return state in ("Z", "X") or started != start


def lease_held_by_other(
    status: RunStatus,
    current_owner: str | None,
    lease_expires_at: float | None,
    owner: str,
    now: float,
) -> bool:
    """Whether another owner than `owner` holds an unexpired lease on a run in this state."""
    return (
        status is RunStatus.RUNNING
        and current_owner is not None
        and current_owner != owner
        and lease_expires_at is not None
        and lease_expires_at > now
    )


def take_over_or_raise(run_id: str, holder: str | None, lease_expires_at: float | None) -> None:
    """Allow taking `run_id` from `holder`, whose lease has not expired, if it is dead.

    Raises:
        RunLockedError: `holder` is not certainly dead (see `owner_is_dead`).
    """
    if not owner_is_dead(holder):
        raise RunLockedError(run_id, holder, lease_expires_at)
    _log.warning(
        "run %r: lease holder %s no longer runs on this host; taking the run over", run_id, holder
    )


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
    if status == RunStatus.COMPLETED.value:
        return RunNotFoundError(
            f"cannot {action}: run {run_id!r} is completed, not running (when this owner's "
            "lease ran out, another owner may have taken the run over and finished it); load "
            "it for its result"
        )
    return RunNotFoundError(
        f"cannot {action}: run {run_id!r} is {status}, not running (when this owner's lease "
        "ran out, another owner may have taken the run over); acquire it again to resume"
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
        True if `owner` may take the run, False if it is COMPLETED (returned as is). True
        also when another owner's unexpired lease is held by a dead process (`owner_is_dead`):
        the caller must then replace exactly that owner, atomically.

    Raises:
        CheckpointError: The run belongs to another kind or name.
        RunLockedError: Another owner, not known to be dead, holds an unexpired lease.
    """
    if stored_kind != kind or stored_name != name:
        raise mismatch_error(run_id, kind, name, stored_kind, stored_name)
    if status is RunStatus.COMPLETED:
        return False
    if lease_held_by_other(status, current_owner, lease_expires_at, owner, now):
        take_over_or_raise(run_id, current_owner, lease_expires_at)
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


def check_writable_row(run_id: str, row: Any, owner: str, action: str) -> None:
    """`check_writable` for a run given as its (status, owner, lease_expires_at), or None when
    the run does not exist (which raises `RunNotFoundError`)."""
    if row is None:
        check_writable(run_id, None, None, owner, None, action)
    else:
        check_writable(run_id, RunStatus(row[0]), row[1], owner, row[2], action)


def refuse_write(run_id: str, row: Any, owner: str, action: str) -> NoReturn:
    """Explain why a guarded write matched no run: `row` is the run's (status, owner,
    lease_expires_at) as read afterwards, or None when the run does not exist."""
    check_writable_row(run_id, row, owner, action)
    raise CheckpointError(f"cannot {action}: run {run_id!r} changed concurrently; retry")


class _Listed(Protocol):
    """What `select_runs` reads of a run."""

    @property
    def run_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def created_at(self) -> float: ...


_L = TypeVar("_L", bound=_Listed)


def select_runs(
    runs: Iterable[_L], status: RunStatus | None, name: str | None, limit: int
) -> list[_L]:
    """`list_runs` over runs held in memory: those with `status` and `name` (when given),
    newest first (by creation, then run id, both descending), at most `limit`."""
    picked = [
        r
        for r in runs
        if (status is None or r.status is status) and (name is None or r.name == name)
    ]
    picked.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    return picked[: max(limit, 0)]


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


def check_age(older_than_seconds: float) -> float:
    """`expire`'s age: a number of seconds >= 0 (a negative age would delete runs that just
    finished)."""
    if isinstance(older_than_seconds, bool) or not isinstance(older_than_seconds, (int, float)):
        raise TypeError(f"older_than_seconds must be a number, got {older_than_seconds!r}")
    if not older_than_seconds >= 0:
        raise ValueError(f"older_than_seconds must be >= 0, got {older_than_seconds!r}")
    return float(older_than_seconds)
