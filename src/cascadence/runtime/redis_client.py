"""The Redis client the Redis-backed stores share (checkpoints, circuit breaker state)."""

from __future__ import annotations

from typing import Any

__all__ = ["blocking_client"]


def blocking_client(url: str, **options: Any) -> Any:
    """A `redis.asyncio.Redis` for `url` on a blocking pool: calls beyond its connections
    (100 unless `max_connections` says otherwise) wait up to `timeout` seconds (30) for one
    instead of failing with "Too many connections". The client closes its pool."""
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(
        url, **{"max_connections": 100, "timeout": 30.0, **options}
    )
    return Redis.from_pool(pool)
