"""`SQLiteCheckpointStore`: the embedded default, one file shared safely by many processes.

The standard library's `sqlite3` runs on one dedicated worker thread per store, so the event
loop never blocks on disk and the connection is only ever touched by that thread. The database
uses WAL journaling (readers do not block the writer) and a busy timeout. Every write is one
`BEGIN IMMEDIATE` transaction, which takes SQLite's write lock up front: two processes acquiring
the same run serialize on it, and exactly one of them wins.

With `synchronous="NORMAL"` (the default) a committed checkpoint survives the process being
killed; pass `synchronous="FULL"` to also survive power loss, at the cost of an fsync per write.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

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
    decide_acquire,
    make_record,
    refuse_write,
)
from cascadence.errors import CheckpointError
from cascadence.runtime.clock import Clock

__all__ = ["SQLiteCheckpointStore"]

T = TypeVar("T")

_RUN_COLUMNS = (
    "run_id, kind, name, status, owner, lease_expires_at, created_at, updated_at, "
    "result, error, meta, state"
)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLiteCheckpointStore(BaseCheckpointStore):
    """Checkpoints in a SQLite file (created with its tables on first use).

    Args:
        path: The database file; `":memory:"` keeps it in this store only.
        clock: Source of wall-clock time for leases and timestamps.
        timeout: Seconds to wait for another process's write lock before failing.
        synchronous: SQLite's `synchronous` pragma: `"NORMAL"` (crash-safe) or `"FULL"`
            (also power-loss-safe).
        table_prefix: Prefix of the two table names (`{prefix}runs`, `{prefix}steps`).
    """

    def __init__(
        self,
        path: str | Path = "cascadence.db",
        *,
        clock: Clock | None = None,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        table_prefix: str = "cascadence_",
    ) -> None:
        super().__init__(clock)
        sync = synchronous.upper()
        if sync not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        if not table_prefix.replace("_", "").isalnum():
            raise ValueError(f"table_prefix must be letters, digits and '_', got {table_prefix!r}")
        self.path = str(path)
        self._timeout = timeout
        self._synchronous = sync
        self._runs = f"{table_prefix}runs"
        self._steps = f"{table_prefix}steps"
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteCheckpointStore({self.path!r})"

    # ------------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise CheckpointError(f"{self!r} is closed")
        executor = self._executor
        if executor is None:
            executor = self._executor = ThreadPoolExecutor(1, "cascadence-sqlite")
        return await asyncio.get_running_loop().run_in_executor(executor, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(self._connection(), *args)
        except sqlite3.Error as exc:
            raise CheckpointError(f"SQLite checkpoint store {self.path!r} failed: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            # one worker thread uses the connection; `check_same_thread=False` only lets a store
            # that was never closed have it closed when the store is garbage collected
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            weakref.finalize(self, conn.close)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            with _immediate(conn):
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._runs} ("
                    "run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, "
                    "status TEXT NOT NULL, owner TEXT, lease_expires_at REAL, "
                    "created_at REAL NOT NULL, updated_at REAL NOT NULL, "
                    "next_index INTEGER NOT NULL DEFAULT 0, result BLOB, error TEXT, "
                    "meta BLOB NOT NULL, state BLOB)"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._steps} ("
                    "run_id TEXT NOT NULL, key TEXT NOT NULL, idx INTEGER NOT NULL, "
                    "payload BLOB NOT NULL, created_at REAL NOT NULL, "
                    "PRIMARY KEY (run_id, key))"
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {self._runs}_created ON {self._runs} (created_at)"
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {self._runs}_finished "
                    f"ON {self._runs} (status, updated_at)"
                )
            self._conn = conn
        return conn

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._closed:
            return
        self._closed = True
        executor = self._executor
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
            executor.shutdown(wait=False)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_steps(self, conn: sqlite3.Connection, run_id: str) -> list[StepRecord]:
        rows = conn.execute(
            f"SELECT key, idx, payload, created_at FROM {self._steps} "
            "WHERE run_id = ? ORDER BY idx",
            (run_id,),
        ).fetchall()
        loads = serde.loads
        return [StepRecord(run_id, k, i, loads(p), at) for k, i, p, at in rows]

    def _load_record(self, conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM {self._runs} WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else make_record(row, self._load_steps(conn, run_id))

    def _check_writable(
        self, conn: sqlite3.Connection, run_id: str, owner: str, action: str
    ) -> NoReturn:
        """Explain why a guarded UPDATE matched no row."""
        row = conn.execute(
            f"SELECT status, owner, lease_expires_at FROM {self._runs} WHERE run_id = ?", (run_id,)
        ).fetchone()
        refuse_write(run_id, row, owner, action)

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
        meta_bytes = None if meta is None else serde.dumps(meta, root="meta")
        return await self._run(self._acquire, run_id, owner, lease_seconds, kind, name, meta_bytes)

    def _acquire(
        self, conn: sqlite3.Connection, run_id: str, owner: str, lease: float, kind: str,
        name: str, meta: bytes | None,
    ) -> RunRecord:  # fmt: skip
        with _immediate(conn):
            now = self.clock.time()
            row = conn.execute(
                f"SELECT status, owner, lease_expires_at, kind, name FROM {self._runs} "
                "WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO {self._runs} (run_id, kind, name, status, owner, "
                    "lease_expires_at, created_at, updated_at, meta) VALUES (?,?,?,?,?,?,?,?,?)",
                    (run_id, kind, name, "running", owner, now + lease, now, now, meta or b"{}"),
                )
            elif decide_acquire(
                run_id, status=RunStatus(row[0]), current_owner=row[1], lease_expires_at=row[2],
                stored_kind=row[3], stored_name=row[4], owner=owner, kind=kind, name=name, now=now,
            ):  # fmt: skip
                conn.execute(
                    f"UPDATE {self._runs} SET status = 'running', owner = ?, lease_expires_at = ?, "
                    "updated_at = ?, error = NULL, meta = coalesce(?, meta) WHERE run_id = ?",
                    (owner, now + lease, now, meta, run_id),
                )
            record = self._load_record(conn, run_id)
        assert record is not None
        return record

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend the lease (see `CheckpointStore.renew`)."""
        check_lease(lease_seconds)
        await self._run(self._renew, run_id, owner, lease_seconds)

    def _renew(self, conn: sqlite3.Connection, run_id: str, owner: str, lease: float) -> None:
        now = self.clock.time()
        cur = conn.execute(
            f"UPDATE {self._runs} SET lease_expires_at = ?, updated_at = ? "
            "WHERE run_id = ? AND owner = ? AND status = 'running'",
            (now + lease, now, run_id, owner),
        )
        if cur.rowcount == 0:
            self._check_writable(conn, run_id, owner, "renew the lease")

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append a finished step (see `CheckpointStore.save_step`)."""
        check_key(key)
        data = serde.dumps(payload)
        await self._run(self._save_step, run_id, key, data, owner)

    def _save_step(
        self, conn: sqlite3.Connection, run_id: str, key: str, data: bytes, owner: str
    ) -> None:
        with _immediate(conn):
            now = self.clock.time()
            row = conn.execute(
                f"UPDATE {self._runs} SET next_index = next_index + 1, updated_at = ? "
                "WHERE run_id = ? AND owner = ? AND status = 'running' RETURNING next_index - 1",
                (now, run_id, owner),
            ).fetchone()
            if row is None:
                self._check_writable(conn, run_id, owner, f"save step {key!r}")
            conn.execute(
                f"INSERT OR REPLACE INTO {self._steps} (run_id, key, idx, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, key, row[0], data, now),
            )

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Replace the state snapshot (see `CheckpointStore.save_state`)."""
        data = serde.dumps(state, root="state")
        await self._run(self._update, run_id, owner, "save state", "state = ?", (data,))

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Finish the run successfully (see `CheckpointStore.complete`)."""
        data = serde.dumps(result, root="result")
        await self._run(
            self._update, run_id, owner, "complete the run",
            "status = 'completed', result = ?, owner = NULL, lease_expires_at = NULL", (data,),
        )  # fmt: skip

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Finish the run with an error (see `CheckpointStore.fail`)."""
        await self._run(
            self._update, run_id, owner, "fail the run",
            "status = 'failed', error = ?, owner = NULL, lease_expires_at = NULL", (str(error),),
        )  # fmt: skip

    def _update(
        self, conn: sqlite3.Connection, run_id: str, owner: str, action: str, assignments: str,
        params: tuple[Any, ...],
    ) -> None:  # fmt: skip
        cur = conn.execute(
            f"UPDATE {self._runs} SET {assignments}, updated_at = ? "
            "WHERE run_id = ? AND owner = ? AND status = 'running'",
            (*params, self.clock.time(), run_id, owner),
        )
        if cur.rowcount == 0:
            self._check_writable(conn, run_id, owner, action)

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up the lease (see `CheckpointStore.release`)."""
        await self._run(self._release, run_id, owner)

    def _release(self, conn: sqlite3.Connection, run_id: str, owner: str) -> None:
        conn.execute(
            f"UPDATE {self._runs} SET owner = NULL, lease_expires_at = NULL, updated_at = ? "
            "WHERE run_id = ? AND owner = ? AND status = 'running'",
            (self.clock.time(), run_id, owner),
        )

    # ------------------------------------------------------------------ reads

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None."""
        return await self._run(self._load, run_id)

    def _load(self, conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
        with _deferred(conn):
            return self._load_record(conn, run_id)

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs without steps, newest first."""
        return await self._run(self._list, status, name, limit)

    def _list(
        self, conn: sqlite3.Connection, status: RunStatus | None, name: str | None, limit: int
    ) -> list[RunRecord]:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(RunStatus(status).value)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        sql = f"SELECT {_RUN_COLUMNS} FROM {self._runs}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT ?"
        rows = conn.execute(sql, (*params, max(limit, 0))).fetchall()
        return [make_record(row) for row in rows]

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps ordered by index."""
        return await self._run(self._load_steps, run_id)

    async def delete(self, run_id: str) -> bool:
        """Delete a run; return whether it existed."""
        return await self._run(self._delete, run_id)

    def _delete(self, conn: sqlite3.Connection, run_id: str) -> bool:
        with _immediate(conn):
            conn.execute(f"DELETE FROM {self._steps} WHERE run_id = ?", (run_id,))
            return (
                conn.execute(f"DELETE FROM {self._runs} WHERE run_id = ?", (run_id,)).rowcount > 0
            )

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete finished runs not updated for `older_than_seconds`."""
        older_than_seconds = check_age(older_than_seconds)
        wanted = sorted({RunStatus(s).value for s in statuses})
        return await self._run(self._expire, older_than_seconds, wanted)

    def _expire(self, conn: sqlite3.Connection, older_than: float, statuses: list[str]) -> int:
        if not statuses:
            return 0
        marks = ",".join("?" * len(statuses))
        with _immediate(conn):
            cutoff = self.clock.time() - older_than
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT run_id FROM {self._runs} WHERE status IN ({marks}) AND updated_at < ?",
                    (*statuses, cutoff),
                )
            ]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                qs = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM {self._steps} WHERE run_id IN ({qs})", chunk)
                conn.execute(f"DELETE FROM {self._runs} WHERE run_id IN ({qs})", chunk)
            return len(ids)


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that holds SQLite's write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def _deferred(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction, so a run and its steps come from the same snapshot."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")
