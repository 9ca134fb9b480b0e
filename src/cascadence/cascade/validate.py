"""Checks across a cascade config that no single field can make on its own.

Stage names referenced from `execution_order`, `depends_on`, routing actions, conditions and
`cache_key_fields` must exist; dependencies must not form a cycle; `execution_order` must list
every stage once, after the stages it depends on; names of stages and of rules within a stage
must be unique; the dot paths of `set_field` and `cache_key_fields` must have no empty segment;
and every condition must parse and compile. What loads but is likely a mistake is a warning.
What is legal and sometimes meant (a `parallel_group` on a stage that cannot run in parallel, as
the spec's own StageConfig reference writes it; a disabled stage that no rule enables) is a lint:
`cascadence validate` reports it, loading a config does not warn.

The checks read the plain data as written (before or after model validation), so they run
even when some fields are malformed, and every problem is collected rather than the first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cascadence.cascade.order import required_stages, run_order
from cascadence.cascade.raw import any_list, flag_false, flag_true, str_list
from cascadence.conditions import ConditionSyntaxError, compile_condition
from cascadence.conditions.compiler import CompiledCondition
from cascadence.conditions.tree import Compare, Logical
from cascadence.errors import closest

__all__ = [
    "Loc",
    "Marks",
    "Problem",
    "check_config",
    "parse_path",
    "stage_items",
]

Loc = tuple[str | int, ...]
"""A location inside the config data: keys and list indices from the root."""

Marks = dict[Loc, tuple[int, int]]
"""1-based (line, column) at which each location of the config data is written."""


RESULT_KEYS = ("result", "confidence", "data", "time_ms", "cost", "error", "escalated", "cached")
"""Keys of a stage result that every result has, or that the engine adds."""

NUMERIC_RESULT_KEYS = frozenset({"confidence", "time_ms", "cost"})
"""Keys of a stage result whose value is a number (or missing)."""


def _leaves(node: Any) -> list[Any]:
    """The comparisons of a condition tree (through AND/OR/NOT), without recursion."""
    found: list[Any] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Logical):
            stack.extend(current.conditions)
        else:
            found.append(current)
    return found


def _number(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text else value


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem at a location of the config data, before it is placed in a file.

    Attributes:
        loc: Where in the data: stage keys as in the `stages` mapping (`#3` for the fourth item
            of a stage list that has no usable name), then field names and list indices.
        message: What is wrong.
        expected: What would have been valid.
        suggestion: The closest valid name.
        column: 1-based column inside `source_line` (an expression string).
        source_line: The expression text the column points into.
        line: 1-based line when known without looking the location up (syntax errors).
    """

    loc: Loc
    message: str
    expected: str | None = None
    suggestion: str | None = None
    column: int | None = None
    source_line: str | None = None
    line: int | None = None


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> Loc:
    """Split `conditions[1].operator` into `("conditions", 1, "operator")`."""
    loc: list[str | int] = []
    for name, index in _PATH_PART.findall(path):
        loc.append(int(index) if index else name)
    return tuple(loc)


def stage_items(stages: Any) -> list[tuple[str, Any]]:
    """The stages of a `stages` value as `(key, stage)`, keyed as in the validated mapping.

    A mapping keeps its keys. A list is keyed by each stage's name, or `#index` for an item
    without a usable name or repeating an earlier one.
    """
    if isinstance(stages, Mapping):
        return [(key, stage) for key, stage in stages.items() if isinstance(key, str)]
    if isinstance(stages, list):
        from cascadence.cascade.config import stage_entries

        return [(key, stage) for key, _, stage in stage_entries(stages)]
    return []


def _listing(names: Iterable[str]) -> str:
    shown = list(names)
    text = ", ".join(shown[:12])
    return "one of: " + text + (f" (and {len(shown) - 12} more)" if len(shown) > 12 else "")


class _Checker:
    """Collects the problems of one config's data."""

    def __init__(self, data: Mapping[str, Any], known: Collection[Loc]) -> None:
        self.data = data
        self.known = known
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []  # loads, but likely a mistake (`ConfigWarning`)
        self.lints: list[Problem] = []  # legal and sometimes meant: `cascadence validate` only
        self.stages: dict[str, Mapping[str, Any]] = {}
        self.listed = isinstance(data.get("stages"), list)
        for key, stage in stage_items(data.get("stages")):
            self._register(key, stage)
        self.names = list(self.stages)
        self.deps: dict[str, list[str]] = {
            name: [d for d in str_list(stage.get("depends_on")) if d in self.stages]
            for name, stage in self.stages.items()
        }

    def add(
        self, loc: Loc, message: str, expected: str | None = None, suggestion: str | None = None
    ) -> None:
        self.problems.append(Problem(loc, message, expected, suggestion))

    def _register(self, key: str, stage: Any) -> None:
        if stage is None and not self.listed:
            stage = {}
        if not isinstance(stage, Mapping):
            return
        if self.listed and key.startswith("#"):
            name = stage.get("name")
            if isinstance(name, str) and name:
                self.add(
                    ("stages", key, "name"),
                    f"duplicate stage name {name!r}",
                    "each stage name once",
                )
            return
        name = stage.get("name", key)
        if isinstance(name, str) and name != key:
            self.add(
                ("stages", key, "name"),
                f"stage name {name!r} differs from its key {key!r}",
                f"{key!r}, or no name (it defaults to the key)",
            )
        self.stages[key] = stage

    def unknown_stage(self, loc: Loc, name: Any, what: str) -> bool:
        """Record an unknown stage name; True when the name is a known stage."""
        if not isinstance(name, str) or name in self.stages:
            return isinstance(name, str)
        self.add(
            loc,
            f"unknown stage {name!r} in {what}",
            _listing(self.names),
            closest(name, self.names),
        )
        return False

    # -- the checks ----------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        for name, stage in self.stages.items():
            self.check_stage(name, stage)
        self.check_dead_stages()
        self.check_cycles()
        self.check_execution_order()
        conditions = self.data.get("termination_conditions")
        if isinstance(conditions, list):
            for index, condition in enumerate(conditions):
                self.check_condition(condition, ("termination_conditions", index))
        return self.problems

    def check_stage(self, name: str, stage: Mapping[str, Any]) -> None:
        loc: Loc = ("stages", name)
        if "." in name:
            self.add(
                loc,
                f"stage name {name!r} contains '.', which separates the parts of a path "
                f"(stages.{name}.confidence could not name it)",
                "a name without '.', such as " + repr(name.replace(".", "_")),
            )
        ttl = stage.get("cache_ttl_seconds")
        if stage.get("cache_enabled") is True and ttl == 0 and type(ttl) is int:
            self.add(
                (*loc, "cache_ttl_seconds"),
                "a cache that keeps results for 0 seconds never returns one",
                "a number of seconds > 0, or cache_enabled: false",
            )
        depends_on = stage.get("depends_on")
        if isinstance(depends_on, list):
            for index, dep in enumerate(depends_on):
                self.unknown_stage((*loc, "depends_on", index), dep, "depends_on")
        key_fields = stage.get("cache_key_fields")
        if isinstance(key_fields, list):
            for index, path in enumerate(key_fields):
                if isinstance(path, str):
                    self.check_key_field(name, path, (*loc, "cache_key_fields", index))
        self.check_parallel_group(name, stage)
        rules = stage.get("routing_rules")
        if not isinstance(rules, list):
            return
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            rule_loc: Loc = (*loc, "routing_rules", index)
            rule_name = rule.get("name")
            if isinstance(rule_name, str):
                if rule_name in seen:
                    self.add(
                        (*rule_loc, "name"),
                        f"duplicate rule name {rule_name!r} in stage {name!r} "
                        f"(first at routing_rules[{seen[rule_name]}])",
                        "each rule name once within a stage",
                    )
                else:
                    seen[rule_name] = index
            compiled = self.check_condition(rule.get("condition"), (*rule_loc, "condition"))
            refs = compiled.stage_refs if compiled is not None else frozenset()
            required = required_stages(compiled.node) if compiled is not None else set()
            for ref in sorted(required - {name}):
                if self.runs_before(name, ref) and not self.same_group(name, ref):
                    self.add(
                        (*rule_loc, "condition"),
                        f"stages.{ref} is never there when this rule of {name!r} is evaluated: "
                        f"{ref!r} runs after {name!r}",
                        f"a field of the input, or the result of {name!r} or of a stage "
                        f"before it; or a rule of a stage that runs after {ref!r}",
                    )
            if rule.get("type") == "precondition" and name in refs:
                self.add(
                    (*rule_loc, "condition"),
                    f"a precondition runs before stage {name!r}, so stages.{name} is never "
                    "there when it is evaluated",
                    "a field of the input or an earlier stage's result; or type: routing, "
                    "to decide after the stage ran",
                )
            action = rule.get("action")
            if isinstance(action, Mapping):
                self.check_action(name, action, (*rule_loc, "action"))
                self.check_reach(name, rule.get("type") == "precondition", action, rule_loc)

    def check_action(self, stage: str, action: Mapping[str, Any], loc: Loc) -> None:
        kind = action.get("type")
        field = action.get("field")
        if kind == "set_field" and isinstance(field, str) and field:  # "": a field error
            example = "'review.required'"
            malformed = self.malformed_path(field, (*loc, "field"), "set_field", example)
            if not malformed and field.split(".")[0] == "stages":
                self.add(
                    (*loc, "field"),
                    f"set_field writes the input data; {field!r} names a stage result, which "
                    "rules read but cannot write",
                    "a field of the input, such as 'review.required'",
                )
        if kind == "skip_to":
            target = action.get("target")
            if self.unknown_stage((*loc, "target"), target, "skip_to target") and isinstance(
                target, str
            ):
                self.check_forward(stage, target, (*loc, "target"))
        elif kind in ("enable_stages", "disable_stages"):
            stages = action.get("stages")
            if isinstance(stages, list):
                for index, target in enumerate(stages):
                    self.unknown_stage((*loc, "stages", index), target, f"{kind} stages")

    def check_reach(self, stage: str, pre: bool, action: Mapping[str, Any], rule_loc: Loc) -> None:
        """enable_stages / disable_stages of a stage the run has passed when the rule applies
        (an earlier stage; the rule's own, after it ran) would do nothing."""
        kind = action.get("type")
        targets = action.get("stages")
        if kind not in ("enable_stages", "disable_stages") or not isinstance(targets, list):
            return
        for index, target in enumerate(targets):
            if not isinstance(target, str) or target not in self.stages:
                continue
            if target == stage:
                if pre and kind == "disable_stages":
                    continue  # a precondition that keeps its own stage from running
                when = "is running" if pre else "has run"
                self.add(
                    (*rule_loc, "action", "stages", index),
                    f"{kind} of the rule's own stage {stage!r} does nothing: {stage!r} "
                    f"{when} when the rule applies",
                    "a stage that runs later",
                )
            elif self.runs_before(target, stage):
                self.add(
                    (*rule_loc, "action", "stages", index),
                    f"{kind} of {target!r} does nothing: {target!r} runs before {stage!r}, so "
                    "the run has passed it when this rule applies",
                    "a stage that runs later",
                )

    def malformed_path(self, path: str, loc: Loc, what: str, example: str) -> bool:
        """Record a dot path with an empty segment (`a..b`, `.a`, `a.`, ``); True if it has
        one. The closest valid path drops the empty segments."""
        parts = path.split(".")
        if "" not in parts:
            return False
        fixed = ".".join(part for part in parts if part)
        self.add(
            loc,
            f"{what} path {path!r} has an empty segment (two dots, or a dot at an end)"
            if path
            else f"{what} path is empty, so it names no field",
            f"a dot path of names separated by single dots, such as {example}",
            fixed or None,
        )
        return True

    def check_key_field(self, stage: str, path: str, loc: Loc) -> None:
        """One path of `cache_key_fields`: well formed, and a `stages.NAME...` path names a
        stage whose result is there when the cache key is made (before `stage` runs)."""
        example = "'user.id' or 'stages.FEATURES.data.vector'"
        if self.malformed_path(path, loc, "cache_key_fields", example):
            return
        parts = path.split(".")
        if len(parts) < 2 or parts[0] != "stages":
            return
        ref = parts[1]
        if not self.unknown_stage(loc, ref, f"cache_key_fields path {path!r}"):
            return
        if ref == stage:
            self.add(
                loc,
                f"cache_key_fields path {path!r} reads the result of stage {stage!r} itself, "
                "which is never there when its cache key is made (before it runs)",
                "a field of the input, or a path into the result of a stage that runs before "
                f"{stage!r}",
            )
        elif self.runs_before(stage, ref):
            self.add(
                loc,
                f"cache_key_fields path {path!r} reads the result of {ref!r}, which runs after "
                f"{stage!r}, so it is never there when the cache key of {stage!r} is made",
                "a field of the input, or a path into the result of a stage that runs before "
                f"{stage!r}",
            )

    def check_parallel_group(self, name: str, stage: Mapping[str, Any]) -> None:
        """Warn about a `parallel_group` on a stage without `can_run_parallel: true`: the stage
        runs on its own, so the group does nothing for it."""
        group = stage.get("parallel_group")
        if not isinstance(group, str) or not group or flag_true(stage.get("can_run_parallel")):
            return
        members = [
            other
            for other, spec in self.stages.items()
            if other != name
            and spec.get("parallel_group") == group
            and flag_true(spec.get("can_run_parallel"))
        ]
        shown = ", ".join(repr(m) for m in members[:5]) + (" ..." if len(members) > 5 else "")
        with_others = f" with {shown}" if members else ""
        self.lints.append(
            Problem(
                ("stages", name, "parallel_group"),
                f"parallel_group {group!r} has no effect: stage {name!r} does not have "
                f"can_run_parallel: true, so it never runs in parallel{with_others}; write "
                "can_run_parallel: true to run it in the group, or remove parallel_group",
                "can_run_parallel: true beside parallel_group",
            )
        )

    def check_dead_stages(self) -> None:
        """Warn about each stage with `enabled: false` that no rule can enable: no
        `enable_stages` or `skip_to` of an enabled rule of a stage that may run names it (a
        stage that may run is enabled, or enabled so by such a rule)."""
        from cascadence.cascade.loader import format_loc

        disabled = {n for n, stage in self.stages.items() if flag_false(stage.get("enabled", True))}
        if not disabled:
            return
        # every rule that names a stage as enable_stages or skip_to target:
        # (its stage, its location, whether the rule is enabled) by the stage it enables
        enablers: dict[str, list[tuple[str, Loc, bool]]] = {}
        for name, stage in self.stages.items():
            rules = stage.get("routing_rules")
            for index, rule in enumerate(rules if isinstance(rules, list) else ()):
                action = rule.get("action") if isinstance(rule, Mapping) else None
                if not isinstance(action, Mapping):
                    continue
                targets: list[Any] = []
                if action.get("type") == "enable_stages":
                    targets = any_list(action.get("stages"))
                elif action.get("type") == "skip_to":  # runs its target, disabled or not
                    targets = [action.get("target")]
                active = not flag_false(rule.get("enabled", True))
                for target in targets:
                    if isinstance(target, str) and target in disabled:
                        rule_loc: Loc = ("stages", name, "routing_rules", index)
                        enablers.setdefault(target, []).append((name, rule_loc, active))
        live = set(self.stages) - disabled
        pending = list(live)
        while pending:
            runner = pending.pop()
            for target, rules in enablers.items():
                if target not in live and any(s == runner and on for s, _, on in rules):
                    live.add(target)
                    pending.append(target)
        for name in self.stages:
            if name in live:
                continue
            rules = enablers.get(name, [])
            if not rules:
                why = "no routing rule enables it (enable_stages or skip_to)"
            else:
                shown = ", ".join(format_loc(loc) for _, loc, _ in rules[:3])
                shown += " ..." if len(rules) > 3 else ""
                if not any(on for _, _, on in rules):
                    why = f"the only rules that enable it are disabled ({shown})"
                else:
                    why = f"only rules of stages that never run enable it ({shown})"
            self.lints.append(
                Problem(
                    ("stages", name, "enabled"),
                    f"stage {name!r} never runs: it is disabled (enabled: false) and {why}; "
                    f"enable it from a rule of a stage that runs before it (enable_stages: "
                    f"[{name}]), or remove it if it is switched off for good",
                    f"an enabled rule of a stage that runs, with an enable_stages action naming "
                    f"{name!r}; or enabled: true",
                )
            )

    def runs_before(self, first: str, second: str) -> bool:
        """Whether stage `first` comes before stage `second` in the order the engine runs
        them in: `execution_order`, or else `run_order`."""
        for position in self._positions:
            if first in position and second in position:
                return position[first] < position[second]
        return False

    @functools.cached_property
    def _positions(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each stage's place in `execution_order` (its first), and in `run_order`."""
        order = self.data.get("execution_order")
        listed: dict[str, int] = {}
        if isinstance(order, list):
            for index, name in enumerate(order):
                if isinstance(name, str):
                    listed.setdefault(name, index)
        runs = run_order(self.stages)
        return listed, {name: index for index, name in enumerate(runs)}

    def same_group(self, first: str, second: str) -> bool:
        """Whether two stages are members of one parallel group (their rules apply after the
        group, when every member's result is there)."""
        groups = []
        for name in (first, second):
            stage = self.stages[name]
            if not flag_true(stage.get("can_run_parallel")):
                return False
            groups.append(stage.get("parallel_group") or "__parallel__")
        return groups[0] == groups[1]

    def check_forward(self, stage: str, target: str, loc: Loc) -> None:
        if target == stage:
            self.add(
                loc, f"skip_to target {target!r} is the rule's own stage", "a stage that runs later"
            )
            return
        if self.runs_before(target, stage):
            self.add(
                loc,
                f"skip_to only jumps forward, but {target!r} runs before {stage!r}",
                "a stage that runs later",
            )

    def check_result_keys(self, compiled: CompiledCondition, loc: Loc) -> None:
        """Warn about a read of a stage result's key that is one letter off a key every
        result has (`stages.A.confidense`): it would read nothing. A key the handler returns
        itself is read as written, so this is a warning, not a problem."""
        for leaf in _leaves(compiled.node):
            if not isinstance(leaf, Compare) or not isinstance(leaf.value, str):
                continue
            parts = leaf.field.split(".")
            if len(parts) == 3 and parts[0] == "stages" and parts[2] in NUMERIC_RESULT_KEYS:
                number = _number(leaf.value)
                fix = f"; write {number!r} unquoted" if number is not None else ""
                self.warnings.append(
                    Problem(
                        loc,
                        f"{leaf.field!r} is a number, compared here with the string "
                        f"{leaf.value!r}: a comparison of a number with a string is a type "
                        f"mismatch, so this one is always false (also with '!='){fix}",
                    )
                )
        for path in sorted(compiled.fields):
            parts = path.split(".")
            if len(parts) < 3 or parts[0] != "stages" or parts[1] not in self.stages:
                continue
            key = parts[2]
            if key in RESULT_KEYS:
                continue
            hint = closest(key, RESULT_KEYS)
            if hint is not None:
                self.warnings.append(
                    Problem(
                        loc,
                        f"{path!r} reads {key!r}, which no stage result has unless its "
                        "handler returns it",
                        None,
                        hint,
                    )
                )

    def check_condition(self, raw: Any, loc: Loc) -> CompiledCondition | None:
        """Check one condition; return it compiled (None when it does not compile, or its
        place has a problem already).

        Every problem the condition has is reported at once: where field validation found some
        inside it already (a misspelt key), the others compiling finds (an unknown operator in
        a sibling) are added, each place reported once."""
        if not isinstance(raw, (str, Mapping)):
            return None
        reported = [known for known in self.known if known[: len(loc)] == loc]
        try:
            compiled = compile_condition(raw if isinstance(raw, str) else dict(raw))
        except ConditionSyntaxError as exc:
            places = [(*loc, *parse_path(issue.path)) for issue in exc.issues]
            done = [
                any(place[: len(known)] == known for known in reported) for place in places
            ]  # that place, or the part holding it, is reported already
            # a misspelt key reported already also stands for the key it is a misspelling of
            # (`operater` for a missing `operator`)
            meant = {
                (*place[:-1], issue.suggestion)
                for place, issue, already in zip(places, exc.issues, done)
                if already and issue.suggestion and place in reported
            }
            for place, issue, already in zip(places, exc.issues, done):
                if already or place in meant:
                    continue
                self.problems.append(
                    Problem(
                        place,
                        issue.message,
                        issue.expected,
                        issue.suggestion,
                        column=issue.column,
                        source_line=issue.source if issue.column is not None else None,
                    )
                )
            return None
        if reported:
            return None
        self.check_result_keys(compiled, loc)
        for ref in sorted(compiled.stage_refs):
            if ref in self.stages:
                continue
            problem = Problem(
                loc,
                f"unknown stage {ref!r} in stages.{ref}",
                _listing(self.names),
                closest(ref, self.names),
            )
            if isinstance(raw, str):
                at = raw.find(f"stages.{ref}")
                if at >= 0:
                    problem = Problem(
                        loc,
                        problem.message,
                        problem.expected,
                        problem.suggestion,
                        column=at + 1,
                        source_line=raw,
                    )
            else:
                problem = Problem(
                    _field_loc(raw, ref, loc) or loc,
                    problem.message,
                    problem.expected,
                    problem.suggestion,
                )
            self.problems.append(problem)
        return compiled

    def check_cycles(self) -> None:
        reported: set[tuple[str, ...]] = set()
        state: dict[str, int] = {}  # 1 on the current path, 2 finished
        path: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            path.append(name)
            for dep in self.deps[name]:
                if state.get(dep) == 1:
                    cycle = path[path.index(dep) :]
                    turn = cycle.index(min(cycle))
                    canonical = tuple(cycle[turn:] + cycle[:turn])
                    if canonical not in reported:
                        reported.add(canonical)
                        shown = " -> ".join([*canonical, canonical[0]])
                        self.add(
                            ("stages", canonical[0], "depends_on"),
                            f"dependency cycle: {shown}",
                            "depends_on without cycles (A -> B reads 'A depends on B')",
                        )
                elif dep not in state:
                    visit(dep)
            path.pop()
            state[name] = 2

        for name in self.stages:
            if name not in state:
                visit(name)

    def check_execution_order(self) -> None:
        order = self.data.get("execution_order")
        if not isinstance(order, list):
            return
        position: dict[str, int] = {}
        for index, name in enumerate(order):
            loc: Loc = ("execution_order", index)
            if not self.unknown_stage(loc, name, "execution_order"):
                continue
            if name in position:
                self.add(
                    loc,
                    f"stage {name!r} is listed twice in execution_order "
                    f"(first at execution_order[{position[name]}])",
                    "every stage exactly once",
                )
            else:
                position[name] = index
        for name, index in position.items():
            for dep in self.deps[name]:
                if position.get(dep, -1) > index:
                    self.add(
                        ("execution_order", index),
                        f"{name!r} comes before {dep!r}, which it depends on",
                        f"{dep!r} listed before {name!r}",
                    )
        for name in self.names:
            if name not in position:
                self.add(
                    ("execution_order",),
                    f"stage {name!r} is missing from execution_order",
                    "every stage exactly once",
                )


def _field_loc(raw: Mapping[str, Any], ref: str, loc: Loc) -> Loc | None:
    """The location of the first `field` in a structured condition that reads `stages.ref`."""
    field = raw.get("field")
    if isinstance(field, str) and (field == f"stages.{ref}" or field.startswith(f"stages.{ref}.")):
        return (*loc, "field")
    inner = raw.get("conditions")
    if isinstance(inner, list):
        for index, item in enumerate(inner):
            if isinstance(item, Mapping):
                found = _field_loc(item, ref, (*loc, "conditions", index))
                if found:
                    return found
    item = raw.get("condition")
    if isinstance(item, Mapping):
        return _field_loc(item, ref, (*loc, "condition"))
    return None


def check_config(
    data: Mapping[str, Any],
    *,
    known: Collection[Loc] = (),
    warnings: list[Problem] | None = None,
    lints: list[Problem] | None = None,
) -> list[Problem]:
    """Every cross-reference problem of a config's plain data.

    Args:
        data: The config as plain data (mappings, lists, scalars).
        known: Locations already reported by field validation; a condition containing one
            adds only its other problems (and no cross-reference checks), so each problem is
            reported once.
        warnings: Gets what loads but is likely a mistake.
        lints: Gets what is legal and sometimes meant but often a slip (a `parallel_group`
            without `can_run_parallel`, a disabled stage no rule enables): `cascadence
            validate` reports these; loading a config in a program does not warn about them.
    """
    checker = _Checker(data, known)
    problems = checker.run()
    if warnings is not None:
        warnings.extend(checker.warnings)
    if lints is not None:
        lints.extend(checker.lints)
    return problems
