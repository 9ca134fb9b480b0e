"""APLS end to end on a fraud-screening cascade: learn, propose, review, shadow-test, activate.

The cascade (cascade.yaml) screens card payments with three stages of growing cost: RULES (1),
STATISTICAL_ML (5) and SINGLE_AI (25). A seeded workload of transactions is split in three:

1. history: run through the cascade and recorded; APLS learns patterns from it;
2. shadow: live traffic while the approved proposals are in TESTING; their rules are evaluated
   on every run without changing it, and only those agreeing with the cascade are activated;
3. evaluation: fresh traffic run through the original cascade and through the next config
   version (the active rules merged in, written to YAML and loaded back).

It prints the cost per decision before and after, and how often the new version's decision
equals the original cascade's.

Run from the repository root: `python examples/fraud/run.py` (`--transactions N` to change the
workload size, `--keep-yaml PATH` to keep the generated config).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fraudscreen.workload import Transaction, generate  # noqa: E402

from cascadence import CascadeConfig, CascadeEngine  # noqa: E402
from cascadence.learning import (  # noqa: E402
    CostAnalyzer,
    PatternExtractor,
    ProposalManager,
    RuleGenerator,
    ShadowEvaluator,
    decision_of,
    merge_rules,
)

MIN_CONFIDENCE = 0.998
MIN_SAMPLES = 130
MIN_AGREEMENT = 0.99
REVIEWER = "fraud-ops@example.com"


async def run_all(engine: CascadeEngine, txns: Sequence[Transaction]) -> list[dict[str, Any]]:
    """Execute every transaction, one after the other (the handlers are instant)."""
    return [await engine.execute(t.event) for t in txns]


def summary(results: Sequence[dict[str, Any]], txns: Sequence[Transaction]) -> dict[str, Any]:
    """Cost per decision, where runs ended, and how much fraud was stopped."""
    cost = sum(r["cost"] for r in results) / len(results)
    ends = Counter(r["final_stage"] for r in results)
    fraud = [r for r, t in zip(results, txns) if t.is_fraud]
    stopped = sum(1 for r in fraud if decision_of(r) in ("decline", "challenge"))
    return {"cost": cost, "ends": ends, "fraud": len(fraud), "stopped": stopped}


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE)
    parser.add_argument("--keep-yaml", type=Path, default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    txns = generate(args.transactions, seed=args.seed)
    n_history = args.transactions // 2
    n_shadow = args.transactions // 6
    history = txns[:n_history]
    shadow_batch = txns[n_history : n_history + n_shadow]
    evaluation = txns[n_history + n_shadow :]

    config = CascadeConfig.from_file(HERE / "cascade.yaml")
    engine = CascadeEngine(config, sync_in_thread=False)
    print(f"cascade {config.name} v{config.version}: {' -> '.join(config.stages)}")
    print(
        f"workload: {len(txns):,} transactions (history {len(history):,}, "
        f"shadow {len(shadow_batch):,}, evaluation {len(evaluation):,})\n"
    )

    # 1. learn from history
    extractor = PatternExtractor(seed=args.seed)
    for txn, result in zip(history, await run_all(engine, history)):
        extractor.observe(txn.event, result)
    candidates = extractor.get_migration_candidates(
        min_confidence=args.min_confidence, min_samples=MIN_SAMPLES
    )
    print(f"learned {len(candidates)} patterns from {len(extractor):,} runs")

    # 2. rules, ROI, proposals
    generator, analyzer = RuleGenerator(), CostAnalyzer()
    with tempfile.TemporaryDirectory() as folder:
        manager = ProposalManager(
            db_path=str(Path(folder) / "proposals.db"), min_agreement=MIN_AGREEMENT
        )
        for pattern in candidates:
            rule = generator.generate_from_pattern(pattern)
            roi = analyzer.calculate_migration_roi(pattern, pattern.target_stage, volume=10_000)
            proposal = manager.create_proposal(rule, roi)
            print(
                f"  {proposal.proposal_id} {pattern.pattern_type.value:<11} after "
                f"{pattern.target_stage:<14} -> {pattern.decision!s:<9} "
                f"p={pattern.confidence:.4f} n={pattern.support:<5} "
                f"saves {roi.cost_reduction_percentage:4.1f}% {roi.recommendation}"
            )
            print(f"      {pattern.expression}")

        # 3. review: approve what the analysis recommends, reject the rest; shadow-test
        for proposal in manager.proposals("PENDING_REVIEW"):
            if proposal.roi is not None and proposal.roi.recommendation == "MIGRATE":
                manager.approve(proposal.proposal_id, reviewer=REVIEWER, reason="ROI recommends")
                manager.start_testing(proposal.proposal_id, reason="shadow test on live traffic")
            else:
                manager.reject(proposal.proposal_id, reviewer=REVIEWER, reason="not worth it")
        shadow = ShadowEvaluator(manager, flush_every=2_000)
        for txn in shadow_batch:
            await shadow.execute(engine, txn.event)
        shadow.flush()
        activated = rejected = 0
        for proposal in manager.proposals("TESTING"):
            stats = proposal.shadow
            if stats.agreement is not None and stats.agreement >= MIN_AGREEMENT:
                manager.activate(proposal.proposal_id, actor=REVIEWER, reason="shadow test passed")
                activated += 1
            else:
                manager.reject(
                    proposal.proposal_id,
                    reviewer=REVIEWER,
                    reason=f"shadow agreement {stats.agreement or 0:.2%}",
                )
                rejected += 1
        print(
            f"\nreview: {activated} activated after shadow testing, "
            f"{rejected} rejected by their shadow test, "
            f"{len(manager.proposals('REJECTED')) - rejected} rejected on ROI"
        )

        # 4. the next version, through YAML
        merged = merge_rules(config, manager.get_active_rules())
        yaml_path = args.keep_yaml or Path(folder) / "cascade.next.yaml"
        merged.to_file(yaml_path)
        next_config = CascadeConfig.from_file(yaml_path)
        manager.close()
    learned_engine = CascadeEngine(next_config, sync_in_thread=False)
    learned = sum(
        1
        for s in next_config.stages.values()
        for r in s.routing_rules
        if r.name.startswith("apls_")
    )
    print(f"config v{config.version} -> v{next_config.version}: {learned} learned routing rules")

    # 5. before / after on fresh traffic
    before = await run_all(engine, evaluation)
    after = await run_all(learned_engine, evaluation)
    same = sum(1 for b, a in zip(before, after) if decision_of(b) == decision_of(a))
    agreement = same / len(evaluation)
    b, a = summary(before, evaluation), summary(after, evaluation)
    reduction = 100.0 * (b["cost"] - a["cost"]) / b["cost"]
    print(f"\nevaluation on {len(evaluation):,} fresh transactions")
    for label, s in (("before", b), ("after", a)):
        ends = ", ".join(f"{k} {v / len(evaluation):.1%}" for k, v in sorted(s["ends"].items()))
        print(
            f"  {label:<6} cost per decision {s['cost']:6.3f}   runs end at: {ends}   "
            f"fraud stopped {s['stopped']}/{s['fraud']}"
        )
    print(f"  cost reduction {reduction:.1f}%   decision agreement {agreement:.2%}")
    print(f"  ({time.perf_counter() - started:.1f}s)")
    return {
        "cost_before": b["cost"],
        "cost_after": a["cost"],
        "reduction": reduction,
        "agreement": agreement,
        "activated": activated,
    }


if __name__ == "__main__":
    asyncio.run(main())
