"""Hooks: code that runs around every run and every step, for flows and cascades alike.

Subclass `CadenceHooks` and override what you need; methods may be `async def` or plain `def`.
For a cascade, `score` is the stage's `ExecutionContext` and `note_name` the stage name.
`handle_event` receives every lifecycle event as a frozen `cascadence.events.CadenceEvent`.

A subclass is checked when it is defined: a hook whose signature cannot take the arguments the
runtime passes raises `TypeError` there, instead of failing on every call; a public method whose
name is a near miss of a hook name (`before_notes`, `on_eror`) gets a warning, since the runtime
never calls it.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cascadence.errors import CascadenceWarning
from cascadence.runtime.handlers import refused_call

if TYPE_CHECKING:
    from cascadence.events import CadenceEvent

__all__ = ["CadenceHooks", "DebugHooks", "LoggingHooks", "MetricsHooks", "TimingHooks"]


class CadenceHooks:
    """Base class of hooks; every method is a no-op until overridden.

    Subclasses are checked as they are defined (see `__init_subclass__`).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the hooks a subclass defines, so that mistakes fail where they are made.

        A public method whose name is close to a hook's, or reads like one in other words
        (`on_cadence_start`, `after_step`), is not called by the runtime: a `CascadenceWarning`
        names the hook it may mean.

        Raises:
            TypeError: A hook cannot accept the arguments the runtime passes.
        """
        super().__init_subclass__(**kwargs)
        _check_hooks_class(cls)

    async def before_cadence(self, cadence_name: str, score: Any) -> None:
        """Called when a run starts."""

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Called when a run ends, successfully or not."""

    async def before_note(self, note_name: str, score: Any) -> None:
        """Called before a step runs."""

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Called after a step ran (with its error, if it failed)."""

    async def on_error(self, note_name: str, score: Any, error: BaseException) -> None:
        """Called when a step failed for good, after its `after_note`."""

    async def on_retry(
        self, note_name: str, score: Any, attempt: int, error: BaseException, delay: float
    ) -> None:
        """Called before a failed step is tried again."""

    async def handle_event(self, event: CadenceEvent) -> None:
        """Called with every lifecycle event."""


_HOOK_PARAMETERS: dict[str, tuple[inspect.Parameter, ...]] = {
    name: tuple(inspect.signature(method).parameters.values())[1:]
    for name, method in vars(CadenceHooks).items()
    if not name.startswith("_") and inspect.isfunction(method)
}
"""Each hook method and the parameters the runtime fills, positionally, after `self`."""


def _hook_call(name: str, parameters: tuple[inspect.Parameter, ...]) -> str:
    shown = ["self"]
    shown += [p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in parameters]
    return f"{name}({', '.join(shown)})"


def _as_function(attribute: object) -> tuple[Callable[..., Any], bool] | None:
    """The function behind a class attribute, and whether it takes the instance or class first;
    None when the attribute is not a method (data, nested classes, other descriptors)."""
    if isinstance(attribute, (staticmethod, classmethod)):
        return attribute.__func__, isinstance(attribute, classmethod)
    if inspect.isfunction(attribute):
        return attribute, True
    return None


_STARTS = ("start", "begin", "enter")
_ENDS = ("end", "complete", "finish", "done", "exit", "success")


def _hook_meant(name: str) -> list[str]:
    """The hook a lifecycle-looking name means in other words (`on_cadence_start`,
    `on_flow_end`, `after_step`, `on_note_failed`), as a one-item list; [] when it does not
    look like a hook."""
    words = name.lower().split("_")
    if words[0] not in ("on", "before", "after", "pre", "post") or len(words) < 2:
        return []
    rest = words[1:]
    if any(word.startswith(("error", "fail", "exception")) for word in rest):
        return ["on_error"]
    if any(word.startswith("retr") for word in rest):
        return ["on_retry"]
    if any(word.startswith("event") for word in rest):
        return ["handle_event"]
    if words[0] in ("before", "pre") or any(word.startswith(_STARTS) for word in rest):
        when = "before"
    elif words[0] in ("after", "post") or any(word.startswith(_ENDS) for word in rest):
        when = "after"
    else:
        return []
    if any(word.startswith(("note", "step", "stage", "task")) for word in rest):
        return [f"{when}_note"]
    if any(word.startswith(("cadence", "flow", "run", "cascade", "pipeline")) for word in rest):
        return [f"{when}_cadence"]
    return []


def _check_hooks_class(cls: type) -> None:
    """Refuse near-miss hook names and hooks the runtime cannot call (see `__init_subclass__`)."""
    for name, attribute in vars(cls).items():
        found = _as_function(attribute)
        if found is None or name.startswith("_"):
            continue
        function, bound_first = found
        parameters = _HOOK_PARAMETERS.get(name)
        if parameters is None:
            close = difflib.get_close_matches(name, list(_HOOK_PARAMETERS), n=1, cutoff=0.85)
            if not close:
                close = _hook_meant(name)
            if close:  # a warning: it may as well be a helper of the user's own
                warnings.warn(
                    f"{cls.__qualname__}.{name} is not a hook method, so the runtime never calls "
                    f"it; did you mean {close[0]!r}? (hook methods: "
                    f"{', '.join(_HOOK_PARAMETERS)}; a helper's name can start with '_')",
                    CascadenceWarning,
                    stacklevel=3,  # the class statement
                )
            continue
        refused = refused_call(function, len(parameters) + bound_first)
        if refused is not None:
            raise TypeError(
                f"{cls.__qualname__}.{name}{refused[0]} cannot accept the arguments the runtime "
                f"passes ({refused[1]}); expected {_hook_call(name, parameters)} with "
                f"{len(parameters)} positional argument{'s' if len(parameters) != 1 else ''} "
                "after self (extra parameters need defaults)"
            )


def _structlog_logger(name: str, *, only_configured: bool) -> Any:
    try:
        import structlog
    except ImportError:
        return None
    if only_configured and not structlog.is_configured():
        return None
    return structlog.get_logger(name)


class LoggingHooks(CadenceHooks):
    """Log runs and steps: through the standard library's `logging`, or through structlog when
    the application has configured structlog (`structlog.configure(...)`).

    Standard-library records carry the fields as a dict in `record.cascadence` too (for
    example `{"note": "fetch", "duration_s": 0.002}`), for JSON formatters.

    Args:
        logger: A `logging.Logger` (default `cascadence`) or a structlog logger.
        level: Level for start and completion lines (a number or a name such as "INFO");
            failures log at ERROR.
        structured: Force structlog on (True) or off (False); None picks it when it is
            installed and configured, so `logging.basicConfig(...)` alone keeps working.
    """

    def __init__(
        self, logger: Any = None, level: int | str = logging.INFO, structured: bool | None = None
    ) -> None:
        if isinstance(level, str):  # "INFO", "debug": the names logging knows
            named = logging.getLevelName(level.upper())
            if not isinstance(named, int):
                raise ValueError(
                    f"unknown log level {level!r}; expected DEBUG, INFO, WARNING, ERROR, "
                    "CRITICAL or a number"
                )
            level = named
        elif isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(f"level must be a logging level, got {level!r}")
        self.level = level
        self._struct = None
        if logger is not None and not isinstance(logger, logging.Logger):
            self._struct = logger  # structlog-like: log(level, event, **fields)
        elif logger is None and structured is not False:
            self._struct = _structlog_logger("cascadence", only_configured=not structured)
            if structured and self._struct is None:
                raise ImportError(
                    "structured=True needs structlog: pip install cascadence[structlog]"
                )
        self.logger = logger if logger is not None else logging.getLogger("cascadence")

    def _emit(self, level: int, message: str, **fields: Any) -> None:
        if self._struct is not None:
            self._struct.log(level, message, **fields)
            return
        if self.logger.isEnabledFor(level):
            detail = " ".join(f"{k}={v!r}" for k, v in fields.items())
            self.logger.log(level, "%s %s", message, detail, extra={"cascadence": fields})

    async def before_cadence(self, cadence_name: str, score: Any) -> None:
        """Log the start of a run."""
        self._emit(self.level, "run started", cadence=cadence_name)

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Log the end of a run."""
        if error is None:
            self._emit(
                self.level, "run completed", cadence=cadence_name, duration_s=round(duration, 6)
            )
        else:
            self._emit(logging.ERROR, "run failed", cadence=cadence_name, error=repr(error))

    async def before_note(self, note_name: str, score: Any) -> None:
        """Log the start of a step."""
        self._emit(self.level, "note started", note=note_name)

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Log the end of a step."""
        if error is None:
            self._emit(self.level, "note completed", note=note_name, duration_s=round(duration, 6))
        else:
            self._emit(logging.ERROR, "note failed", note=note_name, error=repr(error))

    async def on_retry(
        self, note_name: str, score: Any, attempt: int, error: BaseException, delay: float
    ) -> None:
        """Log a retry."""
        self._emit(logging.WARNING, "note retrying", note=note_name, attempt=attempt, delay_s=delay)


class TimingHooks(CadenceHooks):
    """Record how long each step and run took.

    Args:
        max_samples: How many of the latest durations to keep per name (a long-running service
            must not keep one per execution forever); `summary()` covers every execution.

    Attributes:
        timings: Seconds per step name, the latest `max_samples` executions.
        run_timings: Seconds per run name, the latest `max_samples` runs.
    """

    def __init__(self, max_samples: int = 10_000) -> None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"max_samples must be a whole number >= 1, got {max_samples!r}")
        self.max_samples = max_samples
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.run_timings: dict[str, list[float]] = defaultdict(list)
        self._totals: dict[str, list[float]] = {}  # name -> [count, total, max]

    def _keep(self, samples: list[float], value: float) -> None:
        samples.append(value)
        if len(samples) >= 2 * self.max_samples:  # trimmed in halves: amortised O(1)
            del samples[: len(samples) - self.max_samples]

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Record a step's duration."""
        samples = self.timings[note_name]
        self._keep(samples, duration)
        totals = self._totals.get(note_name)
        if totals is None:
            self._totals[note_name] = [1.0, duration, duration]
        else:
            totals[0] += 1
            totals[1] += duration
            totals[2] = max(totals[2], duration)

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Record a run's duration."""
        self._keep(self.run_timings[cadence_name], duration)

    def summary(self) -> dict[str, dict[str, float]]:
        """Count, total, mean and max seconds per step, over every execution recorded."""
        return {
            name: {
                "count": int(count),
                "total": total,
                "mean": total / count,
                "max": most,
            }
            for name, (count, total, most) in self._totals.items()
        }


class MetricsHooks(CadenceHooks):
    """Count calls, errors and retries per step, and runs per outcome, in memory."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.retries: dict[str, int] = defaultdict(int)
        self.total_time: dict[str, float] = defaultdict(float)
        self.runs: dict[str, int] = defaultdict(int)
        self.failed_runs: dict[str, int] = defaultdict(int)

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Count a step execution."""
        self.calls[note_name] += 1
        self.total_time[note_name] += duration
        if error is not None and not isinstance(error, asyncio.CancelledError):
            self.errors[note_name] += 1  # a step cancelled from outside did not fail

    async def on_retry(
        self, note_name: str, score: Any, attempt: int, error: BaseException, delay: float
    ) -> None:
        """Count a retry."""
        self.retries[note_name] += 1

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Count a run."""
        self.runs[cadence_name] += 1
        if error is not None:
            self.failed_runs[cadence_name] += 1


class DebugHooks(CadenceHooks):
    """Log the score (or context) before and after every step, at DEBUG level."""

    def __init__(self, logger: logging.Logger | None = None, max_trace: int = 10_000) -> None:
        self.logger = logger or logging.getLogger("cascadence.debug")
        self.max_trace = max_trace
        self.trace: list[tuple[str, str, float]] = []
        """The latest `max_trace` (event, step, perf_counter time) entries."""

    def _record(self, entry: tuple[str, str, float]) -> None:
        trace = self.trace
        trace.append(entry)
        if len(trace) >= 2 * self.max_trace:
            del trace[: len(trace) - self.max_trace]

    async def before_note(self, note_name: str, score: Any) -> None:
        """Log the state a step starts from."""
        self._record(("before", note_name, time.perf_counter()))
        self.logger.debug("before %s: %r", note_name, score)

    async def after_note(
        self, note_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        """Log the state a step leaves."""
        self._record(("after", note_name, time.perf_counter()))
        self.logger.debug("after %s (%.6fs, error=%r): %r", note_name, duration, error, score)
