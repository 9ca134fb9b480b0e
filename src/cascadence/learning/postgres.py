"""`PostgresProposalStore`: the review queue in PostgreSQL, shared by several replicas.

The proposal API is synchronous (a reviewer's `approve` is one call), while asyncpg is
async-only; the store therefore owns one connection living on a private event loop in a daemon
thread, and each call runs there and waits for its answer. This works the same from plain code
and from inside a running event loop (the call blocks its caller, as any synchronous call does).
`close()` closes the connection and ends the thread; so does garbage collection, for a store
that was never closed.

Requires asyncpg (`pip install cascadence[postgres]`), imported on first use.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from cascadence.learning.models import Proposal, ProposalExistsError, ProposalStatus, ShadowStats
from cascadence.learning.store import proposal_row, row_to_proposal, transition_row

__all__ = ["PostgresProposalStore"]

T = TypeVar("T")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}proposals (
    proposal_id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    reviewer TEXT,
    rule TEXT NOT NULL,
    roi TEXT,
    shadow TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}proposals_status ON {p}proposals (status);
CREATE TABLE IF NOT EXISTS {p}transitions (
    proposal_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    reason TEXT,
    PRIMARY KEY (proposal_id, seq)
);
"""
_COLUMNS = "proposal_id, status, created_at, updated_at, reviewer, rule, roi, shadow"


class PostgresProposalStore:
    """Proposals in PostgreSQL.

    Args:
        dsn: A `postgresql://` (or `postgres://`) connection URL.
        table_prefix: Prefix of the two table names (created if missing).
    """

    def __init__(self, dsn: str, *, table_prefix: str = "apls_") -> None:
        if not _IDENT.match(table_prefix + "x"):
            raise ValueError(f"table_prefix must be a SQL identifier prefix, got {table_prefix!r}")
        import asyncpg

        self.dsn = dsn
        self._p = self.table_prefix = table_prefix
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=_serve, args=(self._loop,), name="cascadence-proposals-pg", daemon=True
        )
        opened: list[Any] = []  # the connection, once made; the closer refers to it, not to self
        self._closer = weakref.finalize(self, _shut_down, self._loop, self._thread, opened)
        self._thread.start()
        try:
            self._conn: Any = self._run(asyncpg.connect(dsn))
            opened.append(self._conn)
            self._run(self._create())
        except BaseException:
            self._closer()
            raise

    def __repr__(self) -> str:
        return f"PostgresProposalStore(table_prefix={self._p!r})"

    def __enter__(self) -> PostgresProposalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            return self._run(coro)

    async def _create(self) -> None:
        async with self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._p)
            await self._conn.execute(_SCHEMA.format(p=self._p))

    def add(self, proposal: Proposal) -> None:
        """Store a new proposal with its history.

        Raises:
            ValueError: A proposal with that id exists.
        """
        import asyncpg

        p = self._p

        async def add() -> None:
            async with self._conn.transaction():
                await self._conn.execute(
                    f"INSERT INTO {p}proposals (proposal_id, rule_id, stage, status, created_at, "
                    "updated_at, reviewer, rule, roi, shadow) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                    *proposal_row(proposal),
                )
                await self._conn.executemany(
                    f"INSERT INTO {p}transitions VALUES ($1,$2,$3,$4,$5,$6,$7)",
                    [
                        transition_row(proposal.proposal_id, i, t)
                        for i, t in enumerate(proposal.history)
                    ],
                )

        try:
            self._call(add())
        except asyncpg.UniqueViolationError:
            raise ProposalExistsError(
                f"a proposal {proposal.proposal_id!r} exists already"
            ) from None

    async def _load(self, rows: list[Any]) -> list[Proposal]:
        out = []
        for row in rows:
            transitions = await self._conn.fetch(
                f"SELECT from_status, to_status, actor, at, reason FROM {self._p}transitions "
                "WHERE proposal_id = $1 ORDER BY seq",
                row[0],
            )
            out.append(row_to_proposal(tuple(row), [tuple(t) for t in transitions]))
        return out

    def get(self, proposal_id: str) -> Proposal | None:
        """The proposal with that id, or None."""

        async def get() -> list[Proposal]:
            rows = await self._conn.fetch(
                f"SELECT {_COLUMNS} FROM {self._p}proposals WHERE proposal_id = $1", proposal_id
            )
            return await self._load(rows)

        found = self._call(get())
        return found[0] if found else None

    def list(self, status: ProposalStatus | None = None) -> list[Proposal]:
        """All proposals (or those with `status`), oldest first."""

        async def listing() -> list[Proposal]:
            query = f"SELECT {_COLUMNS} FROM {self._p}proposals"
            if status is None:
                rows = await self._conn.fetch(query + " ORDER BY created_at, proposal_id")
            else:
                rows = await self._conn.fetch(
                    query + " WHERE status = $1 ORDER BY created_at, proposal_id", status.value
                )
            return await self._load(rows)

        return self._call(listing())

    def transition(self, proposal: Proposal, expected: ProposalStatus) -> bool:
        """Compare-and-set the status; append the last transition."""
        p = self._p

        async def move() -> bool:
            async with self._conn.transaction():
                done = await self._conn.fetchval(
                    f"UPDATE {p}proposals SET status = $1, updated_at = $2, reviewer = $3, "
                    "shadow = $4 WHERE proposal_id = $5 AND status = $6 RETURNING 1",
                    proposal.status.value,
                    proposal.updated_at,
                    proposal.reviewer,
                    json.dumps(proposal.shadow.to_dict()),
                    proposal.proposal_id,
                    expected.value,
                )
                if done is None:
                    return False
                await self._conn.execute(
                    f"INSERT INTO {p}transitions VALUES ($1,$2,$3,$4,$5,$6,$7)",
                    *transition_row(
                        proposal.proposal_id, len(proposal.history) - 1, proposal.history[-1]
                    ),
                )
                return True

        return self._call(move())

    def add_shadow(
        self, proposal_id: str, delta: ShadowStats, status: ProposalStatus
    ) -> ShadowStats | None:
        """Add `delta` to the stored shadow statistics if the proposal is in `status`."""
        p = self._p

        async def add() -> ShadowStats | None:
            async with self._conn.transaction():
                row = await self._conn.fetchrow(
                    f"SELECT status, shadow FROM {p}proposals WHERE proposal_id = $1 FOR UPDATE",
                    proposal_id,
                )
                if row is None or row["status"] != status.value:
                    return None
                total = ShadowStats.from_dict(json.loads(row["shadow"])) + delta
                await self._conn.execute(
                    f"UPDATE {p}proposals SET shadow = $1 WHERE proposal_id = $2",
                    json.dumps(total.to_dict()),
                    proposal_id,
                )
                return total

        return self._call(add())

    def drop_tables(self) -> None:
        """Delete both tables and everything in them (for tests and teardown)."""
        self._call(
            self._conn.execute(
                f"DROP TABLE IF EXISTS {self._p}transitions; "
                f"DROP TABLE IF EXISTS {self._p}proposals"
            )
        )

    def close(self) -> None:
        """Close the connection and stop the private event loop (again: nothing happens)."""
        with self._lock:
            self._closer()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The private loop's thread: run the loop until stopped, then close it."""
    try:
        loop.run_forever()
    finally:
        loop.close()


def _shut_down(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, opened: list[Any]
) -> None:
    """Close a store's connection and end its thread: `close()`, or the store's finalizer."""
    if threading.current_thread() is thread:
        # the store was dropped on its own loop's thread, which cannot wait for itself
        for conn in opened:
            conn.terminate()
        loop.stop()
        return
    try:
        for conn in opened:
            asyncio.run_coroutine_threadsafe(conn.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
