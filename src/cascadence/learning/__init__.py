"""APLS, the Adaptive Pattern Learning System: move decisions to cheaper stages, safely.

It finds decisions that expensive stages keep making for cheap reasons, proposes routing rules
that make them early, proves them in shadow on live runs, and lets a person switch them on.

```python
from cascadence.learning import PatternExtractor, RuleGenerator, CostAnalyzer, ProposalManager

extractor = PatternExtractor()
for data in history:
    extractor.observe(data, await engine.execute(data))
candidates = extractor.get_migration_candidates(min_confidence=0.99, min_samples=100)

generator, analyzer, manager = RuleGenerator(), CostAnalyzer(), ProposalManager()
for pattern in candidates:
    roi = analyzer.calculate_migration_roi(pattern, pattern.target_stage, volume=10_000)
    if roi.recommendation == "MIGRATE":
        manager.create_proposal(generator.generate_from_pattern(pattern), roi)

# a person reviews: approve, shadow-test, activate
new_config = merge_rules(engine.config, manager.get_active_rules())
```

- `patterns`: `PatternExtractor`, `Pattern`, `PatternType` (learning, with held-out checks);
- `rules`: `RuleGenerator`, `GeneratedRule` (patterns as routing rules of the condition language,
  or as preconditions for decisions a stage made itself);
- `cost`: `CostAnalyzer`, `MigrationROI`;
- `proposals` / `models` / `store`: `ProposalManager`, the review workflow and its audit trail,
  in SQLite by default or PostgreSQL;
- `shadow`: `ShadowEvaluator`, rules in TESTING evaluated on live runs without changing them;
- `merge`: `merge_rules`, active rules into the next config version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascadence.learning.cost import CostAnalyzer, MigrationROI, Placement, Recommendation
from cascadence.learning.merge import learned_rule_ids, merge_rules, merge_to_yaml, next_version
from cascadence.learning.models import (
    TRANSITIONS,
    InvalidTransitionError,
    Proposal,
    ProposalError,
    ProposalExistsError,
    ProposalNotFoundError,
    ProposalStatus,
    ShadowStats,
    Transition,
)
from cascadence.learning.patterns import Pattern, PatternExtractor, PatternType
from cascadence.learning.proposals import ProposalManager
from cascadence.learning.records import (
    DEFAULT_DECISION_FIELD,
    ExecutionRecord,
    decision_of,
    eligible_stages,
)
from cascadence.learning.rules import GeneratedRule, LearnedRuleType, RuleGenerator
from cascadence.learning.shadow import ShadowEvaluator, ShadowHooks, ShadowOutcome
from cascadence.learning.store import ProposalStore, SQLiteProposalStore, store_from_url

if TYPE_CHECKING:
    from cascadence.learning.postgres import PostgresProposalStore

__all__ = [
    "CostAnalyzer",
    "DEFAULT_DECISION_FIELD",
    "ExecutionRecord",
    "GeneratedRule",
    "InvalidTransitionError",
    "LearnedRuleType",
    "MigrationROI",
    "Pattern",
    "PatternExtractor",
    "PatternType",
    "Placement",
    "PostgresProposalStore",
    "Proposal",
    "ProposalError",
    "ProposalExistsError",
    "ProposalManager",
    "ProposalNotFoundError",
    "ProposalStatus",
    "ProposalStore",
    "Recommendation",
    "RuleGenerator",
    "SQLiteProposalStore",
    "ShadowEvaluator",
    "ShadowHooks",
    "ShadowOutcome",
    "ShadowStats",
    "TRANSITIONS",
    "Transition",
    "decision_of",
    "eligible_stages",
    "learned_rule_ids",
    "merge_rules",
    "merge_to_yaml",
    "next_version",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresProposalStore":  # asyncpg loads only when it is asked for
        from cascadence.learning.postgres import PostgresProposalStore

        return PostgresProposalStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
