"""Calling a step: the no-timer fast path, real cancellation on timeout, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.runtime.gather import gather_calls
from cascadence.runtime.invoke import call_with_deadline, to_async


async def test_immediate_handler_returns_without_a_timer() -> None:
    """A handler that never suspends returns its value through the fast path."""

    async def quick(x: int) -> int:
        return x * 2

    assert await call_with_deadline(quick, 21, 0.001, "quick") == 42


async def test_timeout_cancels_the_handler() -> None:
    """A handler still running at its timeout sees CancelledError and the caller a TimeoutError."""
    seen: list[str] = []

    async def slow(_: object) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with pytest.raises(StepTimeoutError) as info:
        await call_with_deadline(slow, None, 0.01, "slow")
    assert seen == ["cancelled"]
    assert info.value.note_name == "slow"
    assert isinstance(info.value, TimeoutError)


async def test_handler_own_timeout_error_is_not_ours() -> None:
    """A builtin TimeoutError raised by the handler itself propagates unchanged."""

    async def raises(_: object) -> None:
        await asyncio.sleep(0)
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError, match="upstream") as info:
        await call_with_deadline(raises, None, 5, "x")
    assert not isinstance(info.value, StepTimeoutError)


async def test_suspending_handler_result_flows_back() -> None:
    """A handler that suspends several times still returns its value under a deadline."""

    async def multi(x: int) -> int:
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return x + 1

    assert await call_with_deadline(multi, 1, 5, "multi") == 2


async def test_sync_handler_timeout_without_signals() -> None:
    """A plain function runs in a thread, so its timeout returns on time without signals."""
    import threading

    release = threading.Event()

    def blocking(_: object) -> str:
        release.wait(5)
        return "late"

    fn = to_async(blocking)
    with pytest.raises(StepTimeoutError):
        await call_with_deadline(fn, None, 0.02, "blocking")
    release.set()


async def test_gather_calls_overlaps_suspending_calls() -> None:
    """Calls that sleep run concurrently: their intervals overlap."""
    loop = asyncio.get_running_loop()
    spans: list[tuple[float, float]] = []

    async def sleeper(_: object) -> None:
        start = loop.time()
        await asyncio.sleep(0.02)
        spans.append((start, loop.time()))

    outcomes = await gather_calls([(sleeper, None, 1.0, f"s{i}") for i in range(5)])
    assert all(ok for ok, _, _ in outcomes)
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end


async def test_gather_calls_fail_fast_cancels_siblings() -> None:
    """With fail_fast, the first failure cancels calls still running."""
    cancelled: list[bool] = []

    async def slow(_: object) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def fails(_: object) -> None:
        await asyncio.sleep(0.001)
        raise ValueError("bad")

    outcomes = await gather_calls(
        [(slow, None, None, "slow"), (fails, None, None, "f")], fail_fast=True
    )
    assert outcomes[1][0] is False and isinstance(outcomes[1][1], ValueError)
    assert cancelled == [True]


async def test_gather_calls_gives_each_call_its_own_context() -> None:
    """A context variable set by one call (before or after suspending) is invisible to the
    others and to the caller, as with one task per call."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="caller")
    seen: dict[str, str] = {}

    def setter(name: str, suspend: bool) -> object:
        async def call(_: object) -> None:
            token = var.set(name)
            if suspend:
                await asyncio.sleep(0.001)
            seen[name] = var.get()
            var.reset(token)  # must not fail: the token belongs to this call's context

        return call

    outcomes = await gather_calls(
        [(setter("a", True), None, 1.0, "a"), (setter("b", False), None, None, "b")]
    )
    assert all(ok for ok, _, _ in outcomes)
    assert seen == {"a": "a", "b": "b"}
    assert var.get() == "caller"
