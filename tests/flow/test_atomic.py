"""Atomic containers: their operations, copies, and exact totals under contention."""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
from collections.abc import Callable

import pytest

from cascadence.flow.atomic import Atomic, AtomicDict, AtomicList

THREADS = 50
PER_THREAD = 1000


def _hammer(work: Callable[[int], object]) -> None:
    """Run `work(thread_index)` PER_THREAD times in each of THREADS threads started together."""
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(PER_THREAD):
            work(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_atomic_get_set_update_compare_and_set() -> None:
    """Atomic supports get, set, get_and_set, update and compare_and_set."""
    value = Atomic(1)
    assert value.get() == 1
    value.set(2)
    assert value.get_and_set(3) == 2
    assert value.update(lambda n: n * 10) == 30
    assert value.compare_and_set(30, 31)
    assert not value.compare_and_set(30, 99)
    assert value.get() == 31
    assert repr(value) == "Atomic(31)"


def test_atomic_update_may_read_itself() -> None:
    """An update callback that reads the same container does not deadlock."""
    value = Atomic(2)
    assert value.update(lambda n: n + value.get()) == 4


def test_atomic_list_operations() -> None:
    """AtomicList behaves like a list for the operations it offers."""
    items: AtomicList[int] = AtomicList([1, 2])
    items.append(3)
    items.extend([4, 5])
    items.insert(0, 0)
    items += [6]
    assert items.pop() == 6
    assert items.pop(0) == 0
    items.remove(3)
    assert items[0] == 1
    assert items[1:3] == [2, 4]
    items[0] = 10
    del items[0]
    assert len(items) == 3
    assert 4 in items
    assert items == [2, 4, 5]
    assert items == AtomicList([2, 4, 5])
    assert items != [2]
    assert items.to_list() == [2, 4, 5]
    assert repr(items) == "AtomicList([2, 4, 5])"
    items.clear()
    assert not items


def test_atomic_list_iterates_over_a_copy() -> None:
    """Appending while iterating neither fails nor extends the running loop."""
    items = AtomicList([1, 2, 3])
    seen = []
    for item in items:
        items.append(item * 10)
        seen.append(item)
    assert seen == [1, 2, 3]
    assert items == [1, 2, 3, 10, 20, 30]


def test_atomic_dict_operations() -> None:
    """AtomicDict offers item access, setdefault, update, pop, copies and increment."""
    data: AtomicDict[str, int] = AtomicDict({"a": 1}, b=2)
    data["c"] = 3
    assert data["a"] == 1
    assert data.get("zz") is None
    assert data.get("zz", 0) == 0
    assert data.setdefault("a", 99) == 1
    assert data.setdefault("d", 4) == 4
    data.update({"e": 5}, f=6)
    assert data.pop("f") == 6
    assert data.pop("missing", -1) == -1
    with pytest.raises(KeyError):
        data.pop("missing")
    del data["e"]
    assert "e" not in data
    assert data.increment("a") == 2
    assert data.increment("new", by=5) == 5
    assert data.compute("b", lambda v: (v or 0) * 100) == 200
    assert data.keys() == ["a", "b", "c", "d", "new"]
    assert data.values() == [2, 200, 3, 4, 5]
    assert data.items()[0] == ("a", 2)
    assert data.to_dict() == {"a": 2, "b": 200, "c": 3, "d": 4, "new": 5}
    assert data == {"a": 2, "b": 200, "c": 3, "d": 4, "new": 5}
    assert data == AtomicDict(data.to_dict())
    assert len(data) == 5
    assert list(data) == ["a", "b", "c", "d", "new"]
    data.clear()
    assert not data


def test_copies_are_independent_and_pickle_round_trips() -> None:
    """copy, deepcopy and pickle give new containers with the same contents."""
    items = AtomicList([[1]])
    shallow, deep = copy.copy(items), copy.deepcopy(items)
    restored = pickle.loads(pickle.dumps(items))
    items.append([2])
    assert shallow == [[1]]
    assert shallow[0] is items[0]
    assert deep == [[1]]
    assert deep[0] is not items[0]
    assert restored == [[1]]
    data = pickle.loads(pickle.dumps(AtomicDict(a=1)))
    data.increment("a")
    assert data == {"a": 2}
    assert pickle.loads(pickle.dumps(Atomic(5))).get() == 5


def test_atomic_types_are_unhashable_like_their_plain_counterparts() -> None:
    """AtomicList and AtomicDict cannot be hashed, as lists and dicts cannot."""
    with pytest.raises(TypeError):
        hash(AtomicList())
    with pytest.raises(TypeError):
        hash(AtomicDict())


def test_atomic_counter_exact_under_threads() -> None:
    """50 threads x 1000 updates of one Atomic lose no increment."""
    counter = Atomic(0)
    _hammer(lambda _: counter.update(lambda n: n + 1))
    assert counter.get() == THREADS * PER_THREAD


def test_atomic_list_exact_under_threads() -> None:
    """50 threads x 1000 appends leave every item in the list exactly once per append."""
    items: AtomicList[int] = AtomicList()
    _hammer(items.append)
    assert len(items) == THREADS * PER_THREAD
    counts = [0] * THREADS
    for item in items:
        counts[item] += 1
    assert counts == [PER_THREAD] * THREADS


def test_atomic_dict_increment_exact_under_threads() -> None:
    """50 threads x 1000 increments give exact per-key and total counts."""
    data: AtomicDict[str, int] = AtomicDict()

    def work(index: int) -> None:
        data.increment("total")
        data.increment(f"t{index % 5}")

    _hammer(work)
    assert data["total"] == THREADS * PER_THREAD
    assert sum(data[f"t{i}"] for i in range(5)) == THREADS * PER_THREAD


def test_compare_and_set_loop_exact_under_threads() -> None:
    """A compare-and-set retry loop counts exactly under contention."""
    counter = Atomic(0)

    def work(_: int) -> None:
        while True:
            current = counter.get()
            if counter.compare_and_set(current, current + 1):
                return

    _hammer(work)
    assert counter.get() == THREADS * PER_THREAD


async def test_atomic_types_under_concurrent_asyncio_tasks() -> None:
    """Concurrent asyncio tasks that yield between updates keep exact totals."""
    items: AtomicList[int] = AtomicList()
    data: AtomicDict[str, int] = AtomicDict()

    async def task(index: int) -> None:
        for _ in range(100):
            items.append(index)
            data.increment("n")
            await asyncio.sleep(0)

    await asyncio.gather(*(task(i) for i in range(20)))
    assert len(items) == 2000
    assert data["n"] == 2000


async def test_atomic_types_from_worker_threads_and_tasks_together() -> None:
    """Updates from to_thread workers and event-loop tasks at once are all kept."""
    counter = Atomic(0)

    def sync_note() -> None:
        for _ in range(500):
            counter.update(lambda n: n + 1)

    async def async_note() -> None:
        for _ in range(500):
            counter.update(lambda n: n + 1)
            await asyncio.sleep(0)

    await asyncio.gather(*(asyncio.to_thread(sync_note) for _ in range(4)), async_note())
    assert counter.get() == 2500
