"""Lifecycle events of flows and cascades, and `EventEmitter` to listen to them.

Every run, of a `Cadence` or a `CascadeEngine`, produces the same frozen `CadenceEvent`s:

- `CADENCE_STARTED`, `CADENCE_COMPLETED`, `CADENCE_FAILED` once per run;
- `NOTE_STARTED`, `NOTE_COMPLETED`, `NOTE_FAILED` once per step (note or stage);
- `NOTE_RETRYING` before each retry, `ROUTING_DECISION` when a cascade rule matches.

Listeners may be plain functions or coroutine functions; `"*"` listens to everything.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from cascadence.hooks import CadenceHooks

__all__ = [
    "ALL_EVENTS",
    "CADENCE_COMPLETED",
    "CADENCE_FAILED",
    "CADENCE_STARTED",
    "CadenceEvent",
    "EventEmitter",
    "Listener",
    "NOTE_COMPLETED",
    "NOTE_FAILED",
    "NOTE_RETRYING",
    "NOTE_STARTED",
    "ROUTING_DECISION",
]

CADENCE_STARTED = "cadence.started"
CADENCE_COMPLETED = "cadence.completed"
CADENCE_FAILED = "cadence.failed"
NOTE_STARTED = "note.started"
NOTE_COMPLETED = "note.completed"
NOTE_FAILED = "note.failed"
NOTE_RETRYING = "note.retrying"
ROUTING_DECISION = "routing.decision"
ALL_EVENTS: tuple[str, ...] = (
    CADENCE_STARTED,
    CADENCE_COMPLETED,
    CADENCE_FAILED,
    NOTE_STARTED,
    NOTE_COMPLETED,
    NOTE_FAILED,
    NOTE_RETRYING,
    ROUTING_DECISION,
)

_log = logging.getLogger("cascadence.events")


class CadenceEvent(NamedTuple):
    """One lifecycle event (immutable; a named tuple, cheap to make on the hot path).

    Attributes:
        type: One of the event type constants.
        cadence_name: The flow or cascade name.
        note_name: The step (note or stage) name, for step events.
        duration: Seconds the step or run took, on completion or failure.
        error: The exception, on failure or retry.
        attempt: The failed attempt number, for `NOTE_RETRYING`.
        delay: Seconds until the next attempt, for `NOTE_RETRYING`.
        kind: `"cadence"` for flows, `"cascade"` for cascades.
        run_id: The run id, when the run has one.
        data: Extra detail (for `ROUTING_DECISION`: rule, action, stage).
        timestamp: Wall-clock time the event was made (set by the runtime).
    """

    type: str
    cadence_name: str
    note_name: str | None = None
    duration: float | None = None
    error: BaseException | None = None
    attempt: int | None = None
    delay: float | None = None
    kind: str = "cadence"
    run_id: str | None = None
    data: dict[str, Any] | None = None
    timestamp: float = 0.0

    @property
    def event_type(self) -> str:
        """The event type (the same as `type`)."""
        return self.type

    @property
    def metadata(self) -> dict[str, Any]:
        """Extra detail (the same as `data`; an empty dict when there is none)."""
        return self.data if self.data is not None else {}


Listener = Callable[[CadenceEvent], Any]


class EventEmitter(CadenceHooks):
    """Register listeners per event type; attach with `.with_hooks(emitter)`.

    A listener that raises is logged and does not break the run or the other listeners.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, event_type: str, listener: Listener) -> Listener:
        """Call `listener` for every event of `event_type` (`"*"` for all)."""
        if event_type != "*" and event_type not in ALL_EVENTS:
            from cascadence.errors import closest

            hint = closest(event_type, ALL_EVENTS)
            raise ValueError(
                f"unknown event type {event_type!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (expected one of {ALL_EVENTS} or '*')"
            )
        self._listeners.setdefault(event_type, []).append(listener)
        return listener

    def off(self, event_type: str, listener: Listener) -> None:
        """Stop calling `listener` for `event_type`."""
        listeners = self._listeners.get(event_type, [])
        if listener in listeners:
            listeners.remove(listener)

    def listener_count(self, event_type: str | None = None) -> int:
        """How many listeners are registered (for one type, or in all)."""
        if event_type is None:
            return sum(len(v) for v in self._listeners.values())
        return len(self._listeners.get(event_type, []))

    async def emit(self, event: CadenceEvent) -> None:
        """Deliver `event` to its listeners, then to the wildcard listeners, in order."""
        for key in (event.type, "*"):
            for listener in tuple(self._listeners.get(key, ())):
                try:
                    outcome = listener(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    _log.exception("event listener %r failed on %s", listener, event.type)

    async def handle_event(self, event: CadenceEvent) -> None:
        """Hook entry point: every lifecycle event of a run arrives here."""
        await self.emit(event)
