"""Exact round trips and clear errors for the checkpoint serializer."""

from __future__ import annotations

import datetime as dt
import enum
import math
import socket
import uuid
import zoneinfo
from dataclasses import InitVar, dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadence.checkpoint import CheckpointError, SerializationError, register_type
from cascadence.checkpoint.serde import dumps, loads
from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList
from cascadence.flow.score import Score, snapshot


class Color(enum.Enum):
    """A plain enum."""

    RED = "red"
    BLUE = 2


class Level(enum.IntEnum):
    """An int enum, which must not come back as a plain int."""

    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    """A flag enum."""

    R = 1
    W = 2


class Point(NamedTuple):
    """A named tuple."""

    x: int
    y: int


@dataclass(frozen=True)
class Item:
    """A frozen dataclass."""

    sku: str
    price: Decimal


@dataclass
class Order:
    """A nested, mutable dataclass with a computed field."""

    order_id: str
    items: list[Item] = field(default_factory=list)
    color: Color = Color.RED
    total: Decimal = field(init=False, default=Decimal(0))
    calls: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.total = sum((i.price for i in self.items), Decimal(0))
        self.calls.append("post_init")


@dataclass
class Seeded:
    """A dataclass whose constructor needs an init-only value."""

    value: int = field(init=False)
    seed: InitVar[int]

    def __post_init__(self, seed: int) -> None:
        self.value = seed * 2


@dataclass(slots=True)
class Slotted:
    """A slotted dataclass."""

    a: int
    b: tuple[int, ...]


class Model(pydantic.BaseModel):
    """A pydantic model with nested values."""

    name: str
    when: dt.datetime
    tags: list[str] = []


@dataclass
class Aggregate(Score):
    """A flow score holding the flow's atomic containers."""

    name: str = "agg"
    results: AtomicList[Any] = field(default_factory=AtomicList)
    cache: AtomicDict[str, Any] = field(default_factory=AtomicDict)
    count: Atomic[int] = field(default_factory=lambda: Atomic(0))


class Money:
    """A user type taught to checkpoints with register_type."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (
            other.cents,
            other.currency,
        )

    __hash__ = None  # type: ignore[assignment]


register_type(Money, lambda m: (m.cents, m.currency), lambda v: Money(*v), tag="tests.money")


def same(a: Any, b: Any) -> bool:
    """Deep equality that also requires equal types (and treats nan as equal to nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.tzinfo == b.tzinfo and a.fold == b.fold and str(a) == str(b)
    return bool(a == b)


def roundtrip(value: Any) -> Any:
    """Serialize and read back."""
    data = dumps(value)
    assert isinstance(data, bytes)
    return loads(data)


PARIS = zoneinfo.ZoneInfo("Europe/Paris")

SCALARS = [
    None, True, False, 0, -1, 2**80, 1.5, -0.0, float("inf"), float("-inf"), "", "héllo ✓",
    b"\x00\xff", bytearray(b"ab"), Decimal("1.10"), Decimal("-0"), Decimal("NaN"),
    Decimal("sNaN"), Decimal("Infinity"), uuid.UUID(int=7), dt.date(2024, 2, 29),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
    dt.datetime(2024, 7, 1, 12, tzinfo=PARIS),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    dt.time(1, 2, 3, 4), dt.time(23, 59, tzinfo=dt.timezone.utc), dt.timedelta(days=-1, seconds=5),
    Color.RED, Color.BLUE, Level.HIGH, Perm.R | Perm.W, Point(1, 2),
]  # fmt: skip


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars_round_trip_exactly(value: Any) -> None:
    """Every supported scalar comes back equal and of the same type."""
    assert same(roundtrip(value), value)


def test_nan_round_trips() -> None:
    """nan comes back as a float nan."""
    assert math.isnan(roundtrip(float("nan")))


def test_containers_round_trip_exactly() -> None:
    """Tuples, sets, frozensets and dicts with any hashable keys keep their types."""
    value = {
        "t": (1, (2, 3)),
        "s": {1, "a", (2, 3)},
        "f": frozenset({frozenset({1})}),
        "d": {1: "int key", (1, 2): "tuple key", None: 0, Color.RED: 1, "$t": "reserved"},
        "l": [[], {}, ()],
    }
    assert same(roundtrip(value), value)


def test_dataclasses_round_trip() -> None:
    """Nested and frozen dataclasses are restored as stored, without running __post_init__."""
    order = Order("o1", [Item("a", Decimal("1.25")), Item("b", Decimal("2"))], Color.BLUE)
    order.total = Decimal("99")  # differs from what __post_init__ would compute
    back = roundtrip(order)
    assert type(back) is Order
    assert back.items == order.items
    assert type(back.items[0]) is Item
    assert back.total == Decimal("99")
    assert back.color is Color.BLUE
    assert back.calls == ["post_init"]  # from the original construction only
    assert back == order


def test_dataclass_with_required_initvar_bypasses_init() -> None:
    """A dataclass needing an InitVar is restored field by field like any other."""
    back = roundtrip(Seeded(seed=21))
    assert type(back) is Seeded
    assert back.value == 42


def test_slotted_dataclass_and_model() -> None:
    """Slotted dataclasses and pydantic models round-trip."""
    model = Model(name="m", when=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), tags=["x"])
    value = [Slotted(1, (2, 3)), model]
    back = roundtrip(value)
    assert back == value
    assert type(back[1]) is Model


def test_flow_scores_with_atomics_round_trip() -> None:
    """Atomic containers inside a score are stored by content and rebuilt with fresh locks."""
    score = Aggregate("q")
    score.results.append((1, 2))
    score.cache["k"] = {1: Decimal("2")}
    score.count.set(5)
    back = roundtrip(score)
    assert type(back) is Aggregate
    assert back.results.to_list() == [(1, 2)]
    assert dict(back.cache.items()) == {"k": {1: Decimal("2")}}
    assert back.count.get() == 5
    back.count.update(lambda n: n + 1)
    assert score.count.get() == 5


def test_score_snapshot_is_stored_as_its_score_class() -> None:
    """A parallel task's snapshot of a score serializes exactly like the score itself."""
    score = Aggregate("q")
    assert dumps(snapshot(score)) == dumps(score)
    assert type(roundtrip(snapshot(score))) is Aggregate


def test_registered_type_round_trips() -> None:
    """A type added with register_type is written with its tag and read back."""
    value = {"price": Money(125, "EUR"), "list": [Money(1, "USD")]}
    assert b"tests.money" in dumps(value)
    assert roundtrip(value) == value


def test_register_type_refuses_builtin_tag() -> None:
    """Built-in tags cannot be taken over."""
    with pytest.raises(ValueError, match="reserved"):
        register_type(Money, lambda m: 0, lambda v: v, tag="tuple")


def test_unsupported_value_names_path_and_type() -> None:
    """The error names where the bad value is and its type."""
    with socket.socket() as sock:
        value = {"score": Order("o1"), "items": [1, {"client": sock}]}
        with pytest.raises(SerializationError) as info:
            dumps(value)
    assert info.value.path == "$.items[1].client"
    assert info.value.type_name == "socket.socket"
    assert str(info.value).startswith("$.items[1].client: cannot checkpoint a value of type")
    assert isinstance(info.value, CheckpointError)


def test_unsupported_dataclass_field_path() -> None:
    """A bad value in a dataclass field is named by the field."""
    order = Order("o1", [Item("a", Decimal(1))])
    order.items.append(Item("b", object()))  # type: ignore[arg-type]
    expected = r"^score\.items\[1\]\.price: cannot checkpoint a value of type object;"
    with pytest.raises(SerializationError, match=expected):
        dumps(order, root="score")


def test_local_class_is_rejected_with_advice() -> None:
    """A dataclass defined inside a function cannot be re-imported, and the error says so."""

    @dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match="define it at module level"):
        dumps({"v": Local(1)})


def test_self_reference_is_rejected() -> None:
    """A list containing itself fails cleanly instead of recursing forever."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="refers to itself"):
        dumps(loop)


def test_subclass_of_builtin_container_is_rejected() -> None:
    """A dict subclass is not silently turned into a dict."""

    class Special(dict[str, int]):
        pass

    with pytest.raises(SerializationError, match="Special"):
        dumps({"x": Special()})


def test_corrupt_data_raises_checkpoint_error() -> None:
    """Bytes that are not a checkpoint fail with a CheckpointError."""
    with pytest.raises(CheckpointError, match="corrupt"):
        loads(b"{not json")
    with pytest.raises(CheckpointError, match="not importable"):
        loads(b'{"$t":"dc","c":"no.such.module:Thing","v":{}}')
    with pytest.raises(CheckpointError, match="unknown type tag"):
        loads(b'{"$t":"nobody.registered","v":1}')


hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.floats(allow_nan=False) | st.decimals(allow_nan=False) | st.dates() | st.uuids(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)  # fmt: skip

leaves = (
    hashables
    | st.floats()
    | st.binary(max_size=8)
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.timedeltas()
    | st.sampled_from([Color.RED, Level.LOW, Point(0, 1)])
    | st.builds(Item, st.text(max_size=4), st.decimals(allow_nan=False, allow_infinity=False))
)

values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.builds(Slotted, st.integers(), st.lists(st.integers(), max_size=3).map(tuple))
    ),
    max_leaves=20,
)


@given(values)
def test_nested_structures_round_trip(value: Any) -> None:
    """Any nesting of supported values round-trips to an equal value of identical types."""
    assert same(roundtrip(value), value)


def test_a_lone_surrogate_round_trips() -> None:
    """A string holding a lone surrogate (invalid in UTF-8) is escaped and reads back exactly."""
    value = {"text": "a\ud800b"}
    assert loads(dumps(value)) == value
