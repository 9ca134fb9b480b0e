"""Replay on a Dask cluster, when one machine is not enough (`pip install cascadence[dask]`).

```python
from distributed import Client
from cascadence.replay.dask import replay_on_dask

with Client("tcp://scheduler:8786") as client:
    report = replay_on_dask("cascade.yaml", events, candidate="cascade.v2.yaml", client=client)
```

The events are cut into contiguous slices; each Dask task builds the engines from the configs
and replays its slice in its own event loop (`replay_partition`), returning only the small
`Outcome`s. The report is built here, in event order, exactly as `replay` builds it. Workers
must be able to import the stages' handlers (the cascade file's folder is searched, as on
the machine that loads it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cascadence.replay.report import DecisionKey, ReplayReport, build_report, final_decision
from cascadence.replay.run import (
    CascadeSource,
    Pair,
    engine_for,
    event_ids,
    replay_partition,
    version_names,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["replay_on_dask"]


def _portable(source: CascadeSource | None, role: str) -> Any:
    """What is shipped to the workers: a config, never an engine (its handlers stay here)."""
    from cascadence.cascade.engine import CascadeEngine

    if isinstance(source, CascadeEngine):
        raise TypeError(
            f"replay_on_dask needs the {role} as a config (file path, dict or CascadeConfig) "
            "whose stages name their handlers by import path; an engine's registered handlers "
            "cannot be sent to Dask workers"
        )
    return os.fspath(source) if isinstance(source, os.PathLike) else source


def replay_on_dask(
    baseline: CascadeSource,
    events: Iterable[Any],
    *,
    client: Client,
    candidate: CascadeSource | None = None,
    partitions: int | None = None,
    decision: DecisionKey = final_decision,
    id_field: str | None = "id",
    concurrency: int = 64,
    max_disagreements: int = 1000,
) -> ReplayReport:
    """`replay`, with the events spread over the workers of a Dask cluster.

    Args:
        baseline: The version in use: a file path, a config dict or a `CascadeConfig`.
        events: The recorded inputs (picklable: dicts or `EventWithContext` objects).
        client: A `distributed.Client` connected to the cluster.
        candidate: A version to compare with the baseline.
        partitions: How many slices to cut the events into (default: four per worker
            thread, so a slow slice does not hold the others up).
        decision: Reads the decision out of a result (default: `final_decision`, a decision a
            rule wrote, else the final stage's result).
        id_field: The input field that identifies an event in the report.
        concurrency: How many events each task runs at once.
        max_disagreements: How many disagreements the report lists (all are counted).

    Raises:
        TypeError: A version was given as an engine.
        ConfigError: A config is invalid (checked here, before anything is sent).
        PlanError: A stage has no handler.
    """
    first = _portable(baseline, "baseline")
    second = _portable(candidate, "candidate") if candidate is not None else None
    names = version_names(engine_for(first), engine_for(second) if second is not None else None)
    items = list(events)
    if partitions is None:
        threads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
        partitions = 4 * max(1, threads)
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    size = max(1, -(-len(items) // partitions))  # ceiling division
    slices = [items[start : start + size] for start in range(0, len(items), size)]
    futures = client.map(
        replay_partition,
        slices,
        baseline=first,
        candidate=second,
        decision=decision,
        concurrency=concurrency,
        pure=False,
    )
    pairs: list[Pair] = []
    for part in client.gather(futures):  # type: ignore[no-untyped-call]
        pairs.extend(part)
    return build_report(
        names, pairs, event_ids(items, id_field), max_disagreements=max_disagreements
    )
