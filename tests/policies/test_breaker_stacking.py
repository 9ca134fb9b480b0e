"""`@circuit_breaker` stacked above `@retry` guards the whole retried call: one check before
it, one outcome after its last attempt. Below `@retry` (or in one `@note`), each attempt is a
call the breaker counts and may refuse."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cascadence import (
    Cadence,
    CircuitOpenError,
    RetryExhaustedError,
    Score,
    circuit_breaker,
    fallback,
    retry,
)
from cascadence.testing import FakeClock


@dataclass
class Doc(Score):
    value: str = ""


async def test_a_breaker_above_retry_counts_one_failure_per_call() -> None:
    calls: list[int] = []

    @circuit_breaker(failure_threshold=2, recovery_timeout=10)
    @retry(max_attempts=3, delay=0)
    async def flaky(score: Doc) -> None:
        calls.append(1)
        raise ConnectionError("down")

    flow = Cadence("f", Doc()).then("flaky", flaky)
    with pytest.raises(RetryExhaustedError):  # every attempt ran: the breaker saw one failure
        await flow.run(Doc())
    assert len(calls) == 3
    assert flaky.circuit_breaker.snapshot.failures == 1  # type: ignore[attr-defined]
    with pytest.raises(RetryExhaustedError):
        await flow.run(Doc())
    assert len(calls) == 6
    with pytest.raises(CircuitOpenError):  # two failed calls: open, the next is refused whole
        await flow.run(Doc())
    assert len(calls) == 6


async def test_a_breaker_below_retry_counts_every_attempt() -> None:
    calls: list[int] = []

    @retry(max_attempts=3, delay=0)
    @circuit_breaker(failure_threshold=2, recovery_timeout=10)
    async def flaky(score: Doc) -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(CircuitOpenError):  # the third attempt is refused
        await Cadence("f", Doc()).then("flaky", flaky).run(Doc())
    assert len(calls) == 2


async def test_a_breaker_above_retry_counts_a_success_after_retries_as_one_success() -> None:
    calls: list[int] = []

    @circuit_breaker(failure_threshold=1, recovery_timeout=10)
    @retry(max_attempts=3, delay=0)
    async def second_time(score: Doc) -> None:
        calls.append(1)
        if len(calls) % 2:
            raise ConnectionError("blip")
        score.value = "ok"

    result = await Cadence("f", Doc()).then("n", second_time).run(Doc())
    assert result.value == "ok" and len(calls) == 2
    assert second_time.circuit_breaker.state == "closed"  # type: ignore[attr-defined]


async def test_a_fallback_answers_for_a_refusal_of_a_breaker_above_retry() -> None:
    clock = FakeClock()

    @fallback("cached", field="value")
    @circuit_breaker(failure_threshold=1, recovery_timeout=10, clock=clock)
    @retry(max_attempts=2, delay=0)
    async def down(score: Doc) -> None:
        raise ConnectionError("down")

    flow = Cadence("f", Doc()).then("down", down)
    assert (await flow.run(Doc())).value == "cached"  # failed for good: the fallback
    assert down.circuit_breaker.state == "open"  # type: ignore[attr-defined]
    assert (await flow.run(Doc())).value == "cached"  # refused: the fallback too
