"""Build every checkpoint store on a fresh, isolated location, for the contract tests.

Redis and PostgreSQL are the real servers on 127.0.0.1; when one is unreachable the tests using
it fail (they never skip), so a missing server cannot pass unnoticed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascadence.checkpoint import (
    InMemoryCheckpointStore,
    PostgresCheckpointStore,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
)
from cascadence.checkpoint.base import BaseCheckpointStore
from cascadence.runtime.clock import Clock
from cascadence.testing import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_DSN = "postgresql://127.0.0.1:5432/test"
BACKENDS = ["memory", "memory-serialized", "sqlite", "redis", "postgres"]
"""`memory-serialized`: the in-memory store storing values as the durable stores do."""


@dataclass
class Backend:
    """One isolated storage location; `store()` opens another client onto it."""

    kind: str
    url: str
    options: dict[str, Any]
    clock: FakeClock
    opened: list[BaseCheckpointStore] = field(default_factory=list)
    _memory: InMemoryCheckpointStore | None = None

    def store(self, clock: Clock | None = None) -> BaseCheckpointStore:
        """Open a store on this location (the in-memory store is shared, as a process would)."""
        clock = clock or self.clock
        made: BaseCheckpointStore
        if self.kind.startswith("memory"):
            if self._memory is None:
                serialize = self.kind == "memory-serialized"
                self._memory = InMemoryCheckpointStore(clock=clock, serialize=serialize)
            return self._memory
        if self.kind == "sqlite":
            made = SQLiteCheckpointStore(self.options["path"], clock=clock)
        elif self.kind == "redis":
            made = RedisCheckpointStore(self.url, prefix=self.options["prefix"], clock=clock)
        else:
            made = PostgresCheckpointStore(
                self.url, schema=self.options["schema"], clock=clock, max_size=20
            )
        self.opened.append(made)
        return made

    async def cleanup(self) -> None:
        for store in self.opened:
            await store.close()
        if self.kind == "redis":
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(self.url)
            try:
                keys = [k async for k in client.scan_iter(match=self.options["prefix"] + "*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()
        elif self.kind == "postgres":
            import asyncpg

            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.options["schema"]}" CASCADE')
            finally:
                await conn.close()


def make_backend(kind: str, tmp_path: Path) -> Backend:
    """Build a fresh backend location of `kind`."""
    token = uuid.uuid4().hex[:12]
    clock = FakeClock()
    if kind.startswith("memory"):
        return Backend(kind, "memory://", {}, clock)
    if kind == "sqlite":
        path = tmp_path / f"runs-{token}.db"
        return Backend(kind, f"sqlite:///{path}", {"path": str(path)}, clock)
    if kind == "redis":
        return Backend(kind, REDIS_URL, {"prefix": f"cascadence-test:{token}:"}, clock)
    return Backend(kind, POSTGRES_DSN, {"schema": f"cascadence_test_{token}"}, clock)
