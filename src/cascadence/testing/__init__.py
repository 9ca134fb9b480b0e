"""Helpers for testing code built on cascadence: a fake clock that moves only when told."""

from __future__ import annotations

from cascadence.testing.clock import FakeClock

__all__ = ["FakeClock"]
