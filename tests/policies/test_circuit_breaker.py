"""Circuit breaker transitions, on a fake clock, local and through a shared store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cascadence.errors import CircuitOpenError
from cascadence.policies import (
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    InMemoryBreakerStore,
    StepPolicy,
)
from cascadence.runtime.invoke import call_step
from cascadence.testing import FakeClock


async def _fail(_: object) -> None:
    raise RuntimeError("boom")


async def _ok(_: object) -> str:
    return "ok"


async def test_opens_after_threshold_and_refuses_calls() -> None:
    """Three consecutive failures open the circuit; the next call is refused without running."""
    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=3, recovery_timeout=10, clock=clock)
    policy = StepPolicy(breaker=breaker)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await call_step("svc", _fail, None, policy)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await call_step("svc", _ok, None, policy)
    assert info.value.retry_after == pytest.approx(10)


async def test_half_open_probe_closes_or_reopens() -> None:
    """After the recovery timeout one probe runs: success closes, failure reopens."""
    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=1, recovery_timeout=5, clock=clock)
    policy = StepPolicy(breaker=breaker)
    with pytest.raises(RuntimeError):
        await call_step("svc", _fail, None, policy)
    clock.advance(4.9)
    with pytest.raises(CircuitOpenError):
        await call_step("svc", _ok, None, policy)
    clock.advance(0.2)
    with pytest.raises(RuntimeError):
        await call_step("svc", _fail, None, policy)
    assert breaker.state is BreakerState.OPEN
    clock.advance(5)
    assert await call_step("svc", _ok, None, policy) == "ok"
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("shared", [False, True])
async def test_a_cancelled_probe_gives_its_half_open_slot_back(shared: bool) -> None:
    """A half-open probe cancelled by its caller (a disconnect, a failing sibling) has no
    outcome: the next call probes again instead of the breaker refusing calls forever."""
    clock = FakeClock()
    store = InMemoryBreakerStore() if shared else None
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, recovery_timeout=5, clock=clock, store=store
    )
    policy = StepPolicy(breaker=breaker)
    with pytest.raises(RuntimeError):
        await call_step("svc", _fail, None, policy)
    clock.advance(6)
    started = asyncio.Event()

    async def hang(_: object) -> None:
        started.set()
        await asyncio.Event().wait()

    probe = asyncio.ensure_future(call_step("svc", hang, None, policy))
    await started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert await call_step("svc", _ok, None, policy) == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_success_resets_the_failure_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = CircuitBreaker("svc", failure_threshold=2, clock=FakeClock())
    policy = StepPolicy(breaker=breaker)
    with pytest.raises(RuntimeError):
        await call_step("svc", _fail, None, policy)
    await call_step("svc", _ok, None, policy)
    with pytest.raises(RuntimeError):
        await call_step("svc", _fail, None, policy)
    assert breaker.state is BreakerState.CLOSED


async def test_two_breakers_sharing_a_store_open_together() -> None:
    """Failures seen by one replica open the circuit for another replica sharing the store."""
    clock = FakeClock()
    store = InMemoryBreakerStore()
    a = CircuitBreaker("shared", failure_threshold=2, recovery_timeout=30, clock=clock, store=store)
    b = CircuitBreaker("shared", failure_threshold=2, recovery_timeout=30, clock=clock, store=store)
    await a.record_failure()
    await b.record_failure()
    with pytest.raises(CircuitOpenError):
        await a.before_call()
    assert await b.refresh() is BreakerState.OPEN


def test_state_change_callback() -> None:
    """on_state_change reports every transition."""
    import asyncio

    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "cb",
        failure_threshold=1,
        clock=FakeClock(),
        on_state_change=lambda _n, old, new: seen.append((old.value, new.value)),
    )
    asyncio.run(breaker.record_failure())
    assert seen == [("closed", "open")]


async def test_a_breaker_that_opens_during_retries_raises_circuit_open() -> None:
    """With retry and a breaker on one step, once the breaker opens the step fails with
    `CircuitOpenError` (what `except CircuitOpenError` expects), not a retry exhaustion."""
    from cascadence.policies import RetryPolicy

    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=2, recovery_timeout=60, clock=clock)
    calls: list[int] = []

    async def down(_arg: object) -> None:
        calls.append(1)
        raise ConnectionError("down")

    policy = StepPolicy(retry=RetryPolicy(max_attempts=5, delay=0), breaker=breaker, clock=clock)
    with pytest.raises(CircuitOpenError):
        await call_step("fetch", down, None, policy)
    assert len(calls) == 2  # the third attempt was refused by the open breaker


async def test_a_call_let_through_before_the_circuit_opened_holds_no_probe_slot() -> None:
    """A call admitted while closed and cancelled after the circuit went half-open does not
    give back the slot of the probe in flight: half_open_max_calls still holds."""
    clock = FakeClock()
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=10, clock=clock)
    started, finish = asyncio.Event(), asyncio.Event()

    async def long_call() -> None:
        started.set()
        await finish.wait()

    old = asyncio.ensure_future(breaker.call(long_call))  # admitted while closed
    await started.wait()
    await breaker.before_call()
    await breaker.record_failure()  # another call failed: the circuit opens
    assert breaker.state is BreakerState.OPEN
    clock.advance(11)

    async def probe() -> None:
        await breaker.before_call()  # the one probe of the half-open period
        await finish.wait()
        await breaker.record_success()

    probing = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.snapshot.half_open_calls == 1
    old.cancel()
    with pytest.raises(asyncio.CancelledError):
        await old
    assert breaker.snapshot.half_open_calls == 1
    with pytest.raises(CircuitOpenError):
        await breaker.before_call()  # a second probe is still refused
    finish.set()
    await probing
    assert breaker.state is BreakerState.CLOSED


def test_one_breaker_shared_by_event_loops_in_several_threads_counts_every_failure() -> None:
    """Failures recorded from loops in 8 threads at once are all counted."""
    import threading

    breaker = CircuitBreaker("b", failure_threshold=10**9)

    def worker() -> None:
        async def fail_many() -> None:
            for _ in range(2000):
                await breaker.record_failure()

        asyncio.run(fail_many())

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a lost update would show
    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert breaker.snapshot.failures == 16_000


async def test_nested_breakers_each_give_their_probe_slot_back() -> None:
    """A call through two breakers (a stage's breaker around a CircuitBreakerPlugin) is a
    probe of both when both are half-open; cancelled, it frees both slots."""
    clock = FakeClock()
    outer = CircuitBreaker("outer", failure_threshold=1, recovery_timeout=10, clock=clock)
    inner = CircuitBreaker("inner", failure_threshold=1, recovery_timeout=10, clock=clock)
    for breaker in (outer, inner):
        await breaker.before_call()
        await breaker.record_failure()
    clock.advance(11)
    hang = asyncio.Event()

    async def through_both() -> object:
        return await outer.call(lambda: inner.call(hang.wait))

    call = asyncio.ensure_future(through_both())
    await asyncio.sleep(0)
    assert outer.snapshot.half_open_calls == 1 and inner.snapshot.half_open_calls == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert outer.snapshot.half_open_calls == 0 and inner.snapshot.half_open_calls == 0
    hang.set()
    assert await through_both() is True  # the next call probes both, and closes them
    assert outer.state is BreakerState.CLOSED and inner.state is BreakerState.CLOSED


async def test_a_stage_that_hangs_opens_its_breaker_with_the_default_timeouts() -> None:
    """The stage's own timeout and the run's deadline fall together (30 s each by default):
    a stage that hangs is failing, not cut off by the run, and its breaker opens."""
    from cascadence import CascadeEngine

    clock_free = CascadeEngine(
        {
            "name": "c",
            "global_timeout_ms": 100,
            "stages": {"A": {"timeout_ms": 100, "circuit_breaker": {"failure_threshold": 1}}},
        }
    )
    calls: list[int] = []

    async def hangs(_ctx: object) -> dict[str, object]:
        calls.append(1)
        await asyncio.sleep(10)
        return {"result": "never"}

    clock_free.register_stage("A", hangs)
    for _ in range(3):
        await clock_free.execute({})
    breaker = clock_free.breaker("A")
    assert breaker is not None and breaker.state is BreakerState.OPEN
    assert calls == [1]  # the later runs were refused by the open circuit


async def test_a_success_threshold_above_the_probe_slots_still_closes() -> None:
    """With success_threshold=2 and one probe slot, a successful probe frees its slot for
    the next one, and two successes close the circuit."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "b", failure_threshold=1, recovery_timeout=1, success_threshold=2, clock=clock
    )
    await breaker.before_call()
    await breaker.record_failure()
    clock.advance(2)

    async def good() -> str:
        return "ok"

    assert await breaker.call(good) == "ok"
    assert breaker.state is BreakerState.HALF_OPEN and breaker.snapshot.half_open_calls == 0
    assert await breaker.call(good) == "ok"
    assert breaker.state is BreakerState.CLOSED


class SlowStore(InMemoryBreakerStore):
    """A shared store whose writes take a while (a network round trip), applied at once."""

    def __init__(self) -> None:
        super().__init__()
        self.applied = asyncio.Event()

    async def apply(self, name: str, fn: Any) -> Any:
        result = await super().apply(name, fn)
        self.applied.set()
        await asyncio.sleep(0.01)  # the reply is on its way
        return result


async def _cancel_once_stored(store: SlowStore, step: Any) -> BreakerSnapshot:
    """Run `step`, cancel it once the store applied its write (before the reply comes), and
    return what the store then holds."""
    store.applied.clear()
    running = asyncio.ensure_future(step)
    await store.applied.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    shared, _ = await store.apply("b", lambda s: (s, True))
    return shared


async def test_a_caller_cancelled_while_the_shared_store_answers_leaves_no_slot_taken() -> None:
    """Cancelled after the store let a probe through but before the reply came, the call
    gives the slot back; cancelled while its success is written, the success is recorded."""
    store = SlowStore()
    clock = FakeClock()
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=1, clock=clock, store=store)
    await breaker.before_call()
    await breaker.record_failure()
    clock.advance(2)
    shared = await _cancel_once_stored(store, breaker.before_call())
    assert shared.state is BreakerState.HALF_OPEN and shared.half_open_calls == 0
    await breaker.before_call()  # the next probe gets the slot
    shared = await _cancel_once_stored(store, breaker.record_success())
    assert shared.state is BreakerState.CLOSED
