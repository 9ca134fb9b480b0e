"""Replaying recorded events through a cascade, or through two versions of it side by side.

```python
from cascadence.replay import replay

report = await replay("cascade.yaml", events, candidate="cascade.v2.yaml")
print(report.agreement, report.cost_change)
for d in report.disagreements:
    print(d.event_id, d.baseline.decision, "->", d.candidate.decision)
```

Each event runs on each version exactly as `CascadeEngine.execute` runs it (the engines are
ordinary engines: handlers, timeouts, retries and all). Each version runs on its own deep copy
of the event, so what a handler changes in place (a list it appends to) reaches neither the other
version nor the caller's events. Only an `Outcome` per event and version is kept.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from cascadence.errors import PlanError
from cascadence.replay.report import (
    DecisionKey,
    Outcome,
    ReplayReport,
    build_report,
    final_decision,
    outcome_of,
)
from cascadence.runtime.threads import in_event_loop

if TYPE_CHECKING:
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine

__all__ = [
    "CascadeSource",
    "Pair",
    "engine_for",
    "event_ids",
    "replay",
    "replay_events",
    "replay_partition",
    "replay_sync",
    "version_names",
]

CascadeSource = Union["CascadeEngine", "CascadeConfig", Mapping[str, Any], str, os.PathLike[str]]
"""An engine (its registered handlers are used), a config, a config dict or a file path.

Configs, dicts and paths must name every stage's handler by import path."""

Pair = tuple[Outcome, Outcome | None]
"""One event's outcomes: the baseline's, and the candidate's (None with one version)."""


def engine_for(source: CascadeSource) -> CascadeEngine:
    """The engine a source stands for (an engine is used as it is).

    Raises:
        ConfigError: The config is invalid.
        PlanError: A stage has no handler (configs must name handlers by import path).
    """
    from cascadence.cascade.engine import CascadeEngine

    engine = source if isinstance(source, CascadeEngine) else CascadeEngine(source)
    missing = engine.plan.missing_handlers()
    if missing:
        raise PlanError(
            f"cascade {engine.plan.name!r} cannot be replayed: no handler for stage(s) "
            f"{', '.join(missing)}; register them on an engine and replay the engine, or set "
            "`handler: 'package.module:function'` on each stage"
        )
    return engine


def event_ids(events: Sequence[Any], id_field: str | None) -> list[str | None]:
    """Each event's id: its `id_field` when that is a non-empty string or an integer."""
    ids: list[str | None] = []
    for event in events:
        value = event.get(id_field) if id_field and isinstance(event, Mapping) else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            ids.append(str(value))
        else:
            ids.append(None)
    return ids


async def replay_events(
    baseline: CascadeEngine,
    candidate: CascadeEngine | None,
    events: Sequence[Any],
    *,
    decision: DecisionKey = final_decision,
    concurrency: int = 64,
) -> list[Pair]:
    """Run every event on `baseline` (and `candidate`), at most `concurrency` events at once.

    Returns:
        The outcomes, in event order.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    pairs: list[Pair | None] = [None] * len(events)
    indices = iter(range(len(events)))

    async def worker() -> None:
        for index in indices:  # shared by the workers: each takes the next event
            event = events[index]
            first = outcome_of(await baseline.execute(_own_copy(event)), decision)
            second = None
            if candidate is not None:
                second = outcome_of(await candidate.execute(_own_copy(event)), decision)
            pairs[index] = (first, second)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(events)) or 1)))
    return [pair for pair in pairs if pair is not None]


def _own_copy(event: Any) -> Any:
    """A deep copy of an event for one run (the event itself if it cannot be copied)."""
    try:
        return copy.deepcopy(event)
    except (TypeError, copy.Error):
        return event


def version_names(
    baseline: CascadeEngine, candidate: CascadeEngine | None
) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """(cascade, version) of each engine, as the report names them."""
    first = (baseline.plan.name, baseline.plan.version)
    return first, (candidate.plan.name, candidate.plan.version) if candidate else None


async def replay(
    baseline: CascadeSource,
    events: Iterable[Any],
    *,
    candidate: CascadeSource | None = None,
    decision: DecisionKey = final_decision,
    id_field: str | None = "id",
    concurrency: int = 64,
    max_disagreements: int = 1000,
) -> ReplayReport:
    """Replay `events` through `baseline`, and through `candidate` when given, and report.

    Args:
        baseline: The version in use (an engine, a config, a config dict or a file path).
        events: The recorded inputs: dicts, or `EventWithContext` objects.
        candidate: A version to compare with the baseline, event by event.
        decision: Reads the decision out of a result (default: `final_decision`, a decision a
            rule wrote, else the final stage's result); the versions agree on an event when
            the decisions are equal.
        id_field: The input field that identifies an event in the report.
        concurrency: How many events run at once.
        max_disagreements: How many disagreements the report lists (all are counted).

    Raises:
        ConfigError: A config is invalid.
        PlanError: A stage has no handler.
    """
    first = engine_for(baseline)
    second = engine_for(candidate) if candidate is not None else None
    items = list(events)
    pairs = await replay_events(first, second, items, decision=decision, concurrency=concurrency)
    return build_report(
        version_names(first, second),
        pairs,
        event_ids(items, id_field),
        max_disagreements=max_disagreements,
    )


def replay_sync(baseline: CascadeSource, events: Iterable[Any], **options: Any) -> ReplayReport:
    """`replay` from synchronous code (refuses to run inside a running event loop)."""
    if not in_event_loop():
        return asyncio.run(replay(baseline, events, **options))
    raise RuntimeError(
        "replay_sync() cannot be called from a running event loop; use `await replay()`"
    )


def replay_partition(
    events: Sequence[Any],
    baseline: CascadeSource,
    candidate: CascadeSource | None = None,
    decision: DecisionKey = final_decision,
    concurrency: int = 64,
) -> list[Pair]:
    """Replay one slice of the events in a fresh event loop: what each Dask task runs.

    The engines are built here, where the task runs, from picklable sources (configs, dicts or
    paths whose stages name their handlers by import path).
    """
    first = engine_for(baseline)
    second = engine_for(candidate) if candidate is not None else None
    return asyncio.run(
        replay_events(first, second, events, decision=decision, concurrency=concurrency)
    )
