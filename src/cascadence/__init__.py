"""cascadence: cost-aware decision cascades and resilient flows on one async runtime.

Two front ends compile onto one runtime:

- cascades declared in YAML or JSON (`CascadeConfig`, `CascadeEngine`), routing each decision
  through stages of rising cost and stopping as early as confidence allows;
- flows written in code (`Cadence`, `Score`, `@note`), with explicit, resilient control flow.

Names are imported lazily, so `import cascadence` stays fast and pulls in no optional
dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cascadence._version import __version__
    from cascadence.cascade.config import (
        STAGE_COSTS,
        CascadeConfig,
        CircuitBreakerConfig,
        Condition,
        RoutingAction,
        RoutingRule,
        StageConfig,
    )
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.cascade.event_model import (
        DeviceContext,
        DomainType,
        EventContext,
        EventWithContext,
        HistoricalContext,
        LocationContext,
        SessionContext,
        UniversalEvent,
    )
    from cascadence.cascade.plugins import (
        CachePlugin,
        CircuitBreakerPlugin,
        MetricsPlugin,
        PluginFactory,
        RetryPlugin,
    )
    from cascadence.diagrams import to_dot, to_mermaid
    from cascadence.errors import (
        CadenceError,
        CascadenceError,
        CheckpointError,
        CircuitOpenError,
        ConfigError,
        GlobalTimeoutError,
        MergeConflict,
        NoteError,
        ParallelNoteError,
        PlanError,
        RetryExhaustedError,
        RunLockedError,
        Skip,
        TimeoutError,
    )
    from cascadence.events import CadenceEvent, EventEmitter
    from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList
    from cascadence.flow.cadence import Cadence
    from cascadence.flow.note import circuit_breaker, fallback, note, retry, timeout
    from cascadence.flow.score import ImmutableScore, MergeStrategy, Score
    from cascadence.hooks import CadenceHooks, DebugHooks, LoggingHooks, MetricsHooks, TimingHooks
    from cascadence.policies import CircuitBreaker, Fallback, ResultCache, RetryPolicy, StepPolicy
    from cascadence.runtime.clock import Clock, SystemClock
    from cascadence.runtime.context import ExecutionContext
    from cascadence.runtime.result import StageResult

_EXPORTS: dict[str, str] = {
    "STAGE_COSTS": "cascadence.cascade.config",
    "Atomic": "cascadence.flow.atomic",
    "AtomicDict": "cascadence.flow.atomic",
    "AtomicList": "cascadence.flow.atomic",
    "Cadence": "cascadence.flow.cadence",
    "CadenceError": "cascadence.errors",
    "CadenceEvent": "cascadence.events",
    "CadenceHooks": "cascadence.hooks",
    "CachePlugin": "cascadence.cascade.plugins",
    "CascadeConfig": "cascadence.cascade.config",
    "CascadeEngine": "cascadence.cascade.engine",
    "CascadenceError": "cascadence.errors",
    "CheckpointError": "cascadence.errors",
    "CircuitBreaker": "cascadence.policies",
    "CircuitBreakerConfig": "cascadence.cascade.config",
    "CircuitBreakerPlugin": "cascadence.cascade.plugins",
    "CircuitOpenError": "cascadence.errors",
    "Clock": "cascadence.runtime.clock",
    "Condition": "cascadence.cascade.config",
    "ConfigError": "cascadence.errors",
    "DebugHooks": "cascadence.hooks",
    "DeviceContext": "cascadence.cascade.event_model",
    "DomainType": "cascadence.cascade.event_model",
    "EventContext": "cascadence.cascade.event_model",
    "EventEmitter": "cascadence.events",
    "EventWithContext": "cascadence.cascade.event_model",
    "ExecutionContext": "cascadence.runtime.context",
    "Fallback": "cascadence.policies",
    "GlobalTimeoutError": "cascadence.errors",
    "HistoricalContext": "cascadence.cascade.event_model",
    "ImmutableScore": "cascadence.flow.score",
    "LocationContext": "cascadence.cascade.event_model",
    "LoggingHooks": "cascadence.hooks",
    "MergeConflict": "cascadence.errors",
    "MergeStrategy": "cascadence.flow.score",
    "MetricsHooks": "cascadence.hooks",
    "MetricsPlugin": "cascadence.cascade.plugins",
    "NoteError": "cascadence.errors",
    "ParallelNoteError": "cascadence.errors",
    "PlanError": "cascadence.errors",
    "PluginFactory": "cascadence.cascade.plugins",
    "ResultCache": "cascadence.policies",
    "RetryExhaustedError": "cascadence.errors",
    "RetryPlugin": "cascadence.cascade.plugins",
    "RetryPolicy": "cascadence.policies",
    "RoutingAction": "cascadence.cascade.config",
    "RoutingRule": "cascadence.cascade.config",
    "RunLockedError": "cascadence.errors",
    "Score": "cascadence.flow.score",
    "SessionContext": "cascadence.cascade.event_model",
    "Skip": "cascadence.errors",
    "StageConfig": "cascadence.cascade.config",
    "StageResult": "cascadence.runtime.result",
    "StepPolicy": "cascadence.policies",
    "SystemClock": "cascadence.runtime.clock",
    "TimeoutError": "cascadence.errors",
    "TimingHooks": "cascadence.hooks",
    "UniversalEvent": "cascadence.cascade.event_model",
    "__version__": "cascadence._version",
    "circuit_breaker": "cascadence.flow.note",
    "fallback": "cascadence.flow.note",
    "note": "cascadence.flow.note",
    "retry": "cascadence.flow.note",
    "timeout": "cascadence.flow.note",
    "to_dot": "cascadence.diagrams",
    "to_mermaid": "cascadence.diagrams",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cascadence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
