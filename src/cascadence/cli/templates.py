"""Text of the files `cascadence init` and `cascadence new` write (`string.Template`, `$name`).

Every generated file runs as written: the cascade validates and runs on the sample events, the
flow runs, and the generated tests pass.
"""

from __future__ import annotations

from string import Template

__all__ = [
    "CASCADE_YAML",
    "EVENTS_JSONL",
    "FLOW_MODULE",
    "GITIGNORE",
    "HANDLERS_MODULE",
    "NOTE_FUNCTION",
    "PACKAGE_INIT",
    "PYPROJECT",
    "README",
    "TEST_CASCADE",
    "TEST_FLOWS",
]

CASCADE_YAML = Template("""\
# The $name cascade: cheap rules decide the clear cases, and a costlier review runs only
# when the rules are unsure.
#
#   cascadence validate $file
#   cascadence diagram $file
#   cascadence run $file --input $events   # one JSON input per line: {"amount": 120}
name: $name
version: "1.0"

stages:
  SCREEN:
    handler: "$module:screen"
    cost: 1
    timeout_ms: 100
    routing_rules:
      - name: confident_stop
        type: routing
        priority: 100
        condition:
          field: stages.SCREEN.confidence
          operator: ">="
          value: 0.9
        action:
          type: terminate

      - name: unsure_escalate
        type: routing
        priority: 90
        condition: "stages.SCREEN.confidence < 0.9"
        action:
          type: enable_stages
          stages: [REVIEW]

  REVIEW:
    enabled: false  # enabled by SCREEN's unsure_escalate rule
    handler: "$module:review"
    cost: 5
    timeout_ms: 1000
    depends_on: [SCREEN]

execution_order: [SCREEN, REVIEW]
global_timeout_ms: 5000
""")

HANDLERS_MODULE = Template('''\
"""Stage handlers of the $name cascade ($file).

Each handler receives the `ExecutionContext` of one decision and returns its `result`, its
`confidence` (0 to 1) and any `data` worth keeping. Replace the rules with your own.
"""

from __future__ import annotations

from typing import Any

from cascadence import ExecutionContext

REVIEW_LIMIT = 1_000.0
"""Amounts above this are never decided by the rules alone."""

BLOCKED_COUNTRIES = frozenset({"XX"})
"""Countries rejected outright."""


async def screen(context: ExecutionContext) -> dict[str, Any]:
    """Cheap rules: decide the clear cases, and say so with a low confidence otherwise."""
    amount = float(context.get("amount", 0))
    if context.get("country") in BLOCKED_COUNTRIES:
        return {"result": "reject", "confidence": 0.99, "data": {"rule": "blocked_country"}}
    if amount <= REVIEW_LIMIT:
        return {"result": "approve", "confidence": 0.95, "data": {"rule": "small_amount"}}
    return {"result": "review", "confidence": 0.5, "data": {"rule": "large_amount"}}


async def review(context: ExecutionContext) -> dict[str, Any]:
    """Check an unsure case at a higher cost (stands in for a model or a review queue)."""
    amount = float(context.get("amount", 0))
    history = int(context.get("previous_orders", 0))
    score = min(1.0, history / 10) - min(0.5, amount / 100_000)
    result = "approve" if score > 0.2 else "reject"
    return {"result": result, "confidence": 0.85, "data": {"score": round(score, 3)}}
''')

EVENTS_JSONL = """\
{"id": "evt-1", "amount": 120.0, "country": "US", "previous_orders": 3}
{"id": "evt-2", "amount": 4500.0, "country": "DE", "previous_orders": 12}
{"id": "evt-3", "amount": 9800.0, "country": "FR", "previous_orders": 0}
{"id": "evt-4", "amount": 60.0, "country": "XX", "previous_orders": 1}
"""

FLOW_MODULE = Template('''\
"""The $name flow: a `$score` passes through each note in turn.

Run it once:  python -m $module
Draw it:      cascadence diagram $module:$var
Check it:     cascadence validate $module
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cascadence import Cadence, Score, note


@dataclass
class $score(Score):
    """The state of one run of the $name flow."""

    order_id: str = ""
    prices: list[float] = field(default_factory=list)
    total: float = 0.0
    status: str = "pending"


@note
async def check_items(score: $score) -> None:
    """Refuse an order without items."""
    if not score.prices:
        raise ValueError(f"order {score.order_id!r} has no items")


@note
async def calculate_total(score: $score) -> None:
    """Add up the item prices."""
    score.total = round(sum(score.prices), 2)


@note(retry=3, timeout=10.0)
async def confirm(score: $score) -> None:
    """Call a slow or flaky service here: up to 3 attempts, each cancelled after 10 s."""
    score.status = "confirmed"


$var = (
    # the score `run()` uses when given none (a sample order, changed in place by the run);
    # pass a fresh score per run: `await $var.run($score(order_id=..., prices=[...]))`
    Cadence("$name", $score(order_id="ORD-1", prices=[9.5, 20.0]))
    .then("check_items", check_items)
    .then("calculate_total", calculate_total)
    .then("confirm", confirm)
)


if __name__ == "__main__":
    done = $var.run_sync($score(order_id="ORD-1", prices=[9.5, 20.0]))
    print(f"{done.order_id}: {done.status}, total {done.total}")
''')

NOTE_FUNCTION = Template('''\
"""The $name note."""

from __future__ import annotations

from cascadence import Score, note


$decorator
async def $name(score: Score) -> None:
    """$summary"""
    # Read and write the score's fields here, e.g. `score.status = "done"`.
''')

PACKAGE_INIT = Template('''\
"""$project: a cascade (../cascade.yaml, handlers in `handlers`) and a flow (`flows`)."""
''')

PYPROJECT = Template("""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "$project"
version = "0.1.0"
description = "Decision cascades and flows built on cascadence."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["cascadence>=$version"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.24"]

[tool.hatch.build.targets.wheel]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
""")

GITIGNORE = """\
__pycache__/
*.py[cod]
.venv/
*.db
"""

README = Template("""\
# $project

A decision cascade and a flow built on [cascadence](https://pypi.org/project/cascadence/).

| file | what it is |
|------|------------|
| `cascade.yaml` | the cascade: cheap `SCREEN` rules, a costlier `REVIEW` when they are unsure |
| `$package/handlers.py` | the stages' handlers, named in `cascade.yaml` by import path |
| `$package/flows.py` | the `checkout` flow: a score passed through notes with retry and timeout |
| `events.jsonl` | sample inputs for the cascade |
| `tests/` | tests of both, runnable as generated |

## Start

```bash
pip install -e ".[test]"
python -m pytest
```

## Use the command line

```bash
cascadence validate cascade.yaml $package.flows      # check both without running them
cascadence run cascade.yaml --input events.jsonl     # a table of decisions and a summary
cascadence run cascade.yaml --input events.jsonl --json
cascadence diagram cascade.yaml                      # Mermaid; --format dot or svg
cascadence diagram $package.flows:checkout_cadence
python -m $package.flows                             # run the flow once
```

Add more with `cascadence new cascade NAME`, `cascadence new cadence NAME` and
`cascadence new note NAME --retry 3 --timeout 30`.
""")

TEST_CASCADE = Template('''\
"""The cascade in cascade.yaml, run with its real handlers."""

from __future__ import annotations

from pathlib import Path

import pytest
from cascadence import CascadeConfig, CascadeEngine

CASCADE_FILE = Path(__file__).resolve().parents[1] / "cascade.yaml"


@pytest.fixture
def engine() -> CascadeEngine:
    """Build the engine from cascade.yaml; handlers come from its import paths."""
    return CascadeEngine(CascadeConfig.from_file(CASCADE_FILE))


def test_small_amount_is_approved_by_the_rules_alone(engine: CascadeEngine) -> None:
    """A clear case stops at SCREEN and costs only that stage."""
    result = engine.execute_sync({"amount": 120.0, "country": "US"})
    assert result["success"]
    assert result["path"] == ["SCREEN"]
    assert result["final_result"] == "approve"
    assert result["cost"] == 1


def test_large_amount_escalates_to_review(engine: CascadeEngine) -> None:
    """An unsure case goes on to REVIEW, which decides it."""
    result = engine.execute_sync({"amount": 9800.0, "country": "FR", "previous_orders": 0})
    assert result["path"] == ["SCREEN", "REVIEW"]
    assert result["final_result"] == "reject"
    assert result["cost"] == 6


def test_blocked_country_is_rejected_at_once(engine: CascadeEngine) -> None:
    """A blocked country is rejected by the rules without a review."""
    result = engine.execute_sync({"amount": 60.0, "country": "XX"})
    assert result["path"] == ["SCREEN"]
    assert result["final_result"] == "reject"
''')

TEST_FLOWS = Template('''\
"""The checkout flow in $package/flows.py."""

from __future__ import annotations

import pytest
from cascadence import CadenceError

from $package.flows import CheckoutScore, checkout_cadence


def test_checkout_totals_and_confirms() -> None:
    """An order with items is totalled and confirmed."""
    score = checkout_cadence.run_sync(CheckoutScore(order_id="ORD-1", prices=[9.5, 20.0]))
    assert score.total == 29.5
    assert score.status == "confirmed"


def test_checkout_refuses_an_empty_order() -> None:
    """An order without items fails at its first note."""
    with pytest.raises(CadenceError, match="no items"):
        checkout_cadence.run_sync(CheckoutScore(order_id="ORD-2"))
''')
