"""The quick-start's three stages, from a cheap heuristic to an expensive analysis."""

from __future__ import annotations

import asyncio
import os

from cascadence import ExecutionContext

# Set QUICKSTART_FAST=1 to skip the simulated model latency (benchmarks and tests do).
_SLOW = os.environ.get("QUICKSTART_FAST") != "1"


async def fast_check(context: ExecutionContext) -> dict:
    """Fast heuristic check."""
    user_id = context.get("user_id")
    confidence = 0.75 if user_id.startswith("trusted_") else 0.4
    return {
        "result": "pass" if confidence > 0.5 else "review",
        "confidence": confidence,
        "data": {"method": "heuristic", "checks": ["basic_validation"]},
    }


async def medium_check(context: ExecutionContext) -> dict:
    """Medium complexity ML model check."""
    if _SLOW:
        await asyncio.sleep(0.3)  # simulated model inference
    return {
        "result": "pass",
        "confidence": 0.85,
        "data": {"method": "ml_model", "model": "trust_v2"},
    }


async def expensive_check(context: ExecutionContext) -> dict:
    """Expensive deep analysis."""
    if _SLOW:
        await asyncio.sleep(1.5)  # simulated expensive computation
    return {
        "result": "pass",
        "confidence": 0.99,
        "data": {"method": "deep_analysis", "checks_run": 47},
    }
