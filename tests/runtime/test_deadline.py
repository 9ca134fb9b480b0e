"""A suspended step under a deadline: timeouts, outer cancellation, and the timer's cleanup."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.runtime.invoke import call_with_deadline

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is 3.11+")


async def test_the_handler_sees_cancellation_and_the_caller_a_step_timeout() -> None:
    seen: list[str] = []

    async def slow(_: object) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    with pytest.raises(StepTimeoutError) as info:
        await call_with_deadline(slow, None, 0.01, "slow")
    assert seen == ["cancelled"]
    assert info.value.timeout == pytest.approx(0.01)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_step_that_finishes_in_time_leaves_no_timer_behind() -> None:
    async def quick(_: object) -> str:
        await asyncio.sleep(0.001)
        return "ok"

    assert await call_with_deadline(quick, None, 0.02, "quick") == "ok"
    await asyncio.sleep(0.05)  # past the step's deadline: nothing may cancel this task now
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    started = asyncio.Event()

    async def waits(_: object) -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(call_with_deadline(waits, None, 5.0, "waits"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_timeout_that_fires_first_stays_the_outer_timeout() -> None:
    async def waits(_: object) -> None:
        await asyncio.sleep(10)

    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.01):
            await call_with_deadline(waits, None, 5.0, "waits")
    assert not isinstance(info.value, StepTimeoutError)


async def test_a_handler_that_swallows_the_cancellation_returns_its_value() -> None:
    async def stubborn(_: object) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "partial"
        return "full"

    assert await call_with_deadline(stubborn, None, 0.01, "stubborn") == "partial"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_handler_errors_keep_their_cause() -> None:
    async def fails(_: object) -> None:
        await asyncio.sleep(0)
        try:
            raise KeyError("k")
        except KeyError as exc:
            raise ValueError("bad") from exc

    with pytest.raises(ValueError) as info:
        await call_with_deadline(fails, None, 1.0, "fails")
    assert isinstance(info.value.__cause__, KeyError)


async def test_a_deadline_already_past_cancels_at_the_first_suspension() -> None:
    loop = asyncio.get_running_loop()

    async def waits(_: object) -> None:
        await asyncio.sleep(10)

    with pytest.raises(StepTimeoutError):
        await call_with_deadline(waits, None, None, "waits", deadline=loop.time() - 1)


async def test_a_wait_that_ended_in_time_is_not_cancelled_by_a_busy_loop() -> None:
    """The loop is blocked past the deadline; what the handler waited for was done before the
    deadline, so the handler gets its step and finishes instead of timing out."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[str] = loop.create_future()

    async def waits(_: object) -> str:
        return await ready + " and finished"

    loop.call_later(0.002, time.sleep, 0.06)  # blocks the loop past the 20 ms deadline
    loop.call_later(0.005, ready.set_result, "done in time")
    assert await call_with_deadline(waits, None, 0.02, "waits") == "done in time and finished"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_handler_that_waits_again_after_its_deadline_is_cancelled() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def waits_twice(_: object) -> None:
        await first
        seen.append("first wait over")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    loop.call_later(0.002, time.sleep, 0.06)
    loop.call_later(0.005, first.set_result, None)
    with pytest.raises(StepTimeoutError):
        await call_with_deadline(waits_twice, None, 0.02, "waits_twice")
    assert seen == ["first wait over", "cancelled"]


def test_under_uvloop_work_done_in_time_is_not_timed_out_in_parallel_groups() -> None:
    """uvloop (the loop uvicorn[standard] runs) resumes a task one turn later than asyncio's
    loop does after its wait ends; a deadline's last look waits for that. 5,000 cascades with
    a parallel group whose timed member sleeps 1 ms of its 50 ms, and the same as a `.sync`
    flow, all started at once: none time out."""
    from dataclasses import dataclass

    import uvloop

    from cascadence import Cadence, CascadeEngine, Score, note

    def member(**extra: object) -> dict[str, object]:
        return {"can_run_parallel": True, "parallel_group": "g", **extra}

    engine = CascadeEngine({"name": "c", "stages": {"P1": member(timeout_ms=50), "P2": member()}})

    async def quick(_ctx: object) -> dict[str, int]:
        await asyncio.sleep(0.001)
        return {"result": 1}

    async def at_once(_ctx: object) -> dict[str, int]:
        return {"result": 2}

    engine.register_stages({"P1": quick, "P2": at_once})

    @dataclass
    class S(Score):
        a: int = 0
        b: int = 0

    @note(timeout=0.05)
    async def a(score: S) -> None:
        await asyncio.sleep(0.001)
        score.a = 1

    async def b(score: S) -> None:
        score.b = 1

    flow = Cadence("f", S()).sync("g", [a, b])

    async def main() -> tuple[int, int]:
        results = await asyncio.gather(*(engine.execute({"i": i}) for i in range(5000)))
        timed_out = sum(1 for r in results if r["stage_results"]["P1"].get("error_type"))
        scores = await asyncio.gather(*(flow.run(S()) for _ in range(5000)))
        return timed_out, sum(1 for s in scores if s.a == 1 and s.b == 1)

    import gc

    gc.collect()
    gc.disable()  # a full collection in the burst can take longer than 50 ms by itself
    try:
        assert uvloop.run(main()) == (0, 5000)
    finally:
        gc.enable()
