"""Circuit breaker: stop calling a dependency that keeps failing, probe it again later.

The state machine is one pure function, `breaker_step`, over an immutable `BreakerSnapshot`.
A `CircuitBreaker` keeps its snapshot in process, or in a `BreakerStateStore` (for example
Redis) so that every replica of a service opens and closes together.

```
CLOSED --(failure_threshold consecutive failures)--> OPEN
OPEN   --(recovery_timeout elapsed, next call)-----> HALF_OPEN (up to half_open_max_calls probes)
HALF_OPEN --(success_threshold successes)----------> CLOSED
HALF_OPEN --(any failure)--------------------------> OPEN
```
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal, Protocol

from cascadence.errors import CircuitOpenError
from cascadence.runtime.cancel import is_timeout_cancel
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "BreakerSnapshot",
    "BreakerState",
    "BreakerStateStore",
    "CircuitBreaker",
    "InMemoryBreakerStore",
    "StateListener",
    "breaker_step",
]

Event = Literal["call", "success", "failure", "release"]


class BreakerState(str, Enum):
    """The three states of a circuit breaker."""

    def __str__(self) -> str:  # the value, as in f-strings and logs, on every Python version
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[str, "BreakerState", "BreakerState"], object]
"""Called with (breaker name, old state, new state) when a breaker changes state."""


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """Everything a breaker remembers; small enough to store anywhere."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    half_open_calls: int = 0
    successes: int = 0


@dataclass(frozen=True, slots=True)
class _Params:
    failure_threshold: int
    recovery_timeout: float
    half_open_max_calls: int
    success_threshold: int


def breaker_step(
    snap: BreakerSnapshot,
    event: Event,
    now: float,
    params: _Params,
    probe: float | None = None,
) -> tuple[BreakerSnapshot, bool]:
    """Apply one event to a snapshot.

    `probe`, for a `release`: the `opened_at` of the open period whose half-open probe the
    released call was; a slot is freed only while that period's half-open state lasts.

    Returns:
        The new snapshot and, for a `call` event, whether the call may proceed.
    """
    state = snap.state
    if event == "call":
        if state is BreakerState.CLOSED:
            return snap, True
        if state is BreakerState.OPEN:
            if now - snap.opened_at < params.recovery_timeout:
                return snap, False
            return replace(snap, state=BreakerState.HALF_OPEN, half_open_calls=1, successes=0), True
        if snap.half_open_calls < params.half_open_max_calls:
            return replace(snap, half_open_calls=snap.half_open_calls + 1), True
        return snap, False
    if event == "release":  # a call that ended with no outcome (cancelled) frees its probe slot
        if (
            state is BreakerState.HALF_OPEN
            and snap.half_open_calls > 0
            and (probe is None or probe == snap.opened_at)
        ):
            return replace(snap, half_open_calls=snap.half_open_calls - 1), True
        return snap, True
    if event == "success":
        if state is BreakerState.HALF_OPEN:
            successes = snap.successes + 1
            if successes >= params.success_threshold:
                return BreakerSnapshot(), True
            # the probe is over: its slot goes to the next probe
            calls = max(0, snap.half_open_calls - 1)
            return replace(snap, successes=successes, half_open_calls=calls), True
        if snap.failures:
            return replace(snap, failures=0), True
        return snap, True
    # failure
    if state is BreakerState.HALF_OPEN:
        return BreakerSnapshot(state=BreakerState.OPEN, failures=snap.failures, opened_at=now), True
    failures = snap.failures + 1
    if state is BreakerState.CLOSED and failures >= params.failure_threshold:
        return BreakerSnapshot(state=BreakerState.OPEN, failures=failures, opened_at=now), True
    return replace(snap, failures=failures), True


_PROBE: contextvars.ContextVar[tuple[tuple[CircuitBreaker, float], ...]] = contextvars.ContextVar(
    "cascadence_breaker_probe", default=()
)
"""The half-open probe slots the current task holds: (breaker, opened_at of that open period)
per breaker (nested breakers each hold their own)."""


class BreakerStateStore(Protocol):
    """Where breaker snapshots live when several processes share one breaker."""

    async def apply(
        self, name: str, fn: Callable[[BreakerSnapshot], tuple[BreakerSnapshot, bool]]
    ) -> tuple[BreakerSnapshot, bool]:
        """Atomically replace the snapshot of `name` by `fn(snapshot)` and return fn's result."""
        ...


class InMemoryBreakerStore:
    """A process-local `BreakerStateStore`, mainly for tests of the shared path."""

    def __init__(self) -> None:
        self._snaps: dict[str, BreakerSnapshot] = {}

    async def apply(
        self, name: str, fn: Callable[[BreakerSnapshot], tuple[BreakerSnapshot, bool]]
    ) -> tuple[BreakerSnapshot, bool]:
        """Apply `fn` to the snapshot of `name` (no await in between, so it is atomic)."""
        new, allowed = fn(self._snaps.get(name, BreakerSnapshot()))
        self._snaps[name] = new
        return new, allowed


class CircuitBreaker:
    """Refuse calls to a failing dependency for a while (see the module docstring).

    Args:
        name: Identifies the breaker in errors, metrics and a shared store.
        failure_threshold: Consecutive failures that open the circuit.
        recovery_timeout: Seconds the circuit stays open before a probe is allowed.
        half_open_max_calls: Probes allowed at once while half-open.
        success_threshold: Successful probes needed to close again.
        clock: Time source (inject `FakeClock` in tests).
        store: Shared state; None keeps the state in this object.
        on_state_change: Called with (breaker name, old state, new state).
    """

    def __init__(
        self,
        name: str = "circuit",
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        *,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        clock: Clock = SYSTEM_CLOCK,
        store: BreakerStateStore | None = None,
        on_state_change: Callable[[str, BreakerState, BreakerState], object] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if recovery_timeout < 0:
            raise ValueError(f"recovery_timeout must be >= 0, got {recovery_timeout!r}")
        self.name = name
        self.clock = clock
        self.store = store
        self.on_state_change = on_state_change
        self._listeners: tuple[StateListener, ...] = ()
        self._params = _Params(
            failure_threshold, float(recovery_timeout), half_open_max_calls, success_threshold
        )
        self._snap = BreakerSnapshot()
        # event loops in several threads may share a breaker (an engine's `execute_sync` from
        # worker threads): each local step is applied under this lock
        self._lock = threading.Lock()

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the circuit."""
        return self._params.failure_threshold

    @property
    def recovery_timeout(self) -> float:
        """Seconds the circuit stays open before a probe."""
        return self._params.recovery_timeout

    @property
    def state(self) -> BreakerState:
        """The last state this process saw (for a shared breaker, call `refresh()` first)."""
        return self._snap.state

    @property
    def snapshot(self) -> BreakerSnapshot:
        """The last snapshot this process saw."""
        return self._snap

    def _now(self) -> float:
        # A shared breaker compares timestamps across processes: use wall time there.
        return self.clock.time() if self.store is not None else self.clock.now()

    async def _apply(self, event: Event, probe: float | None = None) -> bool:
        now = self._now()
        params = self._params
        if self.store is None:
            with self._lock:
                old = self._snap.state
                self._snap, allowed = breaker_step(self._snap, event, now, params, probe)
                new = self._snap
        else:
            old = self._snap.state
            # The shared state is written even if the caller is cancelled while it waits for
            # the store: an outcome is recorded, and a probe slot taken is given back.
            write = asyncio.ensure_future(
                self.store.apply(self.name, lambda s: breaker_step(s, event, now, params, probe))
            )
            try:
                new, allowed = await asyncio.shield(write)
            except asyncio.CancelledError:
                new, allowed = await write
                if event == "call" and allowed and new.state is BreakerState.HALF_OPEN:
                    opened = new.opened_at
                    await self.store.apply(
                        self.name, lambda s: breaker_step(s, "release", now, params, opened)
                    )
                raise
            self._snap = new
        held = _PROBE.get()
        if event == "call" and allowed and new.state is BreakerState.HALF_OPEN:
            # this task holds a probe slot of this breaker (and keeps those of others)
            _PROBE.set((*(p for p in held if p[0] is not self), (self, new.opened_at)))
        elif held and event in ("success", "failure"):  # the probe had its outcome
            _PROBE.set(tuple(p for p in held if p[0] is not self))
        if new.state is not old:
            self._notify(old)
        return allowed

    def _notify(self, old: BreakerState) -> None:
        new = self._snap.state
        if self.on_state_change is not None:
            self.on_state_change(self.name, old, new)
        for listener in self._listeners:
            listener(self.name, old, new)

    def add_state_listener(self, listener: StateListener) -> None:
        """Also call `listener(name, old state, new state)` on every state change.

        Unlike `on_state_change`, any number of listeners may be added, at any time (metrics
        reporters use this to follow breakers they did not create).
        """
        if listener not in self._listeners:
            self._listeners = (*self._listeners, listener)

    async def refresh(self) -> BreakerState:
        """Re-read the shared state (a no-op for a local breaker)."""
        if self.store is not None:
            old = self._snap.state
            self._snap, _ = await self.store.apply(self.name, lambda s: (s, True))
            if self._snap.state is not old:
                self._notify(old)
        return self._snap.state

    async def before_call(self) -> None:
        """Raise `CircuitOpenError` unless a call may go through now."""
        if self.store is None and self._snap.state is BreakerState.CLOSED:
            return
        if not await self._apply("call"):
            retry_after = max(0.0, self._snap.opened_at + self.recovery_timeout - self._now())
            raise CircuitOpenError(self.name, retry_after)

    async def record_success(self) -> None:
        """Tell the breaker a call succeeded."""
        if (
            self.store is None
            and self._snap.state is BreakerState.CLOSED
            and not self._snap.failures
        ):
            return
        await self._apply("success")

    async def record_failure(self) -> None:
        """Tell the breaker a call failed."""
        await self._apply("failure")

    async def release(self) -> None:
        """Tell the breaker a call ended without an outcome (it was cancelled).

        A half-open probe gives its slot back, so the next call probes again; without this a
        cancelled probe would hold the breaker half-open, refusing every call, forever.
        """
        if self.store is None and self._snap.state is not BreakerState.HALF_OPEN:
            return
        held = _PROBE.get()
        mine = next((p for p in held if p[0] is self), None)
        if mine is None:
            return  # this call was let through before the circuit opened: it holds no slot
        _PROBE.set(tuple(p for p in held if p[0] is not self))
        # freed only if the circuit is still in the half-open state that probe belonged to
        # (checked with the stored state, which other replicas may have moved on)
        await self._apply("release", mine[1])

    async def call(self, fn: Callable[[], Awaitable[object]]) -> object:
        """Run `fn` under this breaker."""
        await self.before_call()
        try:
            result = await fn()
        except Exception:
            await self.record_failure()
            raise
        except asyncio.CancelledError as cancelled:
            if is_timeout_cancel(cancelled):  # an enclosing timeout: the call was too slow
                await asyncio.shield(self.record_failure())
            else:  # cancelled from outside: no outcome
                await asyncio.shield(self.release())
            raise
        await self.record_success()
        return result

    def reset(self) -> None:
        """Close the circuit (local view only)."""
        old = self._snap.state
        self._snap = BreakerSnapshot()
        if old is not BreakerState.CLOSED:
            self._notify(old)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._snap.state.value})"
