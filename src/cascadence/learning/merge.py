"""Merging learned rules into a cascade configuration: the next version.

```python
new_config = merge_rules(config, manager.get_active_rules())   # version "1.0" -> "1.1"
new_config.to_file("cascade.v1.1.yaml")
engine.update_config(new_config)                               # hot reload
```

Each rule joins the routing rules of its stage as its two routing rules (see `GeneratedRule`),
below every rule already there: a stage's own rules keep deciding what they decided, and a
learned rule only acts on runs the stage would have passed on. A rule deciding before its stage
(`GeneratedRule.before`) joins as two preconditions, below the stage's own preconditions, so
those still act first. Within a stage, learned rules are ordered by precision, then support.
The ids of the merged rules are listed under `metadata.apls.rules`, so merging again replaces
them instead of adding copies (and a deprecated rule disappears from the next version). The
result is validated like any loaded config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cascadence.cascade.config import CascadeConfig
from cascadence.errors import ConfigError, ConfigIssue, closest
from cascadence.learning.rules import GeneratedRule

__all__ = ["learned_rule_ids", "merge_rules", "merge_to_yaml", "next_version"]

_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)$")
_GAP = 10


def next_version(version: str) -> str:
    """The version after `version`: its last number plus one, keeping its zero padding
    (`1.0` -> `1.1`, `v7` -> `v8`, `2024-01` -> `2024-02`), or `.1` appended when it ends
    without a number (`1` when it is empty)."""
    if not version:
        return "1"
    match = _TRAILING_NUMBER.match(version)
    if match is None:
        return f"{version}.1"
    head, number = match.groups()
    return f"{head}{int(number) + 1:0{len(number)}d}"


def learned_rule_ids(config: CascadeConfig) -> list[str]:
    """Ids of the learned rules merged into `config` (from `metadata.apls.rules`)."""
    apls = config.metadata.get("apls")
    if isinstance(apls, dict):
        rules = apls.get("rules")
        if isinstance(rules, list):
            return [str(r) for r in rules]
    return []


def merge_rules(
    config: CascadeConfig,
    rules: Iterable[GeneratedRule],
    *,
    version: str | None = None,
    replace: bool = True,
) -> CascadeConfig:
    """A new config: `config` with `rules` added to their stages.

    Args:
        config: The running configuration.
        rules: Learned rules (`ProposalManager.get_active_rules()`).
        version: Version of the new config; `next_version(config.version)` by default.
        replace: Drop the learned rules an earlier merge added before adding these.

    Returns:
        The new config; `config` itself when there is nothing to merge (no rules, and no
        earlier learned rules to replace).

    Raises:
        ConfigError: A rule names a stage the cascade does not have (with the closest one),
            or the merged config does not validate.
    """
    data: dict[str, Any] = config.to_dict()
    stages: dict[str, Any] = data["stages"]
    earlier = set(learned_rule_ids(config)) if replace else set()
    if earlier:
        names = earlier | {f"{r}_stop" for r in earlier}
        for stage in stages.values():
            kept = [r for r in stage.get("routing_rules", ()) if r.get("name") not in names]
            if "routing_rules" in stage:
                stage["routing_rules"] = kept

    chosen: dict[str, GeneratedRule] = {}
    for rule in rules:
        if not isinstance(rule, GeneratedRule):
            raise TypeError(
                "merge_rules takes GeneratedRules (ProposalManager.get_active_rules()), got "
                f"{type(rule).__name__}: {rule!r:.60}"
            )
        chosen.setdefault(rule.rule_id, rule)
    if not chosen and not earlier:
        return config  # nothing to add, nothing to take out: the same version
    issues = [
        ConfigIssue(
            path=f"stages.{rule.stage}",
            message=f"learned rule {rule.rule_id!r} is for stage {rule.stage!r}, "
            f"which cascade {config.name!r} does not have",
            expected="one of " + ", ".join(stages),
            suggestion=closest(rule.stage, stages),
        )
        for rule in chosen.values()
        if rule.stage not in stages
    ]
    if issues:
        raise ConfigError(issues)

    by_stage: dict[str, list[GeneratedRule]] = {}
    for rule in chosen.values():
        by_stage.setdefault(rule.stage, []).append(rule)
    for name, learned in by_stage.items():
        stage = stages[name]
        existing = stage.setdefault("routing_rules", [])
        floor = min((int(r.get("priority", 0)) for r in existing), default=0)
        priority = floor - _GAP
        learned.sort(key=lambda r: (-r.confidence, -r.support, r.rule_id))
        for rule in learned:
            existing.extend(rule.routing_rules(priority))
            priority -= 2

    metadata = dict(data.get("metadata") or {})
    kept_ids = [] if replace else learned_rule_ids(config)
    metadata["apls"] = {
        "rules": kept_ids + [r for r in chosen if r not in kept_ids],
        "based_on": str(config.version),
    }
    data["metadata"] = metadata
    data["version"] = version or next_version(str(config.version))
    merged = CascadeConfig.from_dict(data, source=config.source_file)
    # handler import paths resolve relative to the file the config came from; keep it
    merged._source_file = config.source_file
    return merged


def merge_to_yaml(
    config: CascadeConfig, rules: Iterable[GeneratedRule], *, version: str | None = None
) -> str:
    """`merge_rules(config, rules).to_yaml()`: the next version as YAML text."""
    return merge_rules(config, rules, version=version).to_yaml()
