# mypy: disable-error-code="no-untyped-def, type-arg"
"""The code document's checkout example, as written (with only the import changed), shared by
the spec-example tests and the web integration tests.

`db` and `payment_service` are small in-process stand-ins for the services the example uses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from cascadence import Score, note

__all__ = [
    "OrderScore",
    "calculate_total",
    "db",
    "fetch_items",
    "payment_service",
    "process_payment",
]

Item = SimpleNamespace


class _DB:
    async def get_items(self, order_id: str) -> list[Any]:
        await asyncio.sleep(0)
        return [Item(price=10.0), Item(price=5.5)]


class _Payments:
    def __init__(self) -> None:
        self.charged: list[tuple[str, float]] = []

    async def charge(self, order_id: str, total: float) -> None:
        self.charged.append((order_id, total))


db = _DB()
payment_service = _Payments()


@dataclass
class OrderScore(Score):
    order_id: str
    items: list = None  # type: ignore[assignment]
    total: float = 0.0
    status: str = "pending"


@note
async def fetch_items(score: OrderScore):
    # Fetch order items from database
    score.items = await db.get_items(score.order_id)


@note
async def calculate_total(score: OrderScore):
    score.total = sum(item.price for item in score.items)


@note
async def process_payment(score: OrderScore):
    await payment_service.charge(score.order_id, score.total)
    score.status = "paid"
