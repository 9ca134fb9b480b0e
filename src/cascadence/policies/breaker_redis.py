"""A `BreakerStateStore` in Redis, so every replica of a service shares one circuit breaker.

Each update is an optimistic transaction (WATCH, read, apply `breaker_step`, MULTI/EXEC), so
concurrent failures from many processes are all counted and the state machine stays the one
written in `circuit_breaker.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cascadence.policies.circuit_breaker import BreakerSnapshot, BreakerState

__all__ = ["RedisBreakerStore"]


def _encode(snap: BreakerSnapshot) -> str:
    return json.dumps(
        [snap.state.value, snap.failures, snap.opened_at, snap.half_open_calls, snap.successes]
    )


def _decode(raw: bytes | str | None) -> BreakerSnapshot:
    if raw is None:
        return BreakerSnapshot()
    state, failures, opened_at, half_open, successes = json.loads(raw)
    return BreakerSnapshot(BreakerState(state), failures, opened_at, half_open, successes)


class RedisBreakerStore:
    """Breaker snapshots in Redis under `prefix + name`.

    Args:
        url: Redis URL (used when `client` is not given).
        prefix: Key prefix.
        client: An existing `redis.asyncio.Redis` client.
        ttl_seconds: Keys expire after this long without updates (None: never).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "cascadence:breaker:",
        client: Any = None,
        ttl_seconds: float | None = 86_400.0,
    ) -> None:
        if client is None:
            try:
                import redis.asyncio as redis_asyncio
            except ImportError as exc:  # pragma: no cover - depends on installed extras
                raise ImportError(
                    "RedisBreakerStore needs redis: pip install 'cascadence[redis]'"
                ) from exc
            client = redis_asyncio.Redis.from_url(url)
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds

    async def apply(
        self, name: str, fn: Callable[[BreakerSnapshot], tuple[BreakerSnapshot, bool]]
    ) -> tuple[BreakerSnapshot, bool]:
        """Atomically replace the snapshot of `name` with `fn(snapshot)`; retried on a race."""
        from redis.exceptions import WatchError

        key = self.prefix + name
        async with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    current = _decode(await pipe.get(key))
                    new, allowed = fn(current)
                    pipe.multi()
                    if self.ttl_seconds is not None:
                        pipe.set(key, _encode(new), px=int(self.ttl_seconds * 1000))
                    else:
                        pipe.set(key, _encode(new))
                    await pipe.execute()
                    return new, allowed
                except WatchError:
                    continue

    async def reset(self, name: str) -> None:
        """Forget the shared state of `name` (the circuit closes)."""
        await self.client.delete(self.prefix + name)

    async def close(self) -> None:
        """Close the Redis connection."""
        await self.client.aclose()
