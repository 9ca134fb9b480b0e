"""The quick-start of the README: load the cascade, execute it on three inputs, print results.

Run from the repository root: `python examples/quickstart/main.py`
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cascadence import CascadeConfig, CascadeEngine

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
            print(f"  {stage_name}: {stage_result['result']} "
                  f"(confidence {stage_result.get('confidence', 'N/A')}, "
                  f"{stage_result['time_ms']:.2f}ms)")


if __name__ == "__main__":
    asyncio.run(main())
