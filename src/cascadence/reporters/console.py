"""Reporters that write events as text: a readable console log, and JSON lines for machines.

```python
flow.with_reporter(ConsoleReporter().report)            # human-readable, to stderr
engine = CascadeEngine(config, reporters=[JSONLinesReporter(open("events.jsonl", "a")).report])
```

Each event becomes one line written with a single `write` call, so lines from concurrent runs
never interleave mid-line.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from cascadence.events import (
    CADENCE_COMPLETED,
    CADENCE_FAILED,
    CADENCE_STARTED,
    NOTE_COMPLETED,
    NOTE_FAILED,
    NOTE_RETRYING,
    NOTE_STARTED,
    ROUTING_DECISION,
    CadenceEvent,
)
from cascadence.reporters._errors import failure_kind, root_error

__all__ = ["ConsoleReporter", "JSONLinesReporter", "event_to_dict"]

_SHORT = {
    CADENCE_STARTED: "started",
    CADENCE_COMPLETED: "completed",
    CADENCE_FAILED: "failed",
    NOTE_STARTED: "started",
    NOTE_COMPLETED: "ok",
    NOTE_FAILED: "FAILED",
    NOTE_RETRYING: "retry",
    ROUTING_DECISION: "route",
}
_COLORS = {
    NOTE_COMPLETED: "\x1b[32m",
    CADENCE_COMPLETED: "\x1b[32m",
    NOTE_FAILED: "\x1b[31m",
    CADENCE_FAILED: "\x1b[31m",
    NOTE_RETRYING: "\x1b[33m",
    ROUTING_DECISION: "\x1b[36m",
}
_RESET = "\x1b[0m"


def _error_dict(error: BaseException) -> dict[str, str]:
    cause = root_error(error) or error
    return {"type": type(cause).__name__, "message": str(cause)}


def event_to_dict(event: CadenceEvent) -> dict[str, Any]:
    """A JSON-ready dict of an event: its set fields only, the error as type and message.

    Keys: `event`, `kind`, `name`, and when set `step`, `run_id`, `duration_s`, `attempt`,
    `delay_s`, `error` (`{"type", "message"}`, the underlying cause), `data`, `ts`.
    """
    out: dict[str, Any] = {"event": event.type, "kind": event.kind, "name": event.cadence_name}
    if event.note_name is not None:
        out["step"] = event.note_name
    if event.run_id is not None:
        out["run_id"] = event.run_id
    if event.duration is not None:
        out["duration_s"] = event.duration
    if event.attempt is not None:
        out["attempt"] = event.attempt
    if event.delay is not None:
        out["delay_s"] = event.delay
    if event.error is not None:
        out["error"] = _error_dict(event.error)
    if event.data:
        out["data"] = event.data
    out["ts"] = event.timestamp
    return out


class _Writer:
    def __init__(self, stream: IO[str] | None, default: Callable[[], IO[str]]) -> None:
        self._stream = stream
        self._default = default
        self._lock = threading.Lock()

    @property
    def stream(self) -> IO[str]:
        # Resolved per write so that redirected sys.stdout / sys.stderr (pytest's capsys,
        # contextlib.redirect_stdout) are honoured.
        return self._stream if self._stream is not None else self._default()

    def write(self, line: str) -> None:
        stream = self.stream
        with self._lock:
            stream.write(line)
            flush = getattr(stream, "flush", None)
            if flush is not None:
                flush()


class ConsoleReporter:
    """Print one readable line per event.

    ```
    cascade trust_scoring_cascade started
      FAST_CHECK ok 0.21ms confidence=0.4 cost=1
      route FAST_CHECK: low_confidence_escalate -> enable_stages
      MEDIUM_CHECK retry 1 in 0.1s (ValueError: flaky)
    cascade trust_scoring_cascade completed 1.90ms
    ```

    A step stopped because a sibling in its `.sync` group failed prints `cancelled`, not
    `FAILED`: the failure is the sibling's.

    Args:
        stream: Where lines go; default `sys.stderr`.
        color: ANSI colors; None uses them when the stream is a terminal.
        steps: Also print step starts (completions, failures and retries are always printed).
    """

    def __init__(
        self, stream: IO[str] | None = None, *, color: bool | None = None, steps: bool = False
    ) -> None:
        self._out = _Writer(stream, lambda: sys.stderr)
        self.color = color
        self.steps = steps

    def _use_color(self) -> bool:
        if self.color is not None:
            return self.color
        isatty = getattr(self._out.stream, "isatty", None)
        return bool(isatty and isatty())

    def format(self, event: CadenceEvent) -> str | None:
        """The line for `event` (without newline), or None when it is not printed."""
        kind = event.type
        label = _SHORT.get(kind)
        if label is None or (kind == NOTE_STARTED and not self.steps):
            return None
        # a step stopped from outside (a `.sync` sibling failed) did not fail itself
        cancelled = kind == NOTE_FAILED and failure_kind(event.error) == "cancelled"
        if cancelled:
            label = "cancelled"
        if kind == ROUTING_DECISION:
            data = event.data or {}
            text = (
                f"  route {data.get('stage') or event.note_name}: "
                f"{data.get('rule')} -> {data.get('action')}"
            )
        elif event.note_name is not None:
            text = f"  {event.note_name} {label}"
            if kind == NOTE_RETRYING:
                text += f" {event.attempt}"
                if event.delay is not None:
                    text += f" in {event.delay:g}s"
            elif event.duration is not None:
                text += f" {event.duration * 1000.0:.2f}ms"
            step_data = event.data
            if step_data:
                if step_data.get("confidence") is not None:
                    text += f" confidence={step_data['confidence']}"
                if step_data.get("cost"):
                    text += f" cost={step_data['cost']:g}"
        else:
            run = "cascade" if event.kind == "cascade" else "flow"
            text = f"{run} {event.cadence_name} {label}"
            if event.duration is not None:
                text += f" {event.duration * 1000.0:.2f}ms"
            if event.run_id is not None:
                text += f" run_id={event.run_id}"
        if event.error is not None and not cancelled:
            cause = root_error(event.error) or event.error
            text += f" ({type(cause).__name__}: {cause})"
        if self._use_color() and not cancelled:
            color = _COLORS.get(kind)
            if color is not None:
                text = f"{color}{text}{_RESET}"
        return text

    def report(self, event: CadenceEvent) -> None:
        """Print the event's line."""
        line = self.format(event)
        if line is not None:
            self._out.write(line + "\n")

    def __call__(self, event: CadenceEvent) -> None:
        """Same as `report`."""
        self.report(event)


class JSONLinesReporter:
    """Write every event as one JSON object per line (see `event_to_dict` for the keys).

    Values JSON cannot represent (in `data`) are written with `str()`.

    Args:
        stream: Where lines go; default `sys.stdout`.
        events: Event types to write; default all.
    """

    def __init__(
        self, stream: IO[str] | None = None, *, events: tuple[str, ...] | None = None
    ) -> None:
        self._out = _Writer(stream, lambda: sys.stdout)
        self.events = frozenset(events) if events is not None else None

    def report(self, event: CadenceEvent) -> None:
        """Write the event's line."""
        if self.events is not None and event.type not in self.events:
            return
        self._out.write(json.dumps(event_to_dict(event), default=str) + "\n")

    def __call__(self, event: CadenceEvent) -> None:
        """Same as `report`."""
        self.report(event)
