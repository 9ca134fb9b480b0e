"""The code front end: flows of notes over a score (`Cadence`, `Score`, `@note`)."""

from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList
from cascadence.flow.cadence import Cadence
from cascadence.flow.note import circuit_breaker, fallback, note, retry, timeout
from cascadence.flow.score import ImmutableScore, MergeStrategy, Score, merge_snapshots, snapshot

__all__ = [
    "Atomic",
    "AtomicDict",
    "AtomicList",
    "Cadence",
    "ImmutableScore",
    "MergeStrategy",
    "Score",
    "circuit_breaker",
    "fallback",
    "merge_snapshots",
    "note",
    "retry",
    "snapshot",
    "timeout",
]
