"""The public surface: every import line of both spec documents works, `__all__` is sorted
and complete, and `import cascadence` pulls in no optional dependency."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import cascadence

SPEC_IMPORTS = [
    # the config document
    "from cascadence import CascadeConfig, CascadeEngine, ExecutionContext",
    "from cascadence import UniversalEvent, DomainType, EventWithContext, EventContext",
    "from cascadence import (EventContext, SessionContext, DeviceContext, LocationContext, "
    "HistoricalContext)",
    "from cascadence import CachePlugin",
    "from cascadence import RetryPlugin",
    "from cascadence import MetricsPlugin",
    "from cascadence import CircuitBreakerPlugin",
    "from cascadence import PluginFactory",
    "from cascadence import StageConfig, RoutingRule, Condition, RoutingAction",
    "from cascadence.learning import (PatternExtractor, RuleGenerator, CostAnalyzer, "
    "ProposalManager)",
    # the code document
    "from cascadence import Cadence, Score, note",
    "from cascadence import Cadence, Score, note, retry, timeout, fallback",
    "from cascadence import retry",
    "from cascadence import timeout",
    "from cascadence import fallback",
    "from cascadence import circuit_breaker",
    "from cascadence import note",
    "from cascadence.integrations.fastapi import CadenceRouter",
    "from cascadence.integrations.flask import CadenceBlueprint",
    "from cascadence import Cadence, LoggingHooks, TimingHooks",
    "from cascadence import CadenceHooks",
    "from cascadence.reporters import PrometheusReporter",
    "from cascadence.reporters import OpenTelemetryReporter",
    "from cascadence.events import EventEmitter, NOTE_COMPLETED, CADENCE_FAILED",
    "from cascadence import Cadence",
    "from cascadence.checkpoint import InMemoryCheckpointStore",
    "from cascadence import to_mermaid, to_dot",
    "from cascadence import ImmutableScore",
    "from cascadence import Score, AtomicList, AtomicDict",
    "from cascadence import CadenceError, NoteError",
    "from cascadence import ParallelNoteError",
    "from cascadence import RetryExhaustedError, TimeoutError, CircuitOpenError, MergeStrategy",
    "from cascadence import Atomic, MetricsHooks, DebugHooks, Skip",
    "from cascadence.events import NOTE_STARTED, NOTE_FAILED, CADENCE_STARTED, CADENCE_COMPLETED",
]


@pytest.mark.parametrize("line", SPEC_IMPORTS)
def test_spec_import_line_works(line: str) -> None:
    """Each import line of the spec documents works with only the package name changed."""
    namespace: dict[str, object] = {}
    exec(compile(line, "<spec>", "exec"), namespace)  # the fixed spec lines above
    names = [n for n in namespace if not n.startswith("__")]
    assert names
    assert all(namespace[n] is not None for n in names)


def test_all_is_sorted_and_complete() -> None:
    """`cascadence.__all__` is sorted, and every name in it resolves."""
    assert cascadence.__all__ == sorted(cascadence.__all__)
    for name in cascadence.__all__:
        assert getattr(cascadence, name) is not None, name


@pytest.mark.parametrize(
    "module",
    [
        "cascadence.errors",
        "cascadence.hooks",
        "cascadence.events",
        "cascadence.policies",
        "cascadence.conditions",
        "cascadence.checkpoint",
        "cascadence.diagrams",
        "cascadence.cascade",
        "cascadence.flow",
        "cascadence.learning",
        "cascadence.reporters",
        "cascadence.integrations",
        "cascadence.cli",
    ],
)
def test_module_all_is_sorted_and_resolves(module: str) -> None:
    """Every public module has a sorted `__all__` whose names exist."""
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A misspelt top-level name raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="Cascadeengine"):
        _ = cascadence.Cascadeengine  # type: ignore[attr-defined]


def test_import_is_lean() -> None:
    """`import cascadence` (and its event, hook and reporter modules) loads no optional
    dependency and not even pydantic or yaml."""
    code = (
        "import sys, cascadence, cascadence.events, cascadence.hooks, cascadence.reporters\n"
        "heavy = ['pydantic', 'yaml', 'fastapi', 'flask', 'prometheus_client', 'opentelemetry',"
        " 'redis', 'asyncpg', 'dask', 'typer', 'rich']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cascadence_notices_share_one_warning_class() -> None:
    """Config doubts and misuse notices are all `CascadenceWarning`s (one filter silences
    them), and UserWarnings as before."""
    from cascadence import CadenceHooks, CascadenceWarning
    from cascadence.errors import ConfigWarning

    assert issubclass(ConfigWarning, CascadenceWarning)
    assert issubclass(CascadenceWarning, UserWarning)
    with pytest.warns(CascadenceWarning, match="did you mean 'before_note'"):

        class Hooks(CadenceHooks):
            async def before_notes(self, note_name: str, score: object) -> None:
                pass
