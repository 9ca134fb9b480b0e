"""Checkpointed dataclasses are restored like pickle: no `__init__`, no `__post_init__`."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cascadence import Cadence, NoteError
from cascadence.checkpoint import CheckpointError, SQLiteCheckpointStore
from cascadence.checkpoint.serde import dumps, loads
from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList
from cascadence.flow.score import ImmutableScore, Score


@dataclass
class PatternScore(Score):
    """The pattern the atomic module documents: containers built in `__post_init__`."""

    results: AtomicList[Any] = None  # type: ignore[assignment]
    cache: AtomicDict[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.results = AtomicList()
        self.cache = AtomicDict()


@dataclass
class SideEffect:
    """Counts its `__post_init__` calls."""

    calls: ClassVar[int] = 0
    name: str
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        type(self).calls += 1
        self.tags.append("built")


@dataclass(frozen=True)
class FrozenScore(ImmutableScore):
    """A frozen, functional-style score."""

    api_key: str
    timeout: int = 30
    hosts: tuple[str, ...] = ()
    derived: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", f"{self.api_key}:{self.timeout}")


@dataclass(frozen=True, slots=True)
class FrozenSlotted:
    """A frozen, slotted dataclass."""

    a: int
    b: list[int]


@dataclass
class Evolving:
    """A class that gained fields after a checkpoint of it was written."""

    name: str
    added: int = 7
    added_list: list[int] = field(default_factory=lambda: [1, 2])
    added_late: str = field(init=False, default="late")


@dataclass
class NeedsValue:
    """A class whose field has no default."""

    name: str
    required: int


def roundtrip(value: Any) -> Any:
    """Serialize and read back."""
    return loads(dumps(value))


def drop_fields(data: bytes, *names: str) -> bytes:
    """Remove fields from a stored dataclass, as if written before they existed."""
    record = json.loads(data)
    for name in names:
        del record["v"][name]
    return json.dumps(record).encode()


def test_documented_pattern_keeps_its_contents() -> None:
    """AtomicList/AtomicDict built in __post_init__ come back with their contents."""
    score = PatternScore()
    score.results.extend([1, 2])
    score.cache["k"] = "v"
    back = roundtrip(score)
    assert type(back) is PatternScore
    assert type(back.results) is AtomicList and back.results.to_list() == [1, 2]
    assert type(back.cache) is AtomicDict and back.cache.to_dict() == {"k": "v"}
    back.results.append(3)
    back.cache["x"] = 1
    assert score.results.to_list() == [1, 2] and "x" not in score.cache
    assert back.results == [1, 2, 3]


def test_post_init_does_not_run_on_restore() -> None:
    """A side-effecting __post_init__ runs zero times when restoring."""
    value = SideEffect("a")
    assert SideEffect.calls == 1
    data = dumps({"v": value, "l": [value]})
    SideEffect.calls = 0
    back = loads(data)
    assert SideEffect.calls == 0
    assert back["v"] == value and back["v"].tags == ["built"]
    assert type(back["l"][0]) is SideEffect


def test_frozen_score_and_immutable_score_round_trip() -> None:
    """Frozen dataclasses and ImmutableScores are restored field by field, stored values kept."""
    config = FrozenScore("key", 60, ("a", "b"))
    object.__setattr__(config, "derived", "stored")  # differs from what __post_init__ computes
    back = roundtrip(config)
    assert type(back) is FrozenScore
    assert back == config and back.derived == "stored" and back.hosts == ("a", "b")
    assert back.with_field("timeout", 5).timeout == 5
    with pytest.raises(AttributeError):
        back.timeout = 1  # type: ignore[misc]
    slotted = roundtrip(FrozenSlotted(1, [2]))
    assert slotted == FrozenSlotted(1, [2]) and type(slotted) is FrozenSlotted


def test_missing_fields_get_their_defaults() -> None:
    """Fields added to the class after the checkpoint get their default or default_factory."""
    old = drop_fields(dumps(Evolving("n")), "added", "added_list", "added_late")
    first, second = loads(old), loads(old)
    assert first == Evolving("n")
    assert first.added_late == "late"
    assert first.added_list is not second.added_list  # the factory is called per restore


def test_missing_field_without_default_is_a_clear_error() -> None:
    """A stored value lacking a field that has no default names the field."""
    old = drop_fields(dumps(NeedsValue("n", 1)), "required")
    with pytest.raises(CheckpointError, match=r"field 'required' of .*NeedsValue.*no default"):
        loads(old)


def test_stored_fields_the_class_no_longer_has_are_ignored() -> None:
    """A field removed from the class since the checkpoint was written is dropped."""
    record = json.loads(dumps(Evolving("n")))
    record["v"]["removed"] = 1
    back = loads(json.dumps(record))
    assert back == Evolving("n") and not hasattr(back, "removed")


def test_records_of_the_previous_version_still_load() -> None:
    """The stored format is unchanged: a record written before this change loads."""
    path = f"{PatternScore.__module__}:PatternScore"
    old = (
        '{"$t":"dc","c":"' + path + '","v":{"results":{"$t":"cascadence.atomic_list",'
        '"c":"cascadence.flow.atomic:AtomicList","v":[1,2]},"cache":{"$t":'
        '"cascadence.atomic_dict","c":"cascadence.flow.atomic:AtomicDict","v":{"k":"v"}}}}'
    )
    back = loads(old.encode())
    assert back.results.to_list() == [1, 2] and back.cache.to_dict() == {"k": "v"}
    score = PatternScore()
    score.results.extend([1, 2])
    score.cache["k"] = "v"
    assert dumps(score) == old.encode()


def test_nested_atomic_containers_round_trip() -> None:
    """Atomics nested in lists, dicts and each other come back as the same, working types."""
    value: dict[str, Any] = {
        "list": [AtomicList([1, AtomicDict({"a": Atomic((1, 2))})])],
        "map": {1: AtomicDict({(1, 2): AtomicList(["x"])})},
        "atom": Atomic(AtomicList([Atomic(3)])),
        "score": PatternScore(),
    }
    value["score"].results.append(AtomicDict({"n": 1}))
    back = roundtrip(value)
    outer = back["list"][0]
    assert type(outer) is AtomicList and outer[0] == 1
    inner = outer[1]
    assert type(inner) is AtomicDict and type(inner["a"]) is Atomic
    assert inner["a"].get() == (1, 2)
    keyed = back["map"][1]
    assert type(keyed) is AtomicDict and keyed[(1, 2)] == ["x"]
    assert type(keyed[(1, 2)]) is AtomicList
    atom = back["atom"]
    assert type(atom) is Atomic and type(atom.get()) is AtomicList
    assert atom.get()[0].get() == 3
    assert back["score"].results[0] == {"n": 1}
    assert type(back["score"].results[0]) is AtomicDict
    # Fresh, working locks of their own.
    for container in (outer, inner, keyed, atom, atom.get()[0]):
        assert type(container._lock) is type(threading.RLock())
    assert outer._lock is not value["list"][0]._lock
    inner["a"].update(lambda t: (*t, 3))
    assert inner["a"].get() == (1, 2, 3)
    assert value["list"][0][1]["a"].get() == (1, 2)
    assert atom.get()[0].compare_and_set(3, 4) and atom.get()[0].get() == 4


# --------------------------------------------------------------------------- end to end


def _flow(store: SQLiteCheckpointStore, fail: list[bool]) -> Cadence[PatternScore]:
    async def first(score: PatternScore) -> None:
        score.results.append(1)
        score.cache["k"] = "v"

    async def second(score: PatternScore) -> None:
        if fail and fail.pop():
            raise RuntimeError("boom")
        score.results.append(2)

    return (
        Cadence("pattern", PatternScore())
        .with_checkpoint(store, run_id="pattern-1")
        .then("first", first)
        .then("second", second)
    )


async def test_resume_keeps_atomic_contents_with_sqlite(tmp_path: Path) -> None:
    """A resumed run keeps the first note's items; re-running a finished id returns them."""
    db = str(tmp_path / "runs.db")
    async with SQLiteCheckpointStore(db) as store:
        with pytest.raises(NoteError):
            await _flow(store, [True]).run()
    async with SQLiteCheckpointStore(db) as store:  # a fresh store, as after a restart
        resumed = await _flow(store, []).run()
        again = await _flow(store, [True]).run()  # would fail if any note ran
    assert type(resumed.results) is AtomicList and type(resumed.cache) is AtomicDict
    assert resumed.results.to_list() == [1, 2]
    assert resumed.cache.to_dict() == {"k": "v"}
    assert type(again.results) is AtomicList and type(again.cache) is AtomicDict
    assert again.results.to_list() == [1, 2]
    assert again.cache.to_dict() == {"k": "v"}
