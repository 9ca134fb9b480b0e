"""Compiled, immutable plans: what both front ends compile to and what the runtime executes.

A `CascadePlan` is a list of `StagePlan`s with compiled routing rules; a `FlowPlan` is a tree of
flow nodes (`StepNode`, `ParallelNode`, `BranchNode`, `ChildNode`). Executors, diagrams and the
CLI read only these types, never the front ends' config or builder objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from dataclasses import field as dataclass_field
from typing import Any

from cascadence.conditions.scan import Scan, compile_scan, field_table
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.invoke import AsyncHandler

__all__ = [
    "BranchNode",
    "CascadePlan",
    "ChildNode",
    "FlowNode",
    "FlowPlan",
    "ParallelNode",
    "RulePlan",
    "StagePlan",
    "StepNode",
    "RuleTable",
    "scan_rules",
    "stage_mask",
]


def stage_mask(names: Iterable[str], bits: Mapping[str, int]) -> int:
    """The mask of the stage bits `bits` gives for `names` (unknown names are ignored)."""
    mask = 0
    for name in names:
        mask |= bits.get(name, 0)
    return mask


@dataclass(frozen=True, slots=True)
class RulePlan:
    """A routing rule with its condition compiled to a plain callable.

    `test(data, stage_results, warnings) -> bool` is the compiled condition; `condition` is the
    compiled object (for `explain`) and `source` what the user wrote.
    """

    name: str
    type: str
    priority: int
    test: Callable[[Any, Mapping[str, Any] | None, list[Any] | None], bool]
    condition: Any
    action: str
    target: str | None = None
    stages: tuple[str, ...] = ()
    mask: int = 0
    """`stages` as a mask of stage bits (see `StagePlan.bit`)."""
    field: str | None = None
    value: Any = None
    reason: str | None = None
    owner: str | None = None
    """The stage the rule belongs to (None for a global termination condition)."""
    shown: dict[str, Any] = dataclass_field(init=False, repr=False, compare=False)
    """How a result shows the rule's decision (each result gets a copy)."""

    def __post_init__(self) -> None:
        shown = {"stage": self.owner, "rule": self.name, "type": self.type, "action": self.action}
        if self.reason is not None:
            shown["reason"] = self.reason
        object.__setattr__(self, "shown", shown)

    def describe(self) -> str:
        """A short label for diagrams and logs, e.g. `enable_stages MEDIUM_CHECK`."""
        if self.action == "skip_to":
            return f"skip_to {self.target}"
        if self.action in ("enable_stages", "disable_stages"):
            return f"{self.action} {', '.join(self.stages)}"
        if self.action == "set_field":
            return f"set {self.field}"
        return self.action


@dataclass(frozen=True, slots=True)
class StagePlan:
    """One stage, ready to run.

    `fn` is None until a handler is registered: the plan still runs, and the stage fails only
    when it has to run (see `no_handler`). `plain` means the policy is at most a timeout, so
    the runtime may use its fastest path.
    """

    name: str
    index: int
    fn: AsyncHandler | None
    policy: StepPolicy
    cost: float = 1.0
    depends_on: tuple[str, ...] = ()
    group: str | None = None
    enabled: bool = True
    stop_on_failure: bool = False
    pre_rules: tuple[RulePlan, ...] = ()
    post_rules: tuple[RulePlan, ...] = ()
    handler_path: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    no_handler: str | None = None
    """Without `fn`: what the stage's result says when the stage has to run (which stage,
    how to give it a handler); the run goes on as after a handler error."""
    plain: bool = field(init=False)
    """True when only a timeout applies (the runtime's fastest path)."""
    timeout: float | None = field(init=False)
    """Seconds per attempt, or None."""
    pre_tests: tuple[Callable[..., bool], ...] = field(init=False)
    """The compiled conditions of `pre_rules`, in order (scanned without touching the rules)."""
    post_tests: tuple[Callable[..., bool], ...] = field(init=False)
    """The compiled conditions of `post_rules`, in order."""
    pre_scan: Scan = field(init=False)
    """Finds the first of `pre_rules` whose condition holds (1 + its index, or 0)."""
    post_scan: Scan = field(init=False)
    """Finds the first of `post_rules` whose condition holds (1 + its index, or 0)."""

    simple: bool = field(init=False)
    """Plain, with a handler, outside any parallel group and without preconditions: the
    runtime's hot path."""
    bit: int = field(init=False)
    """`1 << index`: this stage's bit in a run's mask of enabled stages."""
    deps_mask: int = 0
    """The bits of the stages in `depends_on` (set when the plan is compiled)."""
    post_table: RuleTable | None = field(init=False, repr=False, compare=False)
    """When the stage has several routing rules that all compare one field with literals of
    one kind and none sets a field: their table (see `field_table`). The rules' conditions
    then all read the state as it was when the stage finished, so one read of the field
    decides every rule."""
    _rest: list[Scan | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plain", self.policy.is_plain)
        object.__setattr__(self, "timeout", self.policy.timeout)
        simple = self.plain and self.fn is not None and self.group is None and not self.pre_rules
        object.__setattr__(self, "simple", simple)
        object.__setattr__(self, "bit", 1 << self.index)
        object.__setattr__(self, "pre_tests", tuple(rule.test for rule in self.pre_rules))
        object.__setattr__(self, "post_tests", tuple(rule.test for rule in self.post_rules))
        object.__setattr__(self, "pre_scan", scan_rules(self.pre_rules))
        object.__setattr__(self, "post_scan", scan_rules(self.post_rules))
        object.__setattr__(self, "_rest", [None] * len(self.post_rules))
        table: RuleTable | None = None
        rules = self.post_rules
        if len(rules) > 1 and all(r.type == "routing" and r.action != "set_field" for r in rules):
            found = field_table([_tree(rule) for rule in rules])
            if found is not None:
                *where, checks = found
                rows = tuple((op, literal, rule) for (op, literal), rule in zip(checks, rules))
                table = (*where, rows)  # type: ignore[assignment]
        object.__setattr__(self, "post_table", table)

    def rest_scan(self, start: int) -> Scan:
        """The scan of `post_rules[start:]` (built on first use: most runs never need one).

        It returns 1 + the index of the first match counted from `start`, or 0.
        """
        scan = self._rest[start]
        if scan is None:
            scan = self._rest[start] = scan_rules(self.post_rules[start:])
        return scan


RuleTable = tuple[
    bool, str, "str | None", type, type, tuple[tuple[Callable[[Any, Any], Any], Any, RulePlan], ...]
]
"""A stage's `post_table`: a `cascadence.conditions.scan.FieldTable` whose rows also carry
their rule: (operator, literal, rule)."""


def scan_rules(rules: tuple[RulePlan, ...]) -> Scan:
    """The scan of `rules`' conditions (see `cascadence.conditions.scan`)."""
    return compile_scan([(rule.test, _tree(rule)) for rule in rules])


def _tree(rule: RulePlan) -> Any:
    """The parsed condition `rule.test` was compiled from, or None if it is another callable."""
    condition = rule.condition
    return condition.node if getattr(condition, "fn", None) is rule.test else None


@dataclass(frozen=True, slots=True)
class CascadePlan:
    """A cascade compiled for execution."""

    name: str
    version: str
    stages: tuple[StagePlan, ...]
    global_timeout: float | None = None
    max_parallel: int = 10
    termination: tuple[RulePlan, ...] = ()
    stop_on_failure: bool = False
    source: Any = None
    ordered: bool = False
    """The order was given (`execution_order`): a parallel group gathers its members only up
    to the first due stage outside it, which runs first."""
    initially_enabled: frozenset[str] = field(init=False)
    """Names of the stages enabled before any rule runs."""
    enabled_mask: int = field(init=False)
    """`initially_enabled` as a mask of stage bits (`StagePlan.bit`)."""
    termination_scan: Scan = field(init=False, repr=False, compare=False)
    """Finds the first of `termination` whose condition holds (1 + its index, or 0)."""
    _bits: dict[str, int] = field(init=False, repr=False, compare=False)
    group_of: dict[str, str | None] = field(init=False, repr=False, compare=False)
    """Each stage's parallel group (None outside one)."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "initially_enabled", frozenset(s.name for s in self.stages if s.enabled)
        )
        object.__setattr__(self, "_bits", {s.name: 1 << s.index for s in self.stages})
        object.__setattr__(self, "group_of", {s.name: s.group for s in self.stages})
        object.__setattr__(self, "enabled_mask", self.mask(self.initially_enabled))
        object.__setattr__(self, "termination_scan", scan_rules(self.termination))

    def mask(self, names: Iterable[str]) -> int:
        """The mask of stage bits for `names` (names of no stage are ignored)."""
        return stage_mask(names, self._bits)

    def names(self, mask: int) -> list[str]:
        """The names of the stages whose bits are set in `mask`, in plan order."""
        return [s.name for s in self.stages if mask & (1 << s.index)]

    def missing_handlers(self) -> list[str]:
        """Stages that have no handler bound."""
        return [s.name for s in self.stages if s.fn is None]


@dataclass(frozen=True, slots=True)
class StepNode:
    """A single note of a flow."""

    name: str
    fn: AsyncHandler
    policy: StepPolicy
    cost: float = 0.0
    is_cascade: bool = False
    isolate: Callable[[Any], Any] | None = None
    """Makes the view of the score one attempt runs on (a retried note's or one with a
    fallback), so a failed attempt leaves nothing behind; None: attempts run on the score."""
    commit: Callable[[Any, Any], Any] | None = None
    """`commit(score, view)`: the score with a successful attempt's writes; with `isolate`."""
    bare: bool = field(init=False)
    """True when no policy at all applies: the note is simply awaited."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bare", self.policy.is_plain and self.policy.timeout is None)


@dataclass(frozen=True, slots=True)
class ParallelNode:
    """Notes that run concurrently on isolated snapshots, merged afterwards."""

    name: str
    tasks: tuple[StepNode, ...]
    snapshots: Callable[[Any, int], list[Any]]
    """`snapshots(score, n)`: one isolated snapshot of the score per task."""
    merge: Callable[[Any, list[Any]], Any]
    merge_label: str = "smart"
    bare: bool = field(init=False)
    """True when every task is bare: simply awaited, with no policy and no timeout."""
    plain: bool = field(init=False)
    """True when no task has a policy other than a timeout."""
    shared_breakers: frozenset[str] = field(init=False)
    """Circuit breakers that more than one task of the group uses."""
    fns: tuple[AsyncHandler, ...] = field(init=False)
    """The tasks' handlers, in task order."""
    names: tuple[str, ...] = field(init=False)
    """The tasks' names, in task order."""
    timeouts: tuple[float | None, ...] | None = field(init=False)
    """The tasks' timeouts, in task order; None when no task has one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fns", tuple(task.fn for task in self.tasks))
        object.__setattr__(self, "names", tuple(task.name for task in self.tasks))
        timeouts = tuple(task.policy.timeout for task in self.tasks)
        has_timeout = any(timeout is not None for timeout in timeouts)
        object.__setattr__(self, "timeouts", timeouts if has_timeout else None)
        object.__setattr__(self, "bare", all(task.bare for task in self.tasks))
        object.__setattr__(self, "plain", all(task.policy.is_plain for task in self.tasks))
        names = [t.policy.breaker.name for t in self.tasks if t.policy.breaker is not None]
        shared = frozenset(name for name in names if names.count(name) > 1)
        object.__setattr__(self, "shared_breakers", shared)


@dataclass(frozen=True, slots=True)
class BranchNode:
    """Run `if_true` or `if_false` depending on `condition(score)`."""

    name: str
    condition: Callable[[Any], Any]
    if_true: tuple[FlowNode, ...]
    if_false: tuple[FlowNode, ...]
    label: str = ""


@dataclass(frozen=True, slots=True)
class ChildNode:
    """A nested flow, its result merged into the parent score by `merge`."""

    name: str
    plan: FlowPlan
    factory: Callable[[Any], Any]
    merge: Callable[[Any, Any], Any] | None
    observers: Any = None
    """The child flow's own hooks and reporters (`Observers`), called besides the parent's."""


FlowNode = StepNode | ParallelNode | BranchNode | ChildNode


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """A flow compiled for execution."""

    name: str
    nodes: tuple[FlowNode, ...]
    on_error: Callable[[Any, Exception], Any] | None = None
    stop_on_error: bool = True
