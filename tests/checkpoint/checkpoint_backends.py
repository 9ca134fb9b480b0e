"""Build every checkpoint store on a fresh, isolated location, for the contract tests.

Redis and PostgreSQL are the real servers on 127.0.0.1; when one is unreachable the tests using
it fail (they never skip), so a missing server cannot pass unnoticed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dict_kv import DictCheckpointStore

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
BACKENDS = ["memory", "memory-serialized", "kv", "sqlite", "redis", "postgres"]
"""`memory-serialized`: the in-memory store storing values as the durable stores do; `kv`: the
dict-backed `KeyValueCheckpointStore` of the docs, with racing writes (`RacingDictStore`)."""


class RacingDictStore(DictCheckpointStore):
    """The docs' dict store, letting other tasks run between each read and its write or
    remove, so concurrent operations really conflict. `before_change` holds operations of
    another writer, run just before this store's next writes or removes (one each); `refused`
    counts the writes and removes refused by a conflict."""

    def __init__(self, data: dict[str, tuple[int, bytes]], **options: Any) -> None:
        super().__init__(data, **options)
        self.before_change: list[Callable[[], Awaitable[Any]]] = []
        self.refused = 0

    async def _interleave(self) -> None:
        if self.before_change:
            await self.before_change.pop(0)()
        await asyncio.sleep(0)

    async def write(self, key: str, value: bytes, *, version: object) -> bool:
        await self._interleave()
        written = await super().write(key, value, version=version)
        self.refused += not written
        return written

    async def remove(self, key: str, *, version: object) -> bool:
        await self._interleave()
        removed = await super().remove(key, version=version)
        self.refused += not removed
        return removed


@dataclass
class Backend:
    """One isolated storage location; `store()` opens another client onto it."""

    kind: str
    url: str
    options: dict[str, Any]
    clock: FakeClock
    opened: list[BaseCheckpointStore] = field(default_factory=list)
    _memory: InMemoryCheckpointStore | None = None
    _kv: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def store(self, clock: Clock | None = None) -> BaseCheckpointStore:
        """Open a store on this location (the in-memory store is shared, as a process would)."""
        clock = clock or self.clock
        made: BaseCheckpointStore
        if self.kind.startswith("memory"):
            if self._memory is None:
                serialize = self.kind == "memory-serialized"
                self._memory = InMemoryCheckpointStore(clock=clock, serialize=serialize)
            return self._memory
        if self.kind == "kv":  # one dict per location, as processes share one database
            made = RacingDictStore(self._kv, clock=clock)
        elif self.kind == "sqlite":
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
    if kind.startswith("memory") or kind == "kv":
        return Backend(kind, f"{kind}://", {}, clock)
    if kind == "sqlite":
        path = tmp_path / f"runs-{token}.db"
        return Backend(kind, f"sqlite:///{path}", {"path": str(path)}, clock)
    if kind == "redis":
        return Backend(kind, REDIS_URL, {"prefix": f"cascadence-test:{token}:"}, clock)
    return Backend(kind, POSTGRES_DSN, {"schema": f"cascadence_test_{token}"}, clock)
