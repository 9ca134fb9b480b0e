"""LoggingHooks: standard-library logging, and structured JSON logs through structlog."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import structlog

from cascadence import Cadence, LoggingHooks, Score


@dataclass
class Job(Score):
    n: int = 0


async def work(score: Job) -> None:
    score.n += 1


async def broken(score: Job) -> None:
    raise ValueError("bad")


async def test_stdlib_logging(caplog: pytest.LogCaptureFixture) -> None:
    """With structlog off, runs and notes are logged on the `cascadence` logger."""
    hooks = LoggingHooks(structured=False)
    flow = Cadence("job", Job()).with_hooks(hooks).then("work", work).then("broken", broken)
    with caplog.at_level(logging.INFO, logger="cascadence"), pytest.raises(Exception, match="bad"):
        await flow.run(Job())
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "cascadence"]
    assert messages[0] == (logging.INFO, "run started cadence='job'")
    assert (logging.INFO, "note started note='work'") in messages
    assert any(m.startswith("note completed note='work' duration_s=") for _, m in messages)
    assert any(lvl == logging.ERROR and "note failed note='broken'" in m for lvl, m in messages)
    assert messages[-1][0] == logging.ERROR and "run failed" in messages[-1][1]
    fields = [getattr(r, "cascadence", None) for r in caplog.records if r.name == "cascadence"]
    assert fields[0] == {"cadence": "job"}  # structured fields ride on the record too


async def test_stdlib_logging_by_default_when_structlog_is_not_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """structlog being installed is not enough: until the application configures it, the
    default hooks log through `logging`, where `logging.basicConfig` sends them."""
    structlog.reset_defaults()
    assert not structlog.is_configured()
    flow = Cadence("job", Job()).with_hooks(LoggingHooks()).then("work", work)
    with caplog.at_level(logging.INFO, logger="cascadence"):
        await flow.run(Job())
    assert caplog.records[0].getMessage() == "run started cadence='job'"


async def test_stdlib_level_and_custom_logger(caplog: pytest.LogCaptureFixture) -> None:
    """A given logger and level are used; lines below the logger's level are not formatted."""
    logger = logging.getLogger("myapp.flows")
    flow = Cadence("job", Job()).with_hooks(LoggingHooks(logger, level=logging.DEBUG))
    flow.then("work", work)
    with caplog.at_level(logging.DEBUG, logger="myapp.flows"):
        await flow.run(Job())
    assert [r.levelno for r in caplog.records] == [logging.DEBUG] * 4
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="myapp.flows"):
        await flow.run(Job())
    assert caplog.records == []


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """structlog configured to render JSON lines into a buffer, reset afterwards."""
    buffer = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=buffer),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    yield buffer
    structlog.reset_defaults()


async def test_structlog_json_output(json_logs: io.StringIO) -> None:
    """With structlog configured, each line is JSON with the event and its fields."""
    hooks = LoggingHooks()
    flow = Cadence("job", Job()).with_hooks(hooks).then("work", work).then("broken", broken)
    with pytest.raises(Exception, match="bad"):
        await flow.run(Job())
    records = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert records[0] == {"cadence": "job", "event": "run started", "level": "info"}
    completed = next(r for r in records if r["event"] == "note completed")
    assert completed["note"] == "work" and isinstance(completed["duration_s"], float)
    failed = next(r for r in records if r["event"] == "note failed")
    assert failed["level"] == "error" and "ValueError" in failed["error"]


async def test_explicit_structlog_logger(json_logs: io.StringIO) -> None:
    """A structlog logger passed in is used as is, with its bound context."""
    hooks = LoggingHooks(structlog.get_logger("svc").bind(service="billing"))
    await Cadence("job", Job()).with_hooks(hooks).then("work", work).run(Job())
    records = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert {r["service"] for r in records} == {"billing"}
    assert [r["event"] for r in records][-1] == "run completed"


def test_structured_true_requires_structlog(monkeypatch: pytest.MonkeyPatch) -> None:
    """structured=True without structlog importable is an ImportError naming the extra."""
    import sys

    monkeypatch.setitem(sys.modules, "structlog", None)
    with pytest.raises(ImportError, match=r"cascadence\[structlog\]"):
        LoggingHooks(structured=True)
