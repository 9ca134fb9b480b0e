"""Where proposals live: the `ProposalStore` protocol, the embedded SQLite store, a URL factory.

SQLite (the standard library's `sqlite3`) is the default: `":memory:"` for a throwaway store, a
file path to keep proposals across restarts. PostgreSQL (`PostgresProposalStore`, over asyncpg)
serves several replicas sharing one review queue. Both keep two tables: one row per proposal with
its current state, and an append-only table of transitions, the audit trail.

A status change is a compare-and-set: it is written only if the stored status is still the one
the change started from, so two reviewers acting at once cannot both move a proposal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cascadence.checkpoint import serde
from cascadence.learning.models import (
    Proposal,
    ProposalExistsError,
    ProposalStatus,
    ShadowStats,
    Transition,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ProposalStore", "SQLiteProposalStore", "store_from_url"]


@runtime_checkable
class ProposalStore(Protocol):
    """Persistence of proposals and their audit trail (synchronous)."""

    def add(self, proposal: Proposal) -> None:
        """Store a new proposal with its history.

        Raises:
            ValueError: A proposal with that id exists.
        """
        ...

    def get(self, proposal_id: str) -> Proposal | None:
        """The proposal with that id, or None."""
        ...

    def list(self, status: ProposalStatus | None = None) -> list[Proposal]:
        """All proposals (or those with `status`), oldest first."""
        ...

    def transition(self, proposal: Proposal, expected: ProposalStatus) -> bool:
        """Write `proposal`'s new state and its last transition, if the stored status is still
        `expected`; return whether it was written."""
        ...

    def add_shadow(
        self, proposal_id: str, delta: ShadowStats, status: ProposalStatus
    ) -> ShadowStats | None:
        """Add `delta` to the proposal's shadow statistics if it is in `status`; return the
        new totals, or None when it is not (or does not exist)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def row_to_proposal(row: Sequence[Any], transitions: Sequence[Sequence[Any]]) -> Proposal:
    """Rebuild a proposal from its row and its transition rows (shared by the SQL stores)."""
    proposal_id, status, created_at, updated_at, reviewer, rule, roi, shadow = row
    return Proposal.from_dict(
        {
            "proposal_id": proposal_id,
            "status": status,
            "created_at": created_at,
            "updated_at": updated_at,
            "reviewer": reviewer,
            "rule": serde.loads(rule),  # plain JSON (older rows) reads the same
            "roi": json.loads(roi) if roi else None,
            "shadow": json.loads(shadow),
            "history": [
                {"from_status": t[0], "to_status": t[1], "actor": t[2], "at": t[3], "reason": t[4]}
                for t in transitions
            ],
        }
    )


def proposal_row(proposal: Proposal) -> tuple[Any, ...]:
    """The column values of a proposal's row (shared by the SQL stores)."""
    return (
        proposal.proposal_id,
        proposal.rule.rule_id,
        proposal.rule.stage,
        proposal.status.value,
        proposal.created_at,
        proposal.updated_at,
        proposal.reviewer,
        # exact types: a decision such as ("decline", 2) or Decimal("1.5") comes back as it was
        serde.dumps(proposal.rule.to_dict(), root="rule").decode(),
        json.dumps(proposal.roi.to_dict()) if proposal.roi is not None else None,
        json.dumps(proposal.shadow.to_dict()),
    )


def transition_row(proposal_id: str, seq: int, t: Transition) -> tuple[Any, ...]:
    """The column values of one transition row."""
    return (
        proposal_id,
        seq,
        t.from_status.value if t.from_status else None,
        t.to_status.value,
        t.actor,
        t.at,
        t.reason,
    )


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}proposals (
    proposal_id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
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
    at REAL NOT NULL,
    reason TEXT,
    PRIMARY KEY (proposal_id, seq)
);
"""

_COLUMNS = "proposal_id, status, created_at, updated_at, reviewer, rule, roi, shadow"


class SQLiteProposalStore:
    """Proposals in an embedded SQLite database.

    The connection closes with `close()`, at the end of a `with` block, or, for a store that
    was never closed, when the store is garbage collected.

    Args:
        path: A file path, or `":memory:"` (the default) for a store that lives as long as
            this object.
        table_prefix: Prefix of the two table names.
    """

    def __init__(self, path: str = ":memory:", *, table_prefix: str = "apls_") -> None:
        if not table_prefix.replace("_", "").isalnum():
            raise ValueError(f"table_prefix must be letters, digits and '_', got {table_prefix!r}")
        self.path = path
        self._p = self.table_prefix = table_prefix
        self._lock = threading.Lock()
        # `check_same_thread=False` also lets the garbage collector's thread close it
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._closer = weakref.finalize(self, self._db.close)
        self._db.executescript(_SQLITE_SCHEMA.format(p=table_prefix))

    def __repr__(self) -> str:
        return f"SQLiteProposalStore({self.path!r})"

    def __enter__(self) -> SQLiteProposalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, proposal: Proposal) -> None:
        """Store a new proposal with its history."""
        p = self._p
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    f"INSERT INTO {p}proposals (proposal_id, rule_id, stage, status, created_at, "
                    "updated_at, reviewer, rule, roi, shadow) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    proposal_row(proposal),
                )
                self._db.executemany(
                    f"INSERT INTO {p}transitions VALUES (?,?,?,?,?,?,?)",
                    [
                        transition_row(proposal.proposal_id, i, t)
                        for i, t in enumerate(proposal.history)
                    ],
                )
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise ProposalExistsError(
                    f"a proposal {proposal.proposal_id!r} exists already"
                ) from None
            self._db.execute("COMMIT")

    def _load(self, rows: list[Any]) -> list[Proposal]:
        p = self._p
        out = []
        for row in rows:
            transitions = self._db.execute(
                f"SELECT from_status, to_status, actor, at, reason FROM {p}transitions "
                "WHERE proposal_id = ? ORDER BY seq",
                (row[0],),
            ).fetchall()
            out.append(row_to_proposal(row, transitions))
        return out

    def get(self, proposal_id: str) -> Proposal | None:
        """The proposal with that id, or None."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM {self._p}proposals WHERE proposal_id = ?", (proposal_id,)
            ).fetchall()
            found = self._load(rows)
        return found[0] if found else None

    def list(self, status: ProposalStatus | None = None) -> list[Proposal]:
        """All proposals (or those with `status`), oldest first."""
        query = f"SELECT {_COLUMNS} FROM {self._p}proposals"
        params: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status.value,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at, proposal_id", params).fetchall()
            return self._load(rows)

    def transition(self, proposal: Proposal, expected: ProposalStatus) -> bool:
        """Compare-and-set the status; append the last transition."""
        p = self._p
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                f"UPDATE {p}proposals SET status = ?, updated_at = ?, reviewer = ?, shadow = ? "
                "WHERE proposal_id = ? AND status = ?",
                (
                    proposal.status.value,
                    proposal.updated_at,
                    proposal.reviewer,
                    json.dumps(proposal.shadow.to_dict()),
                    proposal.proposal_id,
                    expected.value,
                ),
            )
            if cursor.rowcount != 1:
                self._db.execute("ROLLBACK")
                return False
            seq = len(proposal.history) - 1
            self._db.execute(
                f"INSERT INTO {p}transitions VALUES (?,?,?,?,?,?,?)",
                transition_row(proposal.proposal_id, seq, proposal.history[-1]),
            )
            self._db.execute("COMMIT")
            return True

    def add_shadow(
        self, proposal_id: str, delta: ShadowStats, status: ProposalStatus
    ) -> ShadowStats | None:
        """Add `delta` to the stored shadow statistics if the proposal is in `status`."""
        p = self._p
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                f"SELECT status, shadow FROM {p}proposals WHERE proposal_id = ?", (proposal_id,)
            ).fetchone()
            if row is None or row[0] != status.value:
                self._db.execute("ROLLBACK")
                return None
            total = ShadowStats.from_dict(json.loads(row[1])) + delta
            self._db.execute(
                f"UPDATE {p}proposals SET shadow = ? WHERE proposal_id = ?",
                (json.dumps(total.to_dict()), proposal_id),
            )
            self._db.execute("COMMIT")
            return total

    def close(self) -> None:
        """Close the database connection (again: nothing happens)."""
        with self._lock:
            self._closer()


def store_from_url(url: str) -> ProposalStore:
    """A store for `url`.

    `sqlite:///path/to/file.db`, `sqlite://:memory:` (or `sqlite://`), a plain file path or
    `":memory:"` give a `SQLiteProposalStore`; `postgresql://...` (or `postgres://...`) a
    `PostgresProposalStore` (needs asyncpg).

    Raises:
        ValueError: An unknown URL scheme.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from cascadence.learning.postgres import PostgresProposalStore

        return PostgresProposalStore(url)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if rest in ("", "/:memory:", ":memory:"):
            return SQLiteProposalStore(":memory:")
        return SQLiteProposalStore(rest[1:] if rest.startswith("/") else rest)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"unknown proposal store scheme {scheme!r}; expected sqlite:// or postgresql://"
        )
    return SQLiteProposalStore(url)
