"""Routing within one cascade execution: rules evaluated after a stage (and preconditions
before it), their actions applied, global termination conditions, and skip_to jumps.

`Routing` is the half of a run's state (`cascade_runner._Run`) that rules act on. Until a rule
matches, only a stage's compiled scan of its conditions runs; no rule object is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cascadence.conditions.paths import MISSING
from cascadence.conditions.scan import decided_value
from cascadence.runtime.cascade_result import Decision
from cascadence.runtime.context import ExecutionContext
from cascadence.runtime.observe import Observers
from cascadence.runtime.plan import CascadePlan, RulePlan, RuleTable, StagePlan

__all__ = ["Routing"]

_GO_ON, _STOP_STAGE, _TERMINAL = 0, 1, 2
"""What an action means for the stage and the rules after it."""


class Routing:
    """The routing rules' side of a run; `cascade_runner._Run` holds the state named here."""

    __slots__ = (
        "_pending_routing",
        "ctx",
        "decisions",
        "enabled",
        "explain",
        "forced",
        "jump",
        "obs",
        "plan",
        "terminated_by",
    )

    plan: CascadePlan
    ctx: ExecutionContext
    obs: Observers | None
    explain: list[dict[str, Any]] | None
    decisions: list[Decision]
    enabled: int
    terminated_by: str | None
    jump: str | None
    forced: StagePlan | None
    _pending_routing: list[tuple[str, str, str]] | None

    def skip(self, stage: str, reason: str) -> None:
        """Record why a stage did not run."""
        raise NotImplementedError

    def error(self, record: dict[str, Any]) -> None:
        """Record an error of the run."""
        raise NotImplementedError

    def results_mask(self, failed: bool) -> int:
        """The bits of the stages whose result records an error (`failed`) or none."""
        raise NotImplementedError

    def apply_rules(self, st: StagePlan, pre: bool = False) -> bool:
        """Evaluate the stage's preconditions (`pre`) or its routing rules and postconditions,
        in priority order, and apply the actions of those that match.

        After a terminal action (terminate, skip_to) the remaining routing rules of the stage
        are not evaluated; its postconditions still are. Until one rule matches, only the
        stage's scan of their conditions runs (no rule object is touched).

        Returns:
            False when the stage must not run (a precondition stopped it).
        """
        rules, tests, scan = (
            (st.pre_rules, st.pre_tests, st.pre_scan)
            if pre
            else (st.post_rules, st.post_tests, st.post_scan)
        )
        if self.explain is not None:
            return self._explained(st.name, rules, pre)
        if not pre and st.post_table is not None and self.route_by_table(st, st.post_table):
            return True
        ctx = self.ctx
        found = scan(ctx.data, ctx.stage_results, ctx.warnings)
        if not found:
            return True
        if pre:
            return self._preconditions_from(st.name, rules, tests, found - 1)
        self.after_match(st, found)
        return True

    def route_by_table(self, st: StagePlan, table: RuleTable) -> bool:
        """Apply the routing rules of `st` from its `post_table`: the field is read once and
        every rule decided by one comparison. Returns False, having done nothing, when the
        value read is not one the table decides (the rules' own conditions must then)."""
        staged, k1, k2, kind1, kind2, rows = table
        ctx = self.ctx
        x = decided_value(staged, k1, k2, kind1, kind2, ctx.data, ctx.stage_results)
        if x is MISSING:
            return False
        for compare, literal, rule in rows:
            if compare(x, literal) and self._act(st.name, rule, False) == _TERMINAL:
                return True
        return True

    def after_match(self, st: StagePlan, found: int) -> None:
        """Apply the routing rules and postconditions of `st` from the `found`-th (1-based),
        whose condition is known to hold.

        The rules after a match are found by a scan of the rest of the list (no rule object
        is touched until one matches); after a terminal action only postconditions count.
        """
        rules = st.post_rules
        count = len(rules)
        name = st.name
        position = found - 1
        while True:
            if self._act(name, rules[position], False) == _TERMINAL:
                self._postconditions(name, rules, st.post_tests, position + 1)
                return
            start = position + 1
            if start == count:
                return
            ctx = self.ctx  # read again: a set_field action may have copied the data
            found = st.rest_scan(start)(ctx.data, ctx.stage_results, ctx.warnings)
            if not found:
                return
            position = start + found - 1

    def _postconditions(
        self,
        st_name: str,
        rules: tuple[RulePlan, ...],
        tests: tuple[Callable[..., bool], ...],
        start: int,
    ) -> None:
        """Apply the postconditions among `rules[start:]` that hold (after a terminal action)."""
        ctx = self.ctx
        for position in range(start, len(rules)):
            if rules[position].type == "postcondition" and tests[position](
                ctx.data, ctx.stage_results, ctx.warnings
            ):
                self._act(st_name, rules[position], False)

    def _preconditions_from(
        self,
        st_name: str,
        rules: tuple[RulePlan, ...],
        tests: tuple[Callable[..., bool], ...],
        start: int,
    ) -> bool:
        """Apply the preconditions from `rules[start]` (known to hold) on, until a terminal
        one (terminate, skip_to); False when one of them stopped the stage."""
        ctx = self.ctx
        proceed = True
        for position in range(start, len(rules)):
            if position != start and not tests[position](ctx.data, ctx.stage_results, ctx.warnings):
                continue
            outcome = self._act(st_name, rules[position], True)
            if outcome:
                proceed = False
                if outcome == _TERMINAL:
                    break
        return proceed

    def _explained(self, st_name: str, rules: tuple[RulePlan, ...], pre: bool) -> bool:
        """`apply_rules`, recording for every rule evaluated why it matched or not."""
        ctx = self.ctx
        results = ctx.stage_results
        warnings = ctx.warnings
        explain = self.explain
        proceed = True
        terminal = False
        for rule in rules:
            if terminal and rule.type != "postcondition":
                continue
            matched = rule.test(ctx.data, results, warnings)
            if explain is not None:
                explain.append(
                    {
                        "stage": st_name,
                        "rule": rule.name,
                        "type": rule.type,
                        "priority": rule.priority,
                        "matched": matched,
                        "action": rule.describe() if matched else None,
                        "condition": rule.condition.explain(ctx.data, results),
                    }
                )
            if matched:
                outcome = self._act(st_name, rule, pre)
                if outcome:
                    if pre:
                        proceed = False
                    if outcome == _TERMINAL:
                        terminal = True
        return proceed

    def _act(self, st_name: str, rule: RulePlan, pre: bool) -> int:
        action = rule.action
        self.decisions.append(rule)
        if action == "enable_stages" and self.obs is None:  # the common action, first
            self.enabled |= rule.mask
            return _GO_ON
        if self.obs is not None:
            if self._pending_routing is None:
                self._pending_routing = []
            self._pending_routing.append((st_name, rule.name, action))
        if action == "enable_stages":
            self.enabled |= rule.mask
            return _GO_ON
        if action == "disable_stages":
            self.enabled &= ~rule.mask
            if pre and st_name in rule.stages:
                self.skip(st_name, f"disabled by precondition {rule.name!r}")
                return _STOP_STAGE
            return _GO_ON
        if action == "set_field":
            assert rule.field is not None
            try:
                self.ctx.set(rule.field, rule.value)
            except (TypeError, ValueError) as exc:  # the data has no place for the field
                self.error(
                    {
                        "stage": st_name,
                        "error": f"rule {rule.name!r} could not set {rule.field!r}: {exc}",
                        "type": "RoutingError",
                    }
                )
            return _GO_ON
        if self.terminated_by is not None or self.jump is not None:
            return _GO_ON  # an earlier terminal decision stands
        if action == "terminate":
            self.terminated_by = rule.name
        else:
            self.jump = rule.target
        return _TERMINAL

    def terminate_if(self, termination: tuple[RulePlan, ...]) -> None:
        """Apply the first global termination condition that holds, if any."""
        ctx = self.ctx
        found = self.plan.termination_scan(ctx.data, ctx.stage_results, ctx.warnings)
        if found:
            rule = termination[found - 1]
            self.terminated_by = rule.name
            self.decisions.append(rule)

    def after_jump(self, stages: tuple[StagePlan, ...], index: int) -> int:
        """Where the run goes on after a stage: at `index`, or at the target of a skip_to taken."""
        target = self.jump
        if target is None:
            return index
        self.jump = None
        for pos, st in enumerate(stages):
            if st.name == target:
                if pos < index - 1:
                    self.error(
                        {
                            "stage": target,
                            "error": f"skip_to {target!r} points backwards; ignored",
                            "type": "RoutingError",
                        }
                    )
                    return index
                for skipped in stages[index:pos]:
                    if self.enabled & skipped.bit and skipped.name not in self.ctx.stage_results:
                        self.skip(skipped.name, f"skipped by skip_to {target!r}")
                self.enabled |= st.bit
                # skip_to runs its target even when the stages it depends on were jumped over
                return pos if not stages[pos].depends_on else self._force(stages, pos)
        return index

    def _force(self, stages: tuple[StagePlan, ...], pos: int) -> int:
        """Let the target of a skip_to run although stages it depends on were jumped over (not
        when one of them failed). Only the target is exempt; other dependants still wait."""
        st = stages[pos]
        if not st.deps_mask & self.results_mask(failed=True):
            self.forced = st
        return pos
