"""One contract for every proposal store: SQLite in memory, SQLite on disk, PostgreSQL."""

from __future__ import annotations

import gc
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cascadence.learning import (
    GeneratedRule,
    MigrationROI,
    Proposal,
    ProposalManager,
    ProposalStatus,
    ProposalStore,
    ShadowStats,
    SQLiteProposalStore,
    Transition,
    store_from_url,
)

POSTGRES_DSN = "postgresql://127.0.0.1:5432/test"
S = ProposalStatus


@pytest.fixture(
    params=[
        "sqlite-memory",
        "sqlite-file",
        pytest.param("postgres", marks=pytest.mark.servers),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProposalStore]:
    if request.param == "sqlite-memory":
        opened: ProposalStore = SQLiteProposalStore()
    elif request.param == "sqlite-file":
        opened = store_from_url(str(tmp_path / "p.db"))
    else:
        from cascadence.learning import PostgresProposalStore

        pg = PostgresProposalStore(POSTGRES_DSN, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
        opened = pg
    try:
        yield opened
    finally:
        if request.param == "postgres":
            pg.drop_tables()
        opened.close()


def proposal(pid: str = "prop_1", at: float = 100.0) -> Proposal:
    rule = GeneratedRule(
        "apls_1", "pat_1", "RULES", {"field": "amount", "operator": ">=", "value": 500}, "decline"
    )
    roi = MigrationROI(
        "pat_1", "AI", "RULES", 100, 0.2, 20.0, 0.99, 100.0, 80.0, 20.0, 20.0, 26.0, 1.0, 96.0,
        0.2, "MIGRATE", "saves 20%",
    )  # fmt: skip
    first = Transition(None, S.PENDING_REVIEW, "apls", at, "found")
    return Proposal(pid, rule, roi, S.PENDING_REVIEW, at, at, (first,))


def moved(p: Proposal, to: ProposalStatus, at: float) -> Proposal:
    step = Transition(p.status, to, "alice@example.com", at, "because")
    return replace(p, status=to, updated_at=at, history=(*p.history, step), reviewer="alice")


def test_add_get_and_list(store: ProposalStore) -> None:
    """A stored proposal reads back equal; listing filters by status, oldest first."""
    first, second = proposal("prop_1", 100.0), proposal("prop_2", 50.0)
    store.add(first)
    store.add(second)
    assert store.get("prop_1") == first
    assert store.get("missing") is None
    assert [p.proposal_id for p in store.list()] == ["prop_2", "prop_1"]
    assert store.list(S.APPROVED) == []
    with pytest.raises(ValueError, match="exists already"):
        store.add(first)


def test_transition_is_compare_and_set(store: ProposalStore) -> None:
    """A move is written only from the status it started from, with its audit entry."""
    original = proposal()
    store.add(original)
    approved = moved(original, S.APPROVED, 110.0)
    assert store.transition(approved, S.PENDING_REVIEW)
    assert store.get("prop_1") == approved
    rejected = moved(original, S.REJECTED, 120.0)
    assert not store.transition(rejected, S.PENDING_REVIEW)  # stale: it is APPROVED now
    assert store.get("prop_1") == approved
    assert [p.proposal_id for p in store.list(S.APPROVED)] == ["prop_1"]


def test_shadow_statistics_add_up_only_in_the_expected_status(store: ProposalStore) -> None:
    """Shadow statistics accumulate while the proposal is in the expected status."""
    store.add(proposal())
    delta = ShadowStats(10, 8, 5, 5, 50.0, 100.0)
    assert store.add_shadow("prop_1", delta, S.TESTING) is None
    assert store.add_shadow("missing", delta, S.PENDING_REVIEW) is None
    assert store.add_shadow("prop_1", delta, S.PENDING_REVIEW) == delta
    assert store.add_shadow("prop_1", delta, S.PENDING_REVIEW) == delta + delta
    found = store.get("prop_1")
    assert found is not None and found.shadow == delta + delta


def test_store_urls() -> None:
    """`store_from_url` picks SQLite for sqlite URLs and plain paths, and names bad schemes."""
    for url in ("sqlite://", "sqlite://:memory:", ":memory:"):
        opened = store_from_url(url)
        assert isinstance(opened, SQLiteProposalStore) and opened.path == ":memory:"
        opened.close()
    with pytest.raises(ValueError, match="unknown proposal store scheme 'mysql'"):
        store_from_url("mysql://host/db")
    with pytest.raises(ValueError, match="table_prefix"):
        SQLiteProposalStore(table_prefix="bad prefix")


@pytest.mark.servers
async def test_postgres_manager_works_inside_a_running_event_loop() -> None:
    """The synchronous API over asyncpg also works when called from async code."""
    from cascadence.learning import PostgresProposalStore, ProposalManager

    pg = PostgresProposalStore(POSTGRES_DSN, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    try:
        with ProposalManager(pg) as manager:
            created = manager.create_proposal(proposal().rule)
            manager.approve(created.proposal_id, reviewer="alice@example.com")
            assert manager.get(created.proposal_id).status is S.APPROVED
    finally:
        again = PostgresProposalStore(POSTGRES_DSN, table_prefix=pg.table_prefix)
        again.drop_tables()
        again.close()


def test_a_manager_never_closed_closes_its_connection_when_collected(tmp_path: Path) -> None:
    """A dropped manager's SQLite connection is closed by the garbage collector (Python 3.13+
    warns about an unclosed one, which fails a run with warnings as errors)."""
    manager = ProposalManager(db_path=str(tmp_path / "p.db"))
    manager.create_proposal(proposal().rule)
    db = manager.store._db  # type: ignore[attr-defined]
    del manager
    gc.collect()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.execute("SELECT 1")
    ProposalManager()  # dropped at once: no warning either
    gc.collect()


def test_closing_is_explicit_by_context_or_by_collection_and_happens_once() -> None:
    """`close()` and the end of a `with` block close the store; closing again does nothing."""
    with ProposalManager() as manager:
        manager.create_proposal(proposal().rule)
    store = manager.store
    assert isinstance(store, SQLiteProposalStore)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.list()
    manager.close()
    store.close()


@pytest.mark.servers
def test_a_postgres_store_never_closed_ends_its_connection_and_thread_when_collected() -> None:
    """A dropped PostgreSQL store closes its connection and stops its private event loop."""
    from cascadence.learning import PostgresProposalStore

    pg = PostgresProposalStore(POSTGRES_DSN, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    pg.drop_tables()
    thread, conn, loop = pg._thread, pg._conn, pg._loop
    assert thread.is_alive()
    del pg
    gc.collect()
    assert not thread.is_alive()
    assert conn.is_closed() and loop.is_closed()
    closed = PostgresProposalStore(POSTGRES_DSN, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    closed.drop_tables()
    closed.close()
    closed.close()
    assert not closed._thread.is_alive()
