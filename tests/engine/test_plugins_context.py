"""The spec's plugins (thin spellings of the policies) and ExecutionContext."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_helpers import config

from cascadence import (
    CachePlugin,
    CascadeEngine,
    CircuitBreakerPlugin,
    CircuitOpenError,
    ExecutionContext,
    MetricsPlugin,
    PluginFactory,
    RetryExhaustedError,
    RetryPlugin,
)
from cascadence.testing import FakeClock


async def test_cache_plugin_caches_by_input() -> None:
    """CachePlugin calls the handler once per distinct input within its TTL."""
    calls = 0

    async def handler(ctx: Any) -> dict:
        nonlocal calls
        calls += 1
        return {"result": ctx.get("k")}

    cached = CachePlugin(wrapped_handler=handler, ttl_seconds=600)
    for _ in range(3):
        assert (await cached(ExecutionContext({"k": 1})))["result"] == 1
    await cached(ExecutionContext({"k": 2}))
    assert calls == 2


async def test_retry_plugin_delays_double() -> None:
    """RetryPlugin(max_retries=3, delay_ms=100) sleeps 100, 200, 400 ms then gives up with the
    handler's own last error (the exhaustion is its cause)."""
    clock = FakeClock()
    attempts: list[int] = []

    async def broken(_ctx: Any) -> dict:
        attempts.append(1)
        raise ConnectionError(f"down {len(attempts)}")

    plugin = RetryPlugin(wrapped_handler=broken, max_retries=3, delay_ms=100, clock=clock)
    with pytest.raises(ConnectionError, match="down 4") as info:
        await plugin(ExecutionContext({}))
    assert isinstance(info.value.__cause__, RetryExhaustedError)
    assert info.value.__cause__.attempts == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])


async def test_metrics_plugin_counts() -> None:
    """MetricsPlugin.metrics has count, total_time_ms, errors, success_rate and avg_time_ms."""

    async def sometimes(ctx: Any) -> dict:
        if ctx.get("fail"):
            raise ValueError("x")
        return {"result": 1}

    plugin = MetricsPlugin(wrapped_handler=sometimes)
    await plugin(ExecutionContext({}))
    with pytest.raises(ValueError):
        await plugin(ExecutionContext({"fail": True}))
    metrics = plugin.metrics
    assert metrics["count"] == 2 and metrics["errors"] == 1
    assert metrics["success_rate"] == 50.0
    assert set(metrics) == {"count", "total_time_ms", "errors", "success_rate", "avg_time_ms"}


async def test_circuit_breaker_plugin_opens() -> None:
    """CircuitBreakerPlugin opens after failure_threshold failures."""

    async def broken(_ctx: Any) -> dict:
        raise ValueError("x")

    plugin = CircuitBreakerPlugin(
        wrapped_handler=broken, failure_threshold=2, reset_timeout_seconds=60, clock=FakeClock()
    )
    for _ in range(2):
        with pytest.raises(ValueError):
            await plugin(ExecutionContext({}))
    with pytest.raises(CircuitOpenError):
        await plugin(ExecutionContext({}))
    assert plugin.state == "open"
    with pytest.raises(ValueError, match="reset_timeout_seconds must be >= 0"):
        CircuitBreakerPlugin(wrapped_handler=broken, reset_timeout_seconds=-1)


async def test_plugin_factory_composes_and_registers_on_engine() -> None:
    """PluginFactory.wrap_handler composes by name; the result is a stage handler."""
    calls = 0

    async def handler(_ctx: Any) -> dict:
        nonlocal calls
        calls += 1
        return {"result": "ok", "confidence": 0.9}

    wrapped = await PluginFactory.wrap_handler(
        handler=handler,
        plugins=["cache", "retry", "metrics", "circuit_breaker"],
        config={
            "cache": {"ttl_seconds": 600},
            "retry": {"max_retries": 5, "delay_ms": 200},
            "circuit_breaker": {"failure_threshold": 3, "reset_timeout_seconds": 30},
        },
    )
    engine = CascadeEngine(config({"MY_STAGE": {}}))
    engine.register_stage("MY_STAGE", wrapped)
    await engine.execute({"a": 1})
    result = await engine.execute({"a": 1})
    assert result["final_result"] == "ok"
    assert calls == 1


async def test_plugin_factory_unknown_name() -> None:
    """An unknown plugin name is rejected with the closest valid name."""

    async def handler(_ctx: Any) -> None:
        return None

    with pytest.raises(ValueError, match="did you mean 'metrics'"):
        await PluginFactory.wrap_handler(handler, plugins=["metric"])


def test_context_get_set_and_stage_results() -> None:
    """get reads dot paths and list indices; set copies along the path; stage results read."""
    from cascadence import StageResult

    data = {"user": {"profile": {"name": "Ada"}, "roles": ["admin"]}, "items": [{"price": 3}]}
    ctx = ExecutionContext(data, stage_results={"FAST": StageResult(result="ok", confidence=0.9)})
    assert ctx.get("user.profile.name") == "Ada"
    assert ctx.get("items.0.price") == 3
    assert ctx.get("user.settings", default={}) == {}
    assert ctx.get("stages.FAST.confidence") == 0.9
    fast = ctx.get_stage_result("FAST")
    assert fast is not None and fast.confidence > 0.5 and fast.result == "ok"
    assert ctx.get_stage_result("NONE") is None
    ctx.set("user.verified", True)
    ctx.set("new.deep.value", 1)
    assert ctx.get("user.verified") is True and ctx.get("new.deep.value") == 1
    assert "verified" not in data["user"] and "new" not in data


async def test_decorated_note_as_stage_applies_its_policy_once() -> None:
    """A @note(retry=...) function registered as a stage retries through the stage policy,
    not twice over."""
    from cascadence import note

    clock = FakeClock()
    attempts = 0

    @note(retry={"max_attempts": 3, "delay": 0.5}, clock=clock)
    async def flaky(_ctx: Any) -> dict:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("down")

    engine = CascadeEngine(config({"A": {}}))
    engine.register_stage("A", flaky)
    result = await engine.execute({})
    assert attempts == 3
    assert result["stage_results"]["A"]["error_type"] == "RetryExhaustedError"


async def test_breaker_and_metrics_plugins_count_a_stage_timeout_as_a_failure() -> None:
    """A handler the stage's `timeout_ms` (or the global timeout) stops is a failure to the
    plugins wrapping it: the breaker opens on a hanging service; a cancellation from outside
    (the caller gave up) is not a failure."""
    from cascadence.cascade.plugins import CircuitBreakerPlugin, MetricsPlugin

    async def hang(_ctx: Any) -> None:
        await asyncio.sleep(5)

    breaker = CircuitBreakerPlugin(hang, failure_threshold=2, reset_timeout_seconds=60)
    engine = CascadeEngine({"name": "t", "stages": {"A": {"timeout_ms": 20}}})
    engine.register_stage("A", breaker)
    errors = [(await engine.execute({}))["stage_results"]["A"]["error_type"] for _ in range(3)]
    assert errors == ["TimeoutError", "TimeoutError", "CircuitOpenError"]
    assert breaker.state == "open"

    metrics = MetricsPlugin(hang)
    engine = CascadeEngine({"name": "t", "global_timeout_ms": 20, "stages": {"A": {}}})
    engine.register_stage("A", metrics)
    assert (await engine.execute({}))["timed_out"] is True
    assert metrics.metrics["errors"] == 1 and metrics.metrics["success_rate"] == 0.0

    outside = CircuitBreakerPlugin(hang, failure_threshold=1, reset_timeout_seconds=60)
    engine = CascadeEngine({"name": "t", "stages": {"A": {}}})
    engine.register_stage("A", outside)
    task = asyncio.ensure_future(engine.execute({}))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outside.state == "closed"


async def test_plugin_arguments_are_checked_up_front() -> None:
    """A string for the plugin list, options for a plugin not in it, a handler that is not
    callable and bad retry counts fail with what to write instead."""
    from cascadence.cascade.plugins import (
        CachePlugin,
        MetricsPlugin,
        PluginFactory,
        RetryPlugin,
    )

    async def handler(_ctx: Any) -> str:
        return "ok"

    with pytest.raises(TypeError, match=r"write \['cache'\]"):
        await PluginFactory.wrap_handler(handler, "cache")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in plugins"):
        await PluginFactory.wrap_handler(handler, ["cache"], {"retry": {"max_retries": 2}})
    with pytest.raises(TypeError, match="wraps a handler function"):
        CachePlugin("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wraps a handler function"):
        MetricsPlugin(None)  # type: ignore[arg-type]
    for bad in (-1, "3", 1.5):
        with pytest.raises(ValueError, match="max_retries must be a whole number"):
            RetryPlugin(handler, max_retries=bad)  # type: ignore[arg-type]


def test_context_set_writes_through_list_indices_without_touching_the_input() -> None:
    """`set` follows list indices as `get` reads them, copying what it writes into."""
    data = {"items": [{"price": 1}, {"price": 2}], "pair": (1, 2)}
    ctx = ExecutionContext(data)
    ctx.set("items.0.flag", True)
    ctx.set("items.-1.price", 9)
    ctx.set("pair.0", 5)
    assert ctx.get("items.0.flag") is True and ctx.get("items.1.price") == 9
    assert ctx.get("pair") == [5, 2]
    assert data == {"items": [{"price": 1}, {"price": 2}], "pair": (1, 2)}
    with pytest.raises(TypeError, match="is not an index"):
        ctx.set("items.first.flag", 1)
    with pytest.raises(TypeError, match="out of range"):
        ctx.set("items.5", 1)


async def test_metrics_plugin_leaves_out_calls_cancelled_from_outside() -> None:
    """A call its caller cancelled has no outcome: not counted as a success or a failure."""
    from cascadence.cascade.plugins import MetricsPlugin

    async def slow(_ctx: Any) -> str:
        await asyncio.sleep(5)
        return "late"

    metrics = MetricsPlugin(slow)
    task = asyncio.ensure_future(metrics({}))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert metrics.metrics["count"] == 0 and metrics.metrics["errors"] == 0


def test_context_set_never_writes_into_the_callers_objects() -> None:
    """Containers the context copied stay alive while it lives, so a freed copy's id cannot
    be taken by a caller's dict that would then be written in place."""
    for _ in range(200):
        shared = {"k": 1}
        ctx = ExecutionContext({"a": {"x": 0}})
        ctx.set("a.x", 1)
        ctx.set("a", 0)  # the copy of `a` is no longer referenced by the data
        ctx.set("b", shared)
        ctx.set("b.k", 2)
        assert shared == {"k": 1}
        assert ctx.get("b.k") == 2
