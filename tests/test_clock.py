"""The Clock protocol, the system clock and FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from cascadence.runtime.clock import SYSTEM_CLOCK, Clock, SystemClock
from cascadence.testing import FakeClock


def test_both_clocks_satisfy_the_protocol() -> None:
    """SystemClock and FakeClock are Clocks."""
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(SYSTEM_CLOCK, SystemClock)
    assert isinstance(FakeClock(), Clock)


async def test_system_clock_reads_real_time() -> None:
    """The system clock is monotonic and its wall time is epoch seconds."""
    first = SYSTEM_CLOCK.now()
    await SYSTEM_CLOCK.sleep(0)
    await SYSTEM_CLOCK.sleep(-1)
    assert SYSTEM_CLOCK.now() >= first
    assert SYSTEM_CLOCK.time() > 1_600_000_000


def test_fake_clock_starts_where_told_and_advances() -> None:
    """now() and time() start at the given readings and move together."""
    clock = FakeClock(start=5.0, wall_start=1000.0)
    assert (clock.now(), clock.time()) == (5.0, 1000.0)
    clock.advance(2.5)
    assert (clock.now(), clock.time()) == (7.5, 1002.5)
    assert FakeClock().time() == 1_700_000_000.0


def test_fake_clock_refuses_to_go_back() -> None:
    """advance() with a negative amount is an error."""
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)


async def test_auto_advance_records_sleeps() -> None:
    """With auto_advance, sleep moves the clock at once and is recorded."""
    clock = FakeClock()
    for seconds in (1, 2, 4, -3):
        await clock.sleep(seconds)
    assert clock.sleeps == [1.0, 2.0, 4.0, 0.0]
    assert clock.now() == 7.0


async def test_auto_advance_sleep_yields_to_other_tasks() -> None:
    """An auto-advancing sleep still lets other ready tasks run."""
    clock = FakeClock()
    seen: list[str] = []

    async def other() -> None:
        seen.append("other")

    task = asyncio.create_task(other())
    await clock.sleep(1)
    assert seen == ["other"]
    await task


async def test_manual_clock_wakes_sleepers_in_deadline_order() -> None:
    """Without auto_advance, sleepers wake only when advance() passes their deadline."""
    clock = FakeClock(auto_advance=False)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    tasks = [asyncio.create_task(sleeper(s)) for s in (3.0, 1.0, 2.0)]
    await asyncio.sleep(0)
    assert clock.pending == 3
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == [1.0]
    clock.advance(10)
    await asyncio.gather(*tasks)
    assert woke == [1.0, 2.0, 3.0]
    assert clock.pending == 0


async def test_manual_clock_zero_sleep_and_cancellation() -> None:
    """A zero sleep returns at once; a cancelled sleeper is dropped on the next advance."""
    clock = FakeClock(auto_advance=False)
    await clock.sleep(0)
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.advance(5)
    assert clock.pending == 0
    assert clock.now() == 5
