"""Synthetic runs with known rules, a small two-stage cascade, and a hook keeping each run's
context, for the learning tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from cascadence import CadenceHooks, CascadeConfig, CascadeEngine
from cascadence.learning import ExecutionRecord

Decide = Callable[[dict[str, Any], random.Random], str]
Explain = Callable[[dict[str, Any], str], str]

WATCHLIST = frozenset({"m005", "m017", "m042", "m099", "m123", "m250"})


def event(rng: random.Random) -> dict[str, Any]:
    """One synthetic payment with independent features."""
    hour = rng.randint(0, 23)
    return {
        "amount": round(rng.lognormvariate(4, 1.2), 2),
        "account_age_days": rng.randint(0, 2000),
        "country": rng.choice(["US", "US", "US", "GB", "NG", "RO"]),
        "is_new_device": rng.random() < 0.2,
        "failed_attempts_1h": rng.choice([0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5]),
        "merchant_id": f"m{rng.randint(1, 300):03d}",
        "timestamp": f"2024-05-{rng.randint(1, 28):02d}T{hour:02d}:{rng.randint(0, 59):02d}:00",
        "is_weekend": rng.random() < 0.28,
        "noise": rng.random(),
    }


def records(
    count: int, decide: Decide, *, seed: int = 1, explain: Explain | None = None
) -> list[ExecutionRecord]:
    """Runs of a RULES -> AI cascade where RULES always escalates and AI decides by `decide`."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = event(rng)
        decision = decide(data, rng)
        reasoning = explain(data, decision) if explain is not None else ""
        stages = {
            "RULES": {"result": "review", "confidence": 0.5, "data": {}, "cost": 1.0},
            "AI": {
                "result": decision,
                "confidence": 0.9,
                "data": {"reasoning": reasoning},
                "cost": 25.0,
            },
        }
        out.append(
            ExecutionRecord(data, stages, ("RULES", "AI"), decision, frozenset({"RULES", "AI"}))
        )
    return out


def otherwise(rng: random.Random, approve: float = 0.8) -> str:
    """The decision on runs the known rule does not cover: random."""
    return "approve" if rng.random() < approve else "decline"


CASCADE = {
    "name": "screen",
    "version": "1.0",
    "stages": {
        "RULES": {
            "cost": "RULES",
            "routing_rules": [
                {
                    "name": "small_approve",
                    "priority": 100,
                    "condition": "stages.RULES.confidence >= 0.95",
                    "action": {"type": "terminate"},
                },
                {
                    "name": "escalate",
                    "priority": 50,
                    "condition": "stages.RULES.confidence < 0.95",
                    "action": {"type": "enable_stages", "stages": ["EXPENSIVE"]},
                },
            ],
        },
        "EXPENSIVE": {"enabled": False, "cost": "SINGLE_AI", "depends_on": ["RULES"]},
    },
}
"""RULES approves small amounts itself and passes the rest to EXPENSIVE."""


def rules_stage(ctx: Any) -> dict[str, Any]:
    """Approves amounts below 10; otherwise passes on."""
    if ctx.data["amount"] < 10:
        return {"result": "approve", "confidence": 0.99, "data": {}}
    return {"result": "review", "confidence": 0.5, "data": {"checked": True}}


def expensive_stage(ctx: Any) -> dict[str, Any]:
    """Declines amounts of 500 or more and new devices at night; approves the rest."""
    data = ctx.data
    if data["amount"] >= 500:
        return {"result": "decline", "confidence": 0.9, "data": {"reasoning": "Amount too high."}}
    if data["is_new_device"] and data["timestamp"][11:13] < "05":
        return {"result": "decline", "confidence": 0.9, "data": {"reasoning": "Night device."}}
    return {"result": "approve", "confidence": 0.9, "data": {"reasoning": "Looks fine."}}


def engine(config: CascadeConfig | None = None, **options: Any) -> CascadeEngine:
    """The small cascade with its two handlers registered."""
    built = CascadeEngine(config or CascadeConfig.from_dict(CASCADE), **options)
    built.register_stage("RULES", rules_stage, in_thread=False)
    built.register_stage("EXPENSIVE", expensive_stage, in_thread=False)
    return built


def inputs(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Inputs for the small cascade."""
    rng = random.Random(seed)
    return [event(rng) for _ in range(count)]


class KeepContext(CadenceHooks):
    """Keeps each finished run's ExecutionContext, the spec's `context`."""

    def __init__(self) -> None:
        self.contexts: list[Any] = []

    async def after_cadence(
        self, cadence_name: str, score: Any, duration: float, error: BaseException | None = None
    ) -> None:
        self.contexts.append(score)
