"""Turning a pattern into routing rules that decide early.

A learned rule goes after its pattern's `target_stage`. The engine's `final_result` is the result
of the last stage that ran, so a rule that only terminated would leave the cheap stage's
provisional answer as the outcome. A learned rule is therefore a pair of ordinary routing rules
with the same condition:

1. `<rule_id>`: `set_field` writes the decision to `decision_field` (`decision` by default);
2. `<rule_id>_stop`: `terminate` ends the run.

`set_field` is not a terminal action, so both rules act when the condition holds; the decision
of the run is then `result["data"]["decision"]` (see `decision_of`). Both rules are placed below
every existing rule of the stage (see `merge_rules`), so a learned rule acts only on runs the
stage would have passed on to later stages.

A pattern of runs its stage decided itself (`Pattern.self_decided`) gives the same pair as
*preconditions* of that stage (`rule_type="precondition"`): they are evaluated when the stage is
about to run, on the input and the results of the stages before it, and a match writes the
decision and ends the run before the stage is called, so it costs nothing.

```yaml
- name: apls_3f2a9c1b0d
  type: routing
  priority: -10
  condition: {operator: AND, conditions: [...]}
  action: {type: set_field, field: decision, value: approve, reason: "APLS pat_3f2a9c1b0d"}
- name: apls_3f2a9c1b0d_stop
  type: routing
  priority: -11
  condition: {operator: AND, conditions: [...]}
  action: {type: terminate, reason: "APLS pat_3f2a9c1b0d"}
```
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cascadence.cascade.config import RoutingRule
from cascadence.conditions import compile_condition, parse_condition, to_expression
from cascadence.learning.patterns import Pattern
from cascadence.learning.records import DEFAULT_DECISION_FIELD

__all__ = ["GeneratedRule", "LearnedRuleType", "RuleGenerator"]

STOP_SUFFIX = "_stop"

LearnedRuleType = Literal["routing", "precondition"]
"""When a learned rule is evaluated: after its stage ran, or before it runs."""


@dataclass(frozen=True)
class GeneratedRule:
    """A learned early decision, ready to be merged into a cascade configuration.

    It is not itself a routing rule: `merge_rules(config, rules)` adds rules to a config
    (`merge_rules(engine.config, manager.get_active_rules())`), and `to_models()` gives the
    two `RoutingRule`s it stands for, to place by hand.

    Attributes:
        rule_id: Name of the `set_field` rule; the `terminate` rule adds `_stop`.
        pattern_id: The pattern it comes from.
        stage: The stage whose routing rules it joins (the stage it decides after, or for a
            precondition, before).
        condition: The structured condition.
        decision: The decision written to `decision_field`.
        decision_field: The input field the decision is written to.
        confidence: The pattern's held-out precision (orders rules within a stage).
        support: The pattern's held-out support.
        pattern_type: The pattern's type, by name.
        description: A readable summary of the pattern.
        rule_type: `routing` (evaluated after `stage` ran) or `precondition` (evaluated
            before `stage` runs, which a match keeps from running).
    """

    rule_id: str
    pattern_id: str
    stage: str
    condition: dict[str, Any]
    decision: Any
    decision_field: str = DEFAULT_DECISION_FIELD
    confidence: float = 1.0
    support: int = 0
    pattern_type: str = "THRESHOLD"
    description: str = ""
    rule_type: LearnedRuleType = "routing"

    __hash__ = None  # type: ignore[assignment]

    @property
    def name(self) -> str:
        """Same as `rule_id`."""
        return self.rule_id

    @property
    def rule_names(self) -> tuple[str, str]:
        """Names of the two routing rules: the deciding one and the stopping one."""
        return self.rule_id, self.rule_id + STOP_SUFFIX

    @property
    def before(self) -> bool:
        """Whether it decides before `stage` runs (a precondition) rather than after."""
        return self.rule_type == "precondition"

    @property
    def expression(self) -> str:
        """The condition as one expression string."""
        return to_expression(parse_condition(self.condition))

    def routing_rules(self, priority: int = -10) -> list[dict[str, Any]]:
        """The two routing rules as plain data, as a stage's `routing_rules` are written in a
        config file or `CascadeConfig.from_dict`; `to_models()` gives them as `RoutingRule`s.

        Args:
            priority: Priority of the deciding rule; the stopping rule gets one less.
        """
        reason = f"APLS {self.pattern_id}"
        description = self.description or f"learned from pattern {self.pattern_id}"
        ends = f"ends the run decided by {self.rule_id}"
        if self.before:
            ends += f" before {self.stage} runs"
        return [
            {
                "name": self.rule_id,
                "type": self.rule_type,
                "priority": priority,
                "condition": copy.deepcopy(self.condition),
                "action": {
                    "type": "set_field",
                    "field": self.decision_field,
                    "value": self.decision,
                    "reason": reason,
                },
                "description": description,
            },
            {
                "name": self.rule_id + STOP_SUFFIX,
                "type": self.rule_type,
                "priority": priority - 1,
                "condition": copy.deepcopy(self.condition),
                "action": {"type": "terminate", "reason": reason},
                "description": ends,
            },
        ]

    def to_models(self, priority: int = -10) -> list[RoutingRule]:
        """The two routing rules as validated `RoutingRule` models, for a loaded config:
        `config.stages[rule.stage].routing_rules.extend(rule.to_models())`.

        `merge_rules` does this for many rules at once, below the stage's own rules, and
        bumps the version; by hand, pick a `priority` below the stage's lowest.

        Args:
            priority: Priority of the deciding rule; the stopping rule gets one less.
        """
        return [RoutingRule.model_validate(r) for r in self.routing_rules(priority)]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `GeneratedRule.from_dict(r.to_dict()) == r`."""
        return {
            "rule_id": self.rule_id,
            "pattern_id": self.pattern_id,
            "stage": self.stage,
            "condition": copy.deepcopy(self.condition),
            "decision": self.decision,
            "decision_field": self.decision_field,
            "confidence": self.confidence,
            "support": self.support,
            "pattern_type": self.pattern_type,
            "description": self.description,
            "rule_type": self.rule_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratedRule:
        """Rebuild a rule from `to_dict()` output."""
        return cls(**dict(data))


class RuleGenerator:
    """Builds the routing rules that migrate a pattern's decision to its target stage: after
    it, or, for a pattern of runs the stage decided itself, before it (preconditions).

    Args:
        prefix: Start of every generated rule name.
        decision_field: Overrides the field the decision is written to (by default the
            pattern's own `decision_field`).
    """

    def __init__(self, *, prefix: str = "apls_", decision_field: str | None = None) -> None:
        if not prefix or not prefix.replace("_", "").isalnum():
            raise ValueError(f"rule name prefix must be letters, digits and '_', got {prefix!r}")
        self.prefix = prefix
        self.decision_field = decision_field

    def generate_from_pattern(self, pattern: Pattern) -> GeneratedRule:
        """The rule for `pattern`, checked against the condition language and the config models.

        A `self_decided` pattern gives preconditions of its stage: they decide before the
        stage runs what it would have decided, so a match skips it.

        Raises:
            ConditionSyntaxError: The pattern's condition is not valid (never for mined ones).
            ConfigError: The rules would not load into a `CascadeConfig`.
            ValueError: A `self_decided` pattern's condition reads its own stage's result,
                which a precondition never sees (never for mined ones).
        """
        compiled = compile_condition(pattern.condition)
        rule_type: LearnedRuleType = "precondition" if pattern.self_decided else "routing"
        if pattern.self_decided and pattern.target_stage in compiled.stage_refs:
            raise ValueError(
                f"pattern {pattern.id}: a rule deciding before {pattern.target_stage!r} cannot "
                f"read stages.{pattern.target_stage} (the stage has not run yet); expected a "
                "condition on the input or the results of earlier stages, got "
                f"{pattern.expression!r}"
            )
        suffix = pattern.id.removeprefix("pat_")
        rule = GeneratedRule(
            rule_id=f"{self.prefix}{suffix}",
            pattern_id=pattern.id,
            stage=pattern.target_stage,
            condition=copy.deepcopy(pattern.condition),
            decision=pattern.decision,
            decision_field=self.decision_field or pattern.decision_field,
            confidence=pattern.confidence,
            support=pattern.support,
            pattern_type=pattern.pattern_type.value,
            description=pattern.description,
            rule_type=rule_type,
        )
        rule.to_models()
        return rule
