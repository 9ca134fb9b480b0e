"""SMART merging of list fields: edits by position, items changed in place, and generated edits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cascadence import Cadence, MergeStrategy, Score
from cascadence.flow.merge import merge_snapshots
from cascadence.flow.score import snapshot


@dataclass
class Item:
    sku: str
    price: float = 0.0
    stock: int = 0


@dataclass
class Basket(Score):
    items: list[Any] = field(default_factory=list)
    numbers: list[Any] = field(default_factory=list)


Edit = Callable[[Basket], None]


def merged(start: Basket, *edits: Edit) -> Basket:
    """Each edit on its own snapshot of `start`, merged back with SMART."""
    snaps = [snapshot(start) for _ in edits]
    for snap, edit in zip(snaps, edits):
        edit(snap)
    return merge_snapshots(start, snaps, MergeStrategy.SMART)


async def test_parallel_enrichment_of_list_items_keeps_every_tasks_fields() -> None:
    """Tasks that each set other fields of the same items leave one item per item, with both."""

    async def price(score: Basket) -> None:
        for item in score.items:
            item.price = 9.99

    async def stock(score: Basket) -> None:
        for item in score.items:
            item.stock = 5

    flow = Cadence("enrich", Basket(items=[Item("x"), Item("y")])).sync("both", [price, stock])
    result = await flow.run()
    assert result.items == [Item("x", 9.99, 5), Item("y", 9.99, 5)]


def test_items_changed_in_place_at_different_positions() -> None:
    out = merged(
        Basket(items=[{}, {}]),
        lambda s: s.items[0].update(v=1),
        lambda s: s.items[1].update(v=2),
    )
    assert out.items == [{"v": 1}, {"v": 2}]


def test_one_item_changed_by_two_tasks_merges_by_key() -> None:
    out = merged(
        Basket(items=[{"id": 1}]),
        lambda s: s.items[0].update(a=1),
        lambda s: s.items[0].update(b=2),
    )
    assert out.items == [{"id": 1, "a": 1, "b": 2}]


def test_equal_scalars_replaced_at_different_positions() -> None:
    out = merged(
        Basket(numbers=[1, 1]),
        lambda s: s.numbers.__setitem__(0, 10),
        lambda s: s.numbers.__setitem__(1, 20),
    )
    assert out.numbers == [10, 20]


def test_same_position_scalar_goes_to_the_last_task() -> None:
    out = merged(
        Basket(numbers=[1, 2]),
        lambda s: s.numbers.__setitem__(0, 10),
        lambda s: s.numbers.__setitem__(0, 11),
    )
    assert out.numbers == [11, 2]


def test_change_in_place_and_append_keep_positions() -> None:
    out = merged(
        Basket(items=[{}, {}]),
        lambda s: s.items[0].update(v=1),
        lambda s: s.items.append({"new": 1}),
    )
    assert out.items == [{"v": 1}, {}, {"new": 1}]


def test_insert_at_front_and_append_keep_order() -> None:
    out = merged(
        Basket(numbers=[1, 2]), lambda s: s.numbers.insert(0, 0), lambda s: s.numbers.append(9)
    )
    assert out.numbers == [0, 1, 2, 9]


def test_the_same_edit_by_two_tasks_is_made_once() -> None:
    out = merged(
        Basket(numbers=[1, 2, 3]),
        lambda s: setattr(s, "numbers", [3, 2, 1]),
        lambda s: setattr(s, "numbers", [3, 2, 1]),
    )
    assert out.numbers == [3, 2, 1]
    out = merged(Basket(numbers=[1, 2, 3]), lambda s: s.numbers.pop(), lambda s: s.numbers.pop())
    assert out.numbers == [1, 2]


def test_replacement_and_append_both_survive() -> None:
    out = merged(
        Basket(numbers=[1, 2, 3]),
        lambda s: setattr(s, "numbers", [7]),
        lambda s: s.numbers.append(4),
    )
    assert out.numbers == [7, 4]


def test_removal_in_one_task_and_append_in_another() -> None:
    out = merged(
        Basket(numbers=[1, 2, 3]), lambda s: s.numbers.remove(1), lambda s: s.numbers.append(4)
    )
    assert out.numbers == [2, 3, 4]


def test_item_changed_in_place_then_an_item_equal_to_a_base_item_appended() -> None:
    """[1, 2] -> [10, 2, 1] reads as "first item changed, 1 appended": it keeps 2 in place."""
    out = merged(
        Basket(numbers=[1, 2]),
        lambda s: s.numbers.__setitem__(0, 10) or s.numbers.append(1),
        lambda s: s.numbers.__setitem__(1, 20),
    )
    assert out.numbers == [10, 20, 1]


def test_unhashable_items_inserted_in_the_middle() -> None:
    out = merged(
        Basket(items=[{"a": 1}, {"c": 3}]),
        lambda s: s.items.insert(1, {"b": 2}),
        lambda s: s.items.append({"d": 4}),
    )
    assert out.items == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


small = st.integers(0, 5)


@given(st.lists(small, max_size=6), st.lists(small, max_size=6))
def test_generated_one_task_gets_exactly_its_list(base: list[int], value: list[int]) -> None:
    """With one writer, the merged list is that writer's list, whatever it did."""
    out = merged(Basket(numbers=list(base)), lambda s: setattr(s, "numbers", list(value)))
    assert out.numbers == value


@given(st.lists(small, min_size=1, max_size=6, unique=True), st.data())
def test_generated_in_place_changes_at_distinct_positions_all_survive(
    base: list[int], data: st.DataObject
) -> None:
    """Tasks that each change items (all distinct, as objects changed in place are) at
    positions no other task touches: every change is kept, and the tasks' appends follow the
    base items in task order."""
    tasks = data.draw(st.integers(1, 4))
    owner = data.draw(st.lists(st.integers(0, tasks - 1), min_size=len(base), max_size=len(base)))
    new_values = data.draw(
        st.lists(st.integers(10, 20), min_size=len(base), max_size=len(base), unique=True)
    )
    appends = data.draw(
        st.lists(st.lists(st.integers(30, 40), max_size=2), min_size=tasks, max_size=tasks)
    )
    changes = {index: new_values[index] for index in range(len(base)) if data.draw(st.booleans())}

    def edit(task: int) -> Edit:
        def run(score: Basket) -> None:
            for index, value in changes.items():
                if owner[index] == task:
                    score.numbers[index] = value
            score.numbers.extend(appends[task])

        return run

    out = merged(Basket(numbers=list(base)), *(edit(task) for task in range(tasks)))
    expected = [changes.get(index, item) for index, item in enumerate(base)]
    for extra in appends:
        expected.extend(extra)
    assert out.numbers == expected


def test_a_sliding_window_edit_is_a_removal_and_an_append() -> None:
    """ "Drop the oldest, add the newest" keeps its meaning beside another task's edits."""
    out = merged(
        Basket(items=["a", "b", "c"]),
        lambda s: setattr(s, "items", [*s.items[1:], "d"]),
        lambda s: s.items.__setitem__(2, "C"),
    )
    assert out.items == ["b", "C", "d"]
    out = merged(
        Basket(items=["a", "b", "c"]),
        lambda s: setattr(s, "items", [*s.items[1:], "d"]),
        lambda s: setattr(s, "items", [*s.items[1:], "e"]),
    )
    assert out.items == ["b", "c", "d", "e"]


def test_records_keep_their_own_fields_when_another_task_shifts_the_list() -> None:
    out = merged(
        Basket(items=[{"id": 1, "seen": False}, {"id": 2, "seen": False}]),
        lambda s: setattr(s, "items", [*s.items[1:], {"id": 3, "seen": False}]),
        lambda s: s.items[1].update(seen=True),
    )
    assert out.items == [{"id": 2, "seen": True}, {"id": 3, "seen": False}]


def test_long_lists_filtered_in_one_task_and_extended_in_another() -> None:
    """Removals anywhere in a long list are found in one pass (no quadratic diff)."""
    base = list(range(20_000))
    out = merged(
        Basket(numbers=list(base)),
        lambda s: setattr(s, "numbers", [x for x in s.numbers if x % 2 == 0]),
        lambda s: s.numbers.append(-1),
    )
    assert out.numbers == [x for x in base if x % 2 == 0] + [-1]
    rewritten = merged(
        Basket(numbers=list(base)),
        lambda s: setattr(s, "numbers", [x + 1_000_000 for x in s.numbers]),
        lambda s: setattr(s, "numbers", [x if x % 2 else -x - 1 for x in s.numbers]),
    )
    assert rewritten.numbers == [x + 1_000_000 if x % 2 else -x - 1 for x in base]
