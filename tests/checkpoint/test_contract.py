"""The checkpoint contract, run against every store (memory, SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkpoint_backends import Backend

from cascadence.checkpoint import (
    CheckpointError,
    CheckpointStore,
    RunLockedError,
    RunNotFoundError,
    RunRecord,
    RunStatus,
    SerializationError,
    default_owner,
)
from cascadence.checkpoint.base import BaseCheckpointStore, owner_is_dead
from cascadence.runtime.clock import SYSTEM_CLOCK
from cascadence.testing import FakeClock


@dataclass(frozen=True)
class Score:
    """A small flow score, as a checkpointed step would carry."""

    order_id: str
    amount: float
    tags: tuple[str, ...] = ()


@dataclass
class Holder:
    """A score holding a resource that cannot be checkpointed."""

    order_id: str
    client: Any


async def start(
    store: BaseCheckpointStore, run_id: str = "run-1", owner: str = "a", **kw: Any
) -> RunRecord:
    """Acquire `run_id` for `owner` with a 10 second lease."""
    kw.setdefault("kind", "cadence")
    kw.setdefault("name", "checkout")
    return await store.acquire(run_id, owner=owner, lease_seconds=10, **kw)


async def test_store_satisfies_protocol(store: BaseCheckpointStore) -> None:
    """Every built-in store is a CheckpointStore."""
    assert isinstance(store, CheckpointStore)


async def test_acquire_creates_running_run(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """A new run is RUNNING, leased to its owner, with no steps and the given meta."""
    record = await start(store, meta={"tenant": "acme", "n": (1, 2)})
    assert record.run_id == "run-1"
    assert (record.kind, record.name) == ("cadence", "checkout")
    assert record.status is RunStatus.RUNNING
    assert record.owner == "a"
    assert record.lease_expires_at == pytest.approx(clock.time() + 10)
    assert record.created_at == record.updated_at == pytest.approx(clock.time())
    assert record.steps == []
    assert record.meta == {"tenant": "acme", "n": (1, 2)}
    assert (record.result, record.error, record.state) == (None, None, None)


async def test_completed_run_is_returned_not_locked(store: BaseCheckpointStore) -> None:
    """After complete, acquire returns the stored result without leasing the run."""
    await start(store)
    await store.save_step("run-1", "validate", Score("o1", 5.0), owner="a")
    await store.complete("run-1", {"paid": True}, owner="a")
    for owner in ("b", "c"):
        again = await start(store, owner=owner)
        assert again.status is RunStatus.COMPLETED
        assert again.completed
        assert again.result == {"paid": True}
        assert again.owner is None
        assert again.lease_expires_at is None
        assert again.step_payloads() == {"validate": Score("o1", 5.0)}
    with pytest.raises(RunNotFoundError, match="completed") as info:
        await store.save_step("run-1", "x", 1, owner="b")
    assert "load it for its result" in str(info.value)  # not "acquire it again to resume"


async def test_lease_contention_until_expiry(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """A second owner is locked out until the lease expires, then takes the run over."""
    first = await start(store, owner="a")
    await store.save_step("run-1", "validate", 1, owner="a")
    with pytest.raises(RunLockedError) as info:
        await start(store, owner="b")
    assert info.value.owner == "a"
    assert info.value.run_id == "run-1"
    assert info.value.expires_at == pytest.approx(first.lease_expires_at)
    clock.advance(9.9)
    with pytest.raises(RunLockedError):
        await start(store, owner="b")
    clock.advance(0.2)
    taken = await start(store, owner="b")
    assert taken.owner == "b"
    assert taken.status is RunStatus.RUNNING
    assert [s.key for s in taken.steps] == ["validate"]
    for stale in (
        store.save_step("run-1", "charge", 2, owner="a"),
        store.renew("run-1", owner="a", lease_seconds=10),
        store.save_state("run-1", {}, owner="a"),
        store.complete("run-1", 1, owner="a"),
        store.fail("run-1", "x", owner="a"),
    ):
        with pytest.raises(RunLockedError):
            await stale
    await store.release("run-1", owner="a")  # not the owner: a no-op
    assert (await store.load("run-1")).owner == "b"  # type: ignore[union-attr]


async def test_same_owner_reacquires(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """The holder may acquire again, which extends its lease."""
    await start(store, owner="a")
    clock.advance(5)
    again = await start(store, owner="a")
    assert again.owner == "a"
    assert again.lease_expires_at == pytest.approx(clock.time() + 10)


async def test_renew_extends_lease(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """renew pushes the expiry out, keeping other owners locked out longer."""
    await start(store, owner="a")
    clock.advance(8)
    await store.renew("run-1", owner="a", lease_seconds=10)
    clock.advance(9)
    with pytest.raises(RunLockedError):
        await start(store, owner="b")
    clock.advance(1.1)
    assert (await start(store, owner="b")).owner == "b"


async def test_expired_lease_still_usable_until_taken(
    store: BaseCheckpointStore, clock: FakeClock
) -> None:
    """An expired lease nobody took over still lets its owner save and complete."""
    await start(store, owner="a")
    clock.advance(60)
    await store.save_step("run-1", "slow", 1, owner="a")
    await store.renew("run-1", owner="a", lease_seconds=10)
    await store.complete("run-1", "done", owner="a")
    assert (await store.load("run-1")).result == "done"  # type: ignore[union-attr]


async def test_release_frees_the_run(store: BaseCheckpointStore) -> None:
    """After release, another owner acquires at once, with the steps so far."""
    await start(store, owner="a")
    await store.save_step("run-1", "one", 1, owner="a")
    await store.release("run-1", owner="a")
    record = await store.load("run-1")
    assert record is not None
    assert (record.status, record.owner, record.lease_expires_at) == (RunStatus.RUNNING, None, None)
    taken = await start(store, owner="b")
    assert taken.owner == "b"
    assert taken.step_payloads() == {"one": 1}


async def test_fail_then_resume(store: BaseCheckpointStore) -> None:
    """A FAILED run keeps its steps and error, and a later acquire resumes it."""
    await start(store, owner="a")
    await store.save_step("run-1", "validate", Score("o1", 1.5, ("x",)), owner="a")
    await store.fail("run-1", "charge: card declined", owner="a")
    failed = await store.load("run-1")
    assert failed is not None
    assert failed.status is RunStatus.FAILED
    assert failed.error == "charge: card declined"
    assert failed.owner is None
    resumed = await start(store, owner="b")
    assert resumed.status is RunStatus.RUNNING
    assert resumed.owner == "b"
    assert resumed.error is None
    assert resumed.step_payloads() == {"validate": Score("o1", 1.5, ("x",))}
    await store.save_step("run-1", "charge", 2, owner="b")
    assert [s.index for s in await store.history("run-1")] == [0, 1]


async def test_steps_keep_completion_order(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """Steps come back in save order with increasing indexes and exact payloads."""
    await start(store)
    payloads = {"validate": Score("o1", 1.0), "charge": {"id": 7, 8: None}, "ship": [1, (2, 3)]}
    for key, payload in payloads.items():
        clock.advance(1)
        await store.save_step("run-1", key, payload, owner="a")
    steps = await store.history("run-1")
    assert [s.key for s in steps] == list(payloads)
    assert [s.index for s in steps] == [0, 1, 2]
    assert [s.payload for s in steps] == list(payloads.values())
    assert all(s.run_id == "run-1" for s in steps)
    assert steps[0].created_at < steps[1].created_at < steps[2].created_at
    loaded = await store.load("run-1")
    assert loaded is not None
    assert loaded.steps == steps


async def test_saving_a_key_again_replaces_it(store: BaseCheckpointStore) -> None:
    """Saving an existing key replaces its payload and moves it to the end."""
    await start(store)
    await store.save_step("run-1", "a", 1, owner="a")
    await store.save_step("run-1", "b", 2, owner="a")
    await store.save_step("run-1", "a", 3, owner="a")
    steps = await store.history("run-1")
    assert [(s.key, s.payload) for s in steps] == [("b", 2), ("a", 3)]
    assert steps[0].index < steps[1].index


async def test_concurrent_save_steps(store: BaseCheckpointStore) -> None:
    """Fifty tasks saving at once each get a distinct index and none is lost."""
    await start(store)
    await asyncio.gather(
        *(store.save_step("run-1", f"step-{i}", {"i": i}, owner="a") for i in range(50))
    )
    steps = await store.history("run-1")
    assert sorted(s.index for s in steps) == list(range(50))
    assert {s.key: s.payload for s in steps} == {f"step-{i}": {"i": i} for i in range(50)}


async def test_many_concurrent_runs_share_one_store(store: BaseCheckpointStore) -> None:
    """Three hundred runs at once on one store (more than a connection pool holds) each
    acquire, save and complete: calls wait for a connection rather than fail."""

    async def one(i: int) -> None:
        await start(store, f"many-{i}", owner=f"o{i}")
        await store.save_step(f"many-{i}", "step", {"i": i}, owner=f"o{i}")
        await store.complete(f"many-{i}", {"done": i}, owner=f"o{i}")

    await asyncio.gather(*(one(i) for i in range(300)))
    for i in (0, 150, 299):
        record = await store.load(f"many-{i}")
        assert record is not None and record.status is RunStatus.COMPLETED
        assert [s.payload for s in record.steps] == [{"i": i}]


async def test_readers_never_see_half_a_step(store: BaseCheckpointStore) -> None:
    """Loads racing with saves only ever see whole steps with their payloads."""
    await start(store)
    payload = {"items": list(range(50)), "score": Score("o1", 2.5, ("a", "b"))}

    async def save(i: int) -> None:
        await store.save_step("run-1", f"s{i}", payload, owner="a")

    results = await asyncio.gather(*(save(i) if i % 2 else store.load("run-1") for i in range(60)))
    for record in results:
        if record is None:
            continue
        indexes = [s.index for s in record.steps]
        assert indexes == sorted(set(indexes))
        assert all(s.payload == payload for s in record.steps)
    assert len(await store.history("run-1")) == 30


async def test_writes_need_an_acquired_run(store: BaseCheckpointStore) -> None:
    """Writing to an unknown run names the problem instead of creating it."""
    with pytest.raises(RunNotFoundError, match="does not exist"):
        await store.save_step("nope", "k", 1, owner="a")
    with pytest.raises(RunNotFoundError):
        await store.renew("nope", owner="a", lease_seconds=1)
    with pytest.raises(RunNotFoundError):
        await store.complete("nope", 1, owner="a")
    await store.release("nope", owner="a")
    assert await store.load("nope") is None
    assert await store.history("nope") == []


async def test_unserializable_payload_names_path_and_type(store: BaseCheckpointStore) -> None:
    """A socket inside a step fails at save time, naming where it is, and nothing is stored."""
    await start(store)
    with socket.socket() as sock, pytest.raises(SerializationError) as info:
        await store.save_step("run-1", "charge", {"score": Holder("o1", sock)}, owner="a")
    assert str(info.value).startswith("$.score.client: cannot checkpoint a value of type socket")
    assert info.value.path == "$.score.client"
    assert isinstance(info.value, CheckpointError)
    assert await store.history("run-1") == []


async def test_save_state_keeps_latest(store: BaseCheckpointStore) -> None:
    """save_state replaces the snapshot; the record carries the latest one."""
    await start(store)
    await store.save_state("run-1", Score("o1", 1.0), owner="a")
    await store.save_state("run-1", Score("o1", 2.0), owner="a")
    record = await store.load("run-1")
    assert record is not None
    assert record.state == Score("o1", 2.0)


async def test_meta_replaced_when_given(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """A takeover keeps the stored meta unless new meta is given."""
    await start(store, owner="a", meta={"v": 1})
    clock.advance(11)
    assert (await start(store, owner="b")).meta == {"v": 1}
    clock.advance(11)
    assert (await start(store, owner="c", meta={"v": 2})).meta == {"v": 2}


async def test_run_id_bound_to_kind_and_name(store: BaseCheckpointStore) -> None:
    """Acquiring a run id that belongs to another flow is refused."""
    await start(store, name="checkout")
    with pytest.raises(CheckpointError, match="belongs to cadence 'checkout'"):
        await start(store, owner="a", name="refund")
    with pytest.raises(CheckpointError, match="not cascade"):
        await start(store, owner="a", kind="cascade")


async def test_bad_arguments_are_rejected(store: BaseCheckpointStore) -> None:
    """Empty ids and non-positive leases fail before touching the store."""
    with pytest.raises(ValueError, match="run_id"):
        await store.acquire("", owner="a", lease_seconds=1, kind="cadence", name="x")
    with pytest.raises(ValueError, match="owner"):
        await store.acquire("r", owner="", lease_seconds=1, kind="cadence", name="x")
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.acquire("r", owner="a", lease_seconds=0, kind="cadence", name="x")
    with pytest.raises(ValueError, match="step key"):
        await store.save_step("r", "", 1, owner="a")


async def test_list_runs_newest_first_and_filtered(
    store: BaseCheckpointStore, clock: FakeClock
) -> None:
    """list_runs orders by creation (newest first), filters, limits and omits steps."""
    for i, name in enumerate(["a", "b", "a", "b"]):
        clock.advance(1)
        await start(store, run_id=f"r{i}", name=name)
        await store.save_step(f"r{i}", "k", i, owner="a")
    await store.complete("r1", i, owner="a")
    runs = await store.list_runs()
    assert [r.run_id for r in runs] == ["r3", "r2", "r1", "r0"]
    assert all(r.steps == [] for r in runs)
    assert [r.run_id for r in await store.list_runs(name="a")] == ["r2", "r0"]
    assert [r.run_id for r in await store.list_runs(status=RunStatus.COMPLETED)] == ["r1"]
    running_b = await store.list_runs(status=RunStatus.RUNNING, name="b")
    assert [r.run_id for r in running_b] == ["r3"]
    assert [r.run_id for r in await store.list_runs(limit=2)] == ["r3", "r2"]
    assert runs[2].result == 3


async def test_delete(store: BaseCheckpointStore) -> None:
    """delete removes a run and its steps and reports whether it existed."""
    await start(store)
    await store.save_step("run-1", "k", 1, owner="a")
    assert await store.delete("run-1") is True
    assert await store.delete("run-1") is False
    assert await store.load("run-1") is None
    assert await store.history("run-1") == []
    assert (await start(store, owner="b")).steps == []


async def test_expire_refuses_a_negative_age(store: BaseCheckpointStore) -> None:
    """A negative age would delete runs that just finished: refused."""
    with pytest.raises(ValueError, match="older_than_seconds"):
        await store.expire(older_than_seconds=-1)


async def test_expire_finished_runs(store: BaseCheckpointStore, clock: FakeClock) -> None:
    """expire deletes finished runs idle longer than the cutoff and leaves the rest."""
    for rid in ("done", "failed", "active"):
        await start(store, run_id=rid)
        await store.save_step(rid, "k", 1, owner="a")
    await store.complete("done", 1, owner="a")
    clock.advance(50)
    await store.fail("failed", "boom", owner="a")
    clock.advance(50)
    assert await store.expire(older_than_seconds=60) == 1
    assert await store.load("done") is None
    assert await store.history("done") == []
    assert await store.expire(older_than_seconds=60) == 0
    assert await store.expire(older_than_seconds=10, statuses=[RunStatus.COMPLETED]) == 0
    assert await store.expire(older_than_seconds=10) == 1
    assert [r.run_id for r in await store.list_runs()] == ["active"]
    assert await store.expire(older_than_seconds=10, statuses=[RunStatus.RUNNING]) == 1
    assert await store.list_runs() == []


async def race_in_process(stores: list[Any]) -> tuple[list[Any], list[Any]]:
    """20 owners acquire run "race" at once through `stores` (round robin): every outcome,
    and the runs won."""
    outcomes = await asyncio.gather(
        *(
            stores[i % len(stores)].acquire(
                "race", owner=f"o{i}", lease_seconds=60, kind="cadence", name="x"
            )
            for i in range(20)
        ),
        return_exceptions=True,
    )
    return outcomes, [o for o in outcomes if not isinstance(o, BaseException)]


async def test_concurrent_acquires_one_winner(backend: Backend) -> None:
    """Many owners racing through separate clients: exactly one acquires the run."""
    stores = [backend.store() for _ in range(4)]
    await stores[0].load("race")  # create tables before the race
    outcomes, winners = await race_in_process(stores)
    assert len(winners) == 1
    assert all(isinstance(o, RunLockedError) for o in outcomes if o not in winners)
    record = await stores[0].load("race")
    assert record is not None
    assert record.owner == winners[0].owner


async def test_store_is_an_async_context_manager(backend: Backend) -> None:
    """`async with store` yields the store and closes it on exit."""
    async with backend.store() as opened:
        await opened.acquire("ctx", owner="a", lease_seconds=5, kind="cascade", name="c")
        assert (await opened.load("ctx")) is not None


async def race_for_shared(backend: Backend, count: int) -> list[str]:
    """`count` OS processes acquire run "shared" at the same moment; each says won or locked."""
    worker = Path(__file__).with_name("acquire_worker.py")
    options = {} if backend.kind == "sqlite" else backend.options
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(worker),
            backend.url,
            json.dumps(options),
            "shared",
            f"p{i}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    return [(await p.communicate())[0].decode().strip() for p in procs]


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"], indirect=True)
async def test_acquire_across_processes_one_winner(backend: Backend) -> None:
    """Four OS processes racing for one run: exactly one wins, the others are locked out."""
    await backend.store().load("warm-up")  # create the tables once, before the race
    results = await race_for_shared(backend, 4)
    assert sorted(results) == ["locked", "locked", "locked", "won"]
    record = await backend.store().load("shared")
    assert record is not None
    assert record.owner == f"p{results.index('won')}"


def test_default_owner_is_unique() -> None:
    """default_owner names host and process and differs on every call."""
    first, second = default_owner(), default_owner()
    assert first != second
    assert first.split(":")[:2] == second.split(":")[:2]


def test_default_owner_names_process_start_and_scope() -> None:
    """On Linux default_owner is `host:pid:start:scope:random`, and names a live process."""
    owner = default_owner()
    host, pid, start, scope, token = owner.rsplit(":", 4)
    assert host == socket.gethostname()
    assert int(pid) == os.getpid()
    assert int(start) > 0
    assert len(scope) == len(token) == 8
    assert not owner_is_dead(owner)


def test_zombie_owner_counts_as_dead() -> None:
    """A process that exited but was not reaped yet (a zombie) no longer runs."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cascadence.checkpoint import default_owner as d; print(d())"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        owner = proc.stdout.readline().decode().strip()
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert owner_is_dead(owner)
    finally:
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    assert owner_is_dead(owner)


def exited_owner() -> str:
    """The owner string of a process of this host that has exited (and been reaped)."""
    made = subprocess.run(
        [sys.executable, "-c", "from cascadence.checkpoint import default_owner as d; print(d())"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    owner = made.stdout.decode().strip()
    assert owner.count(":") == 4, owner
    return owner


async def test_dead_owner_on_this_host_is_taken_over_at_once(
    store: BaseCheckpointStore, clock: FakeClock
) -> None:
    """A lease held by a process of this host that no longer runs is taken over without
    waiting for it to expire; the finished steps come along."""
    dead = exited_owner()
    assert owner_is_dead(dead)
    await start(store, owner=dead)
    await store.save_step("run-1", "validate", 1, owner=dead)
    clock.advance(1)
    heir = default_owner()
    taken = await start(store, owner=heir)
    assert taken.owner == heir
    assert taken.status is RunStatus.RUNNING
    assert taken.lease_expires_at == pytest.approx(clock.time() + 10)
    assert taken.step_payloads() == {"validate": 1}
    with pytest.raises(RunLockedError):
        await store.save_step("run-1", "charge", 2, owner=dead)
    with pytest.raises(RunLockedError) as info:  # the heir is alive: it keeps the run
        await start(store, owner=default_owner())
    assert info.value.owner == heir


async def test_live_or_unknown_owner_still_locks(store: BaseCheckpointStore) -> None:
    """An unexpired lease of this live process, of another host, of an old-format owner, or of
    a reused PID's owner on another boot/namespace is never taken over early."""
    host, pid, start_ticks, scope, token = default_owner().rsplit(":", 4)
    other_scope = format((int(scope, 16) + 1) % 16**8, "08x")
    for i, holder in enumerate(
        [
            default_owner(),  # this very process
            f"elsewhere-{host}:{pid}:{start_ticks}:{scope}:{token}",  # another host
            f"elsewhere-{host}:{exited_owner().split(':', 1)[1]}",  # dead PID, another host
            f"{host}:{exited_owner().rsplit(':', 4)[1]}:{token}",  # the old format
            f"{host}:{pid}:{int(start_ticks) + 1}:{other_scope}:{token}",  # another boot
        ]
    ):
        assert not owner_is_dead(holder), holder
        await start(store, run_id=f"r{i}", owner=holder)
        with pytest.raises(RunLockedError) as info:
            await start(store, run_id=f"r{i}", owner=default_owner())
        assert info.value.owner == holder


async def test_reused_pid_counts_as_dead(store: BaseCheckpointStore) -> None:
    """An owner naming a running PID with another start time was an earlier process."""
    host, pid, start_ticks, scope, token = default_owner().rsplit(":", 4)
    earlier = f"{host}:{pid}:{int(start_ticks) - 1}:{scope}:{token}"
    assert owner_is_dead(earlier)
    await start(store, owner=earlier)
    assert (await start(store, owner="b")).owner == "b"


async def test_concurrent_takeovers_of_a_dead_owner_one_winner(backend: Backend) -> None:
    """Many owners racing to take over a dead owner's run: exactly one gets it."""
    stores = [backend.store() for _ in range(4)]
    dead = exited_owner()
    await stores[0].acquire("race", owner=dead, lease_seconds=60, kind="cadence", name="x")
    outcomes, winners = await race_in_process(stores)
    assert len(winners) == 1
    assert all(isinstance(o, RunLockedError) for o in outcomes if o not in winners)
    assert {o.owner for o in outcomes if isinstance(o, RunLockedError)} == {winners[0].owner}
    record = await stores[0].load("race")
    assert record is not None
    assert record.owner == winners[0].owner


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"], indirect=True)
async def test_takeover_across_processes_one_winner(backend: Backend) -> None:
    """Four OS processes racing to take over a dead owner's unexpired lease: one wins."""
    seed = backend.store(clock=SYSTEM_CLOCK)  # the workers read the real clock
    await seed.acquire("shared", owner=exited_owner(), lease_seconds=600, kind="cadence", name="x")
    results = await race_for_shared(backend, 4)
    assert sorted(results) == ["locked", "locked", "locked", "won"]
    record = await seed.load("shared")
    assert record is not None
    assert record.owner == f"p{results.index('won')}"
