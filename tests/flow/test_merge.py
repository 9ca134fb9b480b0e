"""Merging parallel snapshots: each strategy, custom merges and generated edits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadence.errors import CadenceError, MergeConflict
from cascadence.flow.merge import MergeStrategy, changed_fields, merge_snapshots
from cascadence.flow.score import Score, snapshot


@dataclass
class TaskScore(Score):
    name: str = "base"
    count: int = 0
    items: list[Any] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    maybe: list[Any] | None = None


@dataclass
class Point:
    x: int = 0
    y: int = 0


@dataclass
class WithPoint(Score):
    point: Point = field(default_factory=Point)


class Opaque:
    """A class without __eq__: compared attribute by attribute after a copy."""

    def __init__(self, value: int) -> None:
        self.value = value


@dataclass
class WithOpaque(Score):
    thing: Opaque = field(default_factory=lambda: Opaque(1))


def test_changed_fields_ignores_reads_and_equal_writes() -> None:
    """Reading a mutable field or writing back an equal value is not a change."""
    base = TaskScore(items=[1])
    snap = snapshot(base)
    assert snap.items == [1]
    snap.count = 0
    snap.name = "new"
    assert changed_fields(base, snap) == {"name": "new"}
    assert changed_fields(base, base) == {}


def test_identity_eq_objects_are_compared_by_attributes() -> None:
    """Reading an object without __eq__ copies it, but an unchanged copy is no change."""
    base = WithOpaque()
    snap = snapshot(base)
    assert snap.thing.value == 1
    assert changed_fields(base, snap) == {}
    snap.thing.value = 2
    assert list(changed_fields(base, snap)) == ["thing"]


def test_last_write_wins_takes_the_highest_index() -> None:
    """Under LAST_WRITE_WINS the highest-index task that changed a field wins."""
    base = TaskScore()
    snaps = [snapshot(base) for _ in range(3)]
    snaps[0].name = "zero"
    snaps[1].name = "one"
    snaps[0].count = 7
    snaps[2].items.append("x")
    merge_snapshots(base, snaps, MergeStrategy.LAST_WRITE_WINS)
    assert (base.name, base.count, base.items) == ("one", 7, ["x"])


def test_task_order_not_completion_order_decides() -> None:
    """The merge follows task index order even when tasks finish in reverse."""

    async def run() -> TaskScore:
        base = TaskScore()
        snaps = [snapshot(base) for _ in range(3)]

        async def task(index: int) -> None:
            await asyncio.sleep(0.001 * (3 - index))
            snaps[index].name = f"task{index}"
            snaps[index].items.append(index)

        await asyncio.gather(*(task(i) for i in range(3)))
        return merge_snapshots(base, snaps, "last_write_wins")

    merged = asyncio.run(run())
    assert merged.name == "task2"
    assert merged.items == [2]


def test_fail_on_conflict_raises_with_field_and_values() -> None:
    """Two different values for one field raise MergeConflict and write nothing."""
    base = TaskScore()
    snaps = [snapshot(base) for _ in range(3)]
    snaps[0].count = 1
    snaps[1].name = "fine"
    snaps[2].count = 2
    with pytest.raises(MergeConflict) as info:
        merge_snapshots(base, snaps, MergeStrategy.FAIL_ON_CONFLICT)
    assert info.value.field == "count"
    assert info.value.values == [1, 2]
    assert isinstance(info.value, CadenceError)
    assert (base.count, base.name) == (0, "base")


def test_fail_on_conflict_accepts_agreeing_tasks() -> None:
    """Tasks that write the same value do not conflict."""
    base = TaskScore()
    snaps = [snapshot(base) for _ in range(2)]
    for snap in snaps:
        snap.count = 5
        snap.items.append("same")
    merge_snapshots(base, snaps, MergeStrategy.FAIL_ON_CONFLICT)
    assert (base.count, base.items) == (5, ["same"])


def test_smart_lists_keep_every_tasks_additions() -> None:
    """SMART appends each task's additions after the base items, in task order."""
    base = TaskScore(items=["b"])
    snaps = [snapshot(base) for _ in range(3)]
    snaps[0].items += ["a0", "a1"]
    snaps[2].items.append("c0")
    snaps[1].items = [*snaps[1].items, "b0"]
    merge_snapshots(base, snaps)
    assert base.items == ["b", "a0", "a1", "b0", "c0"]


def test_smart_replaced_list_counts_as_additions_relative_to_empty() -> None:
    """A wholesale replacement of an empty base list and an extension both survive."""
    base = TaskScore()
    first, second = snapshot(base), snapshot(base)
    first.items = ["r1", "r2"]
    second.items += ["w1"]
    merge_snapshots(base, [first, second])
    assert base.items == ["r1", "r2", "w1"]


def test_smart_list_removals_are_honoured() -> None:
    """Items a task removed from the base list are removed once, even if two tasks remove them."""
    base = TaskScore(items=[1, 2, 3])
    snaps = [snapshot(base) for _ in range(3)]
    snaps[0].items.remove(2)
    snaps[1].items.remove(2)
    snaps[2].items.append(4)
    merge_snapshots(base, snaps)
    assert base.items == [1, 3, 4]


def test_smart_lists_of_unhashable_items() -> None:
    """List merging works for items that cannot be hashed."""
    base = TaskScore(items=[{"id": 1}])
    first, second = snapshot(base), snapshot(base)
    first.items = [{"id": 2}]
    second.items.append({"id": 3})
    merge_snapshots(base, [first, second])
    assert base.items == [{"id": 2}, {"id": 3}]


def test_smart_none_base_list_counts_as_empty() -> None:
    """A field that was None and becomes a list in two tasks gets both lists."""
    base = TaskScore()
    first, second = snapshot(base), snapshot(base)
    first.maybe = [1]
    second.maybe = [2]
    merge_snapshots(base, [first, second])
    assert base.maybe == [1, 2]


def test_smart_dicts_merge_by_key_recursively() -> None:
    """SMART merges dicts key by key; nested lists keep additions; scalar clashes go last."""
    base = TaskScore(meta={"keep": 1, "drop": 2, "nested": {"list": [1], "n": 0}})
    snaps = [snapshot(base) for _ in range(3)]
    snaps[0].meta["a"] = "from0"
    snaps[0].meta["nested"]["list"].append(2)
    snaps[0].meta["nested"]["n"] = 10
    snaps[1].meta["nested"]["list"].append(3)
    snaps[1].meta["nested"]["n"] = 20
    del snaps[2].meta["drop"]
    merge_snapshots(base, snaps)
    assert base.meta == {"keep": 1, "nested": {"list": [1, 2, 3], "n": 20}, "a": "from0"}


def test_smart_sets_union_additions_and_apply_removals() -> None:
    """SMART unions the tasks' additions to a set and drops what a task removed."""
    base = TaskScore(labels={"old", "shared"})
    snaps = [snapshot(base) for _ in range(2)]
    snaps[0].labels.add("a")
    snaps[1].labels |= {"b"}
    snaps[1].labels.discard("old")
    merge_snapshots(base, snaps)
    assert base.labels == {"shared", "a", "b"}


def test_smart_scalars_and_mixed_types_last_write_wins() -> None:
    """Scalars and values of mixed types go to the last task that changed them."""
    base = TaskScore()
    snaps = [snapshot(base) for _ in range(2)]
    snaps[0].name = "first"
    snaps[1].name = "second"
    snaps[0].maybe = [1]
    snaps[1].maybe = None
    snaps[1].count = 3
    merge_snapshots(base, snaps)
    assert (base.name, base.maybe, base.count) == ("second", [1], 3)


def test_smart_nested_dataclass_merges_field_by_field() -> None:
    """Two tasks changing different fields of a nested dataclass both keep their change."""
    base = WithPoint()
    first, second = snapshot(base), snapshot(base)
    first.point.x = 1
    second.point.y = 2
    merge_snapshots(base, [first, second])
    assert base.point == Point(1, 2)


def test_custom_merge_callable() -> None:
    """A callable strategy receives the base and the snapshots in task order."""
    base = TaskScore()
    snaps = [snapshot(base) for _ in range(3)]
    for index, snap in enumerate(snaps):
        snap.count = index + 1

    def total(target: TaskScore, snapshots: list[TaskScore]) -> None:
        target.count = sum(s.count for s in snapshots)

    assert merge_snapshots(base, snaps, total) is base
    assert base.count == 6
    assert base.merge(snaps, lambda b, s: TaskScore(name="new")).name == "new"


def test_strategy_names_are_accepted_and_checked() -> None:
    """Strategies may be given by value or name; a typo names the closest strategy."""
    assert MergeStrategy("SMART") is MergeStrategy.SMART
    assert MergeStrategy("fail-on-conflict") is MergeStrategy.FAIL_ON_CONFLICT
    with pytest.raises(ValueError, match="did you mean 'last_write_wins'"):
        merge_snapshots(TaskScore(), [], "last_write_win")


def test_merge_writes_in_place_and_returns_the_base() -> None:
    """The flow's one score object is updated in place."""
    base = TaskScore()
    snap = snapshot(base)
    snap.count = 2
    assert base.merge([snap]) is base
    assert base.count == 2


# --- generated edits ---------------------------------------------------------------------

FIELDS = ("f0", "f1", "f2", "f3")


@dataclass
class Generated(Score):
    f0: Any = None
    f1: Any = None
    f2: Any = None
    f3: Any = None


values = st.one_of(
    st.none(),
    st.integers(-2, 2),
    st.sampled_from(["a", "b"]),
    st.lists(st.integers(0, 3), max_size=3),
)
bases = st.fixed_dictionaries(dict.fromkeys(FIELDS, values))
edits = st.lists(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)), min_size=1, max_size=4
)


def _run(base_values: dict[str, Any], task_edits: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    base = Generated(**base_values)
    snaps = [snapshot(base) for _ in task_edits]
    for snap, edit in zip(snaps, task_edits):
        for name, value in edit.items():
            setattr(snap, name, value)
    return base, snaps


@given(bases, edits)
def test_generated_last_write_wins_matches_reference(
    base_values: dict[str, Any], task_edits: list[dict[str, Any]]
) -> None:
    """LAST_WRITE_WINS equals: the last task whose value differs from the base, else the base."""
    base, snaps = _run(base_values, task_edits)
    expected = dict(base_values)
    for edit in task_edits:
        for name, value in edit.items():
            if value != base_values[name]:
                expected[name] = value
    merge_snapshots(base, snaps, MergeStrategy.LAST_WRITE_WINS)
    assert {name: getattr(base, name) for name in FIELDS} == expected


@given(bases, edits)
def test_generated_fail_on_conflict_raises_iff_tasks_disagree(
    base_values: dict[str, Any], task_edits: list[dict[str, Any]]
) -> None:
    """FAIL_ON_CONFLICT raises exactly when two tasks changed one field to different values."""
    base, snaps = _run(base_values, task_edits)
    written: dict[str, list[Any]] = {}
    for edit in task_edits:
        for name, value in edit.items():
            if value != base_values[name]:
                written.setdefault(name, []).append(value)
    conflicts = {name for name, vals in written.items() if any(v != vals[0] for v in vals[1:])}
    if conflicts:
        with pytest.raises(MergeConflict) as info:
            merge_snapshots(base, snaps, MergeStrategy.FAIL_ON_CONFLICT)
        assert info.value.field in conflicts
        assert {name: getattr(base, name) for name in FIELDS} == base_values
    else:
        merge_snapshots(base, snaps, MergeStrategy.FAIL_ON_CONFLICT)
        expected = {**base_values, **{name: vals[0] for name, vals in written.items()}}
        assert {name: getattr(base, name) for name in FIELDS} == expected


@given(
    st.fixed_dictionaries({name: st.lists(st.integers(0, 3), max_size=3) for name in FIELDS}),
    st.lists(
        st.dictionaries(st.sampled_from(FIELDS), st.lists(st.integers(0, 9), max_size=3)),
        min_size=1,
        max_size=4,
    ),
)
def test_generated_smart_lists_keep_appended_items_once_in_task_order(
    base_values: dict[str, list[int]], appends: list[dict[str, list[int]]]
) -> None:
    """SMART keeps the base items followed by every task's appended items, once, in order."""
    base = Generated(**base_values)
    snaps = [snapshot(base) for _ in appends]
    for index, (snap, edit) in enumerate(zip(snaps, appends)):
        for name, extra in edit.items():
            if index % 2:
                getattr(snap, name).extend(extra)
            else:
                setattr(snap, name, getattr(snap, name) + extra)
    merge_snapshots(base, snaps, MergeStrategy.SMART)
    for name in FIELDS:
        expected = list(base_values[name])
        for edit in appends:
            expected.extend(edit.get(name, []))
        assert getattr(base, name) == expected


@given(bases, edits, st.sampled_from(list(MergeStrategy)))
def test_generated_fast_path_agrees_with_the_general_merge(
    base_values: dict[str, Any], task_edits: list[dict[str, Any]], mode: MergeStrategy
) -> None:
    """Single-writer merges take a shortcut; its outcome equals the general merge's."""
    from cascadence.flow.merge import _merge_general

    outcomes = []
    for merge in (merge_snapshots, _merge_general):
        base, snaps = _run(base_values, task_edits)
        try:
            merge(base, snaps, mode)
        except MergeConflict as exc:
            outcomes.append(("conflict", exc.field))
        else:
            outcomes.append(("merged", {name: getattr(base, name) for name in FIELDS}))
    assert outcomes[0] == outcomes[1]
