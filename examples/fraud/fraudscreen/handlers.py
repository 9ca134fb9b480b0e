"""The three stages of the fraud-screening cascade, as deterministic functions of the event.

- `rules` (cost 1): hard blocks and an allow-list of small, ordinary, card-present payments;
  everything else is passed on with a count of red flags.
- `statistical_ml` (cost 5): a logistic risk score; confident approvals and declines end the
  run, the rest goes on.
- `single_ai` (cost 25): the expensive judgement, standing in for a language model. It reads
  the event and the model's score and answers approve, challenge (step-up authentication) or
  decline with a sentence of reasoning. Most of its answers follow from cheap facts, as in real
  fraud review; a small share depends on nuance no cheap rule can see (here, a hash of the
  transaction id), which bounds how many of its decisions can move earlier.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from fraudscreen.workload import HIGH_RISK

__all__ = ["rules", "single_ai", "statistical_ml"]

BLOCKED_MERCHANTS = frozenset({"m_watch_00", "m_watch_01"})
"""Merchants blocked outright; the others on the watchlist are only known to the review."""


def _flags(e: dict[str, Any]) -> list[str]:
    flags = []
    if e["is_new_device"]:
        flags.append("new_device")
    if e["is_foreign"]:
        flags.append("foreign")
    if e["hour"] < 6:
        flags.append("night")
    if e["merchant_category"] in HIGH_RISK:
        flags.append("high_risk_category")
    if e["account_age_days"] < 30:
        flags.append("new_account")
    if e["txn_count_24h"] >= 8:
        flags.append("velocity")
    if e["amount_ratio"] >= 3:
        flags.append("unusual_amount")
    if not e["card_present"]:
        flags.append("card_not_present")
    if e["device_trust"] < 0.5:
        flags.append("low_device_trust")
    return flags


def rules(ctx: Any) -> dict[str, Any]:
    """Hard rules: block known-bad, allow small ordinary payments, pass on the rest."""
    e = ctx.data
    flags = _flags(e)
    data = {"risk_points": len(flags), "flags": flags}
    if e["failed_attempts_1h"] >= 5 or e["merchant_id"] in BLOCKED_MERCHANTS:
        return {"result": "decline", "confidence": 0.99, "data": data}
    if e["amount"] < 30 and e["card_present"] and e["account_age_days"] >= 90 and not flags:
        return {"result": "approve", "confidence": 0.97, "data": data}
    return {"result": "review", "confidence": 0.5, "data": data}


def statistical_ml(ctx: Any) -> dict[str, Any]:
    """A logistic risk model over the event's features."""
    e = ctx.data
    z = (
        -6.2
        + 1.3 * e["is_new_device"]
        + 1.0 * e["is_foreign"]
        + 0.9 * (e["hour"] < 6)
        + 1.0 * (e["merchant_category"] in HIGH_RISK)
        + 1.1 * (e["account_age_days"] < 30)
        + 0.18 * min(e["txn_count_24h"], 15)
        + 1.1 * math.log(max(e["amount_ratio"], 0.2))
        + 2.2 * (1.0 - e["device_trust"])
        + 0.7 * e["failed_attempts_1h"]
        + 0.8 * (not e["card_present"])
    )
    risk = 1.0 / (1.0 + math.exp(-z))
    data = {"risk_score": round(risk, 4), "model": "gbm-v7"}
    if risk < 0.02:
        return {"result": "approve", "confidence": round(1.0 - risk, 4), "data": data}
    if risk >= 0.9:
        return {"result": "decline", "confidence": round(risk, 4), "data": data}
    return {"result": "review", "confidence": 0.6, "data": data}


def _nuance(txn_id: str) -> float:
    digest = hashlib.blake2b(txn_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


def single_ai(ctx: Any) -> dict[str, Any]:
    """The expensive review: a decision and its reasoning."""
    e = ctx.data
    ml = ctx.get_stage_result("STATISTICAL_ML")
    risk = ml["data"]["risk_score"] if ml is not None else 0.5
    ratio = e["amount_ratio"]
    if e["merchant_id"].startswith("m_watch_"):
        decision, why = "decline", "The merchant appears on the fraud watchlist."
    elif e["failed_attempts_1h"] >= 3:
        decision = "decline"
        why = (
            f"Repeated failed authentication: {e['failed_attempts_1h']} attempts in the last hour."
        )
    elif e["is_new_device"] and e["device_trust"] < 0.35 and not e["card_present"] and ratio >= 2:
        decision = "decline"
        why = "Card-not-present purchase from an untrusted new device, well above usual spend."
    elif e["merchant_category"] in HIGH_RISK and e["account_age_days"] < 30 and ratio >= 2.5:
        decision = "decline"
        why = "New account buying resellable goods far above its usual spend."
    elif e["txn_count_24h"] >= 12:
        decision = "challenge"
        why = f"Velocity spike: {e['txn_count_24h']} transactions in 24 hours."
    elif e["is_foreign"] and e["hour"] < 6 and e["is_new_device"]:
        decision, why = "challenge", "Foreign night-time purchase from a new device."
    elif risk >= 0.5:
        decision, why = "challenge", "Model risk is elevated; step-up authentication advised."
    elif _nuance(e["txn_id"]) < 0.006:
        decision, why = "challenge", "The merchant description reads unusually for this customer."
    else:
        decision, why = "approve", "Consistent with the customer's history."
    return {
        "result": decision,
        "confidence": 0.9,
        "data": {"reasoning": why, "model": "review-llm"},
    }
