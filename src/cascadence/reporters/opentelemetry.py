"""OpenTelemetry traces of flows and cascades: one span per run, one child span per step.

```python
from cascadence.reporters import OpenTelemetryReporter

reporter = OpenTelemetryReporter(service_name="my-service")
flow = Cadence("traced", MyScore()).with_reporter(reporter.report).then("note1", do_work)
engine = CascadeEngine(config, reporters=[reporter])   # the object itself: also stage results
```

Span tree of one run:

```
cascade trust_scoring_cascade          cascadence.kind, .name, .run_id, .final_stage, .result,
├── stage FAST_CHECK                   .confidence, routing events and .routing.rule(s)
│   └── (spans the handler makes)      cascadence.step, .confidence, .cost, .result, retries
└── stage MEDIUM_CHECK
```

Parallel steps (a `.sync` group, a cascade parallel group) are siblings. While a step runs,
its span is the current OpenTelemetry span, so spans that a handler opens itself (an HTTP
client's, a database driver's) nest under it; a run started inside another span (an HTTP
server's request span, or another run's step) nests under that one.

Attaching the reporter object (`reporters=[reporter]`, `hooks=[reporter]`,
`.with_hooks(reporter)`) rather than `reporter.report` also records each stage's `result`.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from cascadence.reporters._errors import failure_kind, root_error

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["OpenTelemetryReporter"]

_MAX_TEXT = 256
_RUN_NAMES = {"cascade": "cascade", "cadence": "flow"}
_STEP_NAMES = {"cascade": "stage", "cadence": "note"}
_ids = itertools.count()


def _attr(value: Any) -> Any:
    """An attribute value: scalars as they are, anything else as a bounded string."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) or len(value) <= _MAX_TEXT else value[:_MAX_TEXT]
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


class _Frame:
    """One open span of a run or a step, in the task that opened it.

    Frames form a chain through `parent`; each task sees the chain as it was when the task was
    created (they live in a context variable), so concurrent runs and parallel steps never
    share a current frame.
    """

    __slots__ = (
        "children",
        "ctx",
        "is_run",
        "last_confidence",
        "last_failed",
        "last_result",
        "last_step",
        "name",
        "open",
        "outer",
        "parent",
        "retries",
        "routing",
        "span",
        "step",
    )

    def __init__(
        self,
        span: Span,
        ctx: Context,
        parent: _Frame | None,
        outer: Context,
        name: str,
        step: str | None,
    ) -> None:
        self.span = span
        self.ctx = ctx
        self.parent = parent
        self.outer = outer
        self.name = name
        self.step = step
        self.is_run = step is None
        self.open = True
        self.retries = 0
        self.children: set[_Frame] | None = set() if step is None else None
        self.routing: list[tuple[str, str]] | None = None
        self.last_step: str | None = None
        self.last_result: Any = None
        self.last_confidence: Any = None
        self.last_failed = False


def _open_frame(frame: _Frame | None) -> _Frame | None:
    while frame is not None and not frame.open:
        frame = frame.parent
    return frame


def _run_frame(frame: _Frame | None, name: str | None = None) -> _Frame | None:
    while frame is not None and not (frame.open and frame.is_run):
        frame = frame.parent
    if frame is not None and name is not None and frame.name != name:
        probe = frame.parent
        while probe is not None:
            if probe.open and probe.is_run and probe.name == name:
                return probe
            probe = probe.parent
    return frame


class OpenTelemetryReporter(CadenceHooks):
    """Trace runs and steps with OpenTelemetry (see the module docstring).

    Args:
        service_name: Recorded as `cascadence.service` on run spans. The `service.name`
            resource itself belongs to the tracer provider; set it there.
        tracer_provider: Where spans go; default the global provider (resolved lazily, so
            configuring OpenTelemetry after creating the reporter works).
        record_results: Record step results as `cascadence.result` attributes (results are
            cut to 256 characters). Turn off when results are sensitive.
    """

    def __init__(
        self,
        service_name: str = "cascadence",
        tracer_provider: TracerProvider | None = None,
        *,
        record_results: bool = True,
    ) -> None:
        try:
            from opentelemetry import context as otel_context
            from opentelemetry import trace
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "OpenTelemetryReporter needs opentelemetry-api: pip install cascadence[otel]"
            ) from None
        from cascadence._version import __version__

        self.service_name = service_name
        self.record_results = record_results
        self.tracer: Tracer = trace.get_tracer(
            "cascadence", __version__, tracer_provider=tracer_provider
        )
        self._trace = trace
        self._ctx = otel_context
        self._error = trace.StatusCode.ERROR
        self._var: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar(
            f"cascadence_otel_{next(_ids)}", default=None
        )
        self._instrumented: weakref.WeakSet[Any] = weakref.WeakSet()
        self._dispatch: dict[str, Callable[[CadenceEvent], None]] = {
            CADENCE_STARTED: self._run_started,
            CADENCE_COMPLETED: self._run_finished,
            CADENCE_FAILED: self._run_finished,
            NOTE_STARTED: self._step_started,
            NOTE_COMPLETED: self._step_finished,
            NOTE_FAILED: self._step_finished,
            NOTE_RETRYING: self._retry,
            ROUTING_DECISION: self._routing,
        }

    # -- entry points ---------------------------------------------------------------------
    def report(self, event: CadenceEvent) -> None:
        """Open, annotate or close spans for one lifecycle event.

        Pass this method to `with_reporter` / `reporters=`. It must be called in the task that
        runs the step, which is how flows and cascades deliver events.
        """
        handler = self._dispatch.get(event.type)
        if handler is not None:
            handler(event)

    def __call__(self, event: CadenceEvent) -> None:
        """Same as `report`."""
        self.report(event)

    async def handle_event(self, event: CadenceEvent) -> None:
        """Hook entry point: the same as `report`."""
        self.report(event)

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Record a stage's result on its span (called just before the step's closing event)."""
        if not self.record_results:
            return
        results = getattr(score, "stage_results", None)
        if results is None:
            return
        frame = self._var.get()
        if frame is None or not frame.open or frame.step != note_name:
            return
        stage = results.get(note_name)
        if stage is not None:
            value = stage.get("result")
            frame.span.set_attribute("cascadence.result", _attr(value))
            run = frame.parent
            if run is not None and run.is_run:
                run.last_result = value

    def instrument(self, target: Any) -> Any:
        """Attach this reporter to a `CascadeEngine` or a `Cadence` (once) and return it.

        It is attached as a hook object, so stage results are recorded too.
        """
        if target in self._instrumented:
            return target
        if hasattr(target, "add_hooks"):
            target.add_hooks(self)
        elif hasattr(target, "with_hooks"):
            target.with_hooks(self)
        else:
            raise TypeError(
                f"instrument() expects a CascadeEngine or a Cadence, got {type(target).__name__}"
            )
        self._instrumented.add(target)
        return target

    # -- runs -----------------------------------------------------------------------------
    def _start(self, name: str, step: str | None, span_name: str, attrs: dict[str, Any]) -> _Frame:
        current = self._var.get()
        # A step always belongs to the innermost open run; a run nests in whatever is open.
        parent = _open_frame(current) if step is None else _run_frame(current, name)
        outer = self._ctx.get_current()
        parent_ctx = parent.ctx if parent is not None else outer
        span = self.tracer.start_span(span_name, context=parent_ctx, attributes=attrs)
        ctx = self._trace.set_span_in_context(span, parent_ctx)
        frame = _Frame(span, ctx, parent, outer, name, step)
        if parent is not None:
            owner = parent if parent.is_run else _run_frame(parent)
            if owner is not None and owner.children is not None:
                owner.children.add(frame)
        self._var.set(frame)
        self._ctx.attach(ctx)
        return frame

    def _close(self, frame: _Frame) -> None:
        frame.open = False
        frame.span.end()
        parent = frame.parent
        if parent is not None:
            owner = parent if parent.is_run else _run_frame(parent)
            if owner is not None and owner.children is not None:
                owner.children.discard(frame)
        # Restore by value, not by token: a step may end in a task other than the one that
        # opened it.
        self._var.set(parent)
        self._ctx.attach(parent.ctx if parent is not None and parent.open else frame.outer)

    def _run_started(self, event: CadenceEvent) -> None:
        attrs: dict[str, Any] = {
            "cascadence.kind": event.kind,
            "cascadence.name": event.cadence_name,
            "cascadence.service": self.service_name,
        }
        if event.run_id is not None:
            attrs["cascadence.run_id"] = event.run_id
        self._start(
            event.cadence_name,
            None,
            f"{_RUN_NAMES.get(event.kind, event.kind)} {event.cadence_name}",
            attrs,
        )

    def _run_finished(self, event: CadenceEvent) -> None:
        frame = _run_frame(self._var.get(), event.cadence_name)
        if frame is None or frame.name != event.cadence_name:
            return
        span = frame.span
        if frame.children:
            for child in list(frame.children):  # steps cancelled before they could report
                child.span.set_status(self._error, "cancelled")
                child.open = False
                child.span.end()
            frame.children.clear()
        attrs: dict[str, Any] = {}
        if frame.last_step is not None:
            attrs["cascadence.final_stage"] = frame.last_step
            if frame.last_confidence is not None:
                attrs["cascadence.confidence"] = _attr(frame.last_confidence)
            if frame.last_result is not None and self.record_results:
                attrs["cascadence.result"] = _attr(frame.last_result)
        routing = frame.routing
        if routing:
            attrs["cascadence.routing.rules"] = [rule for rule, _ in routing]
            attrs["cascadence.routing.rule"], attrs["cascadence.routing.action"] = routing[-1]
        if event.duration is not None:
            attrs["cascadence.duration_ms"] = event.duration * 1000.0
        if event.type == CADENCE_FAILED:
            attrs["cascadence.outcome"] = failure_kind(event.error)
        span.set_attributes(attrs)
        if event.type == CADENCE_FAILED:
            self._fail(span, event.error)
        self._close(frame)

    # -- steps ----------------------------------------------------------------------------
    def _step_started(self, event: CadenceEvent) -> None:
        step = event.note_name or ""
        attrs: dict[str, Any] = {
            "cascadence.kind": event.kind,
            "cascadence.name": event.cadence_name,
            "cascadence.step": step,
        }
        self._start(
            event.cadence_name, step, f"{_STEP_NAMES.get(event.kind, 'step')} {step}", attrs
        )

    def _find_step(self, event: CadenceEvent) -> _Frame | None:
        frame = self._var.get()
        step = event.note_name
        while frame is not None:
            if frame.open and not frame.is_run and frame.step == step:
                return frame if frame.name == event.cadence_name else None
            if frame.open and frame.is_run:
                return None
            frame = frame.parent
        return None

    def _step_finished(self, event: CadenceEvent) -> None:
        frame = self._find_step(event)
        if frame is None:
            return
        span = frame.span
        data = event.data
        confidence = None
        attrs: dict[str, Any] = {}
        if data is not None:
            confidence = data.get("confidence")
            if confidence is not None:
                attrs["cascadence.confidence"] = _attr(confidence)
            cost = data.get("cost")
            if cost is not None:
                attrs["cascadence.cost"] = cost
        if frame.retries:
            attrs["cascadence.retries"] = frame.retries
        if event.type == NOTE_FAILED:
            attrs["cascadence.outcome"] = failure_kind(event.error)
        if attrs:
            span.set_attributes(attrs)
        if event.type == NOTE_FAILED:
            self._fail(span, event.error)
        run = frame.parent
        # A step cancelled because a sibling failed (or the run was stopped) does not hide the
        # step whose failure ended the run: that one stays the run's final stage.
        cancelled = event.type == NOTE_FAILED and attrs.get("cascadence.outcome") == "cancelled"
        if run is not None and run.is_run and not (cancelled and run.last_failed):
            run.last_step = frame.step
            run.last_confidence = confidence
            run.last_failed = event.type == NOTE_FAILED and not cancelled
            if event.type == NOTE_FAILED:
                run.last_result = None
        self._close(frame)

    def _retry(self, event: CadenceEvent) -> None:
        frame = self._find_step(event)
        if frame is None:
            return
        frame.retries += 1
        attrs: dict[str, Any] = {"cascadence.retry.attempt": event.attempt or frame.retries}
        if event.delay is not None:
            attrs["cascadence.retry.delay_s"] = event.delay
        if event.error is not None:
            cause = root_error(event.error) or event.error
            attrs["exception.type"] = type(cause).__name__
            attrs["exception.message"] = _attr(str(cause))
        frame.span.add_event("retry", attrs)

    def _routing(self, event: CadenceEvent) -> None:
        frame = _run_frame(self._var.get(), event.cadence_name)
        if frame is None:
            return
        data = event.data or {}
        rule = str(data.get("rule", ""))
        action = str(data.get("action", ""))
        stage = str(data.get("stage") or event.note_name or "")
        frame.span.add_event(
            "routing",
            {
                "cascadence.stage": stage,
                "cascadence.routing.rule": rule,
                "cascadence.routing.action": action,
            },
        )
        if frame.routing is None:
            frame.routing = []
        frame.routing.append((rule, action))

    def _fail(self, span: Span, error: BaseException | None) -> None:
        if error is None:
            span.set_status(self._error)
            return
        if isinstance(error, asyncio.CancelledError):  # stopped from outside, not failed
            span.set_attribute("cascadence.error_type", "CancelledError")
            span.set_status(self._error, "cancelled")
            return
        span.record_exception(error)
        cause = root_error(error) or error
        span.set_attribute("cascadence.error_type", type(cause).__name__)
        span.set_status(self._error, f"{type(cause).__name__}: {_attr(str(cause))}")

    def __repr__(self) -> str:
        return f"OpenTelemetryReporter(service_name={self.service_name!r})"
