"""Cascade engine overhead against hand-written asyncio code, in one run, as ratios.

Run: `python bench/bench_engine.py` (add `--quick` for a shorter run).

1. The spec's 3-stage quick-start (its timeouts as written, handlers returning at once) against
   a hand-written coroutine doing the same routing.
2. Cost against the number of sequential stages (3/10/30/100) and rules per stage (1/10/100).
3. 10,000 concurrent executions whose stages each sleep 1 ms: wall time, peak heap per
   execution in flight, how many ran exactly the expected stages, and spurious timeouts.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from cascadence import CascadeConfig, CascadeEngine, ExecutionContext, StageResult

QUICK = "--quick" in sys.argv
QUICKSTART = Path(__file__).parents[1] / "examples" / "quickstart" / "cascade.yaml"


# -- handlers shared by the engine and the baseline --------------------------------------------
async def fast_check(ctx: ExecutionContext) -> dict[str, Any]:
    confidence = 0.75 if ctx.get("user_id").startswith("trusted_") else 0.4
    return {
        "result": "pass" if confidence > 0.5 else "review",
        "confidence": confidence,
        "data": {"method": "heuristic"},
    }


async def medium_check(ctx: ExecutionContext) -> dict[str, Any]:
    return {"result": "pass", "confidence": 0.85, "data": {"method": "ml_model"}}


async def expensive_check(ctx: ExecutionContext) -> dict[str, Any]:
    return {"result": "pass", "confidence": 0.99, "data": {"checks_run": 47}}


async def hand_written(data: dict[str, Any]) -> dict[str, Any]:
    """The quick-start's routing written by hand: what a careful developer would write."""
    start = time.perf_counter()
    ctx = ExecutionContext(data)
    results = ctx.stage_results
    fast = await fast_check(ctx)
    results["FAST_CHECK"] = fast
    path = ["FAST_CHECK"]
    if fast["confidence"] < 0.8:
        medium = await medium_check(ctx)
        results["MEDIUM_CHECK"] = medium
        path.append("MEDIUM_CHECK")
        if medium["confidence"] < 0.9:
            results["EXPENSIVE_CHECK"] = await expensive_check(ctx)
            path.append("EXPENSIVE_CHECK")
    return {
        "success": True,
        "stage_results": results,
        "path": path,
        "execution_time_ms": (time.perf_counter() - start) * 1000,
    }


def quickstart_engine() -> CascadeEngine:
    engine = CascadeEngine(CascadeConfig.from_file(QUICKSTART))
    engine.register_stages(
        {"FAST_CHECK": fast_check, "MEDIUM_CHECK": medium_check, "EXPENSIVE_CHECK": expensive_check}
    )
    return engine


async def per_call_us(fn: Any, data: Any, n: int) -> float:
    """Best-of-5 mean microseconds per awaited call."""
    best = float("inf")
    for _ in range(5):
        gc.collect()
        t = time.perf_counter()
        for _ in range(n):
            await fn(data)
        best = min(best, (time.perf_counter() - t) / n * 1e6)
    return best


async def section_quickstart() -> None:
    n = 5_000 if QUICK else 20_000
    engine = quickstart_engine()
    data = {"user_id": "user_12345", "amount": 10000}
    assert (await engine.execute(data))["path"] == (await hand_written(data))["path"]
    base = await per_call_us(hand_written, data, n)
    eng = await per_call_us(engine.execute, data, n)
    print("1. quick-start, 3 stages run, timeouts as written, handlers return at once")
    print(f"   hand-written asyncio : {base:7.2f} us/execution")
    print(
        f"   CascadeEngine        : {eng:7.2f} us/execution   "
        f"ratio {eng / base:5.2f}x (target <= 5x)"
    )


def chain_config(stages: int, rules: int, distinct: bool = False) -> CascadeConfig:
    """`stages` stages in a row, each with `rules` rules that never match: all on the stage's
    confidence, or (`distinct`) each on its own input field."""
    spec: dict[str, Any] = {}
    for i in range(stages):
        spec[f"S{i}"] = {
            "timeout_ms": 1000,
            "routing_rules": [
                {
                    "name": f"r{j}",
                    "condition": {
                        "field": f"x{j}" if distinct else f"stages.S{i}.confidence",
                        "operator": "<",
                        "value": -1 - j,
                    },
                    "action": {"type": "terminate"},
                }
                for j in range(rules)
            ],
        }
    return CascadeConfig.from_dict({"name": "chain", "stages": spec})


async def section_scaling() -> None:
    print("2. cost against stages and rules (every stage runs, no rule matches)")

    async def step(_ctx: Any) -> dict[str, Any]:
        return {"result": 1, "confidence": 0.5}

    async def timed(stages: int, rules: int, distinct: bool = False) -> float:
        engine = CascadeEngine(chain_config(stages, rules, distinct))
        for i in range(stages):
            engine.register_stage(f"S{i}", step)
        n = max(200, (2_000 if QUICK else 10_000) // max(1, stages * max(1, rules) // 10))
        data = {f"x{j}": 0.5 for j in range(rules)}
        return await per_call_us(engine.execute, data, n)

    previous = None
    for stages in (3, 10, 30, 100):
        us = await timed(stages, 1)
        note = f"   x{us / previous:4.2f} vs previous" if previous else ""
        print(
            f"   {stages:3d} stages x 1 rule   : {us:8.2f} us  ({us / stages:5.2f} us/stage){note}"
        )
        previous = us
    base = await timed(10, 0)
    print("   one rule's condition called by itself (what a stage's single rule costs):")
    for distinct in (False, True):
        engine = CascadeEngine(chain_config(1, 1, distinct))
        scan = engine.plan.stages[0].post_scan
        results = {"S0": StageResult(result=1, confidence=0.5, data={})}
        data, warnings = {"x0": 0.5}, []
        calls = 200_000 if QUICK else 1_000_000
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(calls):
                scan(data, results, warnings)
            best = min(best, (time.perf_counter() - t) / calls * 1e6)
        where = "its own input field" if distinct else "the stage's confidence"
        print(f"    on {where:24s}: {best:5.3f} us (target <= 0.2)")
    for distinct in (False, True):
        where = "each on its own input field" if distinct else "all on the stage's confidence"
        print(f"   rules {where}:")
        for rules in (1, 10, 100):
            us = await timed(10, rules, distinct)
            print(
                f"    10 stages x {rules:3d} rules: {us:8.2f} us  "
                f"({(us - base) / (10 * rules):5.3f} us/rule evaluation, target <= 0.2)"
            )


async def section_concurrency() -> None:
    n = 2_000 if QUICK else 10_000
    print(f"3. {n} concurrent executions, every stage sleeps 1 ms, quick-start timeouts in place")

    async def sleepy_fast(ctx: ExecutionContext) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return await fast_check(ctx)

    async def sleepy_medium(ctx: ExecutionContext) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return await medium_check(ctx)

    hold: list[int] = []
    garbage: list[float] = []  # per heap run: uncollected cyclic garbage per execution, bytes
    in_flight: list[int] = []  # per heap run: executions still parked when measured
    release = asyncio.Event()

    async def sleepy_expensive(ctx: ExecutionContext) -> dict[str, Any]:
        if tracemalloc.is_tracing():  # the heap run parks every execution here
            hold.append(1)
            await release.wait()
        else:
            await asyncio.sleep(0.001)
        return await expensive_check(ctx)

    async def baseline(data: dict[str, Any]) -> list[str]:
        ctx = ExecutionContext(data)
        path = ["FAST_CHECK"]
        try:
            async with asyncio.timeout(5):
                fast = await asyncio.wait_for(sleepy_fast(ctx), 0.1)
                if fast["confidence"] < 0.8:
                    medium = await asyncio.wait_for(sleepy_medium(ctx), 0.5)
                    path.append("MEDIUM_CHECK")
                    if medium["confidence"] < 0.9:
                        await asyncio.wait_for(sleepy_expensive(ctx), 2.0)
                        path.append("EXPENSIVE_CHECK")
        except TimeoutError:  # a spurious timeout: event-loop lag under load
            path.append("TIMEOUT")
        return path

    inputs = [{"user_id": ("trusted_" if i % 2 else "user_") + str(i)} for i in range(n)]
    expected = [["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"] for _ in inputs]

    async def run_baseline(limit: int | None = None) -> tuple[float, list[list[str]]]:
        sem = asyncio.Semaphore(limit or n)

        async def bounded(d: dict[str, Any]) -> list[str]:
            async with sem:
                return await baseline(d)

        t = time.perf_counter()
        paths = await asyncio.gather(*(bounded(d) for d in inputs))
        return time.perf_counter() - t, list(paths)

    def make_engine(limit: int | None) -> CascadeEngine:
        engine = CascadeEngine(CascadeConfig.from_file(QUICKSTART), max_in_flight=limit)
        engine.register_stages(
            {
                "FAST_CHECK": sleepy_fast,
                "MEDIUM_CHECK": sleepy_medium,
                "EXPENSIVE_CHECK": sleepy_expensive,
            }
        )
        return engine

    async def verdict(engine: CascadeEngine, data: dict[str, Any]) -> tuple[list[str], int]:
        """Keep what the benchmark checks (path, spurious timeouts), as a server would keep
        nothing: 10,000 full results held at once would make the garbage collector's pauses,
        not the engine, decide whether short timeouts fire."""
        result = await engine.execute(data)
        timeouts = sum(
            1 for s in result["stage_results"].values() if s.get("error_type") == "TimeoutError"
        )
        return result["path"], timeouts

    async def run_engine(limit: int | None) -> tuple[float, list[tuple[list[str], int]], int]:
        engine = make_engine(limit)
        gc.collect()
        t = time.perf_counter()
        verdicts = await asyncio.gather(*(verdict(engine, d) for d in inputs))
        wall = time.perf_counter() - t
        if limit is not None:  # with a bound, only `limit` are ever in flight: no heap figure
            return wall, list(verdicts), 0
        engine = make_engine(limit)
        heap = await heap_in_flight(engine.execute)
        return wall, list(verdicts), heap

    async def heap_in_flight(run: Any) -> float:
        """Live heap per execution parked in its last stage, in a second identical run
        (tracemalloc slows everything down), after a garbage collection: what the executions
        in flight hold, not cyclic garbage the collector has yet to reach (recorded in
        `garbage`). Each execution is a task of its own, as a request is in a server, with
        nothing else around it; a task is let go when it ends.

        Executions are started in waves of 500, each wave once the previous one is parked, so
        all of them end up in flight at once without a start-up stampede whose event-loop lag
        would time the first stage out. Under tracemalloc the start-up is slow enough that the
        first executions can reach their last stage's 2 s deadline before the last ones park:
        those have ended, and neither their results nor they are counted (`in_flight` records
        how many executions the figure is for)."""
        hold.clear()
        # the set of tasks in flight, its table grown before the measurement starts (a set
        # keeps its table when items are removed): the harness adds nothing per execution
        pending: set[Any] = set(range(len(inputs)))
        for i in range(len(inputs)):
            pending.discard(i)
        discard = pending.discard  # one bound method for every task's done callback
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        started = 0
        for first in range(0, len(inputs), 500):
            for d in inputs[first : first + 500]:
                task = asyncio.ensure_future(run(d))
                pending.add(task)
                task.add_done_callback(discard)
                started += 1
            # until every execution started so far has parked or ended
            while len(hold) + (started - len(pending)) < started:  # noqa: ASYNC110
                await asyncio.sleep(0.002)
        uncollected = tracemalloc.get_traced_memory()[0] - before
        gc.collect()  # what the executions hold, not cyclic garbage the collector has not reached
        live = tracemalloc.get_traced_memory()[0] - before
        parked_count = max(1, len(pending))
        garbage.append((uncollected - live) / parked_count)
        in_flight.append(len(pending))
        tasks = list(pending)
        release.set()
        await asyncio.gather(*tasks)
        tracemalloc.stop()
        release.clear()
        return live / parked_count

    async def harness_only(data: dict[str, Any]) -> list[str]:
        """What every heap figure includes besides the code measured: the execution's task, a
        coroutine, the context, and the last handler parked on its event."""
        await sleepy_expensive(ExecutionContext(data))
        return ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]

    floor = await heap_in_flight(harness_only)
    base_wall, base_paths = await run_baseline()
    base_ok = sum(p == e for p, e in zip(base_paths, expected))
    base_spurious = sum("TIMEOUT" in p for p in base_paths)
    base_peak = await heap_in_flight(baseline)
    bounded_wall, bounded_paths = await run_baseline(1000)
    bounded_ok = sum(p == e for p, e in zip(bounded_paths, expected))
    print(
        f"   hand-written, at most 1000 in flight     : {bounded_wall * 1000:8.1f} ms wall, "
        f"{bounded_ok}/{n} expected paths"
    )
    print(
        f"   hand-written asyncio (wait_for per stage): {base_wall * 1000:8.1f} ms wall, "
        f"{base_ok}/{n} expected paths, {base_spurious} spurious timeouts, "
        f"heap {base_peak / 1024:5.2f} KiB per in-flight execution "
        f"({(base_peak - floor) / 1024:4.2f} KiB above the harness; "
        f"{garbage[-1] / 1024:4.2f} KiB more before a collection; {in_flight[-1]} parked)"
    )
    print(
        f"   harness alone (task, context, last handler parked): {floor / 1024:5.2f} KiB "
        "per execution, included in every heap figure"
    )
    for limit in (None, 1000):  # heap: only meaningful unbounded (all in flight at once)
        wall, verdicts, peak = await run_engine(limit)
        ok = sum(path == e for (path, _), e in zip(verdicts, expected))
        spurious = sum(timeouts for _, timeouts in verdicts)
        del verdicts
        label = "unbounded" if limit is None else f"max_in_flight={limit}"
        heap = (
            f"heap {peak / 1024:5.2f} KiB per in-flight execution (target < 4; "
            f"{(peak - floor) / 1024:4.2f} KiB above the harness; "
            f"{garbage[-1] / 1024:4.2f} KiB more before a collection; {in_flight[-1]} parked), "
            if peak
            else ""
        )
        print(
            f"   CascadeEngine {label:18s}: {wall * 1000:8.1f} ms wall "
            f"(ratio {wall / (base_wall if limit is None else bounded_wall):4.2f}x to the "
            f"hand-written run with the same bound, target <= 1.5x), "
            f"{heap}{ok}/{n} exactly the expected stages, {spurious} spurious timeouts"
        )


async def main() -> None:
    print(f"python {sys.version.split()[0]}, {'quick' if QUICK else 'full'} run")
    await section_quickstart()
    await section_scaling()
    await section_concurrency()


if __name__ == "__main__":
    asyncio.run(main())
