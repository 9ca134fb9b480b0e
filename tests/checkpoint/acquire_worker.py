"""A separate OS process that tries to acquire one run, for the cross-process contract tests.

Usage: python acquire_worker.py URL OPTIONS_JSON RUN_ID OWNER

Prints `ready`, waits for a line on stdin (so every worker starts together), then tries to
acquire the run and prints `won`, `locked` or `error <message>`.
"""

from __future__ import annotations

import asyncio
import json
import sys

from cascadence.checkpoint import RunLockedError, store_from_url


async def main(url: str, options: str, run_id: str, owner: str) -> str:
    store = store_from_url(url, **json.loads(options))
    try:
        await store.load(run_id)  # connect and create tables before the start signal
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        try:
            await store.acquire(run_id, owner=owner, lease_seconds=60, kind="cadence", name="x")
        except RunLockedError:
            return "locked"
        return "won"
    finally:
        await store.close()


if __name__ == "__main__":
    try:
        outcome = asyncio.run(main(*sys.argv[1:5]))
    except Exception as exc:
        outcome = f"error {exc!r}"
    print(outcome, flush=True)
