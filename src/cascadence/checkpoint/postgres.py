"""`PostgresCheckpointStore`: checkpoints in PostgreSQL, for many replicas sharing state.

Each operation is a single SQL statement on a pooled `asyncpg` connection, so it is atomic on
its own and costs one round trip:

- `acquire` is `INSERT ... ON CONFLICT (run_id) DO UPDATE ... WHERE <lease rules>`: the row
  lock taken by the upsert makes concurrent acquires from any number of processes serialize,
  and exactly one of them gets the row back. When none does, a plain read explains why.
- `save_step` bumps the run's step counter with an `UPDATE ... WHERE owner = $owner` and
  inserts the step in the same statement, so a reader sees the step whole or not at all.

Tables (`{prefix}runs`, `{prefix}steps`) are created in `schema` on first use, under an advisory
lock so that several processes starting together do not race. Requires `asyncpg`
(`pip install cascadence[postgres]`), imported on first use.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

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
    lease_held_by_other,
    make_record,
    refuse_write,
)
from cascadence.errors import CheckpointError, RunLockedError
from cascadence.runtime.clock import Clock

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresCheckpointStore"]

T = TypeVar("T")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COLUMNS = (
    "r.run_id, r.kind, r.name, r.status, r.owner, r.lease_expires_at, r.created_at, "
    "r.updated_at, r.result, r.error, r.meta, r.state"
)


def _steps(run_id: str, row: Any) -> list[StepRecord]:
    keys = row["keys"]
    if not keys:
        return []
    loads = serde.loads
    return [
        StepRecord(run_id, k, i, loads(p), at)
        for k, i, p, at in zip(keys, row["idxs"], row["payloads"], row["ats"])
    ]


class PostgresCheckpointStore(BaseCheckpointStore):
    """Checkpoints in PostgreSQL.

    Args:
        dsn: A `postgresql://` (or `postgres://`) connection URL.
        schema: The schema holding the tables (created if missing).
        table_prefix: Prefix of the table names.
        clock: Source of wall-clock time for leases and timestamps.
        min_size: Smallest number of pooled connections.
        max_size: Largest number of pooled connections.
        **pool_options: Passed to `asyncpg.create_pool`.
    """

    def __init__(
        self,
        dsn: str = "postgresql://127.0.0.1:5432/test",
        *,
        schema: str = "public",
        table_prefix: str = "cascadence_",
        clock: Clock | None = None,
        min_size: int = 1,
        max_size: int = 10,
        **pool_options: Any,
    ) -> None:
        super().__init__(clock)
        for what, value in (("schema", schema), ("table_prefix", table_prefix)):
            if not _IDENT.match(value):
                raise ValueError(
                    f"{what} must be letters, digits and '_' (not starting with a digit), "
                    f"got {value!r}"
                )
        self.dsn = dsn
        self.schema = schema
        self._runs = f'"{schema}"."{table_prefix}runs"'
        self._steps = f'"{schema}"."{table_prefix}steps"'
        self._index_prefix = f"{table_prefix}"
        self._pool_options: dict[str, Any] = {
            "min_size": min_size, "max_size": max_size, **pool_options
        }  # fmt: skip
        self._pool: asyncpg.Pool | None = None
        self._setup_lock = asyncio.Lock()
        self._sql = self._statements()

    def __repr__(self) -> str:
        return f"PostgresCheckpointStore(schema={self.schema!r})"

    def _statements(self) -> dict[str, str]:
        runs, steps = self._runs, self._steps
        with_steps = (
            f"LEFT JOIN LATERAL (SELECT array_agg(s.key ORDER BY s.idx) AS keys, "
            "array_agg(s.idx ORDER BY s.idx) AS idxs, "
            "array_agg(s.payload ORDER BY s.idx) AS payloads, "
            f"array_agg(s.created_at ORDER BY s.idx) AS ats FROM {steps} s "
            "WHERE s.run_id = r.run_id) st ON true"
        )
        return {
            "acquire": (
                f"WITH r AS (INSERT INTO {runs} AS x (run_id, kind, name, status, owner, "
                "lease_expires_at, created_at, updated_at, meta) "
                "VALUES ($1, $2, $3, 'running', $4, $5, $6, $6, $7) "
                "ON CONFLICT (run_id) DO UPDATE SET status = 'running', owner = EXCLUDED.owner, "
                "lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at, "
                "error = NULL, meta = coalesce($8::bytea, x.meta) "
                "WHERE x.kind = EXCLUDED.kind AND x.name = EXCLUDED.name AND ("
                "x.status = 'failed' OR (x.status = 'running' AND (x.owner IS NULL "
                "OR x.owner = EXCLUDED.owner OR x.owner = $9::text OR x.lease_expires_at IS NULL "
                "OR x.lease_expires_at <= EXCLUDED.updated_at))) "
                "RETURNING x.*) "
                f"SELECT {_COLUMNS}, st.* FROM r {with_steps}"
            ),
            "load": f"SELECT {_COLUMNS}, st.* FROM {runs} r {with_steps} WHERE r.run_id = $1",
            "probe": f"SELECT status, owner, lease_expires_at FROM {runs} WHERE run_id = $1",
            "save_step": (
                f"WITH r AS (UPDATE {runs} SET next_index = next_index + 1, updated_at = $4 "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running' "
                "RETURNING next_index - 1 AS idx) "
                f"INSERT INTO {steps} (run_id, key, idx, payload, created_at) "
                "SELECT $1, $3, r.idx, $5, $4 FROM r "
                "ON CONFLICT (run_id, key) DO UPDATE SET idx = EXCLUDED.idx, "
                "payload = EXCLUDED.payload, created_at = EXCLUDED.created_at RETURNING idx"
            ),
            "renew": (
                f"UPDATE {runs} SET lease_expires_at = $3, updated_at = $4 "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running' RETURNING 1"
            ),
            "state": (
                f"UPDATE {runs} SET state = $3, updated_at = $4 "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running' RETURNING 1"
            ),
            "complete": (
                f"UPDATE {runs} SET status = 'completed', result = $3, updated_at = $4, "
                "owner = NULL, lease_expires_at = NULL "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running' RETURNING 1"
            ),
            "fail": (
                f"UPDATE {runs} SET status = 'failed', error = $3, updated_at = $4, "
                "owner = NULL, lease_expires_at = NULL "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running' RETURNING 1"
            ),
            "release": (
                f"UPDATE {runs} SET owner = NULL, lease_expires_at = NULL, updated_at = $3 "
                "WHERE run_id = $1 AND owner = $2 AND status = 'running'"
            ),
            "history": (
                f"SELECT key, idx, payload, created_at FROM {steps} WHERE run_id = $1 ORDER BY idx"
            ),
            "delete": f"DELETE FROM {runs} WHERE run_id = $1 RETURNING 1",
            "expire": (
                f"WITH d AS (DELETE FROM {runs} WHERE status = ANY($1::text[]) "
                "AND updated_at < $2 RETURNING 1) SELECT count(*) FROM d"
            ),
        }

    def _ddl(self) -> list[str]:
        runs, steps, ix = self._runs, self._steps, self._index_prefix
        return [
            f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"',
            f"CREATE TABLE IF NOT EXISTS {runs} (run_id text PRIMARY KEY, kind text NOT NULL, "
            "name text NOT NULL, status text NOT NULL, owner text, "
            "lease_expires_at double precision, created_at double precision NOT NULL, "
            "updated_at double precision NOT NULL, next_index bigint NOT NULL DEFAULT 0, "
            "result bytea, error text, meta bytea NOT NULL, state bytea)",
            f"CREATE TABLE IF NOT EXISTS {steps} (run_id text NOT NULL "
            f"REFERENCES {runs} (run_id) ON DELETE CASCADE, key text NOT NULL, "
            "idx bigint NOT NULL, payload bytea NOT NULL, "
            "created_at double precision NOT NULL, PRIMARY KEY (run_id, key))",
            f"CREATE INDEX IF NOT EXISTS {ix}runs_created ON {runs} (created_at DESC)",
            f"CREATE INDEX IF NOT EXISTS {ix}runs_finished ON {runs} (status, updated_at)",
        ]

    async def _get_pool(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is not None:
            return pool
        async with self._setup_lock:
            if self._pool is None:
                import asyncpg

                pool = await asyncpg.create_pool(self.dsn, **self._pool_options)
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute(
                            "SELECT pg_advisory_xact_lock(hashtext($1))",
                            f"cascadence-checkpoint:{self.schema}",
                        )
                        for statement in self._ddl():
                            await conn.execute(statement)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    async def _call(self, make: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        import asyncpg

        try:
            return await make(await self._get_pool())
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise CheckpointError(f"PostgreSQL checkpoint store failed: {exc}") from exc

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._call(lambda p: p.fetchrow(sql, *args))

    async def close(self) -> None:
        """Close the connection pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _explain(self, run_id: str, owner: str, action: str) -> None:
        sql = self._sql["probe"]
        row = await self._call(lambda p: p.fetchrow(sql, run_id))
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
        acquire_sql, load_sql = self._sql["acquire"], self._sql["load"]
        dead: str | None = None  # a dead holder whose unexpired lease the upsert may replace
        while True:
            now = self.clock.time()
            args = (run_id, kind, name, owner, now + lease_seconds, now, meta_bytes or b"{}",
                    meta_bytes, dead)  # fmt: skip
            row = await self._fetchrow(acquire_sql, *args)
            if row is not None:
                return make_record(tuple(row)[:12], _steps(run_id, row))
            row = await self._call(lambda p: p.fetchrow(load_sql, run_id))
            if row is None:
                continue  # deleted in between: try to create it again
            status = RunStatus(row["status"])
            holder, expires = row["owner"], row["lease_expires_at"]
            if not decide_acquire(
                run_id, status=status, current_owner=holder, lease_expires_at=expires,
                stored_kind=row["kind"], stored_name=row["name"], owner=owner, kind=kind,
                name=name, now=now,
            ):  # fmt: skip
                return make_record(tuple(row)[:12], _steps(run_id, row))
            # Either the lease ran out between the two statements, or its holder is a dead
            # process (decide_acquire checked): take the run over now, replacing only that
            # holder, so that a racer who took it first keeps it.
            held = lease_held_by_other(status, holder, expires, owner, now)
            if held and holder == dead:  # pragma: no cover - the upsert replaces a dead holder
                raise RunLockedError(run_id, holder, expires)
            dead = holder if held else None

    async def _update(self, op: str, run_id: str, owner: str, value: Any, action: str) -> None:
        sql = self._sql[op]
        now = self.clock.time()
        done = await self._call(lambda p: p.fetchval(sql, run_id, owner, value, now))
        if done is None:
            await self._explain(run_id, owner, action)

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend the lease (see `CheckpointStore.renew`)."""
        check_lease(lease_seconds)
        expires = self.clock.time() + lease_seconds
        await self._update("renew", run_id, owner, expires, "renew the lease")

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append a finished step (see `CheckpointStore.save_step`)."""
        check_key(key)
        data = serde.dumps(payload)
        sql = self._sql["save_step"]
        now = self.clock.time()
        idx = await self._call(lambda p: p.fetchval(sql, run_id, owner, key, now, data))
        if idx is None:
            await self._explain(run_id, owner, f"save step {key!r}")

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Replace the state snapshot (see `CheckpointStore.save_state`)."""
        data = serde.dumps(state, root="state")
        await self._update("state", run_id, owner, data, "save state")

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Finish the run successfully (see `CheckpointStore.complete`)."""
        data = serde.dumps(result, root="result")
        await self._update("complete", run_id, owner, data, "complete the run")

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Finish the run with an error (see `CheckpointStore.fail`)."""
        await self._update("fail", run_id, owner, str(error), "fail the run")

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up the lease (see `CheckpointStore.release`)."""
        sql = self._sql["release"]
        now = self.clock.time()
        await self._call(lambda p: p.execute(sql, run_id, owner, now))

    # ------------------------------------------------------------------ reads

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None."""
        sql = self._sql["load"]
        row = await self._call(lambda p: p.fetchrow(sql, run_id))
        return None if row is None else make_record(tuple(row)[:12], _steps(run_id, row))

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs without steps, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            params.append(RunStatus(status).value)
            where.append(f"r.status = ${len(params)}")
        if name is not None:
            params.append(name)
            where.append(f"r.name = ${len(params)}")
        params.append(max(limit, 0))
        sql = f"SELECT {_COLUMNS} FROM {self._runs} r"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY r.created_at DESC, r.run_id DESC LIMIT ${len(params)}"
        rows = await self._call(lambda p: p.fetch(sql, *params))
        return [make_record(tuple(row)) for row in rows]

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps ordered by index."""
        sql = self._sql["history"]
        rows = await self._call(lambda p: p.fetch(sql, run_id))
        loads = serde.loads
        return [StepRecord(run_id, k, i, loads(b), at) for k, i, b, at in rows]

    async def delete(self, run_id: str) -> bool:
        """Delete a run and its steps; return whether it existed."""
        sql = self._sql["delete"]
        return await self._call(lambda p: p.fetchval(sql, run_id)) is not None

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete finished runs not updated for `older_than_seconds`."""
        older_than_seconds = check_age(older_than_seconds)
        wanted = sorted({RunStatus(s).value for s in statuses})
        sql = self._sql["expire"]
        cutoff = self.clock.time() - older_than_seconds
        return int(await self._call(lambda p: p.fetchval(sql, wanted, cutoff)))
