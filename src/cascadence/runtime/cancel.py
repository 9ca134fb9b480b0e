"""Telling a timeout's cancellation from any other."""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ["TIMEOUT_CANCEL", "is_timeout_cancel"]

TIMEOUT_CANCEL: Final = "cascadence: the step's time ran out"
"""The message of the cancellation a step timeout (a stage's `timeout_ms`, the global
timeout, a note's `timeout=`) sends into the work it stops."""


def is_timeout_cancel(exc: BaseException) -> bool:
    """Whether `exc` is the cancellation of a timeout, as opposed to one from outside (a
    caller giving up, a sibling failing, shutdown). A circuit breaker or metrics plugin inside
    a timed-out stage counts the former as a failure."""
    return isinstance(exc, asyncio.CancelledError) and exc.args[:1] == (TIMEOUT_CANCEL,)
