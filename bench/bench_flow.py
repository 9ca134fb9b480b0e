"""Flow (`Cadence`) overhead against hand-written asyncio code, in one run, as ratios.

Run: `python bench/bench_flow.py` (add `--quick` for a shorter run).

1. A 3-note flow whose notes return at once, defined once and run repeatedly, and the same
   flow built per request, against awaiting the three functions by hand.
2. A `.sync` of 3 notes that return at once, against awaiting them in sequence, against the
   least a hand-written isolation costs (a read-through view per note, with and without a
   context copy per note), and against the hand-written concurrent version (a copy per task,
   `asyncio.gather`); and the cost of its isolation as the score grows fields the notes do
   not touch.
3. A `.sync` of 5 notes each sleeping 10 ms, against `asyncio.gather`.
4. 10,000 concurrent runs of one definition, against 10,000 concurrent hand-written runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import gc
import sys
import time
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from cascadence import Cadence, Score

QUICK = "--quick" in sys.argv


@dataclass
class Order(Score):
    order_id: str = "ORD-1"
    items: list = field(default_factory=list)
    total: float = 0.0
    status: str = "pending"


async def fetch(score: Any) -> None:
    score.items = [3.0, 4.5]


async def total(score: Any) -> None:
    score.total = sum(score.items)


async def pay(score: Any) -> None:
    score.status = "paid"


async def hand_written(score: Any) -> Any:
    await fetch(score)
    await total(score)
    await pay(score)
    return score


async def per_call_us(fn: Any, n: int) -> float:
    """Best of 5 rounds of `n` calls, in microseconds per call. The event loop gets a turn
    every 100 calls, as it does between requests in a service (work a call left for the loop,
    such as the last step of a task, is then done and counted)."""
    best = float("inf")
    for _ in range(5):
        gc.collect()
        t = time.perf_counter()
        for i in range(n):
            await fn()
            if i % 100 == 99:
                await asyncio.sleep(0)
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


class _View:
    """A hand-written read-through view of a score: what it does not hold, it reads from the
    score; what is set on it stays on it."""

    def __init__(self, base: Any) -> None:
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def ratio(label: str, us: float, base: float, target: str) -> None:
    print(f"   {label:44s}: {us:8.2f} us   ratio {us / base:5.2f}x  ({target})")


async def section_sequence() -> None:
    n = 5_000 if QUICK else 20_000
    flow = Cadence("checkout", Order()).then("fetch", fetch).then("total", total).then("pay", pay)
    base = await per_call_us(lambda: hand_written(Order()), n)
    defined = await per_call_us(lambda: flow.run(Order()), n)

    def build() -> Any:
        return (
            Cadence("checkout", Order()).then("fetch", fetch).then("total", total).then("pay", pay)
        )

    per_request = await per_call_us(lambda: build().run(Order()), n)
    print("1. 3-note flow, notes return at once")
    print(f"   {'hand-written asyncio':44s}: {base:8.2f} us")
    ratio("defined once, run repeatedly", defined, base, "target <= 3x")
    ratio("built per request", per_request, base, "no target")


async def section_sync() -> None:
    n = 5_000 if QUICK else 20_000

    async def a(score: Any) -> None:
        score.status = "a"

    async def b(score: Any) -> None:
        score.total = 1.0

    async def c(score: Any) -> None:
        score.items = [1]

    async def sequential() -> None:
        score = Order()
        await a(score)
        await b(score)
        await c(score)

    async def gathered_copies() -> None:
        """The hand-written concurrent version: a copy of the score per task, a task each
        (asyncio.gather), the copies' writes put back."""
        score = Order()
        copies = [copy.copy(score) for _ in range(3)]
        await asyncio.gather(a(copies[0]), b(copies[1]), c(copies[2]))
        score.status, score.total, score.items = copies[0].status, copies[1].total, copies[2].items

    async def isolated_floor() -> None:
        """The least any isolation can cost, by hand: each note, in turn, on a read-through
        view of the score (reads fall through to it, writes stay on the view), the views'
        writes put back; no contexts, no tasks, no conflict checks."""
        score = Order()
        views = (_View(score), _View(score), _View(score))
        await a(views[0])
        await b(views[1])
        await c(views[2])
        for view in views:
            for name, value in vars(view).items():
                if name != "_base":
                    setattr(score, name, value)

    async def isolated_floor_contexts() -> None:
        """The same, each note in a copy of the context of its own, as a task would run it
        (the isolation `asyncio.gather` gives)."""
        score = Order()
        views = (_View(score), _View(score), _View(score))
        for fn, view in zip((a, b, c), views):
            coroutine = fn(view)
            try:  # noqa: SIM105 (contextlib.suppress costs more than the floor measures)
                contextvars.copy_context().run(coroutine.send, None)
            except StopIteration:
                pass
        for view in views:
            for name, value in vars(view).items():
                if name != "_base":
                    setattr(score, name, value)

    flow = Cadence("par", Order()).sync("abc", [a, b, c])
    in_sequence = Cadence("seq", Order()).then("a", a).then("b", b).then("c", c)
    base = await per_call_us(sequential, n)
    concurrent = await per_call_us(gathered_copies, n)
    par = await per_call_us(lambda: flow.run(Order()), n)
    seq = await per_call_us(lambda: in_sequence.run(Order()), n)
    floor = await per_call_us(isolated_floor, n)
    floor_contexts = await per_call_us(isolated_floor_contexts, n)
    print("2. .sync of 3 notes that never suspend")
    print(f"   {'awaiting them in sequence by hand':44s}: {base:8.2f} us")
    ratio(".sync group (snapshot, run, merge)", par, base, "target <= 2x")
    ratio("floor by hand: a read-through view per note", floor, base, "least isolation costs")
    ratio("  the same, a context copy per note", floor_contexts, base, "as a task runs it")
    print(f"   {'.sync group vs that floor':44s}: {par / floor_contexts:8.2f}x")
    print(f"   {'by hand, concurrently: copies + gather':44s}: {concurrent:8.2f} us")
    print(f"   {'.sync group vs that':44s}: {par / concurrent:8.2f}x")
    print(f"   {'the same notes as .then steps of a flow':44s}: {seq:8.2f} us")
    print(f"   {'.sync group vs those .then steps':44s}: {par / seq:8.2f}x")
    for extra in (0, 50, 500):
        fields = [("order_id", str, field(default="x"))]
        fields += [(f"f{i}", list, field(default_factory=list)) for i in range(extra)]
        fields += [
            ("status", str, field(default="")),
            ("total", float, field(default=0.0)),
            ("items", list, field(default_factory=list)),
        ]
        wide = make_dataclass(f"Wide{extra}", fields, bases=(Score,))
        score = wide()  # one score reused: the notes write the same values every run
        wide_flow = Cadence("wide", score).sync("abc", [a, b, c])
        us = await per_call_us(lambda s=score, f=wide_flow: f.run(s), n)
        print(
            f"   .sync with {extra:3d} untouched list fields on the score: {us:8.2f} us "
            "(isolation cost independent of untouched fields)"
        )


async def section_sleeping() -> None:
    def sleeper(i: int) -> Any:
        async def fn(score: Any) -> None:
            await asyncio.sleep(0.01)
            score.total += i

        fn.__name__ = f"sleep{i}"
        return fn

    notes = [sleeper(i) for i in range(5)]
    flow = Cadence("sleepy", Order()).sync("five", notes)

    async def gathered() -> None:
        score = Order()
        await asyncio.gather(*(fn(score) for fn in notes))

    rounds = 20 if QUICK else 50
    base = await per_call_us(gathered, rounds) / 1000
    par = await per_call_us(lambda: flow.run(Order()), rounds) / 1000
    print("3. .sync of 5 notes each sleeping 10 ms")
    print(f"   {'asyncio.gather':44s}: {base:8.2f} ms")
    print(f"   {'.sync group':44s}: {par:8.2f} ms   ratio {par / base:5.2f}x")


async def section_concurrent() -> None:
    n = 2_000 if QUICK else 10_000

    async def slow_fetch(score: Any) -> None:
        await asyncio.sleep(0.001)
        score.items = [1.0, 2.0]

    flow = Cadence("c", Order()).then("fetch", slow_fetch).then("total", total).then("pay", pay)

    async def by_hand(score: Any) -> Any:
        await slow_fetch(score)
        await total(score)
        await pay(score)
        return score

    t = time.perf_counter()
    await asyncio.gather(*(by_hand(Order()) for _ in range(n)))
    base = time.perf_counter() - t
    t = time.perf_counter()
    scores = await asyncio.gather(*(flow.run(Order(order_id=str(i))) for i in range(n)))
    wall = time.perf_counter() - t
    ok = sum(
        s.status == "paid" and s.total == 3.0 and s.order_id == str(i) for i, s in enumerate(scores)
    )
    print(f"4. {n} concurrent runs of one definition (first note sleeps 1 ms)")
    print(
        f"   hand-written: {base * 1000:8.1f} ms   flow: {wall * 1000:8.1f} ms   "
        f"ratio {wall / base:4.2f}x   {ok}/{n} correct"
    )


async def main() -> None:
    print(f"python {sys.version.split()[0]}, {'quick' if QUICK else 'full'} run")
    await section_sequence()
    await section_sync()
    await section_sleeping()
    await section_concurrent()


if __name__ == "__main__":
    asyncio.run(main())
