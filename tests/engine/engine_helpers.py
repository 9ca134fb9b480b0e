"""Shared helpers for engine tests."""

from __future__ import annotations

from typing import Any

from cascadence import CascadeConfig


def config(stages: dict[str, Any], **extra: Any) -> CascadeConfig:
    """A cascade config from a compact dict of stages."""
    return CascadeConfig.from_dict({"name": "test", "stages": stages, **extra})


def returning(result: Any, confidence: float | None = None, **data: Any) -> Any:
    """An async handler returning a fixed result."""

    async def handler(_ctx: Any) -> dict[str, Any]:
        return {"result": result, "confidence": confidence, "data": dict(data)}

    return handler
