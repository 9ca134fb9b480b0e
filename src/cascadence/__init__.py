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

if TYPE_CHECKING:  # explicit re-exports, so `mypy --strict` accepts `from cascadence import X`
    from cascadence._version import __version__ as __version__
    from cascadence.cascade.config import STAGE_COSTS as STAGE_COSTS
    from cascadence.cascade.config import CascadeConfig as CascadeConfig
    from cascadence.cascade.config import CircuitBreakerConfig as CircuitBreakerConfig
    from cascadence.cascade.config import Condition as Condition
    from cascadence.cascade.config import RoutingAction as RoutingAction
    from cascadence.cascade.config import RoutingRule as RoutingRule
    from cascadence.cascade.config import StageConfig as StageConfig
    from cascadence.cascade.engine import CascadeEngine as CascadeEngine
    from cascadence.cascade.event_model import DeviceContext as DeviceContext
    from cascadence.cascade.event_model import DomainType as DomainType
    from cascadence.cascade.event_model import EventContext as EventContext
    from cascadence.cascade.event_model import EventWithContext as EventWithContext
    from cascadence.cascade.event_model import HistoricalContext as HistoricalContext
    from cascadence.cascade.event_model import LocationContext as LocationContext
    from cascadence.cascade.event_model import SessionContext as SessionContext
    from cascadence.cascade.event_model import UniversalEvent as UniversalEvent
    from cascadence.cascade.optimizer import ExecutionOptimizer as ExecutionOptimizer
    from cascadence.cascade.plugins import CachePlugin as CachePlugin
    from cascadence.cascade.plugins import CircuitBreakerPlugin as CircuitBreakerPlugin
    from cascadence.cascade.plugins import MetricsPlugin as MetricsPlugin
    from cascadence.cascade.plugins import PluginFactory as PluginFactory
    from cascadence.cascade.plugins import PluginRegistry as PluginRegistry
    from cascadence.cascade.plugins import RetryPlugin as RetryPlugin
    from cascadence.cascade.reload import ConfigWatcher as ConfigWatcher
    from cascadence.conditions.evaluator import ConditionEvaluator as ConditionEvaluator
    from cascadence.diagrams import to_dot as to_dot
    from cascadence.diagrams import to_mermaid as to_mermaid
    from cascadence.errors import CadenceError as CadenceError
    from cascadence.errors import CascadenceError as CascadenceError
    from cascadence.errors import CascadenceWarning as CascadenceWarning
    from cascadence.errors import CheckpointError as CheckpointError
    from cascadence.errors import CircuitOpenError as CircuitOpenError
    from cascadence.errors import ConfigError as ConfigError
    from cascadence.errors import ConfigFileError as ConfigFileError
    from cascadence.errors import ConfigFileNotFoundError as ConfigFileNotFoundError
    from cascadence.errors import GlobalTimeoutError as GlobalTimeoutError
    from cascadence.errors import MergeConflict as MergeConflict
    from cascadence.errors import NoteError as NoteError
    from cascadence.errors import ParallelNoteError as ParallelNoteError
    from cascadence.errors import PlanError as PlanError
    from cascadence.errors import RetryExhaustedError as RetryExhaustedError
    from cascadence.errors import RunLockedError as RunLockedError
    from cascadence.errors import Skip as Skip
    from cascadence.errors import TimeoutError as TimeoutError
    from cascadence.errors import UnknownStageError as UnknownStageError
    from cascadence.events import CadenceEvent as CadenceEvent
    from cascadence.events import EventEmitter as EventEmitter
    from cascadence.flow.atomic import Atomic as Atomic
    from cascadence.flow.atomic import AtomicDict as AtomicDict
    from cascadence.flow.atomic import AtomicList as AtomicList
    from cascadence.flow.cadence import Cadence as Cadence
    from cascadence.flow.note import circuit_breaker as circuit_breaker
    from cascadence.flow.note import fallback as fallback
    from cascadence.flow.note import note as note
    from cascadence.flow.note import retry as retry
    from cascadence.flow.note import timeout as timeout
    from cascadence.flow.score import ImmutableScore as ImmutableScore
    from cascadence.flow.score import MergeStrategy as MergeStrategy
    from cascadence.flow.score import Score as Score
    from cascadence.hooks import CadenceHooks as CadenceHooks
    from cascadence.hooks import DebugHooks as DebugHooks
    from cascadence.hooks import LoggingHooks as LoggingHooks
    from cascadence.hooks import MetricsHooks as MetricsHooks
    from cascadence.hooks import TimingHooks as TimingHooks
    from cascadence.policies import CircuitBreaker as CircuitBreaker
    from cascadence.policies import Fallback as Fallback
    from cascadence.policies import ResultCache as ResultCache
    from cascadence.policies import RetryPolicy as RetryPolicy
    from cascadence.policies import StepPolicy as StepPolicy
    from cascadence.runtime.clock import Clock as Clock
    from cascadence.runtime.clock import SystemClock as SystemClock
    from cascadence.runtime.context import ExecutionContext as ExecutionContext
    from cascadence.runtime.result import StageResult as StageResult

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
    "CascadenceWarning": "cascadence.errors",
    "CheckpointError": "cascadence.errors",
    "CircuitBreaker": "cascadence.policies",
    "CircuitBreakerConfig": "cascadence.cascade.config",
    "CircuitBreakerPlugin": "cascadence.cascade.plugins",
    "CircuitOpenError": "cascadence.errors",
    "Clock": "cascadence.runtime.clock",
    "Condition": "cascadence.cascade.config",
    "ConditionEvaluator": "cascadence.conditions.evaluator",
    "ConfigError": "cascadence.errors",
    "ConfigFileError": "cascadence.errors",
    "ConfigFileNotFoundError": "cascadence.errors",
    "ConfigWatcher": "cascadence.cascade.reload",
    "DebugHooks": "cascadence.hooks",
    "DeviceContext": "cascadence.cascade.event_model",
    "DomainType": "cascadence.cascade.event_model",
    "EventContext": "cascadence.cascade.event_model",
    "EventEmitter": "cascadence.events",
    "EventWithContext": "cascadence.cascade.event_model",
    "ExecutionContext": "cascadence.runtime.context",
    "ExecutionOptimizer": "cascadence.cascade.optimizer",
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
    "UnknownStageError": "cascadence.errors",
    "PluginFactory": "cascadence.cascade.plugins",
    "PluginRegistry": "cascadence.cascade.plugins",
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

__all__ = [
    "Atomic",
    "AtomicDict",
    "AtomicList",
    "CachePlugin",
    "Cadence",
    "CadenceError",
    "CadenceEvent",
    "CadenceHooks",
    "CascadeConfig",
    "CascadeEngine",
    "CascadenceError",
    "CascadenceWarning",
    "CheckpointError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerPlugin",
    "CircuitOpenError",
    "Clock",
    "Condition",
    "ConditionEvaluator",
    "ConfigError",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "ConfigWatcher",
    "DebugHooks",
    "DeviceContext",
    "DomainType",
    "EventContext",
    "EventEmitter",
    "EventWithContext",
    "ExecutionContext",
    "ExecutionOptimizer",
    "Fallback",
    "GlobalTimeoutError",
    "HistoricalContext",
    "ImmutableScore",
    "LocationContext",
    "LoggingHooks",
    "MergeConflict",
    "MergeStrategy",
    "MetricsHooks",
    "MetricsPlugin",
    "NoteError",
    "ParallelNoteError",
    "PlanError",
    "PluginFactory",
    "PluginRegistry",
    "ResultCache",
    "RetryExhaustedError",
    "RetryPlugin",
    "RetryPolicy",
    "RoutingAction",
    "RoutingRule",
    "RunLockedError",
    "STAGE_COSTS",
    "Score",
    "SessionContext",
    "Skip",
    "StageConfig",
    "StageResult",
    "StepPolicy",
    "SystemClock",
    "TimeoutError",
    "TimingHooks",
    "UniversalEvent",
    "UnknownStageError",
    "__version__",
    "circuit_breaker",
    "fallback",
    "note",
    "retry",
    "timeout",
    "to_dot",
    "to_mermaid",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cascadence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
