"""Scores: copy-on-write snapshots, immutable scores and the spec's score examples."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
import threading
from dataclasses import InitVar, dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from cascadence.errors import CascadenceError
from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList
from cascadence.flow.merge import merge_snapshots
from cascadence.flow.score import (
    ImmutableScore,
    Score,
    UnknownFieldError,
    is_snapshot,
    materialize,
    snapshot,
    snapshot_base,
    touched_fields,
)


@dataclass
class OrderScore(Score):
    order_id: str
    items: list = None  # type: ignore[assignment,type-arg]  # as the spec writes it
    total: float = 0.0
    status: str = "pending"


@dataclass
class RAGScore(Score):
    query: str
    context: list = field(default_factory=list)  # type: ignore[type-arg]
    answer: str = ""


@dataclass
class AggregatorScore(Score):
    results: AtomicList = None  # type: ignore[assignment,type-arg]  # as in the spec
    cache: AtomicDict = None  # type: ignore[assignment,type-arg]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.results = AtomicList()
        self.cache = AtomicDict()


@dataclass(frozen=True)
class Config(ImmutableScore):
    api_key: str
    timeout: int = 30


class Color(Enum):
    RED = "red"


@dataclass
class Address:
    city: str
    lines: list[str] = field(default_factory=list)


@dataclass
class WideScore(Score):
    name: str = "w"
    count: int = 0
    amount: Decimal = Decimal("1.5")
    color: Color = Color.RED
    pair: tuple[int, str] = (1, "a")
    frozen: frozenset[int] = frozenset({1})
    config: Config = field(default_factory=lambda: Config("key"))
    tags: list[str] = field(default_factory=lambda: ["a"])
    meta: dict[str, Any] = field(default_factory=lambda: {"k": [1]})
    address: Address = field(default_factory=lambda: Address("Paris"))
    nested_list_in_tuple: tuple[list[int], ...] = field(default_factory=lambda: ([1],))

    @property
    def tag_count(self) -> int:
        return len(self.tags)

    def describe(self) -> str:
        return f"{self.name}:{self.count}"


@dataclass(slots=True)
class SlottedScore(Score):
    items: list[int] = field(default_factory=list)
    count: int = 0


def test_score_without_fields_is_a_dataclass_base() -> None:
    """Score has no fields, can be instantiated, and a field-less dataclass may derive from it."""

    @dataclass
    class Empty(Score):
        pass

    assert dataclasses.fields(Empty()) == ()
    assert isinstance(Score(), Score)
    assert vars(snapshot(Empty())) == {}


def test_spec_order_score_runs_as_written() -> None:
    """The quick start's OrderScore works with the attribute writes its notes make."""
    score = OrderScore(order_id="ORD-123")
    score.items = [{"price": 2.0}, {"price": 3.0}]
    score.total = sum(item["price"] for item in score.items)
    score.status = "paid"
    assert (score.order_id, score.total, score.status) == ("ORD-123", 5.0, "paid")


def test_spec_aggregator_score_as_written() -> None:
    """The spec's AggregatorScore builds its atomics in __post_init__ after calling super."""
    score = AggregatorScore()
    score.results.append("r1")
    score.cache["key"] = "value"
    assert score.results == ["r1"]
    assert score.cache == {"key": "value"}


def test_post_init_accepts_initvars() -> None:
    """A subclass with an InitVar and no __post_init__ of its own still constructs."""

    @dataclass
    class WithInitVar(Score):
        seed: InitVar[int] = 0
        value: int = 1

    assert WithInitVar(seed=5).value == 1


def test_snapshot_is_an_instance_of_the_score_class() -> None:
    """A snapshot passes isinstance, reports the score class and runs its methods."""
    base = WideScore()
    snap = snapshot(base)
    assert isinstance(snap, WideScore)
    assert snap.__class__ is WideScore
    assert type(snap) is not WideScore
    assert is_snapshot(snap)
    assert not is_snapshot(base)
    assert snapshot_base(snap) is base
    assert snapshot_base(base) is None
    assert snap.describe() == "w:0"
    assert snap.tag_count == 1
    assert snapshot(base).__class__ is type(base)


def test_snapshot_class_is_cached_per_score_class() -> None:
    """Every snapshot of one class shares one generated class."""
    assert type(snapshot(WideScore())) is type(snapshot(WideScore(name="x")))


def test_writes_are_invisible_to_base_and_siblings() -> None:
    """A task's writes, including in-place mutation, stay in its own snapshot."""
    base = OrderScore(order_id="o", items=[1])
    first, second = snapshot(base), snapshot(base)
    first.items.append(2)
    first.total = 9.0
    first.status = "paid"
    assert base.items == [1]
    assert (base.total, base.status) == (0.0, "pending")
    assert second.items == [1]
    assert second.total == 0.0
    assert first.items == [1, 2]


def test_untouched_fields_are_not_copied() -> None:
    """A new snapshot's own __dict__ is empty and stays so while no mutable field is read."""
    base = WideScore()
    snap = snapshot(base)
    assert vars(snap) == {}
    for name in ("name", "count", "amount", "color", "pair", "frozen", "config"):
        assert getattr(snap, name) is getattr(base, name)
    assert vars(snap) == {}
    assert touched_fields(snap) == ()


def test_mutable_field_is_copied_once_on_first_read() -> None:
    """Reading a mutable field deep-copies it into the snapshot, once."""
    base = WideScore()
    snap = snapshot(base)
    meta = snap.meta
    assert meta == base.meta
    assert meta is not base.meta
    assert meta["k"] is not base.meta["k"]
    assert snap.meta is meta
    assert touched_fields(snap) == ("meta",)


def test_tuple_holding_a_mutable_value_is_copied() -> None:
    """A tuple is shared only when everything in it is immutable."""
    base = WideScore()
    snap = snapshot(base)
    assert snap.pair is base.pair
    assert snap.nested_list_in_tuple is not base.nested_list_in_tuple
    snap.nested_list_in_tuple[0].append(2)
    assert base.nested_list_in_tuple == ([1],)


def test_nested_dataclass_is_isolated() -> None:
    """A nested mutable dataclass is copied, so in-place changes stay in the snapshot."""
    base = WideScore()
    snap = snapshot(base)
    snap.address.lines.append("1 rue")
    assert base.address.lines == []


def test_atomic_fields_are_shared_and_never_copied() -> None:
    """Atomic containers reach the base immediately and never enter the snapshot's dict."""
    base = AggregatorScore()
    snaps = [snapshot(base) for _ in range(3)]
    for index, snap in enumerate(snaps):
        snap.results.append(index)
        snap.cache[f"k{index}"] = index
        assert snap.results is base.results
        assert vars(snap) == {}
    assert base.results == [0, 1, 2]
    assert base.cache == {"k0": 0, "k1": 1, "k2": 2}


def test_atomics_nested_in_copied_values_stay_shared() -> None:
    """An atomic inside a list that is copied for a snapshot is still the same object."""

    @dataclass
    class Holder(Score):
        boxes: list[Any] = field(default_factory=list)

    counter = Atomic(0)
    base = Holder(boxes=[counter, {"inner": AtomicList([1])}])
    snap = snapshot(base)
    assert snap.boxes is not base.boxes
    assert snap.boxes[0] is counter
    assert snap.boxes[1]["inner"] is base.boxes[1]["inner"]


def test_values_that_cannot_be_copied_are_shared() -> None:
    """A lock cannot be deep-copied, so the snapshot hands out the base's own object."""

    @dataclass
    class WithLock(Score):
        lock: Any = field(default_factory=threading.Lock)

    base = WithLock()
    assert snapshot(base).lock is base.lock


def test_snapshot_eq_repr_asdict_replace() -> None:
    """Dataclass eq, repr, asdict and replace treat a snapshot like the score it stands for."""
    base = OrderScore(order_id="o", items=[1])
    snap = snapshot(base)
    assert snap == base
    assert base == snap
    assert repr(snap) == repr(base)
    snap.total = 2.0
    assert snap != base
    assert dataclasses.asdict(snap) == {
        "order_id": "o",
        "items": [1],
        "total": 2.0,
        "status": "pending",
    }
    replaced = dataclasses.replace(snap, status="x")
    assert type(replaced) is OrderScore
    assert (replaced.total, replaced.status) == (2.0, "x")


def test_repr_does_not_copy_fields() -> None:
    """repr of a snapshot reads the base without copying mutable fields."""
    snap = snapshot(OrderScore(order_id="o", items=[1]))
    assert "items=[1]" in repr(snap)
    assert vars(snap) == {}


def test_copy_deepcopy_and_pickle_give_plain_scores() -> None:
    """copy, deepcopy and pickle of a snapshot produce an instance of the score class."""
    base = OrderScore(order_id="o", items=[1])
    snap = snapshot(base)
    snap.total = 3.0
    for clone in (copy.copy(snap), copy.deepcopy(snap), pickle.loads(pickle.dumps(snap))):
        assert type(clone) is OrderScore
        assert clone == OrderScore(order_id="o", items=[1], total=3.0)
    assert copy.deepcopy(snap).items is not base.items
    plain = materialize(snap)
    assert type(plain) is OrderScore
    assert plain.items is base.items
    assert materialize(base) is base


def test_slotted_dataclass_snapshots_copy_on_write() -> None:
    """A slots=True score gets the same lazy snapshot and merges back."""
    base = SlottedScore(items=[1])
    snap = snapshot(base)
    assert isinstance(snap, SlottedScore)
    assert vars(snap) == {}
    snap.items.append(2)
    snap.count = 4
    assert base == SlottedScore(items=[1])
    assert snap == SlottedScore(items=[1, 2], count=4)
    base.merge([snap])
    assert base == SlottedScore(items=[1, 2], count=4)


def test_frozen_scores_are_their_own_snapshot() -> None:
    """ImmutableScore and other frozen dataclasses need no copy."""

    @dataclass(frozen=True)
    class Frozen(Score):
        value: int = 1

    config = Config(api_key="k")
    assert snapshot(config) is config
    assert config.snapshot() is config
    frozen = Frozen()
    assert snapshot(frozen) is frozen


def test_snapshot_of_a_snapshot_is_isolated_from_both() -> None:
    """Nested groups: a snapshot of a snapshot isolates writes from both levels."""
    base = OrderScore(order_id="o", items=[1])
    outer = snapshot(base)
    outer.items.append(2)
    inner = snapshot(outer)
    assert type(inner) is type(outer)
    inner.items.append(3)
    assert (base.items, outer.items, inner.items) == ([1], [1, 2], [1, 2, 3])
    merge_snapshots(outer, [inner])
    assert outer.items == [1, 2, 3]
    assert base.items == [1]


def test_plain_class_score_with_class_level_default() -> None:
    """A non-dataclass score whose instance attribute overrides a class attribute reads right."""

    class Counter(Score):
        count = 0
        label = "class"

        def __init__(self) -> None:
            self.count = 5
            self.extra = ["x"]

    base = Counter()
    snap = snapshot(base)
    assert snap.count == 5
    assert snap.label == "class"
    snap.extra.append("y")
    assert base.extra == ["x"]
    snap.count += 1
    base.merge([snap])
    assert (base.count, base.extra) == (6, ["x", "y"])


def test_user_setattr_and_properties_work_on_snapshots() -> None:
    """A property with a setter stores into the snapshot, not the base."""

    @dataclass
    class WithProperty(Score):
        _value: int = 0

        @property
        def value(self) -> int:
            return self._value * 10

        @value.setter
        def value(self, new: int) -> None:
            self._value = new

    base = WithProperty()
    snap = snapshot(base)
    snap.value = 3
    assert (snap.value, base.value) == (30, 0)


async def test_parallel_tasks_on_snapshots_merge_like_the_rag_example() -> None:
    """The spec's RAG group: one task assigns context, one extends it; both results survive."""
    score = RAGScore(query="What is Cadence?")

    async def retrieve(s: RAGScore) -> None:
        await asyncio.sleep(0.01)
        s.context = ["vector-1", "vector-2"]

    async def web_search(s: RAGScore) -> None:
        s.context += ["web-1"]

    snaps = [snapshot(score), snapshot(score)]
    await asyncio.gather(retrieve(snaps[0]), web_search(snaps[1]))
    assert score.context == []
    merged = score.merge(snaps)
    assert merged is score
    assert score.context == ["vector-1", "vector-2", "web-1"]


def test_immutable_score_with_field_and_replace() -> None:
    """with_field and replace return new scores and leave the original alone."""
    config = Config(api_key="k")
    new_config = config.with_field("timeout", 60)
    assert new_config == Config(api_key="k", timeout=60)
    assert config.timeout == 30
    assert config.replace(api_key="z", timeout=1) == Config(api_key="z", timeout=1)
    assert isinstance(new_config, Config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 5  # type: ignore[misc]


def test_immutable_score_unknown_field_names_the_closest() -> None:
    """An unknown field name raises UnknownFieldError with a did-you-mean."""
    config = Config(api_key="k")
    with pytest.raises(UnknownFieldError, match="did you mean 'timeout'") as info:
        config.with_field("timout", 1)
    assert info.value.suggestion == "timeout"
    assert isinstance(info.value, CascadenceError)
    assert isinstance(info.value, AttributeError)
    with pytest.raises(UnknownFieldError, match="no field 'zzz'"):
        config.replace(zzz=1)


def test_immutable_score_needs_a_dataclass() -> None:
    """with_field on a non-dataclass ImmutableScore explains what to do."""

    class NotADataclass(ImmutableScore):
        pass

    with pytest.raises(TypeError, match="frozen=True"):
        NotADataclass().with_field("x", 1)


def test_merge_of_frozen_score_returns_a_new_score() -> None:
    """Merging results into an immutable score builds a new score."""
    config = Config(api_key="k")
    merged = config.merge([config.with_field("timeout", 5)])
    assert merged == Config(api_key="k", timeout=5)
    assert config.timeout == 30


class _Strict(Score):
    """A base whose subclasses must pass a keyword, so no snapshot class can be generated."""

    def __init_subclass__(cls, *, registered: bool, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)


@dataclass
class StrictScore(_Strict, registered=True):
    items: list[int] = field(default_factory=list)
    count: int = 0


def test_unsubclassable_score_falls_back_to_a_full_copy() -> None:
    """When no snapshot class can be made, the snapshot is an isolated copy that still merges."""
    base = StrictScore(items=[1])
    snap = snapshot(base)
    assert type(snap) is StrictScore
    assert not is_snapshot(snap)
    assert snap.items is not base.items
    snap.items.append(2)
    snap.count = 3
    assert base == StrictScore(items=[1])
    assert set(touched_fields(snap)) == {"items", "count"}
    base.merge([snap])
    assert base == StrictScore(items=[1, 2], count=3)
