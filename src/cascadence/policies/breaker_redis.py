"""A `BreakerStateStore` in Redis, so every replica of a service shares one circuit breaker.

Each update is an optimistic transaction (WATCH, read, apply `breaker_step`, MULTI/EXEC), so
concurrent failures from many processes are all counted and the state machine stays the one
written in `circuit_breaker.py`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from cascadence.policies.circuit_breaker import BreakerSnapshot, BreakerState
from cascadence.runtime.redis_client import blocking_client

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
                import redis.asyncio  # noqa: F401
            except ImportError as exc:  # pragma: no cover - depends on installed extras
                raise ImportError(
                    "RedisBreakerStore needs redis: pip install 'cascadence[redis]'"
                ) from exc
        self._given = client
        self.url = url
        # A client made from the URL belongs to the event loop it first ran on: one per loop,
        # so an engine used through `execute_sync` (a new loop per call) keeps working.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._outside: Any = None
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds

    @property
    def client(self) -> Any:
        """The Redis client: the one given, or this event loop's client for `url`."""
        if self._given is not None:
            return self._given

        def fresh_client() -> Any:
            return blocking_client(self.url)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside a loop
            if self._outside is None:
                self._outside = fresh_client()
            return self._outside
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = fresh_client()
        return client

    async def _loop_client(self) -> Any:
        """`client`, and for a client made here, its closing when the loop shuts down: an
        async generator parked in the loop is closed by `asyncio.run` before the loop ends,
        and closes the connections it guards."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        fresh = loop not in self._clients
        client = self.client
        if fresh:
            closer = _close_at_shutdown(client)
            await closer.__anext__()
            self._closers[loop] = closer
        return client

    async def apply(
        self, name: str, fn: Callable[[BreakerSnapshot], tuple[BreakerSnapshot, bool]]
    ) -> tuple[BreakerSnapshot, bool]:
        """Atomically replace the snapshot of `name` with `fn(snapshot)`; retried on a race."""
        from redis.exceptions import WatchError

        key = self.prefix + name
        client = await self._loop_client()
        async with client.pipeline(transaction=True) as pipe:
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
        await (await self._loop_client()).delete(self.prefix + name)

    async def close(self) -> None:
        """Close the Redis connection (this event loop's, for a store made from a URL)."""
        await self.client.aclose()
        if self._given is None:
            loop = asyncio.get_running_loop()
            self._clients.pop(loop, None)
            closer = self._closers.pop(loop, None)
            if closer is not None:
                await closer.aclose()


async def _close_at_shutdown(client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()
