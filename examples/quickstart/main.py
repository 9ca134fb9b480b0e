"""The quick-start of the README: load the cascade, execute it, print results, then run one
durable execution checkpointed in an embedded SQLite file.

Run from the repository root: `python examples/quickstart/main.py`
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from cascadence import CascadeConfig, CascadeEngine
from cascadence.checkpoint import SQLiteCheckpointStore

HERE = Path(__file__).parent


async def main() -> None:
    config = CascadeConfig.from_file(HERE / "cascade.yaml")
    engine = CascadeEngine(config)  # handlers come from the `handler:` import paths

    for request in (
        {"user_id": "user_12345", "action": "withdraw", "amount": 10000},
        {"user_id": "trusted_alice", "action": "withdraw", "amount": 50},
    ):
        result = await engine.execute(request)
        print(f"\ninput: {request}")
        print(f"Success: {result['success']}")
        print(f"Execution time: {result['execution_time_ms']:.2f}ms")
        print(f"Stages executed: {result['stages_executed']} ({' -> '.join(result['path'])})")
        print(f"Decision: {result['final_result']}  cost: {result['cost']:g}")
        for stage_name, stage_result in result["stage_results"].items():
            print(
                f"  {stage_name}: {stage_result['result']} "
                f"(confidence {stage_result.get('confidence', 'N/A')}, "
                f"{stage_result['time_ms']:.2f}ms)"
            )

    # The same cascade, checkpointed after every stage in SQLite: a crash mid-run resumes
    # without repeating finished stages, and a finished run id returns its stored result.
    with tempfile.TemporaryDirectory() as folder:
        async with SQLiteCheckpointStore(str(Path(folder) / "runs.db")) as store:
            run_id = f"quickstart-{uuid.uuid4().hex[:8]}"
            data = {"user_id": "user_777"}
            first = await engine.execute(data, run_id=run_id, checkpoint=store)
            again = await engine.execute(data, run_id=run_id, checkpoint=store)
            steps = await store.history(run_id)
    print(
        f"\ndurable run {run_id}: {' -> '.join(first['path'])}, "
        f"{len(steps)} stage checkpoints in SQLite; "
        f"re-running the run id returned the stored result: {again == first}"
    )


if __name__ == "__main__":
    asyncio.run(main())
