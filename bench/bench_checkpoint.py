"""Checkpoint store overhead: cost per checkpointed step and throughput of whole runs.

Usage: python bench/bench_checkpoint.py [--steps 2000] [--runs 2000] [--concurrency 100]
                                        [--stores memory,sqlite,redis,postgres]

For every store it measures:

- `save_step` cost: mean microseconds to checkpoint one step whose payload is a small
  dataclass score, one after another on one run;
- a hand-written baseline next to it: the same bytes written with the bare driver (one INSERT
  or HSET, no lease check, no step index), so the ratio shows what the checkpoint logic costs;
- runs per second with `--concurrency` runs in flight, each doing acquire + 3 save_steps +
  complete.

Redis and PostgreSQL are the local servers (redis://127.0.0.1:6379/0,
postgresql://127.0.0.1:5432/test); each benchmark uses its own key prefix or schema and removes
it afterwards. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascadence import Score
from cascadence.checkpoint import (
    InMemoryCheckpointStore,
    PostgresCheckpointStore,
    RedisCheckpointStore,
    SQLiteCheckpointStore,
    serde,
)
from cascadence.checkpoint.base import BaseCheckpointStore

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_DSN = "postgresql://127.0.0.1:5432/test"


@dataclass
class OrderScore:
    """The kind of score a flow checkpoints after each step."""

    order_id: str
    amount: Decimal
    validated: bool = False
    charged: bool = False
    attempts: int = 0
    tags: list[str] = field(default_factory=list)


SCORE = OrderScore("ORD-123", Decimal("99.95"), validated=True, attempts=1, tags=["vip"])


@dataclass
class Result:
    """One row of the printed table."""

    store: str
    step_us: float | None = None
    baseline_us: float | None = None
    runs_per_s: float | None = None
    error: str | None = None


@dataclass
class Target:
    """How to open a store, a raw-driver baseline for one step, and how to clean up."""

    name: str
    open: Callable[[], BaseCheckpointStore]
    baseline: Callable[[int], Awaitable[float]]
    cleanup: Callable[[], Awaitable[None]]


async def per_step(store: BaseCheckpointStore, steps: int) -> float:
    """Mean microseconds per save_step on one run."""
    run_id = f"bench-step-{uuid.uuid4().hex}"
    await store.acquire(run_id, owner="bench", lease_seconds=600, kind="cadence", name="bench")
    for i in range(20):  # warm up connections and statement caches
        await store.save_step(run_id, f"warm-{i}", SCORE, owner="bench")
    start = time.perf_counter()
    for i in range(steps):
        await store.save_step(run_id, f"s{i}", SCORE, owner="bench")
    return (time.perf_counter() - start) / steps * 1e6


async def throughput(store: BaseCheckpointStore, runs: int, concurrency: int) -> float:
    """Whole runs per second with `concurrency` in flight."""
    prefix = uuid.uuid4().hex
    queue = iter(range(runs))

    async def worker(w: int) -> None:
        owner = f"worker-{w}"
        for n in queue:
            run_id = f"bench-run-{prefix}-{n}"
            await store.acquire(run_id, owner=owner, lease_seconds=600, kind="cadence", name="b")
            for key in ("validate", "charge", "ship"):
                await store.save_step(run_id, key, SCORE, owner=owner)
            await store.complete(run_id, SCORE, owner=owner)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return runs / (time.perf_counter() - start)


async def timed(steps: int, write: Callable[[int, bytes], Awaitable[Any]]) -> float:
    """Mean microseconds of `write(i, payload)` where payload is the serialized score."""
    for i in range(20):
        await write(-1 - i, serde.dumps(SCORE))
    start = time.perf_counter()
    for i in range(steps):
        await write(i, serde.dumps(SCORE))
    return (time.perf_counter() - start) / steps * 1e6


def memory_target() -> Target:
    """The in-memory store; the baseline stores the bytes in a dict."""
    data: dict[int, bytes] = {}

    async def baseline(steps: int) -> float:
        async def write(i: int, payload: bytes) -> None:
            data[i] = payload

        return await timed(steps, write)

    async def cleanup() -> None:
        data.clear()

    return Target("memory", InMemoryCheckpointStore, baseline, cleanup)


def sqlite_target(directory: Path) -> Target:
    """A SQLite file; the baseline INSERTs through asyncio.to_thread on a WAL database."""
    path = directory / "bench.db"

    async def baseline(steps: int) -> float:
        conn = sqlite3.connect(directory / "raw.db", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")

        async def write(i: int, payload: bytes) -> None:
            sql = "INSERT OR REPLACE INTO t VALUES (?, ?)"
            await asyncio.to_thread(conn.execute, sql, (i, payload))

        try:
            return await timed(steps, write)
        finally:
            conn.close()

    async def cleanup() -> None:
        pass

    return Target("sqlite", lambda: SQLiteCheckpointStore(path), baseline, cleanup)


def redis_target() -> Target:
    """A unique key prefix on the local Redis; the baseline is one HSET."""
    prefix = f"cascadence-bench:{uuid.uuid4().hex[:8]}:"

    async def baseline(steps: int) -> float:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            return await timed(steps, lambda i, p: client.hset(f"{prefix}raw", str(i), p))
        finally:
            await client.aclose()

    async def cleanup() -> None:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
            for start in range(0, len(keys), 1000):
                await client.delete(*keys[start : start + 1000])
        finally:
            await client.aclose()

    return Target(
        "redis", lambda: RedisCheckpointStore(REDIS_URL, prefix=prefix), baseline, cleanup
    )


def postgres_target() -> Target:
    """A unique schema on the local PostgreSQL; the baseline is one INSERT on a pool."""
    schema = f"cascadence_bench_{uuid.uuid4().hex[:8]}"

    async def baseline(steps: int) -> float:
        import asyncpg

        pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2)
        try:
            await pool.execute(f"CREATE TABLE {schema}.raw (k bigint PRIMARY KEY, v bytea)")
            sql = f"INSERT INTO {schema}.raw VALUES ($1, $2) ON CONFLICT (k) DO NOTHING"
            return await timed(steps, lambda i, p: pool.execute(sql, i, p))
        finally:
            await pool.close()

    async def cleanup() -> None:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()

    def open_store() -> BaseCheckpointStore:
        return PostgresCheckpointStore(POSTGRES_DSN, schema=schema, max_size=20)

    return Target("postgres", open_store, baseline, cleanup)


async def bench(target: Target, steps: int, runs: int, concurrency: int) -> Result:
    """Run every measurement for one store, always cleaning up."""
    result = Result(target.name)
    try:
        async with target.open() as store:
            result.step_us = await per_step(store, steps)
            result.baseline_us = await target.baseline(steps)
            result.runs_per_s = await throughput(store, runs, concurrency)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await target.cleanup()
    return result


def fmt(value: float | None, spec: str) -> str:
    """Format a number, or a dash when it was not measured."""
    return "-" if value is None else format(value, spec)


def print_table(results: list[Result], concurrency: int) -> None:
    """Print the results as a fixed-width table."""
    n = 5000
    t0 = time.perf_counter()
    for _ in range(n):
        serde.dumps(SCORE)
    dumps_us = (time.perf_counter() - t0) / n * 1e6
    head = ("store", "save_step us", "raw driver us", "overhead", f"runs/s @{concurrency}")
    print(f"{head[0]:<10}{head[1]:>14}{head[2]:>15}{head[3]:>10}{head[4]:>14}")
    for r in results:
        if r.error:
            print(f"{r.store:<10}  unavailable: {r.error}")
            continue
        ratio = None if not r.step_us or not r.baseline_us else r.step_us / r.baseline_us
        print(
            f"{r.store:<10}{fmt(r.step_us, '.1f'):>14}{fmt(r.baseline_us, '.1f'):>15}"
            f"{fmt(ratio, '.2f') + 'x':>10}{fmt(r.runs_per_s, ',.0f'):>14}"
        )
    print(f"(serializing the score alone: about {dumps_us:.1f} us, included in both columns)")


async def main() -> None:
    """Parse arguments, run every selected store, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="save_steps timed per store")
    parser.add_argument("--runs", type=int, default=2000, help="runs for the throughput test")
    parser.add_argument("--concurrency", type=int, default=100, help="runs in flight")
    parser.add_argument("--stores", default="memory,sqlite,redis,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        factories = {
            "memory": memory_target,
            "sqlite": lambda: sqlite_target(Path(tmp)),
            "redis": redis_target,
            "postgres": postgres_target,
        }
        results = []
        for name in args.stores.split(","):
            results.append(await bench(factories[name](), args.steps, args.runs, args.concurrency))
        print_table(results, args.concurrency)
        await flow_overhead(args.stores.split(","), Path(tmp))


@dataclass
class Order(Score):
    """The score of the checkpointed-flow benchmark (module level, so checkpoints can load it)."""

    order_id: str = "ORD-1"
    total: float = 0.0
    status: str = "new"


async def step(score: Order) -> None:
    """One cheap note."""
    score.total += 1.0


async def flow_overhead(stores: list[str], tmp: Path) -> None:
    """A 20-step flow run with and without a checkpoint store, in the same run: the cost a
    checkpoint adds to one step, and its ratio to an uncheckpointed step."""
    from cascadence import Cadence
    from cascadence.checkpoint import store_from_url

    def flow() -> Cadence[Order]:
        f = Cadence("bench", Order())
        for i in range(20):
            f.then(f"s{i}", step)
        return f

    runs = 50
    plain = flow()
    start = time.perf_counter()
    for _ in range(runs):
        await plain.run(Order())
    plain_step = (time.perf_counter() - start) / (runs * 20) * 1e6
    urls = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp / 'flow.db'}",
        "redis": "redis://127.0.0.1:6379/0",
        "postgres": "postgresql://127.0.0.1:5432/test",
    }
    print(f"\ncheckpointed flow steps (20-step flow, {runs} runs per store, same process)")
    print(f"  uncheckpointed step: {plain_step:8.2f} us")
    for name in stores:
        store = store_from_url(urls[name])
        try:
            start = time.perf_counter()
            for i in range(runs):
                await (
                    flow()
                    .with_checkpoint(store, run_id=f"bench-{uuid.uuid4().hex}-{i}")
                    .run(Order())
                )
            per_step = (time.perf_counter() - start) / (runs * 20) * 1e6
        finally:
            await store.close()
        print(
            f"  {name:8s} checkpointed step: {per_step:8.2f} us  "
            f"(+{per_step - plain_step:8.2f} us, ratio {per_step / plain_step:7.1f}x)"
        )


if __name__ == "__main__":
    asyncio.run(main())
