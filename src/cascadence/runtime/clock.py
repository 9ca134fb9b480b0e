"""Injected time: the `Clock` protocol and the system clock.

Everything in cascadence that waits or measures time (retry backoff, timeouts, circuit breakers,
cache TTLs, checkpoint leases, learning windows) takes a `Clock`, so tests can swap in
`cascadence.testing.FakeClock` and check exact sequences without real waiting.
"""

from __future__ import annotations

import asyncio
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time and a way to wait.

    `now()` is monotonic and only meaningful as a difference; `time()` is wall-clock epoch
    seconds, used for anything stored or compared across processes (leases, timestamps).
    """

    def now(self) -> float:
        """Return monotonic seconds."""
        ...

    def time(self) -> float:
        """Return wall-clock seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (returns at once for zero or negative values)."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time` and `asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        """Return `time.monotonic()`."""
        return _time.monotonic()

    def time(self) -> float:
        """Return `time.time()`."""
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait with `asyncio.sleep`."""
        await asyncio.sleep(seconds if seconds > 0 else 0)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: SystemClock = SystemClock()
"""The process-wide default clock."""
