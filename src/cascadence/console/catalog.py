"""What the console shows of cascades and flows: plain, JSON-ready descriptions.

A cascade is given as a `CascadeEngine` (described as it runs now: a hot reload shows at once,
with its statistics and circuit breakers), a `CascadeConfig`, or the path of a cascade file. A
flow is a `Cadence`. Descriptions are built when asked for, so they are never stale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cascadence.errors import closest

__all__ = ["Catalog", "CatalogEntry", "UnknownEntryError"]


@dataclass(frozen=True)
class CatalogEntry:
    """One cascade or flow the console shows.

    Attributes:
        kind: `"cascade"` or `"flow"`.
        name: The name it is listed under (its own name unless given another).
        target: The engine, config or flow.
    """

    kind: str
    name: str
    target: Any


class UnknownEntryError(LookupError):
    """No cascade or flow of that name; the message names the closest one."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        names = sorted(known)
        hint = closest(name, names)
        message = f"no {kind} named {name!r}"
        message += (
            f"; did you mean {hint!r}?" if hint else f" (known: {', '.join(names) or 'none'})"
        )
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.suggestion = hint

    def __str__(self) -> str:
        return str(self.args[0])


def _kind_and_target(obj: Any) -> tuple[str, Any]:
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.flow.cadence import Cadence

    if isinstance(obj, Cadence):
        return "flow", obj
    if isinstance(obj, (CascadeEngine, CascadeConfig)):
        return "cascade", obj
    if isinstance(obj, (str, os.PathLike)):
        return "cascade", CascadeConfig.from_file(obj)
    raise TypeError(
        "the console shows a CascadeEngine, a CascadeConfig, the path of a cascade file or a "
        f"Cadence flow; got {type(obj).__name__}"
    )


class Catalog:
    """The cascades and flows of one console, by kind and name."""

    def __init__(self, items: Iterable[Any] | Mapping[str, Any] = ()) -> None:
        self._entries: dict[tuple[str, str], CatalogEntry] = {}
        if isinstance(items, Mapping):
            for name, obj in items.items():
                self.add(obj, name=name)
        else:
            for obj in items:
                self.add(obj)

    def add(self, obj: Any, *, name: str | None = None) -> CatalogEntry:
        """Add a cascade (engine, config or file path) or a flow.

        Raises:
            TypeError: `obj` is none of those.
            ValueError: Another cascade or flow is listed under the `name` given. Without one,
                a taken name gets the cascade's version (`name@2.0`), then a number.
            ConfigError: A cascade file does not load.
        """
        kind, target = _kind_and_target(obj)
        if name is not None:
            if (kind, name) in self._entries:
                raise ValueError(f"the console already shows a {kind} named {name!r}")
            listed = name
        else:
            listed = self._free_name(kind, target)
        entry = CatalogEntry(kind, listed, target)
        self._entries[(kind, listed)] = entry
        return entry

    def _free_name(self, kind: str, target: Any) -> str:
        """The target's own name; for a second version of a cascade `name@version`, and a
        number after that while the name is taken."""
        own = _own_name(target)
        candidates = [own]
        version = getattr(getattr(target, "config", target), "version", None)
        if kind == "cascade" and version is not None:
            candidates.append(f"{own}@{version}")
        for candidate in candidates:
            if (kind, candidate) not in self._entries:
                return candidate
        number = 2
        while (kind, f"{candidates[-1]}#{number}") in self._entries:
            number += 1
        return f"{candidates[-1]}#{number}"

    def entries(self, kind: str | None = None) -> list[CatalogEntry]:
        """Entries in the order they were added, of one kind or all."""
        return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def get(self, kind: str, name: str) -> CatalogEntry:
        """The entry of that kind and name.

        Raises:
            UnknownEntryError: None (the message names the closest).
        """
        try:
            return self._entries[(kind, name)]
        except KeyError:
            raise UnknownEntryError(kind, name, (e.name for e in self.entries(kind))) from None

    def describe(self, entry: CatalogEntry) -> dict[str, Any]:
        """The entry as plain data: see `describe_cascade` and `describe_flow`."""
        if entry.kind == "flow":
            return describe_flow(entry.target, entry.name)
        return describe_cascade(entry.target, entry.name)


def _own_name(target: Any) -> str:
    config = getattr(target, "config", target)
    return str(getattr(config, "name", None) or getattr(target, "name", "unnamed"))


# -- cascades ------------------------------------------------------------------------------------
def _condition_text(condition: Any) -> str:
    from cascadence.conditions import parse_condition, to_expression

    if isinstance(condition, str):
        raw: Any = condition
    else:
        raw = condition.to_dict()
    try:
        return to_expression(parse_condition(raw))
    except Exception:  # a config that loaded always parses; keep the page up regardless
        return str(raw)


def _action_text(action: Any) -> str:
    kind = str(action.type)
    if kind == "skip_to":
        return f"skip_to {action.target}"
    if kind in ("enable_stages", "disable_stages"):
        return f"{kind} {', '.join(action.stages or [])}"
    if kind == "set_field":
        return f"set_field {action.field} = {action.value!r}"
    return kind


def _handler_name(fn: Any) -> str | None:
    if fn is None:
        return None
    inner = getattr(fn, "__wrapped__", fn)
    module = getattr(inner, "__module__", None)
    qualname = getattr(inner, "__qualname__", None) or type(inner).__name__
    return f"{module}:{qualname}" if module else str(qualname)


def _breaker_state(engine: Any, stage: str) -> str | None:
    breaker = engine.breaker(stage)
    if breaker is None:
        return None
    try:
        return str(breaker.state.value)
    except Exception as exc:  # a shared breaker whose store cannot be reached
        return f"unknown ({type(exc).__name__})"


def describe_cascade(target: Any, name: str | None = None) -> dict[str, Any]:
    """A cascade as plain data: its settings, stages, rules (conditions as expressions) and
    Mermaid diagram; for an engine also its statistics, bound handlers and breaker states."""
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.diagrams import to_mermaid

    engine = target if isinstance(target, CascadeEngine) else None
    config = engine.config if engine is not None else target
    bound: dict[str, Any] = {}
    stats: dict[str, dict[str, Any]] = {}
    if engine is not None:
        bound = {stage.name: stage.fn for stage in engine.plan.stages}
        stats = engine.get_statistics()
    stages = []
    for stage_name in config.ordered_stage_names():
        stage = config.stage(stage_name)
        rules = [
            {
                "name": rule.name,
                "type": str(rule.type),
                "priority": rule.priority,
                "enabled": rule.enabled,
                "condition": _condition_text(rule.condition),
                "action": _action_text(rule.action),
            }
            for rule in stage.routing_rules
        ]
        rules.sort(key=lambda r: -int(r["priority"]))
        item: dict[str, Any] = {
            "name": stage.name,
            "enabled": stage.enabled,
            "cost": stage.cost,
            "timeout_ms": stage.timeout_ms,
            "max_retries": stage.max_retries,
            "depends_on": list(stage.depends_on),
            "parallel_group": stage.parallel_group if stage.can_run_parallel else None,
            "cache_enabled": stage.cache_enabled,
            "handler": stage.handler or _handler_name(bound.get(stage.name)),
            "circuit_breaker": stage.circuit_breaker is not None,
            "description": stage.description,
            "rules": rules,
        }
        if engine is not None:
            item["bound"] = bound.get(stage.name) is not None
            item["breaker_state"] = _breaker_state(engine, stage.name)
            item["statistics"] = stats.get(stage.name)
        stages.append(item)
    return {
        "kind": "cascade",
        "name": name or config.name,
        "config_name": config.name,
        "version": config.version,
        "description": config.description,
        "source_file": config.source_file,
        "running": engine is not None,
        "global_timeout_ms": config.global_timeout_ms,
        "max_parallel_stages": config.max_parallel_stages,
        "stages": stages,
        "rule_count": sum(len(stage["rules"]) for stage in stages),
        "mermaid": to_mermaid(target),
    }


# -- flows ---------------------------------------------------------------------------------------
def _policy(policy: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if policy.timeout is not None:
        out["timeout_s"] = policy.timeout
    if policy.retry is not None:
        out["retry"] = {
            "max_attempts": policy.retry.max_attempts,
            "delay_s": policy.retry.delay,
            "backoff": policy.retry.backoff,
        }
    if policy.fallback is not None:
        out["fallback"] = True
    if policy.breaker is not None:
        out["circuit_breaker"] = {"name": policy.breaker.name, "state": str(policy.breaker.state)}
    if policy.cache is not None:
        out["cache"] = True
    return out


def _node(node: Any) -> dict[str, Any]:
    from cascadence.runtime.plan import BranchNode, ChildNode, ParallelNode, StepNode

    if isinstance(node, StepNode):
        kind = "cascade" if node.is_cascade else "note"
        return {"kind": kind, "name": node.name, "policy": _policy(node.policy)}
    if isinstance(node, ParallelNode):
        return {
            "kind": "sync",
            "name": node.name,
            "merge": node.merge_label,
            "tasks": [_node(task) for task in node.tasks],
        }
    if isinstance(node, BranchNode):
        return {
            "kind": "split",
            "name": node.name,
            "condition": node.label or _handler_name(node.condition),
            "if_true": [_node(n) for n in node.if_true],
            "if_false": [_node(n) for n in node.if_false],
        }
    if isinstance(node, ChildNode):
        return {
            "kind": "child",
            "name": node.name,
            "flow": node.plan.name,
            "steps": [_node(n) for n in node.plan.nodes],
        }
    return {"kind": type(node).__name__, "name": getattr(node, "name", "?")}


def describe_flow(flow: Any, name: str | None = None) -> dict[str, Any]:
    """A flow as plain data: its steps (groups, branches and child flows nested) and Mermaid
    diagram."""
    from cascadence.diagrams import to_mermaid

    plan = flow.plan
    return {
        "kind": "flow",
        "name": name or plan.name,
        "flow_name": plan.name,
        "score": type(flow.score).__name__ if getattr(flow, "score", None) is not None else None,
        "stop_on_error": plan.stop_on_error if plan.on_error is not None else None,
        "steps": [_node(node) for node in plan.nodes],
        "mermaid": to_mermaid(flow),
    }
