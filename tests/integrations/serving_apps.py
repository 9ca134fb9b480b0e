# mypy: disable-error-code="no-untyped-def, type-arg"
"""Flows and cascades shared by the web integration tests.

The spec's checkout flow is built from the document's notes (`tests/spec_checkout.py`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from cascadence import Cadence, CascadeConfig, CascadeEngine, note
from cascadence.policies import CircuitBreaker
from cascadence.testing import FakeClock
from spec_checkout import (
    OrderScore,
    calculate_total,
    fetch_items,
    process_payment,
)

# Build and run the cadence
checkout_cadence = (
    Cadence("checkout", OrderScore(order_id="ORD-123"))
    .then("fetch_items", fetch_items)
    .then("calculate_total", calculate_total)
    .then("process_payment", process_payment)
)


# -- flows that fail in each way the endpoints map to a status ---------------------------------
async def _declined(score: OrderScore) -> None:
    raise ValueError("card declined")


failing_cadence = Cadence("failing", OrderScore(order_id="x")).then("charge", _declined)


async def _hang(score: OrderScore) -> None:
    await asyncio.sleep(10)


slow_cadence = Cadence("slow", OrderScore(order_id="x")).then("charge", note(timeout=0.02)(_hang))


def breaker_cadence() -> tuple[Cadence[OrderScore], CircuitBreaker]:
    """A flow whose only note sits behind an already open breaker (30 s to recovery)."""
    breaker = CircuitBreaker(
        "payments", failure_threshold=1, recovery_timeout=30, clock=FakeClock()
    )

    async def charge(score: OrderScore) -> None:
        score.status = "paid"

    flow = Cadence("guarded", OrderScore(order_id="x"))
    flow.then("charge", note(circuit_breaker=breaker)(charge))
    return flow, breaker


# -- cascades ----------------------------------------------------------------------------------
class Transaction(BaseModel):
    """A decision request."""

    user_id: str
    amount: float = Field(ge=0)


async def fast_check(ctx: Any) -> dict[str, Any]:
    user = str(ctx.get("user_id") or "")
    confidence = 0.97 if user.startswith("trusted_") else 0.4
    return {"result": "pass" if confidence > 0.5 else "review", "confidence": confidence}


async def deep_check(ctx: Any) -> dict[str, Any]:
    return {"result": "pass", "confidence": 0.9, "data": {"model": "v2"}}


def decision_engine(**engine_kwargs: Any) -> CascadeEngine:
    """FAST stops the run when sure, else enables DEEP."""
    escalate = {
        "name": "escalate",
        "type": "routing",
        "priority": 10,
        "condition": {"field": "stages.FAST.confidence", "operator": "<", "value": 0.8},
        "action": {"type": "enable_stages", "stages": ["DEEP"]},
    }
    sure = {
        "name": "sure",
        "type": "routing",
        "priority": 5,
        "condition": {"field": "stages.FAST.confidence", "operator": ">=", "value": 0.95},
        "action": {"type": "terminate"},
    }
    config = CascadeConfig.from_dict(
        {
            "name": "trust",
            "version": "2.1",
            "stages": {
                "FAST": {"cost": 1, "routing_rules": [escalate, sure]},
                "DEEP": {"enabled": False, "cost": 25, "depends_on": ["FAST"]},
            },
            "execution_order": ["FAST", "DEEP"],
        }
    )
    engine = CascadeEngine(config, **engine_kwargs)
    engine.register_stage("FAST", fast_check)
    engine.register_stage("DEEP", deep_check)
    return engine


def timeout_engine() -> CascadeEngine:
    """A cascade whose second stage outlives the 30 ms global timeout."""

    async def hang(ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"result": "never"}

    config = CascadeConfig.from_dict(
        {
            "name": "slowcascade",
            "stages": {"FAST": {}, "HANG": {}},
            "execution_order": ["FAST", "HANG"],
            "global_timeout_ms": 30,
        }
    )
    engine = CascadeEngine(config)
    engine.register_stage("FAST", fast_check)
    engine.register_stage("HANG", hang)
    return engine


def breaker_engine() -> CascadeEngine:
    """A cascade whose only stage fails and opens its breaker (60 s to recovery)."""

    async def down(ctx: Any) -> Any:
        raise ConnectionError("model server down")

    config = CascadeConfig.from_dict(
        {
            "name": "fragile",
            "stages": {
                "MODEL": {"circuit_breaker": {"failure_threshold": 1, "reset_timeout_seconds": 60}}
            },
        }
    )
    engine = CascadeEngine(config, clock=FakeClock())
    engine.register_stage("MODEL", down)
    return engine
