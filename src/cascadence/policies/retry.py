"""Retry as a pure decision: given an attempt number and its error, retry after N seconds or stop.

`RetryPolicy` holds no mutable state and does no I/O, so one instance serves every run and its
backoff sequence can be asserted exactly (`policy.delays()`). The runtime does the sleeping,
through an injected `Clock`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from cascadence.errors import closest

__all__ = ["Backoff", "RetryPolicy", "retry_policy_from"]

Backoff = Literal["fixed", "exponential", "linear", "constant"]
"""`constant` is another name for `fixed`; the policy stores `fixed`."""
_BACKOFFS: tuple[str, ...] = ("fixed", "exponential", "linear")
_BACKOFF_ALIASES = {"constant": "fixed", "exp": "exponential"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failing step.

    Args:
        max_attempts: Total attempts including the first (1 means no retry).
        delay: Seconds before the first retry.
        backoff: `fixed` (always `delay`; also spelt `constant`), `exponential`
            (`delay * multiplier**n`) or `linear` (`delay * (n + 1)`).
        multiplier: Growth factor for exponential backoff.
        max_delay: Upper bound on any single delay.
        jitter: Up to this many seconds of random extra delay (0 keeps delays exact).
        retry_on: Exception types that are retried; anything else fails at once.
    """

    max_attempts: int = 3
    delay: float = 1.0
    backoff: Backoff = "exponential"
    multiplier: float = 2.0
    max_delay: float | None = None
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        for name in ("max_attempts", "delay", "multiplier", "jitter", "max_delay"):
            value = getattr(self, name)
            if (value is not None or name != "max_delay") and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise TypeError(
                    f"retry {name} must be a number, got {type(value).__name__} {value!r}"
                )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.delay < 0:
            raise ValueError(f"retry delay must be >= 0 seconds, got {self.delay!r}")
        if self.backoff not in _BACKOFFS:
            spelt = self.backoff.strip().lower() if isinstance(self.backoff, str) else ""
            spelt = _BACKOFF_ALIASES.get(spelt, spelt)
            if spelt not in _BACKOFFS:
                hint = closest(spelt, [*_BACKOFFS, *_BACKOFF_ALIASES])
                tip = f"; did you mean {hint!r}?" if hint else ""
                raise ValueError(
                    f"unknown backoff {self.backoff!r}; expected one of {_BACKOFFS}{tip}"
                )
            object.__setattr__(self, "backoff", spelt)

    def next_delay(self, attempt: int, error: BaseException) -> float | None:
        """Decide what follows failed attempt number `attempt` (1-based).

        Returns:
            Seconds to wait before the next attempt, or None to give up.
        """
        if attempt >= self.max_attempts or not isinstance(error, self.retry_on):
            return None
        return self._delay_for(attempt - 1)

    def _delay_for(self, retry_index: int) -> float:
        if self.backoff == "fixed":
            value = self.delay
        elif self.backoff == "linear":
            value = self.delay * (retry_index + 1)
        else:
            value = self.delay * (self.multiplier**retry_index)
        if self.max_delay is not None:
            value = min(value, self.max_delay)
        if self.jitter:
            value += random.uniform(0, self.jitter)
        return value

    def delays(self) -> Iterator[float]:
        """Yield the delay before each retry, in order (without jitter)."""
        for index in range(self.max_attempts - 1):
            value = self.delay
            if self.backoff == "linear":
                value = self.delay * (index + 1)
            elif self.backoff == "exponential":
                value = self.delay * (self.multiplier**index)
            yield min(value, self.max_delay) if self.max_delay is not None else value


def retry_policy_from(spec: Any) -> RetryPolicy | None:
    """Build a `RetryPolicy` from the shorthand spellings a user may write.

    `None`/`False`/`0` -> no retry; an int `n` -> `n` attempts with the default backoff; a dict
    with `max_attempts`, `delay`, `backoff`, `multiplier`, `max_delay`, `jitter`, `retry_on`;
    or a `RetryPolicy` as is.
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, RetryPolicy):
        return spec
    if isinstance(spec, bool):
        return RetryPolicy()
    if isinstance(spec, int):
        if spec < 0:
            raise ValueError(f"retry= takes the number of attempts (0 or 1: no retry), got {spec}")
        return RetryPolicy(max_attempts=spec) if spec > 1 else None
    if isinstance(spec, dict):
        known = {
            "max_attempts",
            "delay",
            "backoff",
            "multiplier",
            "max_delay",
            "jitter",
            "retry_on",
        }
        unknown = set(spec) - known
        if unknown:
            from cascadence.errors import closest

            name = sorted(unknown)[0]
            hint = closest(name, known)
            raise ValueError(
                f"unknown retry option {name!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (expected some of {sorted(known)})"
            )
        options = dict(spec)
        if "retry_on" in options and not isinstance(options["retry_on"], tuple):
            retry_on = options["retry_on"]
            options["retry_on"] = tuple(retry_on) if isinstance(retry_on, list) else (retry_on,)
        return RetryPolicy(**options)
    raise TypeError(
        f"retry= expects an int, a dict or a RetryPolicy, got {type(spec).__name__}: {spec!r}"
    )
