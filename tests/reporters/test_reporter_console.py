"""Console and JSON-lines reporters: one line per event, readable or machine-parsable."""

from __future__ import annotations

import asyncio
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from cascadence import Cadence, CascadeConfig, CascadeEngine, Score
from cascadence.events import NOTE_COMPLETED, NOTE_RETRYING, CadenceEvent
from cascadence.reporters import ConsoleReporter, JSONLinesReporter, event_to_dict


@dataclass
class Job(Score):
    done: bool = False


async def work(score: Job) -> None:
    score.done = True


async def broken(score: Job) -> None:
    raise ValueError("bad row")


async def test_console_lines_for_a_flow() -> None:
    """A flow prints start, each completed note with its duration, and the end."""
    out = io.StringIO()
    flow = Cadence("etl", Job()).with_reporter(ConsoleReporter(out).report).then("load", work)
    await flow.run(Job())
    lines = out.getvalue().splitlines()
    assert lines[0] == "flow etl started"
    assert lines[1].startswith("  load ok ") and lines[1].endswith("ms")
    assert lines[2].startswith("flow etl completed ")
    assert "\x1b[" not in out.getvalue()  # not a terminal: no colors


async def test_console_failure_names_the_cause() -> None:
    """A failed note's line names the underlying error class and message."""
    out = io.StringIO()
    flow = Cadence("etl", Job()).with_reporter(ConsoleReporter(out, steps=True).report)
    flow.then("parse", broken)
    with pytest.raises(Exception, match="bad row"):
        await flow.run(Job())
    text = out.getvalue()
    assert "  parse started" in text
    assert "  parse FAILED" in text and "(ValueError: bad row)" in text


async def test_console_a_cancelled_sibling_is_not_a_failure() -> None:
    """In a `.sync` group, the failing note prints FAILED with its cause and the sibling it
    stopped prints `cancelled`, without an error of its own or the failure color."""
    out = io.StringIO()

    async def slow(score: Job) -> None:
        await asyncio.sleep(5)

    reporter = ConsoleReporter(out, color=True)
    flow = Cadence("etl", Job()).with_reporter(reporter.report).sync("g", [broken, slow])
    with pytest.raises(Exception, match="bad row"):
        await flow.run(Job())
    lines = {
        re.sub(r"\x1b\[\d+m", "", line).split()[0]: line for line in out.getvalue().splitlines()
    }
    assert lines["broken"].startswith("\x1b[31m  broken FAILED ")
    assert "(ValueError: bad row)" in lines["broken"]
    assert lines["slow"].startswith("  slow cancelled ")  # no color: nothing failed there
    assert "Error" not in lines["slow"]


async def test_console_cascade_routing_confidence_and_color() -> None:
    """A cascade prints routing decisions, confidence and cost; color=True adds ANSI codes."""
    out = io.StringIO()
    config = CascadeConfig.from_dict(
        {
            "name": "c",
            "stages": {
                "A": {
                    "cost": 5,
                    "routing_rules": [
                        {
                            "name": "stop",
                            "type": "routing",
                            "condition": {
                                "field": "stages.A.confidence",
                                "operator": ">",
                                "value": 0.5,
                            },
                            "action": {"type": "terminate"},
                        }
                    ],
                }
            },
        }
    )
    engine = CascadeEngine(config, reporters=[ConsoleReporter(out, color=True).report])

    async def a(ctx: Any) -> dict[str, Any]:
        return {"result": "ok", "confidence": 0.9}

    engine.register_stage("A", a)
    await engine.execute({})
    text = out.getvalue()
    assert "A ok" in text and "confidence=0.9 cost=5" in text
    assert "route A: stop -> terminate" in text
    assert "\x1b[32m" in text and "\x1b[0m" in text


def test_console_retry_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A retry line shows the attempt and delay; the default stream is stderr."""
    ConsoleReporter().report(
        CadenceEvent(NOTE_RETRYING, "f", "s", attempt=2, delay=0.5, error=OSError("x"))
    )
    assert capsys.readouterr().err == "  s retry 2 in 0.5s (OSError: x)\n"


async def test_json_lines_round_trip() -> None:
    """Every event is one JSON object per line, with the documented keys."""
    out = io.StringIO()
    flow = Cadence("etl", Job()).with_reporter(JSONLinesReporter(out).report)
    flow.then("load", work).then("parse", broken)
    with pytest.raises(Exception, match="bad row"):
        await flow.run(Job(), run_id="r1")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == [
        "cadence.started",
        "note.started",
        "note.completed",
        "note.started",
        "note.failed",
        "cadence.failed",
    ]
    failed = records[4]
    assert failed["step"] == "parse" and failed["run_id"] == "r1"
    assert failed["error"] == {"type": "ValueError", "message": "bad row"}
    assert failed["kind"] == "cadence" and failed["name"] == "etl"
    assert isinstance(failed["duration_s"], float) and isinstance(failed["ts"], float)


def test_json_lines_filter_and_unserialisable_data(capsys: pytest.CaptureFixture[str]) -> None:
    """`events=` filters types; values JSON cannot hold are written as text; stdout default."""
    reporter = JSONLinesReporter(events=(NOTE_COMPLETED,))
    reporter(CadenceEvent(NOTE_RETRYING, "f", "s", attempt=1))
    reporter(CadenceEvent(NOTE_COMPLETED, "f", "s", data={"obj": object}))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["data"]["obj"] == str(object)
    assert event_to_dict(CadenceEvent(NOTE_COMPLETED, "f"))["name"] == "f"
