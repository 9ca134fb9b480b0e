"""A circuit breaker kept in Redis is shared by every engine (replica) that uses it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cascadence import CascadeConfig, CascadeEngine
from cascadence.policies import BreakerState, CircuitBreaker
from cascadence.policies.breaker_redis import RedisBreakerStore
from cascadence.testing import FakeClock

pytestmark = pytest.mark.servers


def _config() -> CascadeConfig:
    return CascadeConfig.from_dict(
        {
            "name": f"shared-{uuid.uuid4().hex[:8]}",
            "stages": {
                "SCORE": {"circuit_breaker": {"failure_threshold": 3, "reset_timeout_seconds": 30}}
            },
        }
    )


async def _broken(_ctx: Any) -> dict[str, Any]:
    raise ConnectionError("model server down")


async def test_two_engines_see_one_open_state() -> None:
    """Failures seen by engine A and engine B add up; both then refuse calls."""
    config = _config()
    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}:"
    clock = FakeClock()
    store_a = RedisBreakerStore(prefix=prefix)
    store_b = RedisBreakerStore(prefix=prefix)
    a = CascadeEngine(config, clock=clock, breaker_store=store_a)
    b = CascadeEngine(config, clock=clock, breaker_store=store_b)
    calls = 0

    async def counting(ctx: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return await _broken(ctx)

    a.register_stage("SCORE", counting)
    b.register_stage("SCORE", counting)
    try:
        await a.execute({})
        await b.execute({})
        await a.execute({})  # third failure across both replicas: open
        assert calls == 3
        result = await b.execute({})
        assert result["stage_results"]["SCORE"]["error_type"] == "CircuitOpenError"
        assert calls == 3
        assert await b.breaker("SCORE").refresh() is BreakerState.OPEN
        clock.advance(31)
        await b.execute({})  # the half-open probe runs (and fails again)
        assert calls == 4
    finally:
        await store_a.reset(f"{config.name}:SCORE")
        await store_a.close()
        await store_b.close()


async def test_concurrent_failures_are_all_counted() -> None:
    """Many concurrent failures through separate clients are each counted exactly once."""
    import asyncio

    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}:"
    stores = [RedisBreakerStore(prefix=prefix) for _ in range(4)]
    breakers = [
        CircuitBreaker("svc", failure_threshold=1000, clock=FakeClock(), store=s) for s in stores
    ]
    try:
        await asyncio.gather(*(br.record_failure() for br in breakers for _ in range(10)))
        assert (await breakers[0].refresh(), breakers[0].snapshot.failures) == (
            BreakerState.CLOSED,
            40,
        )
    finally:
        await stores[0].reset("svc")
        for s in stores:
            await s.close()


async def test_more_concurrent_calls_than_connections_all_succeed() -> None:
    """Three hundred failures at once through one store (more than its connection pool
    holds) wait for a connection and are all counted."""
    import asyncio

    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}:"
    store = RedisBreakerStore(prefix=prefix)
    breaker = CircuitBreaker("svc", failure_threshold=10_000, clock=FakeClock(), store=store)
    try:
        await asyncio.gather(*(breaker.record_failure() for _ in range(300)))
        await breaker.refresh()
        assert breaker.snapshot.failures == 300
    finally:
        await store.reset("svc")
        await store.close()


def test_a_store_from_a_url_serves_one_event_loop_after_another() -> None:
    """`execute_sync` runs each call on a new event loop: the store gives each loop its own
    client, so the second call still reaches Redis (it used to fail: 'Event loop is closed')."""
    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}:"
    store = RedisBreakerStore(prefix=prefix)
    engine = CascadeEngine(_config(), breaker_store=store)
    engine.register_stage("SCORE", _broken)
    for _ in range(3):
        result = engine.execute_sync({})
        assert result["stage_results"]["SCORE"]["error_type"] == "ConnectionError"
    refused = engine.execute_sync({})
    assert refused["stage_results"]["SCORE"]["error_type"] == "CircuitOpenError"
