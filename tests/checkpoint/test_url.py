"""store_from_url: schemes, paths, errors, and lazy driver imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cascadence.checkpoint import (
    CheckpointError,
    InMemoryCheckpointStore,
    PostgresCheckpointStore,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
    register_store_scheme,
    store_from_url,
)
from cascadence.testing import FakeClock


def test_memory_url() -> None:
    """memory:// builds an in-memory store and passes keyword arguments on."""
    clock = FakeClock()
    store = store_from_url("memory://", clock=clock)
    assert isinstance(store, InMemoryCheckpointStore)
    assert store.clock is clock


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///runs.db", "runs.db"),
        ("sqlite:///data/runs.db", "data/runs.db"),
        ("sqlite:////var/lib/runs.db", "/var/lib/runs.db"),
        ("SQLITE:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    """sqlite:/// paths are relative, sqlite://// paths absolute."""
    store = store_from_url(url)
    assert isinstance(store, SQLiteCheckpointStore)
    assert store.path == path


def test_sqlite_url_without_file() -> None:
    """A SQLite URL naming no file says what a valid one looks like."""
    with pytest.raises(ValueError, match=r"sqlite:///relative\.db"):
        store_from_url("sqlite://")


def test_server_urls() -> None:
    """redis://, rediss://, postgresql:// and postgres:// pick the server stores."""
    assert isinstance(store_from_url("redis://127.0.0.1:6379/0", prefix="x:"), RedisCheckpointStore)
    assert isinstance(store_from_url("rediss://example:6380/0"), RedisCheckpointStore)
    for url in ("postgresql://127.0.0.1/test", "postgres://127.0.0.1/test"):
        store = store_from_url(url, schema="s1")
        assert isinstance(store, PostgresCheckpointStore)
        assert store.schema == "s1"


def test_unknown_scheme_suggests_closest() -> None:
    """An unknown scheme lists the known ones and the closest."""
    with pytest.raises(ValueError, match="did you mean 'postgresql'") as info:
        store_from_url("postgresq://127.0.0.1/test")
    assert "memory, postgres, postgresql, redis, rediss, sqlite" in str(info.value)
    with pytest.raises(ValueError, match="has no scheme"):
        store_from_url("runs.db")


def test_register_store_scheme() -> None:
    """A registered scheme is built by its factory."""
    register_store_scheme("test-mem", lambda url, **kw: InMemoryCheckpointStore(**kw))
    assert isinstance(store_from_url("test-mem://"), InMemoryCheckpointStore)


def test_import_does_not_load_drivers() -> None:
    """Importing cascadence.checkpoint imports neither redis nor asyncpg."""
    code = (
        "import sys, cascadence.checkpoint; "
        "print(sorted(m for m in ('redis', 'asyncpg') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


async def test_unreachable_servers_raise_checkpoint_error(tmp_path: Path) -> None:
    """A server that cannot be reached is a CheckpointError, not a skip or a hang."""
    for store in (
        RedisCheckpointStore("redis://127.0.0.1:1/0"),
        PostgresCheckpointStore("postgresql://127.0.0.1:1/test"),
        SQLiteCheckpointStore(tmp_path / "missing-dir" / "runs.db"),
    ):
        with pytest.raises(CheckpointError, match="failed"):
            await store.load("x")
        await store.close()
