"""Retry policy: the pure decision and the runtime loop on a fake clock."""

from __future__ import annotations

import pytest

from cascadence.errors import RetryExhaustedError
from cascadence.policies import RetryPolicy, StepPolicy, retry_policy_from
from cascadence.runtime.invoke import call_step
from cascadence.testing import FakeClock


def test_exponential_delays_are_exact() -> None:
    """Exponential backoff doubles from the first delay and respects max_delay."""
    policy = RetryPolicy(max_attempts=5, delay=0.1, backoff="exponential", max_delay=0.5)
    assert list(policy.delays()) == pytest.approx([0.1, 0.2, 0.4, 0.5])


def test_fixed_and_linear_delays() -> None:
    """Fixed backoff repeats the delay; linear grows by it."""
    assert list(RetryPolicy(max_attempts=4, delay=1, backoff="fixed").delays()) == [1, 1, 1]
    assert list(RetryPolicy(max_attempts=4, delay=1, backoff="linear").delays()) == [1, 2, 3]


def test_next_delay_gives_up_after_max_attempts_and_on_other_errors() -> None:
    """The decision is None on the last attempt and for exceptions not in retry_on."""
    policy = RetryPolicy(max_attempts=2, delay=0.5, retry_on=(ValueError,))
    assert policy.next_delay(1, ValueError()) == 0.5
    assert policy.next_delay(2, ValueError()) is None
    assert policy.next_delay(1, KeyError()) is None


def test_shorthands() -> None:
    """retry= accepts an int, a dict or nothing, and rejects unknown keys with a hint."""
    assert retry_policy_from(3) == RetryPolicy(max_attempts=3)
    assert retry_policy_from(None) is None
    assert retry_policy_from({"max_attempts": 4, "delay": 0.5}).max_attempts == 4  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="did you mean 'max_attempts'"):
        retry_policy_from({"max_attempt": 3})


async def test_call_step_retries_with_exact_sleeps() -> None:
    """A step failing twice then succeeding sleeps the exact backoff sequence once each."""
    clock = FakeClock()
    calls = []

    async def flaky(arg: object) -> str:
        calls.append(arg)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    policy = StepPolicy(retry=RetryPolicy(max_attempts=4, delay=0.1), clock=clock)
    assert await call_step("flaky", flaky, "x", policy) == "ok"
    assert len(calls) == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])


async def test_exhausted_retries_raise_with_last_error() -> None:
    """When every attempt fails, RetryExhaustedError carries the attempts and last error."""
    clock = FakeClock()

    async def broken(_: object) -> None:
        raise ValueError("nope")

    policy = StepPolicy(retry=RetryPolicy(max_attempts=3, delay=1), clock=clock)
    with pytest.raises(RetryExhaustedError) as info:
        await call_step("broken", broken, None, policy)
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, ValueError)
    assert info.value.note_name == "broken"
    assert clock.sleeps == [1, 2]
