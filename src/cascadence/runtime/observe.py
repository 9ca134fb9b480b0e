"""Dispatch of run and step lifecycle to hooks, listeners and reporters.

Built once per flow or engine from whatever the user attached. Only the methods a hook actually
overrides are called, and a run with no observers pays nothing (the runtime checks for None).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from time import time as _now
from typing import Any

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
from cascadence.hooks import CadenceHooks

__all__ = ["HOOK_METHODS", "Observers", "ReporterHooks", "build_observers"]

_log = logging.getLogger("cascadence.hooks")
HOOK_METHODS = (
    "before_cadence",
    "after_cadence",
    "before_note",
    "after_note",
    "on_error",
    "on_retry",
    "handle_event",
)
"""The methods a hooks object may define (any one of them makes an object hooks)."""


def _make(*args: Any, **kwargs: Any) -> CadenceEvent:
    return CadenceEvent(*args, timestamp=_now(), **kwargs)  # type: ignore[misc]


class ReporterHooks(CadenceHooks):
    """Adapt a reporter callable (`reporter.report`) that takes `CadenceEvent`s."""

    def __init__(self, report: Callable[[CadenceEvent], Any]) -> None:
        self.report = report

    async def handle_event(self, event: CadenceEvent) -> None:
        """Forward the event to the reporter."""
        outcome = self.report(event)
        if inspect.isawaitable(outcome):
            await outcome


def _overrides(hook: Any, method: str) -> Callable[..., Any] | None:
    bound = getattr(hook, method, None)
    if bound is None:
        return None
    base = getattr(CadenceHooks, method)
    if getattr(type(hook), method, None) is base:
        return None
    return bound  # type: ignore[no-any-return]


class Observers:
    """The hooks of one flow or engine, grouped by the methods they implement."""

    __slots__ = ("_by_method", "_joined", "hooks", "kind", "wants_events")

    def __init__(self, hooks: Sequence[Any], kind: str) -> None:
        self.hooks = tuple(hooks)
        self.kind = kind
        # `joined` results, per other Observers (kept with it, so its id is not reused)
        self._joined: dict[int, tuple[Observers, Observers]] = {}
        self._by_method: dict[str, tuple[Callable[..., Any], ...]] = {
            method: tuple(fn for h in self.hooks if (fn := _overrides(h, method)) is not None)
            for method in HOOK_METHODS
        }
        self.wants_events = bool(self._by_method["handle_event"])

    async def _event(self, event: CadenceEvent) -> None:
        await self._hooks("handle_event", event)

    async def _hooks(self, method: str, *args: Any) -> None:
        """Call every hook's `method` with `args`; a failing hook is logged, never raised."""
        for fn in self._by_method[method]:
            try:
                outcome = fn(*args)
                if outcome is not None and inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                _log.exception("hook %r failed", fn)

    async def run_started(self, name: str, run_id: str | None, arg: Any) -> None:
        """A run begins."""
        await self._hooks("before_cadence", name, arg)
        if self.wants_events:
            await self._event(_make(CADENCE_STARTED, name, kind=self.kind, run_id=run_id))

    async def run_finished(
        self, name: str, run_id: str | None, arg: Any, duration: float, error: BaseException | None
    ) -> None:
        """A run ends."""
        await self._hooks("after_cadence", name, arg, duration, error)
        if self.wants_events:
            kind = CADENCE_COMPLETED if error is None else CADENCE_FAILED
            await self._event(
                _make(kind, name, duration=duration, error=error, kind=self.kind, run_id=run_id)
            )

    async def step_started(self, run_name: str, run_id: str | None, step: str, arg: Any) -> None:
        """A step begins."""
        await self._hooks("before_note", step, arg)
        if self.wants_events:
            await self._event(
                _make(NOTE_STARTED, run_name, note_name=step, kind=self.kind, run_id=run_id)
            )

    async def step_finished(
        self,
        run_name: str,
        run_id: str | None,
        step: str,
        arg: Any,
        duration: float,
        error: BaseException | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """A step ends; `error` is set when it failed for good: `after_note` hooks see it
        end, then `on_error` hooks see the failure.

        A step cancelled from outside (a sibling failed, the caller gave up) has no outcome of
        its own: `after_note` hooks see it end with the `CancelledError`, and `NOTE_FAILED`
        carries it so that listeners can close what they opened (reporters count it as
        `cancelled`), but it is no failure: `on_error` hooks are not called.
        """
        await self._hooks("after_note", step, arg, duration, error)
        if error is not None and not isinstance(error, asyncio.CancelledError):
            await self._hooks("on_error", step, arg, error)  # after the step's end, as reported
        if self.wants_events:
            kind = NOTE_COMPLETED if error is None else NOTE_FAILED
            await self._event(
                _make(
                    kind,
                    run_name,
                    note_name=step,
                    duration=duration,
                    error=error,
                    kind=self.kind,
                    run_id=run_id,
                    data=data,
                )
            )

    def joined(self, other: Observers) -> Observers:
        """These observers followed by those of `other` that are not already here (worked
        out once per pair: a child flow's observers join its parent's on every run)."""
        cached = self._joined.get(id(other))
        if cached is not None and cached[0] is other:
            return cached[1]
        mine = {_key(h) for h in self.hooks}
        extra = [h for h in other.hooks if _key(h) not in mine]
        result = Observers(self.hooks + tuple(extra), self.kind) if extra else self
        self._joined[id(other)] = (other, result)
        return result

    def retry_listener(
        self, run_name: str, run_id: str | None, step: str, arg: Any
    ) -> Callable[[int, BaseException, float], Any] | None:
        """A callback for `call_step(on_retry=...)`, or None when nobody listens to retries."""
        if not self._by_method["on_retry"] and not self.wants_events:
            return None

        async def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            await self._hooks("on_retry", step, arg, attempt, error, delay)
            if self.wants_events:
                await self._event(
                    _make(
                        NOTE_RETRYING,
                        run_name,
                        note_name=step,
                        error=error,
                        attempt=attempt,
                        delay=delay,
                        kind=self.kind,
                        run_id=run_id,
                    )
                )

        return on_retry

    async def routing(
        self, run_name: str, run_id: str | None, stage: str, rule: str, action: str
    ) -> None:
        """A routing rule matched (cascades)."""
        if self.wants_events:
            await self._event(
                _make(
                    ROUTING_DECISION,
                    run_name,
                    note_name=stage,
                    kind=self.kind,
                    run_id=run_id,
                    data={"rule": rule, "action": action, "stage": stage},
                )
            )


def _key(item: Any) -> tuple[Any, ...]:
    """What an attached observer reports to: the same key means the same observer.

    A reporter's entry point (`reporter.report`, the reporter itself, `handle_event`) keys as
    the reporter object when that object, attached as hooks, gets every event through its own
    `handle_event`: then a reporter attached both as hooks and as a reporter is one observer.
    """
    if type(item) is not ReporterHooks:
        return ("object", id(item))
    target = item.report
    if inspect.ismethod(target):
        owner, name = target.__self__, target.__func__.__name__
    else:
        owner, name = target, "__call__"
    if name == "handle_event" or (
        name in ("report", "__call__") and _overrides(owner, "handle_event") is not None
    ):
        return ("object", id(owner))
    return ("call", id(owner), name)


def build_observers(hooks: Sequence[Any], reporters: Sequence[Any], kind: str) -> Observers | None:
    """Group hooks and reporter callables; None when there are none.

    An observer attached more than once (the same hooks object twice, `reporter.report`
    given twice, a reporter given both as hooks and as a reporter) is called once per event,
    in its first place, hooks before reporters (as hooks, a reporter also sees step results).
    """
    items: list[Any] = []
    seen: set[tuple[Any, ...]] = set()
    for item in (
        *hooks,
        *(r if isinstance(r, CadenceHooks) else ReporterHooks(r) for r in reporters),
    ):
        key = _key(item)
        if key not in seen:
            seen.add(key)
            items.append(item)
    return Observers(items, kind) if items else None
