"""`.split` conditions checked against the flow's score class and logged when a test's types
do not fit; `.child` flows merged back without a merge function, or refused."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from cascadence import Cadence, ImmutableScore, NoteError, Score


@dataclass
class Order(Score):
    count: int = 0
    name: str = ""
    tier: str = "basic"
    log: list[str] = field(default_factory=list)
    paid: bool = False

    @property
    def big(self) -> bool:
        return self.count > 10


@dataclass
class Tagged(Score):
    count: int = 0

    def __post_init__(self) -> None:
        self.label = "set in __post_init__"


@dataclass
class Payment(Score):
    amount: float = 0.0
    paid: bool = False


@dataclass(frozen=True)
class Frozen(ImmutableScore):
    count: int = 0
    note: str = ""


def mark(tag: str) -> Any:
    async def note_fn(score: Any) -> None:
        score.log.append(tag)

    note_fn.__name__ = tag
    return note_fn


# -- 1. a condition reading a field the score class lacks ------------------------------------


def test_unknown_field_of_a_dataclass_score_is_refused_with_the_closest() -> None:
    with pytest.raises(ValueError) as refused:
        Cadence("orders", Order()).split("route", "countr > 10", [mark("big")])
    message = str(refused.value)
    assert "split 'route'" in message
    assert "reads field 'countr'" in message and "Order does not have" in message
    assert "did you mean 'count'?" in message
    assert "(fields: count, name, tier, log, paid)" in message


def test_unknown_field_found_anywhere_in_the_condition_and_in_dict_form() -> None:
    with pytest.raises(ValueError, match=r"reads field 'tierr'.*did you mean 'tier'"):
        Cadence("o", Order()).split("r", "count > 1 and (paid or tierr == 'gold')", [mark("x")])
    structured = {"field": "nmae", "operator": "==", "value": "x"}
    with pytest.raises(ValueError, match=r"split 'r'.*reads field 'nmae'.*did you mean 'name'"):
        Cadence("o", Order()).split("r", structured, [mark("x")])
    # only the first segment is a field of the score; what is below it is data
    Cadence("o", Order()).split("r", "log.0 == 'a'", [mark("x")])


async def test_fields_properties_and_post_init_attributes_are_accepted() -> None:
    flow = (
        Cadence("o", Order(count=20))
        .split("by_property", "big", [mark("big")])
        .split("by_field", "tier == 'basic' and not paid", [mark("basic")])
    )
    assert (await flow.run()).log == ["big", "basic"]
    seen: list[str] = []

    async def saw(score: Tagged) -> None:
        seen.append(score.label)

    tagged = Cadence("t", Tagged()).split("r", "label == 'set in __post_init__'", [saw])
    await tagged.run()
    assert seen == ["set in __post_init__"]


async def test_scores_of_unknown_type_and_mapping_scores_are_not_checked() -> None:
    async def flag(score: Any) -> None:
        score["hit"] = True

    mapping = Cadence("m", {"amount": 5}).split("r", "amountt > 1", [flag], [])
    assert await mapping.run({"amountt": 3}) == {"amountt": 3, "hit": True}
    untyped = Cadence("u").split("r", "anything > 1", [mark("x")])
    assert (await untyped.run(Order())).log == []
    # a function condition is the user's own code: not looked into
    Cadence("o", Order()).split("r", lambda s: s.whatever, [mark("x")])


# -- 2. a type mismatch at run time is logged --------------------------------------------------


async def test_type_mismatch_is_false_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    flow = Cadence("names", Order()).split("route", "name > 5", [mark("yes")], [mark("no")])
    with caplog.at_level(logging.WARNING, logger="cascadence.flow"):
        score = await flow.run(Order(name="abc"))
    assert score.log == ["no"]
    [record] = [r for r in caplog.records if r.name == "cascadence.flow"]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "flow 'names'" in text and "split 'route'" in text and "'name > 5'" in text
    assert "name: " in text and "str" in text


async def test_no_log_without_a_mismatch(caplog: pytest.LogCaptureFixture) -> None:
    flow = Cadence("n", Order()).split("route", "count > 5 or name == 'x'", [mark("yes")])
    with caplog.at_level(logging.DEBUG, logger="cascadence.flow"):
        assert (await flow.run(Order(count=9))).log == ["yes"]
        assert (await flow.run(Order(count=1))).log == []
    assert not [r for r in caplog.records if r.name == "cascadence.flow"]


async def test_mismatch_logged_when_another_test_makes_it_true(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = Cadence("n", Order()).split("route", "name > 5 or count == 1", [mark("yes")])
    with caplog.at_level(logging.WARNING, logger="cascadence.flow"):
        assert (await flow.run(Order(name="abc", count=1))).log == ["yes"]
    assert [r for r in caplog.records if r.name == "cascadence.flow"]


# -- 3. child flows ----------------------------------------------------------------------------


async def test_child_of_the_same_class_is_merged_back_field_by_field() -> None:
    async def pay(score: Order) -> None:
        score.paid = True
        score.log.append("paid")

    async def before(score: Order) -> None:
        score.count = 3

    child = Cadence("pay", Order(tier="gold")).then("pay", pay)
    parent = Cadence("checkout", Order()).then("before", before).child("payment", child)
    score = await parent.run(Order(name="A"))
    # the child ran on its own score (a copy of its flow's), whose fields replace the parent's
    assert (score.paid, score.log, score.tier, score.count, score.name) == (
        True,
        ["paid"],
        "gold",
        0,
        "",
    )


async def test_child_on_the_parents_score_keeps_the_parents_fields() -> None:
    async def pay(score: Order) -> None:
        score.paid = True

    child = Cadence("pay", Order()).then("pay", pay)
    parent = Cadence("checkout", Order()).child("payment", child, score=lambda p: Order(p.count))
    score = await parent.run(Order(count=7, name="kept?"))
    assert (score.paid, score.count, score.name) == (True, 7, "")
    same = Cadence("checkout", Order()).child("payment", child, score=lambda p: p)
    score = await same.run(Order(count=7, name="kept"))
    assert (score.paid, score.count, score.name) == (True, 7, "kept")


async def test_frozen_child_score_replaces_the_parents() -> None:
    async def bump(score: Frozen) -> Frozen:
        return score.with_field("count", score.count + 1)  # type: ignore[no-any-return]

    child = Cadence("k", Frozen(count=4)).then("bump", bump)
    score = await Cadence("p", Frozen(note="parent")).child("kid", child).run()
    assert score == Frozen(count=5, note="")


async def test_mapping_child_scores_are_merged_by_key() -> None:
    async def add(score: dict[str, Any]) -> None:
        score["child"] = 1

    child = Cadence("k", {"child": 0}).then("add", add)
    assert await Cadence("p", {"a": 1}).child("kid", child).run({"a": 2}) == {"a": 2, "child": 1}


def test_child_of_another_class_without_merge_is_refused() -> None:
    child = Cadence("pay", Payment())
    with pytest.raises(TypeError) as refused:
        Cadence("checkout", Order()).child("payment", child)
    message = str(refused.value)
    assert "child 'payment'" in message and "Payment" in message and "Order" in message
    assert "merge=fn" in message and "(parent_score, child_score) -> None or a new" in message
    # with a merge function it is fine
    Cadence("checkout", Order()).child("payment", child, lambda p, c: None)


async def test_child_of_another_class_found_at_run_time_fails_the_step() -> None:
    child = Cadence("pay", Payment())
    untyped = Cadence("checkout").child("payment", child)  # no parent score: known only at run
    with pytest.raises(NoteError) as failed:
        await untyped.run(Order())
    assert failed.value.note_name == "payment"
    assert isinstance(failed.value.original_error, TypeError)
    assert "merge=fn" in str(failed.value)


async def test_merge_returning_something_else_names_the_child_step() -> None:
    async def pay(score: Payment) -> None:
        score.paid = True

    child = Cadence("pay", Payment()).then("pay", pay)
    flow = Cadence("checkout", Order()).child("payment", child, lambda p, c: {"paid": c.paid})
    with pytest.raises(NoteError) as failed:
        await flow.run(Order())
    assert failed.value.note_name == "payment"
    text = str(failed.value.original_error)
    assert "child 'payment'" in text and "returned a dict" in text
    assert "None" in text and "new Order score" in text


async def test_merge_returning_none_or_a_parent_score_works() -> None:
    async def pay(score: Payment) -> None:
        score.paid = True

    child = Cadence("pay", Payment()).then("pay", pay)

    def in_place(parent: Order, kid: Payment) -> None:
        parent.paid = kid.paid

    async def new_score(parent: Order, kid: Payment) -> Order:
        return Order(name="new", paid=kid.paid)

    assert (await Cadence("a", Order()).child("c", child, in_place).run()).paid
    done = await Cadence("b", Order()).child("c", child, new_score).run()
    assert (done.name, done.paid) == ("new", True)
