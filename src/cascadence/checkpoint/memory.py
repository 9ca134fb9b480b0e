"""`InMemoryCheckpointStore`: checkpoints in a dict, for tests and single-process use.

Values are deep-copied on save and again on load, so loaded values never alias the caller's
objects or each other, and any score that can be copied is accepted (a class defined inside a
function, a field holding an application object). With `serialize=True`, values go through
the durable stores' serialization instead, so a value that would fail to checkpoint in
production fails here too. Every method runs without awaiting in between, which makes each one
atomic on its event loop.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cascadence.checkpoint import serde
from cascadence.checkpoint.base import (
    FINISHED,
    BaseCheckpointStore,
    RunRecord,
    RunStatus,
    StepRecord,
    check_acquire_args,
    check_age,
    check_key,
    check_lease,
    check_writable_row,
    decide_acquire,
    select_runs,
)
from cascadence.runtime.clock import Clock

__all__ = ["InMemoryCheckpointStore"]


class _Copy:
    """A value kept as a private deep copy (handed out as a fresh copy on every load)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_Stored = bytes | _Copy


def _load(stored: _Stored) -> Any:
    if type(stored) is _Copy:
        return copy.deepcopy(stored.value)
    return serde.loads(stored)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Run:
    run_id: str
    kind: str
    name: str
    status: RunStatus
    owner: str | None
    lease_expires_at: float | None
    created_at: float
    updated_at: float
    meta: _Stored
    next_index: int = 0
    result: _Stored | None = None
    error: str | None = None
    state: _Stored | None = None
    steps: dict[str, tuple[int, _Stored, float]] = field(default_factory=dict)

    def record(self, with_steps: bool = True) -> RunRecord:
        steps: list[StepRecord] = []
        if with_steps:
            rid = self.run_id
            steps = [
                StepRecord(rid, key, idx, _load(payload), at)
                for key, (idx, payload, at) in sorted(self.steps.items(), key=lambda kv: kv[1][0])
            ]
        return RunRecord(
            run_id=self.run_id,
            kind=self.kind,
            name=self.name,
            status=self.status,
            owner=self.owner,
            lease_expires_at=self.lease_expires_at,
            created_at=self.created_at,
            updated_at=self.updated_at,
            steps=steps,
            result=None if self.result is None else _load(self.result),
            error=self.error,
            meta=_load(self.meta),
            state=None if self.state is None else _load(self.state),
        )


class InMemoryCheckpointStore(BaseCheckpointStore):
    """Keeps runs in process memory; nothing survives the process.

    Args:
        clock: Source of wall-clock time for leases and timestamps (the system clock by default).
        serialize: Store values as the durable stores do (tagged JSON), so that a value those
            stores would refuse is refused here too; by default values are deep-copied.
    """

    def __init__(self, clock: Clock | None = None, *, serialize: bool = False) -> None:
        super().__init__(clock)
        self._runs: dict[str, _Run] = {}
        self.serialize = serialize

    def _store(self, value: Any, root: str = "$") -> _Stored:
        """Keep a value: serialized, or as a deep copy. A value that cannot be copied is
        serialized instead; when that fails too, the error names where the value sits."""
        if not self.serialize:
            try:
                return _Copy(copy.deepcopy(value))
            except Exception as exc:  # serialized instead, if it can be
                try:
                    return serde.dumps(value, root=root)
                except serde.SerializationError:
                    # the value that cannot be copied is the one to name, not the first one
                    # the serializer cannot write (a plain class that copies fine)
                    path, culprit, error = _uncopiable(value, root, exc)
                    raise serde.SerializationError(
                        path,
                        f"{type(culprit).__module__}.{type(culprit).__qualname__}",
                        f"cannot checkpoint a value of type {type(culprit).__qualname__}: it "
                        f"can be neither copied ({type(error).__name__}: {error}) nor "
                        "serialized; keep it "
                        "out of the checkpointed value (a client or a lock belongs outside "
                        "the score) or register it with cascadence.checkpoint.serde",
                    ) from None
        return serde.dumps(value, root=root)

    def __repr__(self) -> str:
        return f"InMemoryCheckpointStore(runs={len(self._runs)})"

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
        """Create or take over a run (see `CheckpointStore.acquire`)."""
        check_acquire_args(run_id, owner, lease_seconds, kind, name)
        meta_bytes = None if meta is None else self._store(meta, root="meta")
        now = self.clock.time()
        run = self._runs.get(run_id)
        if run is None:
            run = _Run(run_id, kind, name, RunStatus.RUNNING, owner, now + lease_seconds,
                       now, now, meta_bytes or b"{}")  # fmt: skip
            self._runs[run_id] = run
            return run.record()
        if not decide_acquire(
            run_id, status=run.status, current_owner=run.owner,
            lease_expires_at=run.lease_expires_at, stored_kind=run.kind, stored_name=run.name,
            owner=owner, kind=kind, name=name, now=now,
        ):  # fmt: skip
            return run.record()
        run.status = RunStatus.RUNNING
        run.owner = owner
        run.lease_expires_at = now + lease_seconds
        run.updated_at = now
        run.error = None
        if meta_bytes is not None:
            run.meta = meta_bytes
        return run.record()

    def _writable(self, run_id: str, owner: str, action: str) -> _Run:
        run = self._runs.get(run_id)
        row = None if run is None else (run.status, run.owner, run.lease_expires_at)
        check_writable_row(run_id, row, owner, action)
        assert run is not None
        return run

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend the lease (see `CheckpointStore.renew`)."""
        check_lease(lease_seconds)
        run = self._writable(run_id, owner, "renew the lease")
        now = self.clock.time()
        run.lease_expires_at = now + lease_seconds
        run.updated_at = now

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append a finished step (see `CheckpointStore.save_step`)."""
        check_key(key)
        data = self._store(payload)
        run = self._writable(run_id, owner, f"save step {key!r}")
        now = self.clock.time()
        run.steps.pop(key, None)
        run.steps[key] = (run.next_index, data, now)
        run.next_index += 1
        run.updated_at = now

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Replace the state snapshot (see `CheckpointStore.save_state`)."""
        data = self._store(state, root="state")
        run = self._writable(run_id, owner, "save state")
        run.state = data
        run.updated_at = self.clock.time()

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Finish the run successfully (see `CheckpointStore.complete`)."""
        data = self._store(result, root="result")
        run = self._writable(run_id, owner, "complete the run")
        run.status = RunStatus.COMPLETED
        run.result = data
        self._finish(run)

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Finish the run with an error (see `CheckpointStore.fail`)."""
        run = self._writable(run_id, owner, "fail the run")
        run.status = RunStatus.FAILED
        run.error = str(error)
        self._finish(run)

    def _finish(self, run: _Run) -> None:
        run.owner = None
        run.lease_expires_at = None
        run.updated_at = self.clock.time()

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up the lease (see `CheckpointStore.release`)."""
        run = self._runs.get(run_id)
        if run is not None and run.owner == owner and run.status is RunStatus.RUNNING:
            self._finish(run)

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None."""
        run = self._runs.get(run_id)
        return None if run is None else run.record()

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs without steps, newest first."""
        runs = select_runs(self._runs.values(), status, name, limit)
        return [r.record(with_steps=False) for r in runs]

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps ordered by index."""
        run = self._runs.get(run_id)
        return [] if run is None else run.record().steps

    async def delete(self, run_id: str) -> bool:
        """Delete a run; return whether it existed."""
        return self._runs.pop(run_id, None) is not None

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete finished runs not updated for `older_than_seconds`."""
        older_than_seconds = check_age(older_than_seconds)
        cutoff = self.clock.time() - older_than_seconds
        wanted = frozenset(RunStatus(s) for s in statuses)
        doomed = [
            rid for rid, r in self._runs.items() if r.status in wanted and r.updated_at < cutoff
        ]
        for rid in doomed:
            del self._runs[rid]
        return len(doomed)


def _uncopiable(value: Any, path: str, error: Exception) -> tuple[str, Any, Exception]:
    """The innermost part of `value` that `copy.deepcopy` refuses: its path, itself and the
    error; `value` itself when no part of it is to blame."""
    seen = {id(value)}  # a part reached again (a back-reference) is not searched again
    while True:
        if isinstance(value, dict):
            parts: Any = (
                (f"{path}.{k}" if isinstance(k, str) and k.isidentifier() else f"{path}[{k!r}]", v)
                for k, v in value.items()
            )
        elif isinstance(value, (list, tuple)):
            parts = ((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            parts = ((f"{path}.{k}", v) for k, v in vars(value).items())
        else:
            return path, value, error
        for where, part in parts:
            if id(part) in seen:
                continue
            try:
                copy.deepcopy(part)
            except Exception as exc:
                seen.add(id(part))
                value, path, error = part, where, exc
                break
        else:
            return path, value, error
