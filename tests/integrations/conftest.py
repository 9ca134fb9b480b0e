"""Fixtures for the web integration tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cascadence import CascadeEngine
from cascadence.reporters import PrometheusReporter

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart" / "cascade.yaml"


@pytest.fixture
def metrics() -> PrometheusReporter:
    """A Prometheus reporter on a registry of this test's own."""
    return PrometheusReporter(registry=CollectorRegistry())


@pytest.fixture
def quickstart_engine(monkeypatch: pytest.MonkeyPatch) -> Callable[[], CascadeEngine]:
    """Builds the quick-start engine from its YAML, without the simulated model latency."""
    monkeypatch.setenv("QUICKSTART_FAST", "1")

    def build() -> CascadeEngine:
        engine = CascadeEngine(str(QUICKSTART))
        # the handlers module reads QUICKSTART_FAST when first imported, maybe by another test
        monkeypatch.setattr(sys.modules["quickstart.handlers"], "_SLOW", False)
        return engine

    return build
