"""Classifying step failures for metrics, traces and HTTP status codes."""

from __future__ import annotations

import asyncio
import builtins

from cascadence.errors import CircuitOpenError, NoteError

__all__ = ["failure_kind", "find_error", "root_error"]


def find_error(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first error of type `kind` along `error`'s chain of `original_error`s, or None."""
    seen = 0
    while error is not None and seen < 16:  # bounded: chains are short, cycles are bugs
        if isinstance(error, kind):
            return error
        error = getattr(error, "original_error", None)
        seen += 1
    return None


def failure_kind(error: BaseException | None) -> str:
    """`cancelled`, `circuit_open`, `timeout` or `failed`: what stopped a step, looking
    through wrappers. `cancelled` is no failure: the step was stopped from outside."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if find_error(error, CircuitOpenError) is not None:
        return "circuit_open"
    if find_error(error, builtins.TimeoutError) is not None:
        return "timeout"
    return "failed"


def root_error(error: BaseException | None) -> BaseException | None:
    """The error that caused a failure: wrappers (`NoteError`, retries) are looked through.

    A timeout or an open circuit is its own cause (their `original_error` is made up).
    """
    seen = 0
    while (
        isinstance(error, NoteError)
        and not isinstance(error, (CircuitOpenError, builtins.TimeoutError))
        and seen < 16
    ):
        error = error.original_error
        seen += 1
    return error
