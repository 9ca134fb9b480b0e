"""The one exception tree of cascadence, split by the phase in which an error is found.

```
CascadenceError                      root of everything cascadence raises
├── ConfigError(ValueError)          a cascade file or dict is invalid; `.issues` lists them all
│   └── ConfigFileError(OSError)     a cascade file cannot be read; `.errno`, `.filename`
│       ├── ConfigFileNotFoundError(FileNotFoundError)   no such file
│       ├── ConfigIsADirectoryError(IsADirectoryError)   a folder, not a file
│       └── ConfigPermissionError(PermissionError)       not allowed to read it
├── PlanError                        a valid config cannot run: unknown handler, import path missing
│   └── UnknownStageError(KeyError, ValueError)  a stage name the config does not have
├── CheckpointError                  a checkpoint store failed or a value cannot be serialized
│   └── RunLockedError               another process holds the lease on this run id
└── CadenceError                     an error while a flow or cascade runs (the code spec's root)
    ├── NoteError                    a step failed; `.note_name`, `.original_error`
    │   ├── ParallelNoteError        a task of a `.sync` group failed; `.task_index`, `.group_name`
    │   ├── RetryExhaustedError      every attempt failed; `.attempts`, `.last_error`
    │   ├── TimeoutError             a step ran past its timeout (also a builtin `TimeoutError`)
    │   │   └── GlobalTimeoutError   a whole run ran past its deadline; `.partial_result`
    │   └── CircuitOpenError         a circuit breaker refused the call; `.breaker_name`
    └── MergeConflict                two parallel tasks wrote different values to one field

Skip                                 not an error: raised by a step to skip itself
```

`RunError` is an alias of `CadenceError`: both front ends raise the same run-time errors.
Load-time problems are exceptions raised before anything runs; run-time problems in a cascade
are recorded on the result (see `CascadeEngine.execute`) unless the config asks to stop.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CadenceError",
    "CascadenceError",
    "CascadenceWarning",
    "CheckpointError",
    "CircuitOpenError",
    "ConfigError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "ConfigIsADirectoryError",
    "ConfigIssue",
    "ConfigPermissionError",
    "ConfigWarning",
    "GlobalTimeoutError",
    "MergeConflict",
    "NoteError",
    "ParallelNoteError",
    "PlanError",
    "RetryExhaustedError",
    "RunError",
    "RunLockedError",
    "Skip",
    "StepTimeoutError",
    "TimeoutError",
    "UnknownStageError",
    "closest",
]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to `name`, or None when nothing is close enough."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


class CascadenceError(Exception):
    """Root of every error cascadence raises."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found while loading a config.

    Attributes:
        path: Where inside the config, e.g. `stages.FAST_CHECK.routing_rules[0].condition.operator`.
        message: What is wrong.
        expected: What would have been valid.
        suggestion: The closest valid name, when the problem is an unknown name.
        file: The file the config came from, if any.
        line: 1-based line in that file, if known.
        column: 1-based column (in the file, or inside an expression string), if known.
        source_line: The text of the offending line or expression, shown with a caret.
    """

    path: str
    message: str
    expected: str | None = None
    suggestion: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    source_line: str | None = None

    def location(self) -> str:
        """`file:line:column` as far as known, else `<config>`."""
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None and self.source_line is None:
                where += f":{self.column}"
        return where

    def format(self) -> str:
        """Render the issue as a human-readable, multi-line message."""
        text = f"{self.location()}: {self.path + ': ' if self.path else ''}{self.message}"
        if self.expected:
            text += f"\n    expected: {self.expected}"
        if self.suggestion:
            text += f"\n    did you mean {self.suggestion!r}?"
        if self.source_line is not None and self.column is not None:
            text += f"\n    {self.source_line}\n    {' ' * (self.column - 1)}^"
        return text


class CascadenceWarning(UserWarning):
    """Root of the warnings cascadence gives about how it is used: something that works but
    is likely not what was meant. Silence them all with
    `warnings.filterwarnings("ignore", category=CascadenceWarning)`."""


class ConfigWarning(CascadenceWarning):
    """Something in a cascade configuration that loads but is likely a mistake (a read of
    `stages.A.confidense`, one letter off a key every stage result has).

    Shown at the file and line of the config, once per place. `issue` holds the details as a
    `ConfigIssue` (None when raised by hand).
    """

    def __init__(self, message: str, issue: ConfigIssue | None = None) -> None:
        super().__init__(message)
        self.issue = issue


class ConfigError(CascadenceError, ValueError):
    """A cascade configuration is invalid. Every issue found is in `.issues`, not only the first."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the cascade configuration"
        super().__init__(head + ":\n" + "\n".join("  " + i.format() for i in self.issues))


class ConfigFileError(ConfigError, OSError):
    """A cascade config file cannot be read (other than for its text: that is a `ConfigError`).

    Also an `OSError` with the `errno`, `strerror` and `filename` of the failed read, so code
    written for `open()` catches it as it catches the error `open()` raises; the subclasses
    below are also the matching builtin. The message is the `ConfigError`'s: the file, what is
    wrong and what to do.
    """

    def __init__(
        self,
        issues: Sequence[ConfigIssue],
        errno: int | None = None,
        strerror: str | None = None,
        filename: str | None = None,
    ) -> None:
        super().__init__(issues)
        self.errno = errno
        self.strerror = strerror
        self.filename = filename

    def __str__(self) -> str:
        # the message of a ConfigError, not OSError's `[Errno 2] ...: 'file'`
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.issues, self.errno, self.strerror, self.filename))


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """The cascade config file does not exist; also a `FileNotFoundError`."""


class ConfigIsADirectoryError(ConfigFileError, IsADirectoryError):
    """The path of the cascade config is a folder; also an `IsADirectoryError`."""


class ConfigPermissionError(ConfigFileError, PermissionError):
    """The cascade config file may not be read; also a `PermissionError`."""


class PlanError(CascadenceError):
    """A configuration is valid but cannot be run as given (a handler is missing, for example)."""


class HandlerPathError(PlanError):
    """A handler a cascade file names by import path cannot be used.

    Attributes:
        file: The cascade file.
        stage: The stage whose `handler:` it is.
        detail: What is wrong, without the file and path.
    """

    def __init__(self, file: str, stage: str, detail: str) -> None:
        super().__init__(
            f"{file}: stages.{stage}.handler: {detail} "
            f"(`cascadence validate {file}` shows the line)"
        )
        self.file = file
        self.stage = stage
        self.detail = detail


class UnknownStageError(PlanError, KeyError, ValueError):
    """A stage name the configuration does not have (`register_stage("FAST_CHEK", ...)`).

    Also a `KeyError` and a `ValueError`, so code that guards a lookup by name either way
    catches it. The message names the closest stage and lists them all.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CheckpointError(CascadenceError):
    """A checkpoint store failed, or a value cannot be written to one."""


class RunLockedError(CheckpointError):
    """Another owner holds the lease on this run id; retry after the lease expires."""

    def __init__(self, run_id: str, owner: str | None = None, expires_at: float | None = None):
        self.run_id = run_id
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(
            f"run {run_id!r} is being executed by {owner or 'another owner'}; "
            "wait for it to finish or for its lease to expire"
        )


class CadenceError(CascadenceError):
    """An error raised while a flow or cascade runs."""


RunError = CadenceError


def _shown(error: BaseException) -> str:
    """An error as a message about it shows it: its repr (`ValueError('x')`), but one of ours
    as `Type: message`, so nested errors (a note failing inside a group inside a group) do not
    escape each other's quotes into a message that doubles at every level."""
    if isinstance(error, CadenceError):
        return f"{type(error).__name__}: {error}"
    return repr(error)


class NoteError(CadenceError):
    """A step (note or stage) failed.

    Attributes:
        note_name: The name of the step that failed.
        original_error: The exception the step's handler raised.
    """

    def __init__(self, note_name: str, original_error: BaseException, message: str | None = None):
        self.note_name = note_name
        self.original_error = original_error
        super().__init__(message or f"note {note_name!r} failed: {_shown(original_error)}")


class ParallelNoteError(NoteError):
    """A task of a parallel group failed.

    Attributes:
        task_index: Position of the failing task in its group.
        group_name: Name of the parallel group.
    """

    def __init__(
        self, note_name: str, task_index: int, group_name: str, original_error: BaseException
    ) -> None:
        self.task_index = task_index
        self.group_name = group_name
        super().__init__(
            note_name,
            original_error,
            f"task {note_name!r} (index {task_index}) in parallel group {group_name!r} "
            f"failed: {_shown(original_error)}",
        )


class RetryExhaustedError(NoteError):
    """Every attempt failed. `last_error` (also `original_error`) is the final attempt's error."""

    def __init__(self, name: str, attempts: int, last_error: BaseException) -> None:
        self.name = name
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(
            name,
            last_error,
            f"{name!r} failed after {attempts} attempts: {_shown(last_error)}",
        )


class TimeoutError(NoteError, builtins.TimeoutError):
    """A step ran past its timeout and was cancelled, or, when `blocked` is set, ran past it
    without ever awaiting (it held the event loop, so nothing could cancel it) and its result
    was dropped."""

    def __init__(self, name: str, timeout: float, blocked: float | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.blocked = blocked
        cause = builtins.TimeoutError(f"timed out after {timeout:g}s")
        message = f"{name!r} timed out after {timeout:g}s and was cancelled"
        if blocked is not None:
            message = (
                f"{name!r} ran {blocked:.3g}s without awaiting, past its {timeout:g}s timeout: "
                "it held the event loop, so it could not be cancelled, and its result was "
                "dropped (await its I/O, or make it a plain def: plain functions run in a "
                "thread, where a timeout stops waiting for them)"
            )
        super().__init__(name, cause, message)


StepTimeoutError = TimeoutError


class GlobalTimeoutError(TimeoutError):
    """A whole run passed its deadline. `partial_result` holds everything decided so far."""

    def __init__(self, name: str, timeout: float, partial_result: Any = None) -> None:
        super().__init__(name, timeout)
        self.partial_result = partial_result


class CircuitOpenError(NoteError):
    """A circuit breaker is open and refused the call."""

    def __init__(self, breaker_name: str, retry_after: float | None = None) -> None:
        self.breaker_name = breaker_name
        self.retry_after = retry_after
        hint = f"; retry in {retry_after:.1f}s" if retry_after is not None else ""
        message = f"circuit {breaker_name!r} is open{hint}"
        super().__init__(breaker_name, RuntimeError(message), message)


class Skip(Exception):
    """Raise inside a step to skip it without an error.

    Args:
        reason: Why the step was skipped (kept for hooks, logs and the cascade result).
        rest: In a flow, also skip every remaining step (the run still succeeds).
    """

    def __init__(self, reason: str = "", *, rest: bool = False) -> None:
        self.reason = reason
        self.rest = rest
        super().__init__(reason or "skipped")


class MergeConflict(CadenceError):
    """Parallel tasks wrote different values to the same field under a fail-on-conflict merge."""

    def __init__(self, field: str, values: Sequence[Any], group_name: str | None = None) -> None:
        self.field = field
        self.values = list(values)
        self.group_name = group_name
        self.note_name = group_name
        """The parallel group whose merge failed (None for a direct `merge_snapshots` call)."""
        where = f"parallel group {group_name!r}: tasks" if group_name else "parallel tasks"
        super().__init__(
            f"{where} wrote conflicting values to {field!r}: {self.values!r}; "
            "choose a MergeStrategy or write to distinct fields"
        )
