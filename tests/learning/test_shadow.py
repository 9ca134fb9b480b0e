"""Shadow testing: rules in TESTING are evaluated on live runs, which they never change; their
agreement, coverage and savings are recorded where activation reads them."""

from __future__ import annotations

from typing import Any

import pytest
from learning_helpers import engine, inputs

from cascadence.learning import (
    GeneratedRule,
    InvalidTransitionError,
    ProposalManager,
    ShadowEvaluator,
    ShadowStats,
    decision_of,
)

EXACT = GeneratedRule(
    "apls_exact", "pat_exact", "RULES", {"field": "amount", "operator": ">=", "value": 500},
    "decline",
)  # fmt: skip
LOOSE = GeneratedRule(
    "apls_loose", "pat_loose", "RULES", {"field": "amount", "operator": ">=", "value": 100},
    "decline",
)  # fmt: skip
LATE = GeneratedRule(
    "apls_late", "pat_late", "EXPENSIVE", {"field": "amount", "operator": ">=", "value": 0},
    "approve",
)  # fmt: skip


def manager_in_testing(**options: Any) -> ProposalManager:
    manager = ProposalManager(**options)
    for rule in (EXACT, LOOSE, LATE):
        proposal_id = manager.create_proposal(rule).proposal_id
        manager.approve(proposal_id, reviewer="alice@example.com")
        manager.start_testing(proposal_id)
    return manager


def essence(result: dict[str, Any]) -> tuple[Any, ...]:
    """What a run decided and did, without its timings."""
    stages = {
        n: (r["result"], r["confidence"], r["cost"]) for n, r in result["stage_results"].items()
    }
    return (
        decision_of(result),
        result["final_result"],
        tuple(result["path"]),
        result["cost"],
        result["terminated_by"],
        tuple((d["stage"], d["rule"], d["action"]) for d in result["routing_decisions"]),
        stages,
        "data" in result,
    )


def expected_stats(data: list[dict[str, Any]], threshold: float) -> ShadowStats:
    """What a RULES rule `amount >= threshold -> decline` would have done on the small cascade."""
    eligible = [d for d in data if d["amount"] >= 10]  # RULES decides smaller amounts itself
    matched = [d for d in eligible if d["amount"] >= threshold]
    total = sum(1.0 if d["amount"] < 10 else 26.0 for d in data)
    agreed = [
        d
        for d in matched
        if d["amount"] >= 500 or (d["is_new_device"] and d["timestamp"][11:13] < "05")
    ]
    return ShadowStats(
        len(data), len(eligible), len(matched), len(agreed), 25.0 * len(matched), total
    )


async def test_shadow_mode_leaves_live_decisions_unchanged() -> None:
    """Runs with tested rules in shadow (hooks or wrapper) equal runs without them."""
    manager = manager_in_testing()
    shadow = ShadowEvaluator(manager, flush_every=0)
    plain = engine(sync_in_thread=False)
    hooked = engine(sync_in_thread=False, hooks=[shadow.hooks()])
    data = inputs(600, seed=8)
    for item in data:
        baseline = await plain.execute(item)
        assert essence(await hooked.execute(item)) == essence(baseline)
        assert essence(await shadow.execute(plain, item)) == essence(baseline)
    assert all(s.executions == 1200 for s in shadow.pending().values())
    manager.close()


async def test_shadow_statistics_are_exact() -> None:
    """Agreement, coverage and savings match what the rule would have done, per rule."""
    manager = manager_in_testing()
    shadow = ShadowEvaluator(manager, flush_every=250)
    cascade = engine(sync_in_thread=False)
    data = inputs(1000, seed=9)
    for item in data:
        await shadow.execute(cascade, item)
    totals = shadow.flush()
    ids = {p.rule.rule_id: p.proposal_id for p in manager.proposals("TESTING")}
    assert totals[ids["apls_exact"]] == expected_stats(data, 500)
    assert totals[ids["apls_exact"]].agreement == 1.0
    loose = totals[ids["apls_loose"]]
    assert loose == expected_stats(data, 100)
    assert loose.agreement is not None and loose.agreement < 0.5
    late = totals[ids["apls_late"]]
    assert late.eligible == late.matched == sum(1 for d in data if d["amount"] >= 10)
    assert late.saved_cost == 0.0  # EXPENSIVE is the last stage: deciding after it saves nothing
    assert manager.get(ids["apls_exact"]).shadow == totals[ids["apls_exact"]]
    manager.close()


async def test_hooks_and_wrapper_record_the_same_statistics() -> None:
    """Evaluating through engine hooks gives the same statistics as evaluating results."""
    data = inputs(400, seed=10)
    results = []
    for hooked in (True, False):
        manager = manager_in_testing()
        shadow = ShadowEvaluator(manager, flush_every=0)
        if hooked:
            cascade = engine(sync_in_thread=False, hooks=[shadow.hooks()])
            for item in data:
                await cascade.execute(item)
        else:
            cascade = engine(sync_in_thread=False)
            for item in data:
                await shadow.execute(cascade, item)
        results.append(sorted(shadow.pending().items()))
        manager.close()
    assert results[0] == results[1]


async def test_activation_follows_the_shadow_test() -> None:
    """The exact rule activates at 99% agreement; the loose one is refused, then rejected,
    and stops being evaluated."""
    manager = manager_in_testing(min_agreement=0.99, min_shadow_samples=20)
    shadow = ShadowEvaluator(manager)
    cascade = engine(sync_in_thread=False)
    for item in inputs(1500, seed=11):
        await shadow.execute(cascade, item)
    shadow.flush()
    ids = {p.rule.rule_id: p.proposal_id for p in manager.proposals("TESTING")}
    manager.activate(ids["apls_exact"], actor="alice@example.com", reason="shadow passed")
    with pytest.raises(InvalidTransitionError, match="shadow agreement"):
        manager.activate(ids["apls_loose"])
    manager.reject(ids["apls_loose"], reviewer="alice@example.com", reason="disagrees")
    assert manager.get_active_rules() == [EXACT]
    await shadow.execute(cascade, inputs(1, seed=12)[0])
    shadow.flush()
    assert sorted(shadow.proposal_ids) == [ids["apls_late"]]
    outcomes = shadow.observe(*(await run_one(cascade, 900.0)))
    assert [(o.stage, o.matched, o.saved_cost) for o in outcomes] == [("EXPENSIVE", True, 0.0)]
    manager.close()


async def run_one(cascade: Any, amount: float) -> tuple[dict[str, Any], dict[str, Any]]:
    item = {**inputs(1, seed=13)[0], "amount": amount}
    return item, await cascade.execute(item)


async def test_outcomes_describe_each_rule_on_one_run() -> None:
    """`observe` returns, per tested rule evaluated on the run, what it would have decided."""
    manager = manager_in_testing()
    shadow = ShadowEvaluator(manager, flush_every=0)
    cascade = engine(sync_in_thread=False)
    item, result = await run_one(cascade, 900.0)
    by_rule = {o.proposal_id: o for o in shadow.observe(item, result)}
    ids = {p.rule.rule_id: p.proposal_id for p in manager.proposals("TESTING")}
    exact = by_rule[ids["apls_exact"]]
    assert (exact.matched, exact.proposed, exact.actual, exact.agreed) == (
        True,
        "decline",
        "decline",
        True,
    )
    assert exact.saved_cost == 25.0
    item, small = await run_one(cascade, 5.0)  # RULES decides it: no rule is evaluated
    assert shadow.observe(item, small) == []
    manager.close()
