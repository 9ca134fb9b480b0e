"""Every attempt of a retried note (and the one attempt of a note with a fallback) runs on a
copy-on-write view of the score: a failed attempt leaves nothing behind, a successful one's
writes land on the score, a fallback lands on the score as it was before the step."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cascadence import (
    Cadence,
    ImmutableScore,
    RetryExhaustedError,
    Score,
    fallback,
    note,
    retry,
)


@dataclass
class Log(Score):
    items: list[str] = field(default_factory=list)
    name: str = ""
    tries: int = 0


async def test_a_failed_attempt_leaves_no_writes_behind() -> None:
    calls: list[int] = []

    @note(retry={"max_attempts": 3, "delay": 0})
    async def flaky(score: Log) -> None:
        calls.append(1)
        score.items.append("item")
        score.tries += 1
        if len(calls) < 3:
            raise ConnectionError("blip")

    result = await Cadence("f", Log()).then("flaky", flaky).run(Log())
    assert result.items == ["item"] and result.tries == 1 and len(calls) == 3


async def test_a_note_returning_its_view_keeps_the_score() -> None:
    @retry(max_attempts=2, delay=0)
    async def returns_it(score: Log) -> Log:
        score.name = "set"
        return score

    start = Log()
    result = await Cadence("f", Log()).then("n", returns_it).run(start)
    assert result is start and result.name == "set"
    assert type(result) is Log


async def test_a_fallback_lands_on_the_score_as_it_was_before_the_step() -> None:
    @fallback("FB", field="name")
    async def partial(score: Log) -> None:
        score.items.append("partial")
        raise ValueError("boom")

    result = await Cadence("f", Log()).then("partial", partial).run(Log(items=["kept"]))
    assert result.items == ["kept"] and result.name == "FB"


async def test_a_note_that_fails_for_good_leaves_the_score_as_it_was() -> None:
    @retry(max_attempts=2, delay=0)
    async def always(score: Log) -> None:
        score.items.append("x")
        raise ConnectionError("down")

    score = Log()
    with pytest.raises(RetryExhaustedError):
        await Cadence("f", Log()).then("always", always).run(score)
    assert score.items == []


async def test_attempts_inside_a_sync_group_are_isolated_too() -> None:
    calls: list[int] = []

    @retry(max_attempts=2, delay=0)
    async def flaky(score: Log) -> None:
        calls.append(1)
        score.items.append("a")
        if len(calls) == 1:
            raise ConnectionError("blip")

    async def other(score: Log) -> None:
        score.name = "b"

    result = await Cadence("f", Log()).sync("g", [flaky, other]).run(Log())
    assert result.items == ["a"] and result.name == "b"


@dataclass(frozen=True)
class Frozen(ImmutableScore):
    count: int = 0


async def test_frozen_scores_keep_returning_new_scores() -> None:
    calls: list[int] = []

    @retry(max_attempts=2, delay=0)
    async def bump(score: Frozen) -> Frozen:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("blip")
        return score.with_field("count", score.count + 1)

    result = await Cadence("f", Frozen()).then("bump", bump).run(Frozen())
    assert result == Frozen(count=1)


async def test_attempts_are_isolated_with_hooks_attached() -> None:
    from cascadence.events import NOTE_RETRYING, EventEmitter

    calls: list[int] = []
    retried: list[str] = []
    events = EventEmitter()
    events.on(NOTE_RETRYING, lambda event: retried.append(event.note_name or ""))

    @retry(max_attempts=2, delay=0)
    async def flaky(score: Log) -> None:
        calls.append(1)
        score.items.append("item")
        if len(calls) == 1:
            raise ConnectionError("blip")

    result = await Cadence("f", Log()).then("flaky", flaky).with_hooks(events).run(Log())
    assert result.items == ["item"] and retried == ["flaky"]
