"""Replay and shadow evaluation: recorded events through a cascade, or two versions side by side.

`replay` runs the events in this process; `cascadence.replay.dask.replay_on_dask` spreads them
over a Dask cluster (`pip install cascadence[dask]`). Both return a `ReplayReport`: per version
the decisions taken, the cost spent and run times, and the events the versions decided
differently. From the command line: `cascadence replay cascade.yaml --input events.jsonl
--candidate cascade.v2.yaml`.
"""

from __future__ import annotations

from cascadence.replay.report import (
    DecisionKey,
    Disagreement,
    Outcome,
    ReplayReport,
    VersionSummary,
    final_decision,
    final_result,
    outcome_of,
)
from cascadence.replay.run import CascadeSource, replay, replay_sync

__all__ = [
    "CascadeSource",
    "DecisionKey",
    "Disagreement",
    "Outcome",
    "ReplayReport",
    "VersionSummary",
    "final_decision",
    "final_result",
    "outcome_of",
    "replay",
    "replay_sync",
]
