"""A handler that never awaits cannot be cancelled by a timer: when it finishes past its time
limit, the step fails with a `TimeoutError` that says it held the event loop, and its late
result is not taken (flows, `.sync` members and cascade stages alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from cascadence import (
    Cadence,
    CascadeConfig,
    CascadeEngine,
    ParallelNoteError,
    Score,
    TimeoutError,
    note,
)


@dataclass
class Doc(Score):
    name: str = ""
    other: str = ""


@note(timeout=0.02)
async def blocks(score: Doc) -> None:
    time.sleep(0.1)  # a blocking client called from async code
    score.other = "late"


@note(timeout=5)
async def quick(score: Doc) -> None:
    score.name = "quick"


async def test_a_note_that_blocks_past_its_timeout_fails_with_the_reason() -> None:
    with pytest.raises(TimeoutError) as info:
        await Cadence("f", Doc()).then("blocks", blocks).run(Doc())
    error = info.value
    assert error.name == "blocks" and error.timeout == 0.02
    assert error.blocked is not None and error.blocked >= 0.1
    message = str(error)
    assert "without awaiting" in message and "plain def" in message


async def test_a_note_within_its_timeout_keeps_its_result() -> None:
    result = await Cadence("f", Doc()).then("quick", quick).run(Doc())
    assert result.name == "quick"


async def test_a_sync_member_that_blocks_past_its_timeout_fails_the_group() -> None:
    flow = Cadence("f", Doc()).sync("both", [quick, blocks])
    with pytest.raises(ParallelNoteError) as info:
        await flow.run(Doc())
    assert info.value.note_name == "blocks"
    assert isinstance(info.value.original_error, TimeoutError)
    assert info.value.original_error.blocked is not None


def _engine(global_timeout_ms: int | None, timeout_ms: int | None) -> CascadeEngine:
    stage: dict[str, Any] = {}
    if timeout_ms is not None:
        stage["timeout_ms"] = timeout_ms
    data: dict[str, Any] = {"name": "c", "stages": {"SLOW": stage, "NEXT": {}}}
    if global_timeout_ms is not None:
        data["global_timeout_ms"] = global_timeout_ms
    engine = CascadeEngine(CascadeConfig.from_dict(data))

    async def slow(context: Any) -> dict[str, Any]:
        time.sleep(0.1)
        return {"result": "late", "confidence": 1.0}

    engine.register_stage("SLOW", slow)
    engine.register_stage("NEXT", lambda context: {"result": "next", "confidence": 1.0})
    return engine


async def test_a_stage_that_blocks_past_its_timeout_records_a_timeout_not_its_result() -> None:
    result = await _engine(None, 20).execute({})
    slow = result["stage_results"]["SLOW"]
    assert slow["result"] is None
    assert slow["error_type"] == "TimeoutError" and "without awaiting" in slow["error"]
    assert result["timed_out"] is False
    assert "NEXT" in result["stage_results"]  # the stage failed; the run goes on


async def test_a_stage_that_blocks_past_the_global_deadline_times_the_run_out() -> None:
    result = await _engine(20, None).execute({})
    assert result["timed_out"] is True
    assert result["stage_results"]["SLOW"]["result"] is None
    assert "NEXT" not in result["stage_results"]
