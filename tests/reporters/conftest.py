"""Fixtures for reporter tests: a private Prometheus registry and an in-memory span exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_spans import Spans
from prometheus_client import CollectorRegistry


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test's own, so samples start from zero."""
    return CollectorRegistry()


@pytest.fixture
def spans() -> Iterator[Spans]:
    """A tracer provider exporting to memory (never the global provider)."""
    collector = Spans()
    yield collector
    collector.provider.shutdown()
