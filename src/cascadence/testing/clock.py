"""`FakeClock`: a clock that moves only when told, for tests without real waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["FakeClock"]


class FakeClock:
    """A controllable clock satisfying `cascadence.runtime.clock.Clock`.

    With `auto_advance=True` (the default) `sleep(s)` moves the clock forward by `s` at once,
    records `s` in `sleeps` and yields to the event loop once, so code that backs off runs
    instantly while tests can assert the exact sleeps. With `auto_advance=False`, `sleep(s)`
    blocks until `advance()` moves the clock to or past its deadline.

    Args:
        start: Initial monotonic reading.
        wall_start: Initial wall-clock reading (epoch seconds); moves together with `now()`.
        auto_advance: Whether `sleep` advances the clock itself.

    Example:
        >>> clock = FakeClock()
        >>> clock.advance(2.5)
        >>> clock.now()
        2.5
    """

    def __init__(
        self,
        start: float = 0.0,
        wall_start: float = 1_700_000_000.0,
        auto_advance: bool = True,
    ) -> None:
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []
        """Every duration passed to `sleep`, in call order."""
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Return the current monotonic reading."""
        return self._now

    def time(self) -> float:
        """Return the current wall-clock reading (epoch seconds)."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward and wake every sleeper whose deadline has passed.

        Raises:
            ValueError: If `seconds` is negative.
        """
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (advance({seconds!r})); expected >= 0")
        self._now += seconds
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._now:
            _, _, fut = heapq.heappop(waiters)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the fake timeline (see the class docstring for both modes)."""
        seconds = float(seconds) if seconds > 0 else 0.0
        self.sleeps.append(seconds)
        if self.auto_advance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        deadline = self._now + seconds
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (deadline, next(self._seq), fut))
        await fut

    @property
    def pending(self) -> int:
        """How many sleepers are waiting for `advance()` (manual mode)."""
        return sum(1 for _, _, f in self._waiters if not f.done())

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, auto_advance={self.auto_advance!r})"
