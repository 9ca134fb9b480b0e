"""The order a cascade's stages are considered in when no `execution_order` is given.

`dependency_order` is the stable topological sort of `depends_on`; `run_order` adds the order
routing implies (a stage a rule enables, disables or skips to comes after the rule's stage, a
stage a condition cannot hold without comes before it), only where `depends_on` allows.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from cascadence.cascade.raw import any_list, flag_true, part, str_list
from cascadence.conditions import ConditionSyntaxError, parse_condition
from cascadence.conditions.compiler import field_path
from cascadence.conditions.paths import stage_name
from cascadence.conditions.tree import Compare, Exists, Logical, Membership, Pattern, Truthy

__all__ = ["dependency_order", "required_stages", "run_order"]


def required_stages(node: Any) -> set[str]:
    """The stages a condition cannot be true without: those read by a comparison that every
    way for the condition to hold goes through (joined by AND only, never under OR, NOT or a
    list test), where a missing result makes the comparison false."""
    required: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Logical):
            if current.op == "AND":
                pending.extend(current.conditions)
            continue
        strict = isinstance(current, (Compare, Pattern, Truthy)) or (
            isinstance(current, (Exists, Membership)) and current.op in ("EXISTS", "IN")
        )
        if strict:
            stage = stage_name(field_path(current.field))
            if stage is not None:
                required.add(stage)
    return required


def dependency_order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """The stable topological sort of `depends_on` alone: repeatedly, the first declared stage
    whose dependencies have all been placed (on a cycle, which validation reports, the rest
    keep declaration order). `run_order` adds the order routing rules imply."""
    return _first_ready(list(depends_on), _before(depends_on))


def run_order(stages: Mapping[str, Any]) -> list[str]:
    """The order the engine runs stages in without `execution_order`.

    A stable topological sort by declaration order: repeatedly, the first declared stage
    whose predecessors have all been placed. A stage's predecessors are its `depends_on`, and
    the stages that routing implies come first:

    - a rule of stage S whose action enables, disables or skips to stage T puts T after S;
    - a rule of stage S whose condition cannot hold without `stages.X...` (a comparison that
      every way for it to hold goes through) puts X before S, and so does a
      `cache_key_fields` path `stages.X...` of S.

    These routing edges are soft: they are taken in declaration order (stage, then its
    rules, then its `cache_key_fields`), each only when it forms no cycle with `depends_on`
    and the edges taken before it; one that would is left out, and validation reports the
    rule as it stands. None joins two members of one parallel group (their rules apply
    after the whole group ran), and none is taken when `depends_on` has a cycle. Where
    routing agrees with the order of `depends_on` alone (`dependency_order`), the order is
    that one.

    Args:
        stages: Stage name -> the stage, as plain data (`depends_on`, `routing_rules`, ...)
            or a `StageConfig`.
    """
    names = [name for name in stages if isinstance(name, str)]
    known = set(names)
    depends_on = {
        name: [d for d in str_list(part(stages[name], "depends_on")) if d in known]
        for name in names
    }
    before = _before(depends_on)
    order = _first_ready(names, before)
    place = {name: index for index, name in enumerate(order)}
    if any(place[d] >= place[n] for n in names for d in before[n]):
        return order  # a cycle of depends_on: validation reports it; routing adds nothing
    for first, then in _routing_edges(stages, known):
        if place[first] < place[then]:  # the order has it already: no cycle, no change
            before[then].add(first)
        elif not _reaches(then, first, before):  # else it would close a cycle: left out
            before[then].add(first)
            order = _first_ready(names, before)
            place = {name: index for index, name in enumerate(order)}
    return order


def _before(depends_on: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Each stage's predecessors: its dependencies that are stages."""
    return {name: {d for d in deps if d in depends_on} for name, deps in depends_on.items()}


def _first_ready(names: list[str], before: Mapping[str, set[str]]) -> list[str]:
    """The lexicographically smallest order (by position in `names`) that puts each stage
    after its predecessors in `before`; on a cycle, the stages left keep their order."""
    position = {name: index for index, name in enumerate(names)}
    waiting = {name: len(before[name]) for name in names}
    after: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for first in before[name]:
            after[first].append(name)
    ready = [position[name] for name in names if not waiting[name]]
    heapq.heapify(ready)
    placed: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        placed.append(name)
        for later in after[name]:
            waiting[later] -= 1
            if not waiting[later]:
                heapq.heappush(ready, position[later])
    if len(placed) < len(names):
        done = set(placed)
        placed.extend(name for name in names if name not in done)
    return placed


def _reaches(start: str, goal: str, before: Mapping[str, set[str]]) -> bool:
    """Whether `goal` must come after `start` by the edges in `before` (it is reached
    following the edges forward, without recursion)."""
    after: dict[str, list[str]] = {}
    for name, firsts in before.items():
        for first in firsts:
            after.setdefault(first, []).append(name)
    seen = {start}
    pending = [start]
    while pending:
        for nxt in after.get(pending.pop(), ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                pending.append(nxt)
    return False


def _group(stage: Any) -> str | None:
    """The parallel group a stage runs in (as the plan forms them), or None."""
    if not flag_true(part(stage, "can_run_parallel")):
        return None
    group = part(stage, "parallel_group")
    return group if isinstance(group, str) and group else "__parallel__"


def _routing_edges(stages: Mapping[Any, Any], known: Collection[str]) -> list[tuple[str, str]]:
    """The (first, then) pairs routing implies, in declaration order (see `run_order`),
    without those joining members of one parallel group."""
    edges: list[tuple[str, str]] = []
    for name, stage in stages.items():
        if not isinstance(name, str):
            continue
        rules = part(stage, "routing_rules")
        for rule in rules if isinstance(rules, list) else ():
            for ref in _read_first(part(rule, "condition")):
                edges.append((ref, name))
            action = part(rule, "action")
            kind = part(action, "type")
            targets: list[Any] = []
            if kind in ("enable_stages", "disable_stages"):
                targets = any_list(part(action, "stages"))
            elif kind == "skip_to":
                targets = [part(action, "target")]
            edges.extend((name, target) for target in targets if isinstance(target, str))
        for path in str_list(part(stage, "cache_key_fields")):
            parts = path.split(".")
            if len(parts) >= 2 and parts[0] == "stages" and "" not in parts:
                edges.append((parts[1], name))
    groups = {name: _group(stages[name]) for name in known}
    return [
        (first, then)
        for first, then in edges
        if first != then
        and first in known
        and then in known
        and (groups[first] is None or groups[first] != groups[then])
    ]


def _read_first(condition: Any) -> list[str]:
    """The stages a condition cannot hold without (see `required_stages`), sorted; none for
    a condition that does not parse (validation reports it).

    A plan is built again on every `register_stage` and reload: the answer for a condition
    model or string seen before is remembered (by identity for models, which are frozen, with
    the model kept alive so its id stays its own)."""
    key: Any = condition if isinstance(condition, str) else id(condition)
    known = _READ_FIRST.get(key)
    if known is not None and (isinstance(condition, str) or known[0] is condition):
        return known[1]
    found = _parse_read_first(condition)
    if isinstance(condition, (str, BaseModel)):
        if len(_READ_FIRST) >= 4096:
            _READ_FIRST.clear()
        _READ_FIRST[key] = (condition, found)
    return found


_READ_FIRST: dict[Any, tuple[Any, list[str]]] = {}


def _parse_read_first(condition: Any) -> list[str]:
    if isinstance(condition, BaseModel):
        condition = condition.model_dump(exclude_unset=True)
    if not isinstance(condition, (str, Mapping)):
        return []
    try:
        node = parse_condition(condition if isinstance(condition, str) else dict(condition))
    except ConditionSyntaxError:
        return []
    return sorted(required_stages(node))
