"""`StepPolicy`: the resilience settings of one step, in one immutable object."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cascadence.policies.cache import ResultCache
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.fallback import Fallback
from cascadence.policies.retry import RetryPolicy
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = ["StepPolicy"]


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Timeout, retry, fallback, circuit breaker and cache for one step.

    They apply in this order, outermost first: cache lookup, retry loop (each attempt checks
    the breaker and runs under the timeout), then the fallback once every attempt has failed.

    Args:
        timeout: Seconds one attempt may run before it is cancelled (None: no limit).
        retry: When and how to try again.
        fallback: The value used when the step fails for good.
        breaker: A circuit breaker consulted before each attempt.
        cache: A result cache keyed on the step's input.
        clock: Time source for backoff sleeps.
    """

    timeout: float | None = None
    retry: RetryPolicy | None = None
    fallback: Fallback | None = None
    breaker: CircuitBreaker | None = None
    cache: ResultCache | None = None
    clock: Clock = SYSTEM_CLOCK

    @property
    def is_plain(self) -> bool:
        """True when only a timeout (or nothing) applies: the runtime's fastest path."""
        return (
            self.retry is None
            and self.fallback is None
            and self.breaker is None
            and (self.cache is None)
        )

    def merged(self, other: StepPolicy) -> StepPolicy:
        """Combine two policies; settings of `other` win where both set one."""
        changes: dict[str, Any] = {}
        for name in ("timeout", "retry", "fallback", "breaker", "cache"):
            value = getattr(other, name)
            if value is not None:
                changes[name] = value
        if other.clock is not SYSTEM_CLOCK:
            changes["clock"] = other.clock
        return replace(self, **changes) if changes else self

    def with_clock(self, clock: Clock) -> StepPolicy:
        """The same policy on another clock."""
        return replace(self, clock=clock)
