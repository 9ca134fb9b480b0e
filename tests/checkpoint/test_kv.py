"""`KeyValueCheckpointStore`: conflicts retried with the right outcome, what a subclass must
implement, the docs' example, and a durable flow on it. The shared contract suite
(`test_contract.py`, backend `kv`) checks every lease rule on the same store."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from checkpoint_backends import RacingDictStore
from dict_kv import DictCheckpointStore

from cascadence import Cadence, NoteError, Score
from cascadence.checkpoint import (
    CheckpointError,
    CheckpointStore,
    KeyValueCheckpointStore,
    RunLockedError,
    RunStatus,
)
from cascadence.testing import FakeClock

DOCS = Path(__file__).parents[2] / "docs" / "checkpoints.md"


def pair() -> tuple[RacingDictStore, RacingDictStore, FakeClock]:
    """Two stores on one dict (as two processes on one database) and their clock."""
    clock = FakeClock()
    data: dict[str, tuple[int, bytes]] = {}
    return RacingDictStore(data, clock=clock), RacingDictStore(data, clock=clock), clock


async def start(store: KeyValueCheckpointStore, owner: str, run_id: str = "r") -> Any:
    return await store.acquire(run_id, owner=owner, lease_seconds=10, kind="cadence", name="f")


async def test_racing_acquires_the_loser_sees_the_winners_lease() -> None:
    """`a` reads no run; `b` creates it before `a` writes; `a`'s write is refused, and its retry
    finds `b`'s lease."""
    a, b, _ = pair()
    a.before_change.append(lambda: start(b, "b"))
    with pytest.raises(RunLockedError):
        await start(a, "a")
    assert a.refused == 1
    record = await a.load("r")
    assert record is not None and record.owner == "b"


async def test_racing_steps_of_one_owner_are_both_kept() -> None:
    """Two saves of one owner through two stores interleave; the refused one is retried, so
    both steps are kept with distinct indices in completion order."""
    a, b, _ = pair()
    await start(a, "o")
    a.before_change.append(lambda: b.save_step("r", "y", 2, owner="o"))
    await a.save_step("r", "x", 1, owner="o")
    assert a.refused == 1
    steps = await a.history("r")
    assert [(s.key, s.index, s.payload) for s in steps] == [("y", 0, 2), ("x", 1, 1)]


async def test_a_takeover_between_read_and_write_wins_over_the_old_owner() -> None:
    """`a`'s lease ran out; `b` takes the run over between `a`'s read and write: `a`'s
    renewal and completion are refused and retried, and then raise RunLockedError."""
    a, b, clock = pair()
    await start(a, "a")
    clock.advance(11)
    a.before_change.append(lambda: start(b, "b"))
    with pytest.raises(RunLockedError):
        await a.complete("r", "done", owner="a")
    assert a.refused == 1
    record = await b.load("r")
    assert record is not None
    assert (record.status, record.owner, record.result) == (RunStatus.RUNNING, "b", None)


async def test_expire_spares_a_run_resumed_meanwhile() -> None:
    """`expire` picks an old failed run; it is resumed before the removal, so the removal is
    refused and the run, running again, is kept."""
    a, b, clock = pair()
    await start(a, "a")
    await a.fail("r", "boom", owner="a")
    clock.advance(100)
    a.before_change.append(lambda: start(b, "b"))
    assert await a.expire(older_than_seconds=50) == 0
    assert a.refused == 1
    record = await a.load("r")
    assert record is not None and record.status is RunStatus.RUNNING


async def test_delete_retries_a_run_changed_meanwhile() -> None:
    """A step saved between `delete`'s read and its removal: the removal is retried."""
    a, b, _ = pair()
    await start(a, "o")
    a.before_change.append(lambda: b.save_step("r", "x", 1, owner="o"))
    assert await a.delete("r") is True
    assert a.refused == 1
    assert await b.load("r") is None and await b.list_runs() == []


async def test_a_write_refused_on_every_attempt_gives_up() -> None:
    """A backend whose compare-and-set never succeeds makes the operation fail, not hang."""

    class Stuck(DictCheckpointStore):
        async def write(self, key: str, value: bytes, *, version: object) -> bool:
            return False

    store = Stuck({}, max_attempts=3)
    with pytest.raises(CheckpointError, match="changed concurrently on each of 3 attempts"):
        await start(store, "a")
    with pytest.raises(ValueError, match="max_attempts"):
        Stuck({}, max_attempts=0)


def test_a_subclass_missing_a_method_cannot_be_made() -> None:
    """Leaving out one of the four methods fails when the store is made, naming it."""

    class NoKeys(KeyValueCheckpointStore):
        async def read(self, key: str) -> tuple[bytes | None, object]:
            return None, 0

        async def write(self, key: str, value: bytes, *, version: object) -> bool:
            return True

        async def remove(self, key: str, *, version: object) -> bool:
            return True

    with pytest.raises(TypeError, match=r"abstract method.*keys"):
        NoKeys()  # type: ignore[abstract]
    with pytest.raises(TypeError, match=r"abstract methods.*keys.*read.*remove.*write"):
        KeyValueCheckpointStore()  # type: ignore[abstract]


def test_a_method_that_is_not_async_is_refused_at_once() -> None:
    """A plain `def` where a coroutine is needed fails when the class is defined."""
    with pytest.raises(TypeError, match=r"Sync\.keys must be a coroutine function"):

        class Sync(DictCheckpointStore):
            def keys(self) -> list[str]:  # type: ignore[override]
                return []


def test_the_docs_show_the_store_the_tests_run() -> None:
    """docs/checkpoints.md's example is `dict_kv.py`'s code, verbatim."""
    docs = DOCS.read_text()
    section = docs[docs.index("## Writing a store of your own") :]
    shown = re.search(r"```python\n(.*?)```", section, re.S)
    assert shown is not None
    source = (Path(__file__).parent / "dict_kv.py").read_text()
    assert shown.group(1) == source[source.index("import itertools") :]


@dataclass
class Order(Score):
    order_id: str = ""
    done: list[str] = field(default_factory=list)


async def test_a_killed_flow_resumes_on_the_dict_store() -> None:
    """A flow that dies in its third note resumes on a new store over the same dict without
    running the finished notes again; the finished run then returns its stored score."""
    calls: list[str] = []
    crash = [True]
    data: dict[str, tuple[int, bytes]] = {}

    def flow(store: CheckpointStore) -> Cadence[Order]:
        def note(name: str) -> Any:
            async def run(score: Order) -> None:
                calls.append(name)
                if name == "ship" and crash[0]:
                    raise RuntimeError("process died")
                score.done.append(name)

            return run

        return (
            Cadence("checkout", Order("o-1"))
            .with_checkpoint(store, run_id="order-123")
            .then("validate", note("validate"))
            .then("charge", note("charge"))
            .then("ship", note("ship"))
        )

    with pytest.raises(NoteError, match="process died"):
        await flow(DictCheckpointStore(data)).run()
    crash[0] = False
    score = await flow(DictCheckpointStore(data)).run()
    assert score.done == ["validate", "charge", "ship"]
    assert calls == ["validate", "charge", "ship", "ship"]
    again = await flow(DictCheckpointStore(data)).run()
    assert again.done == ["validate", "charge", "ship"] and len(calls) == 4
    record = await DictCheckpointStore(data).load("order-123")
    assert record is not None and record.status is RunStatus.COMPLETED
