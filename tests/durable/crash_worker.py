"""Child process of the crash tests: runs a 4-step flow or cascade under a checkpoint store.

Usage: python crash_worker.py SPEC_JSON
SPEC: {"front": "flow"|"cascade", "url": store URL, "store": {kwargs}, "run_id": str,
       "effects": path, "started": path, "hang_in": step name or null, "out": path,
       "lease_seconds": seconds or null for the library default (1.0 if absent),
       "retry_locked": whether to retry while the run is locked (true if absent)}

Every step appends its name to `effects` when it finishes (the side effect that must happen
exactly once). The step named `hang_in` first writes its name to `started`, then sleeps
until the parent kills the process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from cascadence import Cadence, CascadeConfig, CascadeEngine, RunLockedError, Score
from cascadence.checkpoint import store_from_url

SPEC: dict[str, Any] = json.loads(sys.argv[1])
STEPS = ["s1", "s2", "s3", "s4"]
_LEASE = SPEC.get("lease_seconds", 1.0)
LEASE: dict[str, float] = {} if _LEASE is None else {"lease_seconds": _LEASE}


def _append(path: str, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


async def _work(name: str) -> None:
    if name == SPEC["hang_in"]:
        _append(SPEC["started"], name)
        await asyncio.sleep(3600)
    await asyncio.sleep(0.001)
    _append(SPEC["effects"], name)


@dataclass
class Ledger(Score):
    total: int = 0
    seen: list = field(default_factory=list)


def flow_step(name: str, amount: int) -> Any:
    async def step(score: Ledger) -> None:
        await _work(name)
        score.total += amount
        score.seen.append(name)

    step.__name__ = name
    return step


def stage(name: str, amount: int) -> Any:
    async def handler(ctx: Any) -> dict[str, Any]:
        await _work(name)
        previous = sum(r["result"] for r in ctx.stage_results.values())
        return {"result": amount, "confidence": 0.5, "data": {"running_total": previous + amount}}

    return handler


async def run_once(store: Any) -> Any:
    if SPEC["front"] == "flow":
        flow = Cadence("ledger", Ledger()).with_checkpoint(store, run_id=SPEC["run_id"], **LEASE)
        for i, name in enumerate(STEPS):
            flow.then(name, flow_step(name, 10**i))
        score = await flow.run()
        return {"total": score.total, "seen": score.seen}
    config = CascadeConfig.from_dict(
        {
            "name": "ledger",
            "stages": {name: {"timeout_ms": None} for name in STEPS},
            "global_timeout_ms": None,
        }
    )
    engine = CascadeEngine(config)
    for i, name in enumerate(STEPS):
        engine.register_stage(name, stage(name, 10**i))
    result = await engine.execute({"n": 1}, run_id=SPEC["run_id"], checkpoint=store, **LEASE)
    return {
        "path": result["path"],
        "final": result["stage_results"]["s4"]["data"],
        "cost": result["cost"],
    }


async def main() -> None:
    store = store_from_url(SPEC["url"], **SPEC.get("store", {}))
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                outcome = await run_once(store)
                break
            except RunLockedError:
                if not SPEC.get("retry_locked", True) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)  # the killed owner's lease has not expired yet
    finally:
        await store.close()
    with open(SPEC["out"], "w") as fh:
        json.dump(outcome, fh)


asyncio.run(main())
