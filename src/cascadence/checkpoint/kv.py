"""`KeyValueCheckpointStore`: a full checkpoint store over any key-value store with a
compare-and-set.

Subclass it and implement four coroutines; every lease rule of `CheckpointStore` then holds as
in the built-in stores:

- `read(key)` returns the value (None when the key is absent) and an opaque *version* token;
- `write(key, value, *, version=...)` stores the value only if the key is still at `version`
  (the token `read` returned, also for an absent key) and returns False otherwise;
- `remove(key, *, version=...)` deletes the key under the same rule;
- `keys()` lists every key the store wrote (read by `list_runs` and `expire`).

Each run is one document under the key `run:{run_id}`: its fields, metadata, result, state and
finished steps, written with `cascadence.checkpoint.serde` as the durable stores write them.
Every operation reads the document, decides with the shared lease rules of
`cascadence.checkpoint.base`, and writes it back with the compare-and-set; when another writer
changed the document in between, the write is refused and the operation starts again from a
fresh read. So two processes acquiring one run cannot both win, and an owner whose expired
lease was just taken over cannot write any more.

Every step saved rewrites the whole document, which suits runs of tens or hundreds of steps
(a flow checkpoints once per top-level step).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Callable, Iterable
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
    make_record,
    select_runs,
)
from cascadence.errors import CheckpointError
from cascadence.runtime.clock import Clock

__all__ = ["KeyValueCheckpointStore"]

_PREFIX = "run:"
_FORMAT = 1
_ABSTRACT = ("read", "write", "remove", "keys")

Doc = dict[str, Any]
"""A run as stored: its fields, with serialized values kept as text (see `_new_doc`)."""


def _new_doc(
    run_id: str, kind: str, name: str, owner: str, lease: float, now: float, meta: str
) -> Doc:
    return {
        "format": _FORMAT, "run_id": run_id, "kind": kind, "name": name, "status": "running",
        "owner": owner, "lease": lease, "created": now, "updated": now, "next": 0,
        "result": None, "error": None, "meta": meta, "state": None, "steps": {},
    }  # fmt: skip


def _text(value: Any, root: str) -> str:
    return serde.dumps(value, root=root).decode()


def _lease_row(doc: Doc | None) -> tuple[str, str | None, float | None] | None:
    return None if doc is None else (doc["status"], doc["owner"], doc["lease"])


def _record(doc: Doc, with_steps: bool = True) -> RunRecord:
    return make_record(
        (doc["run_id"], doc["kind"], doc["name"], doc["status"], doc["owner"], doc["lease"],
         doc["created"], doc["updated"], doc["result"], doc["error"], doc["meta"], doc["state"]),
        _steps(doc) if with_steps else None,
    )  # fmt: skip


def _steps(doc: Doc) -> list[StepRecord]:
    rid, loads = doc["run_id"], serde.loads
    steps = [StepRecord(rid, k, i, loads(p), at) for k, (i, at, p) in doc["steps"].items()]
    steps.sort(key=lambda s: s.index)
    return steps


class KeyValueCheckpointStore(BaseCheckpointStore):
    """A checkpoint store over a key-value store with a compare-and-set; subclass it.

    Implement `read`, `write`, `remove` and `keys` (all coroutines) and, when the backend
    holds connections, `close`. Everything else, leases included, is done here. Keys look like
    `run:{run_id}`; add a prefix of your own inside the four methods to share a database.

    A version token is anything `write` can compare, as long as a key never returns to a
    token it had before a `remove` (else a stale write could get through): a random token per
    write, a global counter, etcd's `mod_revision`, or the stored value itself (equal bytes
    are an equal run). With Redis, `read` is a `GET` returning the value as its own version,
    and `write` a Lua script that `SET`s only while `GET` still returns that version
    (`SET NX` when it was absent). With SQL, over a table
    `kv(key TEXT PRIMARY KEY, value BYTEA, version TEXT)` (asyncpg shown):

    ```python
    class SqlStore(KeyValueCheckpointStore):
        async def read(self, key):
            row = await db.fetchrow("SELECT value, version FROM kv WHERE key = $1", key)
            return (None, None) if row is None else (row["value"], row["version"])

        async def write(self, key, value, *, version):
            new = uuid.uuid4().hex
            if version is None:  # absent when read: create it unless someone else did
                done = await db.execute(
                    "INSERT INTO kv VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", key, value, new)
            else:
                done = await db.execute(
                    "UPDATE kv SET value = $2, version = $3 WHERE key = $1 AND version = $4",
                    key, value, new, version)
            return done.endswith(" 1")  # one row written

        async def remove(self, key, *, version):
            done = await db.execute("DELETE FROM kv WHERE key = $1 AND version = $2", key, version)
            return done.endswith(" 1")

        async def keys(self):
            return [r["key"] for r in await db.fetch("SELECT key FROM kv")]
    ```

    With etcd, `read` returns the value and `mod_revision` (0 when absent) and `write` is a
    transaction that compares `mod_revision` before its put.

    Args:
        clock: Source of wall-clock time for leases and timestamps (the system clock by default).
        max_attempts: How many times one operation reads and tries its write before giving
            up with `CheckpointError` (each refused write means another writer got through).
    """

    def __init__(self, clock: Clock | None = None, *, max_attempts: int = 1000) -> None:
        super().__init__(clock)
        if not max_attempts >= 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts!r}")
        self.max_attempts = max_attempts

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in _ABSTRACT:
            found = getattr(cls, method, None)
            if found is not None and not inspect.iscoroutinefunction(found):
                raise TypeError(
                    f"{cls.__qualname__}.{method} must be a coroutine function (async def)"
                )

    # ------------------------------------------------------------------ the key-value store

    @abc.abstractmethod
    async def read(self, key: str) -> tuple[bytes | None, object]:
        """Return the value under `key` (None if absent) and its version token.

        The token of an absent key must still let `write` create the key only if nobody else
        created it since (e.g. version 0, or None).
        """

    @abc.abstractmethod
    async def write(self, key: str, value: bytes, *, version: object) -> bool:
        """Store `value` under `key` only if the key is still at `version`; else return False."""

    @abc.abstractmethod
    async def remove(self, key: str, *, version: object) -> bool:
        """Delete `key` only if it is still at `version`; else return False."""

    @abc.abstractmethod
    async def keys(self) -> list[str]:
        """Return every key this store wrote (and did not remove)."""

    # ------------------------------------------------------------------ plumbing

    async def _get(self, run_id: str) -> tuple[Doc | None, object]:
        value, version = await self.read(_PREFIX + run_id)
        return (None if value is None else serde.loads(value)), version

    async def _change(self, run_id: str, change: Callable[[Doc | None], Doc | None]) -> Doc | None:
        """Read the run, let `change` edit it (None: leave it as it is), write it back with
        the compare-and-set; start again on a conflict. Return the run as written (or read)."""
        key = _PREFIX + run_id
        for _ in range(self.max_attempts):
            doc, version = await self._get(run_id)
            changed = change(doc)
            if changed is None:
                return doc
            if await self.write(key, serde.dumps(changed), version=version):
                return changed
            await asyncio.sleep(0)  # let the writer that got through go on
        raise CheckpointError(
            f"run {run_id!r} changed concurrently on each of {self.max_attempts} attempts"
        )

    async def _write(
        self, run_id: str, owner: str, action: str, edit: Callable[[Doc, float], None]
    ) -> None:
        """Apply `edit` to a run `owner` may write to (see `check_writable`)."""

        def change(doc: Doc | None) -> Doc:
            check_writable_row(run_id, _lease_row(doc), owner, action)
            assert doc is not None
            now = self.clock.time()
            edit(doc, now)
            doc["updated"] = now
            return doc

        await self._change(run_id, change)

    # ------------------------------------------------------------------ writes

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
        meta_text = None if meta is None else _text(meta, "meta")

        def change(doc: Doc | None) -> Doc | None:
            now = self.clock.time()
            if doc is None:
                return _new_doc(run_id, kind, name, owner, now + lease_seconds, now,
                                meta_text or "{}")  # fmt: skip
            if not decide_acquire(
                run_id, status=RunStatus(doc["status"]), current_owner=doc["owner"],
                lease_expires_at=doc["lease"], stored_kind=doc["kind"], stored_name=doc["name"],
                owner=owner, kind=kind, name=name, now=now,
            ):  # fmt: skip
                return None
            doc.update(status="running", owner=owner, lease=now + lease_seconds, updated=now,
                       error=None)  # fmt: skip
            if meta_text is not None:
                doc["meta"] = meta_text
            return doc

        doc = await self._change(run_id, change)
        assert doc is not None
        return _record(doc)

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend the lease (see `CheckpointStore.renew`)."""
        check_lease(lease_seconds)

        def edit(doc: Doc, now: float) -> None:
            doc["lease"] = now + lease_seconds

        await self._write(run_id, owner, "renew the lease", edit)

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append a finished step (see `CheckpointStore.save_step`)."""
        check_key(key)
        data = _text(payload, "$")

        def edit(doc: Doc, now: float) -> None:
            steps = doc["steps"]
            steps.pop(key, None)
            steps[key] = [doc["next"], now, data]
            doc["next"] += 1

        await self._write(run_id, owner, f"save step {key!r}", edit)

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Replace the state snapshot (see `CheckpointStore.save_state`)."""
        data = _text(state, "state")
        await self._write(run_id, owner, "save state", lambda doc, _: doc.update(state=data))

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Finish the run successfully (see `CheckpointStore.complete`)."""
        data = _text(result, "result")

        def edit(doc: Doc, _: float) -> None:
            doc.update(status="completed", result=data, owner=None, lease=None)

        await self._write(run_id, owner, "complete the run", edit)

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Finish the run with an error (see `CheckpointStore.fail`)."""

        def edit(doc: Doc, _: float) -> None:
            doc.update(status="failed", error=str(error), owner=None, lease=None)

        await self._write(run_id, owner, "fail the run", edit)

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up the lease (see `CheckpointStore.release`)."""

        def change(doc: Doc | None) -> Doc | None:
            if doc is None or doc["owner"] != owner or doc["status"] != "running":
                return None
            doc.update(owner=None, lease=None, updated=self.clock.time())
            return doc

        await self._change(run_id, change)

    async def delete(self, run_id: str) -> bool:
        """Delete a run; return whether it existed."""
        for _ in range(self.max_attempts):
            value, version = await self.read(_PREFIX + run_id)
            if value is None:
                return False
            if await self.remove(_PREFIX + run_id, version=version):
                return True
            await asyncio.sleep(0)
        raise CheckpointError(
            f"run {run_id!r} changed concurrently on each of {self.max_attempts} attempts"
        )

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete finished runs not updated for `older_than_seconds`."""
        older_than_seconds = check_age(older_than_seconds)
        wanted = frozenset(RunStatus(s).value for s in statuses)
        cutoff = self.clock.time() - older_than_seconds
        count = 0
        for run_id in await self._run_ids():
            for _ in range(self.max_attempts):
                value, version = await self.read(_PREFIX + run_id)
                if value is None:
                    break
                doc = serde.loads(value)
                if doc["status"] not in wanted or not doc["updated"] < cutoff:
                    break
                if await self.remove(_PREFIX + run_id, version=version):
                    count += 1
                    break
                await asyncio.sleep(0)  # changed meanwhile: look again
        return count

    # ------------------------------------------------------------------ reads

    async def _run_ids(self) -> list[str]:
        return [k[len(_PREFIX) :] for k in await self.keys() if k.startswith(_PREFIX)]

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None."""
        doc, _ = await self._get(run_id)
        return None if doc is None else _record(doc)

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps ordered by index."""
        doc, _ = await self._get(run_id)
        return [] if doc is None else _steps(doc)

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs without steps, newest first (reads every run: fine for thousands)."""
        runs = []
        for run_id in await self._run_ids():
            doc, _ = await self._get(run_id)
            if doc is not None:  # deleted since `keys`
                runs.append(_record(doc, with_steps=False))
        return select_runs(runs, status, name, limit)
