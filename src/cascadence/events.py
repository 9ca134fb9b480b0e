"""Lifecycle events of flows and cascades, and `EventEmitter` to listen to them.

Every run, of a `Cadence` or a `CascadeEngine`, produces the same frozen `CadenceEvent`s:

- `CADENCE_STARTED`, `CADENCE_COMPLETED`, `CADENCE_FAILED` once per run;
- `NOTE_STARTED`, `NOTE_COMPLETED`, `NOTE_FAILED` once per step (note or stage);
- `NOTE_RETRYING` before each retry, `ROUTING_DECISION` when a cascade rule matches.

Listeners may be plain functions or coroutine functions; `"*"` listens to everything. Besides
the lifecycle events, an emitter carries the application's own domain events: any other event
type (`"order.placed"`) can be listened to and emitted with `emit`. A near miss of a lifecycle
event (`"note.complete"`, `"NODE_STARTED"`, anything in the `note.`, `cadence.` or `routing.`
namespaces that is not one, a lifecycle event with its namespace misspelt: `"nte.started"`) or a
listener that cannot take the event is refused when it is registered.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from cascadence.errors import closest
from cascadence.hooks import CadenceHooks
from cascadence.runtime.handlers import refused_call

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

_CONSTANTS: dict[str, str] = {
    "CADENCE_STARTED": CADENCE_STARTED,
    "CADENCE_COMPLETED": CADENCE_COMPLETED,
    "CADENCE_FAILED": CADENCE_FAILED,
    "NOTE_STARTED": NOTE_STARTED,
    "NOTE_COMPLETED": NOTE_COMPLETED,
    "NOTE_FAILED": NOTE_FAILED,
    "NOTE_RETRYING": NOTE_RETRYING,
    "ROUTING_DECISION": ROUTING_DECISION,
}
"""Each event type by the name of its constant in this module."""
_NOT_WORD = re.compile(r"[^0-9A-Za-z]+")

_log = logging.getLogger("cascadence.events")


def _suggest(event_type: str) -> str | None:
    """`NOTE_COMPLETED = 'note.completed'` for the event type closest to `event_type`.

    The constant's name, the event type, and spellings in between (`note_completed`,
    `Note-Completed`, `NOTE_COMPLETE`) all compare in one form: the constant's name.
    """
    key = _NOT_WORD.sub("_", event_type).strip("_").upper()
    name = key if key in _CONSTANTS else closest(key, _CONSTANTS)
    return None if name is None else f"{name} = {_CONSTANTS[name]!r}"


_RESERVED = ("NOTE", "CADENCE", "ROUTING")
"""First words of the lifecycle events' names: their namespaces (`note.`, `cadence.`, ...)."""


_SUFFIXES = tuple({name.split("_", 1)[1] for name in _CONSTANTS})
"""What follows the namespace in the lifecycle events' names (`STARTED`, `DECISION`, ...)."""


def _edits(a: str, b: str) -> int:
    """Edit distance of two short words, a swap of neighbours counting as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            row.append(cost)
        previous2, previous = previous, row
    return previous[-1]


def _near_namespace(word: str) -> bool:
    """A misspelling of a lifecycle namespace: within two edits of `cadence` or `routing`; for
    `note`, one letter more or less or two swapped (`nte`, `notes`, `ntoe`), so that words a
    letter apart (`node`, `vote`) stay the application's own."""
    for reserved in _RESERVED:
        if len(reserved) > 4:
            if _edits(word, reserved) <= 2:
                return True
        elif (abs(len(word) - len(reserved)) == 1 or sorted(word) == sorted(reserved)) and _edits(
            word, reserved
        ) == 1:
            return True
    return False


def _misspelt_lifecycle(event_type: str) -> bool:
    """Whether `event_type` is in a lifecycle namespace (`note.complete`, `NOTE_COMPLETED`,
    `Cadence-Failed`) without being a lifecycle event, or is a lifecycle event with its
    namespace misspelt (`nte.started`, `cadense.completed`): a mistake, not an event of the
    application's own (`order.placed`, `node.failed`, `quote.completed`)."""
    key = _NOT_WORD.sub("_", event_type).strip("_").upper()
    first, _, rest = key.partition("_")
    if first in _RESERVED:
        return True
    if not rest or not _near_namespace(first):
        return False
    return bool(difflib.get_close_matches(rest, _SUFFIXES, n=1, cutoff=0.8))


def _check_event_type(event_type: object, method: str) -> None:
    if event_type == "*" or event_type in ALL_EVENTS:
        return
    expected = (
        f"expected one of {', '.join(map(repr, ALL_EVENTS))}, '*' for every event, or an "
        "event type of your own outside the note., cadence. and routing. namespaces"
    )
    if not isinstance(event_type, str):
        swapped = (
            "; the event type comes first: on(NOTE_COMPLETED, listener)"
            if callable(event_type)
            else ""
        )
        raise TypeError(
            f"{method}() needs an event type string, got {type(event_type).__name__} "
            f"{event_type!r}; {expected}{swapped}"
        )
    if event_type and not event_type.isspace() and not _misspelt_lifecycle(event_type):
        return  # a domain event of the application's own
    hint = _suggest(event_type)
    raise ValueError(
        f"unknown event type {event_type!r}"
        + (f"; did you mean {hint}?" if hint else "")
        + f" ({expected}; the constants are importable from cascadence.events)"
    )


def _not_callable(event_type: str, listener: object, method: str) -> str:
    hint = "; pass the function itself, not its name" if isinstance(listener, str) else ""
    return (
        f"{method}({event_type!r}, ...) needs a callable listener taking one CadenceEvent, "
        f"got {type(listener).__name__} {listener!r}{hint}"
    )


def _check_listener(event_type: str, listener: object, method: str) -> None:
    if not callable(listener):
        raise TypeError(_not_callable(event_type, listener, method))
    refused = refused_call(listener, 1)
    if refused is not None:
        name = getattr(listener, "__qualname__", type(listener).__name__)
        raise TypeError(
            f"{method}({event_type!r}, ...) needs a listener taking one CadenceEvent, but "
            f"{name}{refused[0]} cannot be called with one argument ({refused[1]})"
        )


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
_EVENT_FIELDS = CadenceEvent._fields[1:]  # what emit(type, ...) takes as keywords


class EventEmitter(CadenceHooks):
    """Register listeners per event type; attach with `.with_hooks(emitter)`.

    A listener that raises is logged and does not break the run or the other listeners.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, event_type: str, listener: Listener) -> Listener:
        """Call `listener` for every event of `event_type` (`"*"` for all).

        Any event type outside the lifecycle namespaces is the application's own, delivered
        when `emit` sends an event of that type.

        Raises:
            ValueError: `event_type` is in a lifecycle namespace (`note.`, `cadence.`,
                `routing.`) but not a lifecycle event (the message names the closest), or
                empty.
            TypeError: `event_type` is not a string, or `listener` is not a callable that
                takes one `CadenceEvent`.
        """
        _check_event_type(event_type, "on")
        _check_listener(event_type, listener, "on")
        self._listeners.setdefault(event_type, []).append(listener)
        return listener

    def off(self, event_type: str, listener: Listener) -> None:
        """Stop calling `listener` for `event_type` (nothing happens if it was not registered).

        Raises:
            ValueError: `event_type` is not an event type.
            TypeError: `event_type` is not a string, or `listener` is not callable.
        """
        _check_event_type(event_type, "off")
        if not callable(listener):
            raise TypeError(_not_callable(event_type, listener, "off"))
        listeners = self._listeners.get(event_type, [])
        if listener in listeners:
            listeners.remove(listener)

    def listener_count(self, event_type: str | None = None) -> int:
        """How many listeners are registered (for one type, or in all)."""
        if event_type is None:
            return sum(len(v) for v in self._listeners.values())
        _check_event_type(event_type, "listener_count")
        return len(self._listeners.get(event_type, []))

    async def emit(self, event: CadenceEvent | str, **fields: Any) -> CadenceEvent:
        """Deliver `event` to its listeners, then to the wildcard listeners, in order.

        `event` is a `CadenceEvent`, or an event type with the event's fields as keywords:
        `await emitter.emit("order.placed", cadence_name="checkout", data={"id": 7})`. An
        event made without a timestamp gets the current time.

        Returns:
            The event delivered.
        """
        if isinstance(event, str):
            _check_event_type(event, "emit")
            unknown = [name for name in fields if name not in _EVENT_FIELDS]
            if unknown:
                hint = closest(unknown[0], _EVENT_FIELDS)
                raise TypeError(
                    f"emit() got an unknown event field {unknown[0]!r}"
                    + (f"; did you mean {hint!r}?" if hint else "")
                    + f" (fields: {', '.join(_EVENT_FIELDS)}; put your own values in "
                    "data={...})"
                )
            fields.setdefault("cadence_name", "")
            event = CadenceEvent(event, **fields)
        elif fields:
            raise TypeError("emit() takes the fields as keywords only with an event type string")
        elif not isinstance(event, CadenceEvent):
            raise TypeError(
                f"emit() needs a CadenceEvent or an event type string, got "
                f"{type(event).__name__} {event!r}"
            )
        if not event.timestamp:
            event = event._replace(timestamp=time.time())
        for key in (event.type, "*"):
            for listener in tuple(self._listeners.get(key, ())):
                try:
                    outcome = listener(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    _log.exception("event listener %r failed on %s", listener, event.type)
        return event

    async def handle_event(self, event: CadenceEvent) -> None:
        """Hook entry point: every lifecycle event of a run arrives here."""
        await self.emit(event)
