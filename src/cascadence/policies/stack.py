"""`StepPolicy`: the resilience settings of one step, in one immutable object."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cascadence.policies.cache import ResultCache
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.fallback import Fallback
from cascadence.policies.retry import RetryPolicy
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = ["OWNER_ATTR", "POLICY_ATTR", "RAW_ATTR", "StepPolicy", "note_parts"]

POLICY_ATTR = "__cascadence_policy__"
"""On a decorated note: its `StepPolicy`."""
RAW_ATTR = "__cascadence_raw__"
"""On a decorated note: the undecorated function."""
OWNER_ATTR = "__cascadence_decorated__"
"""On a decorated note: the decorated function itself. `functools.wraps` in a user's own
decorator copies the two attributes above onto the user's wrapper, but this one then names
another function, so the wrapper is not mistaken for the note (its code would be skipped)."""


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Timeout, retry, fallback, circuit breaker and cache for one step.

    They apply in this order, outermost first: cache lookup, the overall time limit, retry loop
    (each attempt checks the breaker and runs under the timeout), then the fallback once every
    attempt has failed or the time is up.

    Args:
        timeout: Seconds one attempt may run before it is cancelled (None: no limit).
        total_timeout: Seconds all attempts and the sleeps between them may take together
            (`@timeout` stacked above `@retry`); None: no limit.
        retry: When and how to try again.
        fallback: The value used when the step fails for good.
        breaker: A circuit breaker consulted before each attempt.
        cache: A result cache keyed on the step's input.
        clock: Time source for backoff sleeps.
        breaker_outside: The breaker guards the whole retried call (`@circuit_breaker`
            stacked above `@retry`): it is consulted once per call and counts one outcome
            after the last attempt. False: it is consulted before each attempt.
    """

    timeout: float | None = None
    retry: RetryPolicy | None = None
    fallback: Fallback | None = None
    breaker: CircuitBreaker | None = None
    cache: ResultCache | None = None
    clock: Clock = SYSTEM_CLOCK
    total_timeout: float | None = None
    breaker_outside: bool = False

    @property
    def is_plain(self) -> bool:
        """True when only a timeout (or nothing) applies: the runtime's fastest path."""
        return (
            self.retry is None
            and self.fallback is None
            and self.breaker is None
            and self.cache is None
            and self.total_timeout is None
        )

    def merged(self, other: StepPolicy) -> StepPolicy:
        """Combine two policies; settings of `other` win where both set one."""
        changes: dict[str, Any] = {}
        for name in ("timeout", "retry", "fallback", "breaker", "cache", "total_timeout"):
            value = getattr(other, name)
            if value is not None:
                changes[name] = value
        if other.clock is not SYSTEM_CLOCK:
            changes["clock"] = other.clock
        if other.breaker is not None:
            changes["breaker_outside"] = other.breaker_outside
        return replace(self, **changes) if changes else self

    def with_clock(self, clock: Clock) -> StepPolicy:
        """The same policy on another clock."""
        return replace(self, clock=clock)


def note_parts(fn: Callable[..., Any]) -> tuple[Callable[..., Any], StepPolicy]:
    """The original function and the policy of a note decorated with `@note` or the resilience
    decorators, so that a runner applies the policy once around the original.

    A bound method of a decorated method gives the original bound to the same object. Anything
    else (a plain function, a user's own wrapper around a decorated note) is returned as it
    is, with an empty policy: calling it runs whatever it does.
    """
    target = fn.__func__ if inspect.ismethod(fn) else fn
    policy = getattr(target, POLICY_ATTR, None)
    raw = getattr(target, RAW_ATTR, None)
    if not isinstance(policy, StepPolicy) or raw is None:
        return fn, StepPolicy()
    if getattr(target, OWNER_ATTR, None) is not target:
        return fn, StepPolicy()
    if target is not fn:
        raw = types.MethodType(raw, fn.__self__)  # type: ignore[attr-defined]
    return raw, policy
