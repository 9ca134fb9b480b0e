"""Reporters: observers that receive every `CadenceEvent` of a flow or a cascade.

A reporter is any callable taking a `CadenceEvent` (plain or async). Attach one with
`flow.with_reporter(reporter.report)` or `CascadeEngine(config, reporters=[reporter.report])`.

- `PrometheusReporter`: counters and histograms per flow or cascade and per step.
- `OpenTelemetryReporter`: one span per run, one child span per step.
- `ConsoleReporter`, `JSONLinesReporter`: one line per event, for people or for log pipelines.

Names load on first use, so importing this package imports neither `prometheus_client` nor
`opentelemetry`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cascadence.events import CadenceEvent
    from cascadence.reporters.console import ConsoleReporter, JSONLinesReporter, event_to_dict
    from cascadence.reporters.opentelemetry import OpenTelemetryReporter
    from cascadence.reporters.prometheus import PrometheusMiddleware, PrometheusReporter

_EXPORTS: dict[str, str] = {
    "ConsoleReporter": "cascadence.reporters.console",
    "JSONLinesReporter": "cascadence.reporters.console",
    "OpenTelemetryReporter": "cascadence.reporters.opentelemetry",
    "PrometheusMiddleware": "cascadence.reporters.prometheus",
    "PrometheusReporter": "cascadence.reporters.prometheus",
    "event_to_dict": "cascadence.reporters.console",
}

__all__ = [
    "ConsoleReporter",
    "JSONLinesReporter",
    "OpenTelemetryReporter",
    "PrometheusMiddleware",
    "PrometheusReporter",
    "Reporter",
    "event_to_dict",
]


class Reporter(Protocol):
    """What `with_reporter` and `reporters=` accept: called once per lifecycle event."""

    def __call__(self, event: CadenceEvent, /) -> Any:
        """Receive one event (a returned awaitable is awaited)."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cascadence.reporters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
