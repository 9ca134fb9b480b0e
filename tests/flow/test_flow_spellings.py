"""Other spellings users reach for: cascades as plain steps, merge names, backoff names, and
where an error inside a child flow happened."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from cascadence import (
    Cadence,
    CascadeConfig,
    CascadeEngine,
    MergeConflict,
    MergeStrategy,
    NoteError,
    Score,
    note,
)
from cascadence.flow.score import snapshot
from cascadence.policies.retry import RetryPolicy


@dataclass
class Order(Score):
    amount: int = 5
    mini: Any = None
    status: str = ""
    tags: list[str] = field(default_factory=list)


def mini_engine() -> CascadeEngine:
    engine = CascadeEngine(CascadeConfig.from_dict({"name": "mini", "stages": {"FAST": {}}}))
    engine.register_stage(
        "FAST", lambda ctx: {"result": "big" if ctx.get("amount") > 3 else "small"}
    )
    return engine


async def test_a_cascade_given_to_then_stores_its_result_under_the_step_name() -> None:
    flow = Cadence("f", Order()).then("mini", mini_engine())
    result = await flow.run()
    assert result.mini["final_result"] == "big"
    assert (await flow.run(Order(amount=1))).mini["final_result"] == "small"


async def test_a_cascade_as_a_plain_step_needs_a_field_to_store_its_result() -> None:
    """A frozen score gets a copy with the field; a score without the field runs the cascade
    and keeps its fields as they were."""
    from cascadence import ImmutableScore

    @dataclass(frozen=True)
    class Frozen(ImmutableScore):
        amount: int = 5
        mini: Any = None

    @dataclass(frozen=True)
    class Bare(ImmutableScore):
        amount: int = 5

    @dataclass
    class Plain(Score):
        amount: int = 5

    frozen = await Cadence("f", Frozen()).then("mini", mini_engine()).run()
    assert frozen.mini["final_result"] == "big"
    assert await Cadence("f", Bare()).then("mini", mini_engine()).run() == Bare()
    plain = await Cadence("f", Plain()).then("mini", mini_engine()).run()
    assert not hasattr(plain, "mini")


async def test_a_cascade_in_a_sync_group_stores_its_result_under_its_config_name() -> None:
    async def label(score: Order) -> None:
        score.status = "labelled"

    result = await Cadence("f", Order()).sync("both", [mini_engine(), label]).run()
    assert (result.mini["final_result"], result.status) == ("big", "labelled")


async def test_merge_strategy_is_another_name_for_merge() -> None:
    async def a(score: Order) -> None:
        score.status = "a"

    async def b(score: Order) -> None:
        score.status = "b"

    flow = Cadence("f", Order()).sync("g", [a, b], merge_strategy=MergeStrategy.FAIL_ON_CONFLICT)
    with pytest.raises(MergeConflict):
        await flow.run()
    with pytest.raises(TypeError, match="not both"):
        Cadence("f", Order()).sync("g", [a, b], merge="smart", merge_strategy="smart")


def test_merge_strategy_names_and_aliases() -> None:
    assert MergeStrategy.SMART_MERGE is MergeStrategy.SMART
    assert MergeStrategy("smart_merge") is MergeStrategy.SMART
    assert MergeStrategy("LAST_WRITE_WINS") is MergeStrategy.LAST_WRITE_WINS
    assert MergeStrategy("Fail-On-Conflict") is MergeStrategy.FAIL_ON_CONFLICT
    assert len(list(MergeStrategy)) == 3  # an alias is not a strategy of its own
    with pytest.raises(ValueError, match="did you mean 'smart'"):
        MergeStrategy("smrat")


def test_score_merge_takes_one_snapshot_or_several() -> None:
    base = Order()
    one = snapshot(base)
    one.tags.append("x")
    assert base.merge(one) is base and base.tags == ["x"]
    first, second = snapshot(base), snapshot(base)
    first.tags.append("y")
    second.tags.append("z")
    assert base.merge(iter([first, second])).tags == ["x", "y", "z"]


def test_constant_backoff_is_fixed() -> None:
    policy = RetryPolicy(max_attempts=4, delay=0.5, backoff="constant")
    assert policy.backoff == "fixed"
    assert list(policy.delays()) == [0.5, 0.5, 0.5]
    assert RetryPolicy(backoff=" Linear ").backoff == "linear"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="did you mean 'exponential'"):
        RetryPolicy(backoff="exponentail")  # type: ignore[arg-type]

    @note(retry={"max_attempts": 2, "delay": 0.25, "backoff": "constant"})
    async def flaky(score: Order) -> None:
        pass

    assert flaky.policy.retry is not None and flaky.policy.retry.backoff == "fixed"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are new in 3.11")
async def test_an_error_in_a_child_flow_says_which_child_step_ran_it() -> None:
    async def bad(score: Order) -> None:
        raise ValueError("boom")

    kid = Cadence("kid", Order()).then("bad", bad)
    parent = Cadence("parent", Order()).child("ch", kid, lambda parent, child: None)
    with pytest.raises(NoteError) as caught:
        await parent.run()
    assert caught.value.note_name == "bad"
    assert getattr(caught.value, "__notes__", None) == [
        "in child flow 'kid', step 'ch' of 'parent'"
    ]


def test_a_store_without_the_protocol_is_pointed_to_the_key_value_base() -> None:
    class SaveLoadStore:
        def save(self, run_id: str, data: bytes) -> None:
            pass

        def load(self, run_id: str) -> bytes | None:
            return None

    with pytest.raises(
        TypeError, match=r"subclass cascadence\.checkpoint\.KeyValueCheckpointStore"
    ):
        Cadence("f", Order()).with_checkpoint(SaveLoadStore(), run_id="a")  # type: ignore[arg-type]


async def test_split_on_a_bare_field_tests_its_truth() -> None:
    @dataclass
    class Member(Score):
        is_premium: bool = False
        amount: int = 0
        route: str = ""

    async def fast(score: Member) -> None:
        score.route = "fast"

    async def slow(score: Member) -> None:
        score.route = "slow"

    flow = Cadence("r", Member()).split("route", "is_premium and amount > 100", fast, slow)
    assert (await flow.run(Member(is_premium=True, amount=500))).route == "fast"
    assert (await flow.run(Member(is_premium=False, amount=500))).route == "slow"
    negated = Cadence("r", Member()).split("route", "not is_premium", fast, slow)
    assert (await negated.run(Member())).route == "fast"
