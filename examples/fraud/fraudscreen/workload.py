"""A seeded generator of card transactions with the structure real fraud traffic has.

Customers have an account age, a usual spend and a home country; most of their payments look
like their history. About 2% of transactions are fraudulent, and fraud differs in the ways it
does in practice: larger amounts relative to the customer's usual spend, new or untrusted
devices, foreign and card-not-present payments, night hours, bursts of payments, failed
authentication attempts, and merchants that sell goods easy to resell. Whether a transaction is
fraud is returned next to the event, never inside it: the cascade must not see it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["CATEGORIES", "HIGH_RISK", "Transaction", "generate"]

CATEGORIES: dict[str, float] = {
    "grocery": 0.22,
    "restaurants": 0.15,
    "fuel": 0.09,
    "retail": 0.14,
    "pharmacy": 0.05,
    "travel": 0.05,
    "subscriptions": 0.06,
    "electronics": 0.07,
    "digital_goods": 0.07,
    "gift_cards": 0.04,
    "jewelry": 0.02,
    "crypto": 0.02,
    "money_transfer": 0.02,
}
"""Merchant categories and their share of legitimate traffic."""

HIGH_RISK = frozenset({"electronics", "gift_cards", "jewelry", "crypto", "money_transfer"})
"""Categories whose goods fraudsters can resell."""

_FRAUD_CATEGORIES = {
    "electronics": 0.25,
    "gift_cards": 0.2,
    "digital_goods": 0.12,
    "crypto": 0.1,
    "jewelry": 0.08,
    "money_transfer": 0.08,
    "retail": 0.1,
    "travel": 0.07,
}
_FOREIGN = ["CA", "GB", "MX", "DE", "FR", "ES", "BR", "IN", "NG", "RO", "PH", "VN"]
_CARD_PRESENT = {"grocery": 0.9, "restaurants": 0.85, "fuel": 0.95, "retail": 0.6, "pharmacy": 0.85}
_EPOCH = datetime(2024, 3, 4)


@dataclass(frozen=True)
class Transaction:
    """One generated transaction.

    Attributes:
        event: The flat input the cascade sees.
        is_fraud: The ground truth, for reporting only.
    """

    event: dict[str, Any]
    is_fraud: bool


@dataclass
class _Customer:
    customer_id: str
    account_age_days: int
    usual_amount: float
    trusted_device: float
    activity: float


def _customers(rng: random.Random, count: int) -> list[_Customer]:
    out = []
    for i in range(count):
        if rng.random() < 0.12:
            age = rng.randint(0, 45)
        else:
            age = int(min(4000, rng.lognormvariate(6.4, 0.7)))
        out.append(
            _Customer(
                customer_id=f"c{i:05d}",
                account_age_days=age,
                usual_amount=round(rng.lognormvariate(3.7, 0.6), 2),
                trusted_device=rng.betavariate(9, 2),
                activity=min(rng.paretovariate(1.5), 20.0),
            )
        )
    return out


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _hour(rng: random.Random, fraud: bool) -> int:
    if fraud and rng.random() < 0.45:
        return rng.randint(0, 5)
    # legitimate traffic: a daytime peak, little at night
    while True:
        hour = int(rng.gauss(14.5, 4.5)) % 24
        if hour >= 6 or rng.random() < 0.35:
            return hour


def _merchant(rng: random.Random, category: str, fraud: bool, watchlist: list[str]) -> str:
    if fraud and rng.random() < 0.12:
        return rng.choice(watchlist)
    rank = min(int(rng.paretovariate(1.1)), 60)
    return f"m_{category}_{rank:02d}"


def generate(count: int, *, seed: int = 7, fraud_rate: float = 0.02) -> list[Transaction]:
    """`count` transactions, the same ones for the same seed."""
    rng = random.Random(seed)
    customers = _customers(rng, max(200, count // 8))
    weights = [c.activity for c in customers]
    watchlist = [f"m_watch_{i:02d}" for i in range(8)]
    clock = _EPOCH
    step = timedelta(days=30) / max(1, count)
    out: list[Transaction] = []
    for n in range(count):
        customer = rng.choices(customers, weights=weights)[0]
        new_account = customer.account_age_days < 30
        fraud = rng.random() < fraud_rate * (3.0 if new_account else 1.0)
        category = _pick(rng, _FRAUD_CATEGORIES if fraud else CATEGORIES)
        if fraud:
            ratio = rng.lognormvariate(1.3, 0.7)
            new_device = rng.random() < 0.6
            trust = rng.betavariate(2, 5) if new_device else rng.betavariate(4, 3)
            foreign = rng.random() < 0.35
            card_present = rng.random() < 0.08
            velocity = int(rng.expovariate(1 / 6.0)) + 2
            failed = min(8, int(rng.expovariate(1 / 1.4)))
        else:
            ratio = rng.lognormvariate(0.0, 0.55)
            new_device = rng.random() < 0.05
            trust = rng.betavariate(3, 3) if new_device else customer.trusted_device
            foreign = rng.random() < 0.04
            card_present = rng.random() < _CARD_PRESENT.get(category, 0.15)
            velocity = int(rng.expovariate(1 / (0.8 + 0.25 * min(customer.activity, 8.0)))) + 1
            failed = 0 if rng.random() < 0.96 else rng.randint(1, 2)
        hour = _hour(rng, fraud)
        clock += step
        moment = clock.replace(hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59))
        amount = max(1.0, round(customer.usual_amount * ratio, 2))
        event = {
            "txn_id": f"t{n:06d}",
            "customer_id": customer.customer_id,
            "timestamp": moment.isoformat(),
            "hour": hour,
            "day_of_week": moment.weekday(),
            "is_weekend": moment.weekday() >= 5,
            "amount": amount,
            "amount_ratio": round(amount / customer.usual_amount, 3),
            "merchant_id": _merchant(rng, category, fraud, watchlist),
            "merchant_category": category,
            "channel": "pos" if card_present else "ecom",
            "card_present": card_present,
            "country": rng.choice(_FOREIGN) if foreign else "US",
            "is_foreign": foreign,
            "account_age_days": customer.account_age_days,
            "device_trust": round(trust, 3),
            "is_new_device": new_device,
            "txn_count_24h": velocity,
            "failed_attempts_1h": failed,
            "email_age_days": math.floor(customer.account_age_days * rng.uniform(0.8, 3.0)),
        }
        out.append(Transaction(event, fraud))
    return out
