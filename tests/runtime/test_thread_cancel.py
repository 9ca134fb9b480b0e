"""Cancelling the await of a thread-run (plain `def`) handler stops the function in its thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from cascadence import Cadence, CascadeConfig, CascadeEngine, RetryExhaustedError, Score, note
from cascadence import TimeoutError as CadenceTimeout
from cascadence.runtime.invoke import call_with_deadline, to_async
from cascadence.runtime.threads import run_in_thread
from cascadence.testing import FakeClock

WAIT = 5.0  # generous: only a broken implementation ever waits this long


async def wait_for_event(event: threading.Event) -> bool:
    """Wait for a thread's signal without blocking the loop (polling, not a worker thread)."""
    deadline = time.monotonic() + WAIT
    while not event.is_set():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0)  # a tight poll: the tests cancel right after the signal
    return True


class Spinner:
    """A function looping in Python forever; `except Exception` does not stop the cancellation."""

    def __init__(self) -> None:
        self.counter = 0
        self.started = threading.Event()
        self.finished = threading.Event()

    def __call__(self, _: object) -> None:
        self.started.set()
        try:
            while True:
                self.counter += 1  # first: on 3.10 a loop starting with `try` never yields
                try:
                    _ = self.counter
                except Exception:  # must not swallow the injected cancellation
                    continue
        finally:
            self.finished.set()

    async def assert_stopped(self) -> None:
        assert await wait_for_event(self.finished)
        seen = self.counter
        await asyncio.sleep(0.05)
        assert self.counter == seen


async def cancel_a_spinning_call() -> None:
    """Start a spinning thread-run call, cancel its task, and check the loop stopped."""
    spin = Spinner()
    task = asyncio.create_task(run_in_thread(spin, None))
    assert await wait_for_event(spin.started)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await spin.assert_stopped()


async def test_a_python_loop_stops_when_its_task_is_cancelled() -> None:
    await cancel_a_spinning_call()


async def test_a_python_loop_stops_at_a_timeout() -> None:
    spin = Spinner()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(run_in_thread(spin, None), 0.05)
    await spin.assert_stopped()

    step = Spinner()
    with pytest.raises(CadenceTimeout):
        await call_with_deadline(to_async(step), None, 0.05, "spin")
    await step.assert_stopped()


async def test_nothing_after_a_blocking_call_runs_once_timed_out() -> None:
    """time.sleep finishes (a C call), but the side effect after it never happens."""
    effects: list[str] = []

    def slow(_: object) -> None:
        time.sleep(0.3)
        effects.append("late")

    with pytest.raises(CadenceTimeout):
        await call_with_deadline(to_async(slow), None, 0.05, "slow")
    await asyncio.sleep(0.5)
    assert effects == []


async def test_result_errors_and_contextvars_are_as_with_to_thread() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")

    def read(suffix: str) -> str:
        var.set("changed in the thread")  # in a copy: the caller's context is untouched
        return suffix

    assert await run_in_thread(lambda _: var.get(), None) == "caller"
    assert await run_in_thread(read, "ok") == "ok"
    assert var.get() == "caller"

    def fail(_: object) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_in_thread(fail, None)


async def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    blocker_started = threading.Event()
    ran: list[str] = []

    def block(_: object) -> None:
        blocker_started.set()
        release.wait(WAIT)

    blocker = asyncio.create_task(run_in_thread(block, None, executor=pool))
    assert await wait_for_event(blocker_started)
    queued = asyncio.create_task(run_in_thread(ran.append, "queued", executor=pool))
    await asyncio.sleep(0.01)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    await blocker
    assert await run_in_thread(lambda x: x, "after", executor=pool) == "after"  # it is free
    assert ran == []
    pool.shutdown()


@dataclass
class S(Score):
    result: str = ""


async def test_a_timed_out_plain_note_does_not_write_the_score_later() -> None:
    writes: list[str] = []

    @note(timeout=0.1)
    def slow_note(score: S) -> None:
        time.sleep(0.3)
        score.result = "late"
        writes.append("late")

    score = S()
    with pytest.raises(CadenceTimeout):
        await Cadence("f", score).then("slow", slow_note).run()
    await asyncio.sleep(0.5)
    assert score.result == ""
    assert writes == []


async def test_retried_timed_out_attempts_have_no_side_effects() -> None:
    attempts: list[int] = []
    effects: list[int] = []

    @note(retry=3, timeout=0.05, clock=FakeClock())  # the fake clock skips the backoff sleeps
    def slow_note(score: S) -> None:
        attempts.append(1)
        time.sleep(0.2)
        effects.append(1)

    with pytest.raises(RetryExhaustedError) as info:
        await Cadence("f", S()).then("slow", slow_note).run()
    assert isinstance(info.value.last_error, CadenceTimeout)
    await asyncio.sleep(0.5)
    assert len(attempts) == 3
    assert effects == []


async def test_engine_stage_timeout_stops_a_plain_handler() -> None:
    flag = threading.Event()

    def handler(_ctx: Any) -> dict[str, Any]:
        time.sleep(0.2)
        flag.set()
        return {"result": "late"}

    engine = CascadeEngine(
        CascadeConfig.from_dict({"name": "c", "stages": {"S": {"timeout_ms": 50}}})
    )
    engine.register_stage("S", handler)
    result = await engine.execute({})
    assert result["stage_results"]["S"]["error_type"] == "TimeoutError"
    await asyncio.sleep(0.5)
    assert not flag.is_set()


def _busy(n: int) -> int:
    total = 0
    for i in range(n):  # Python bytecode: a stray pending injection would land here
        total += i
    return total


async def test_workers_stay_healthy_and_injections_never_reach_later_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    workers: set[int] = set()

    for _ in range(5):  # cancellations that do interrupt running Python code
        await cancel_a_spinning_call()

    # Cancel near the moment the function returns: a tiny GIL switch interval makes the loop
    # thread's cancellation interleave with the worker's last bytecodes and its bookkeeping.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for i in range(600):
            returning = threading.Event()

            def finish(n: int, returning: threading.Event = returning) -> int:
                workers.add(threading.get_ident())
                returning.set()
                return _busy(n)

            task = asyncio.create_task(run_in_thread(finish, (i % 40) * 100))
            if i % 4:
                assert await wait_for_event(returning)
            else:
                await asyncio.sleep(0)  # queued or just started
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        sys.setswitchinterval(interval)

    results = await asyncio.wait_for(
        asyncio.gather(*(run_in_thread(_busy, 2000) for _ in range(200))), WAIT
    )
    assert results == [_busy(2000)] * 200
    alive = {thread.ident for thread in threading.enumerate() if thread.is_alive()}
    assert workers <= alive
    assert not [r for r in caplog.records if r.name.startswith("concurrent.futures")]


class Blocked:
    """A plain function blocked in a C call (a lock wait) until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.returned = threading.Event()
        self.ended = threading.Event()

    def __call__(self, *_: object) -> dict[str, Any]:
        try:
            self.release.wait(WAIT)
            self.returned.set()  # never: the stop lands when the wait ends
            return {"result": "late", "confidence": 1.0}
        finally:
            self.ended.set()

    def stopped(self) -> bool:
        """Release the call; true when it then ended without running on."""
        self.release.set()
        return self.ended.wait(WAIT) and not self.returned.is_set()


def test_a_timed_out_plain_function_called_directly_returns_while_still_blocked() -> None:
    """The synchronous entry points return at the timeout: they do not wait, as `asyncio.run`
    would, for the worker thread still blocked in the abandoned call."""
    blocked = Blocked()
    slow = note(timeout=0.05)(blocked)
    try:
        with pytest.raises(CadenceTimeout):
            slow(None)
        assert not blocked.ended.is_set()  # it returned while the call was still blocked
    finally:
        assert blocked.stopped()


def test_run_sync_and_execute_sync_return_while_a_timed_out_call_is_blocked() -> None:
    flow_call = Blocked()
    flow = Cadence("slow", S()).then("wait", note(timeout=0.05)(flow_call))
    stage_call = Blocked()
    engine = CascadeEngine(
        CascadeConfig.from_dict({"name": "slow", "stages": {"WAIT": {"timeout_ms": 50}}})
    )
    engine.register_stage("WAIT", stage_call)
    try:
        with pytest.raises(CadenceTimeout):
            flow.run_sync()
        result = engine.execute_sync({})
        assert result["stage_results"]["WAIT"]["error_type"] == "TimeoutError"
        assert not flow_call.ended.is_set() and not stage_call.ended.is_set()
    finally:
        assert flow_call.stopped() and stage_call.stopped()


async def test_plain_notes_of_a_parallel_group_all_run_at_once() -> None:
    """Twelve plain notes (more than the loop's default executor has threads on a small
    machine) meet at a barrier: only if all run at the same time does any get past it, and
    their timeouts do not run out while they wait for a thread."""
    width = 12
    barrier = threading.Barrier(width, timeout=WAIT)

    def meeter(i: int) -> Any:
        def meet(score: S) -> None:
            barrier.wait()

        meet.__name__ = f"meet{i}"
        return note(timeout=WAIT * 2)(meet)

    notes = [meeter(i) for i in range(width)]
    await Cadence("wide", S()).sync("all", notes).run()
    assert not barrier.broken


async def test_a_plain_function_raising_stop_iteration_fails_at_once() -> None:
    def empty(_: object) -> object:
        return next(iter(()))

    with pytest.raises(RuntimeError, match="raised StopIteration") as info:
        await run_in_thread(empty, None)
    assert isinstance(info.value.__cause__, StopIteration)
    engine = CascadeEngine(CascadeConfig.from_dict({"name": "c", "stages": {"A": {}}}))
    engine.register_stage("A", lambda context: {"result": next(iter(()))})
    result = await engine.execute({})
    assert result["success"] is False
    assert "StopIteration" in result["stage_results"]["A"]["error"]


def test_the_thread_limit_is_checked_and_can_be_changed() -> None:
    from cascadence.runtime.threads import max_threads, set_max_threads

    before = max_threads()
    with pytest.raises(ValueError, match="whole number >= 1"):
        set_max_threads(0)
    try:
        set_max_threads(3)
        assert max_threads() == 3
        done = asyncio.run(Cadence("one", S()).then("plain", lambda score: None).run())
        assert isinstance(done, S)
    finally:
        set_max_threads(before)
