"""Compile a `CascadeConfig` into a `runtime.CascadePlan`.

Conditions are compiled here, once; policies are built from the stage fields; the stage order
comes from `execution_order`, or else a stable topological sort of `depends_on` and of the
order routing rules imply (`order.run_order`). A config changed in place after it was
validated is checked again first (`settled_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from cascadence.cascade.config import CascadeConfig, Condition, RoutingRule, StageConfig
from cascadence.cascade.order import run_order
from cascadence.cascade.validate import Loc, check_config
from cascadence.conditions import CompiledCondition, compile_condition
from cascadence.errors import ConfigError, ConfigIssue, closest
from cascadence.policies.cache import ResultCache, key_or_none
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.retry import RetryPolicy
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.clock import Clock
from cascadence.runtime.invoke import AsyncHandler
from cascadence.runtime.plan import CascadePlan, RulePlan, StagePlan, stage_mask

__all__ = ["compile_cascade", "settled_config", "stage_order"]


def stage_cache_key(fields: tuple[str, ...]) -> Callable[[Any], Hashable]:
    """The cache key of a stage's run, from its `ExecutionContext`: the values of
    `cache_key_fields` (dot paths of the input, or `stages.NAME.data.x`-style paths), or else
    the whole input and the decisions of the stages before it (their `result` and
    `confidence`: the same input after another decision is another key). A run whose key
    cannot be built (data that contains itself) is not cached."""
    if fields:

        def by_fields(ctx: Any) -> Hashable:
            return key_or_none([ctx.get(path) for path in fields])

        return by_fields

    def key(ctx: Any) -> Hashable:
        results = ctx.stage_results
        if not results:
            return key_or_none(ctx.data)
        earlier = [
            (name, r.get("result"), r.get("confidence"))
            for name, r in results.items()
            if isinstance(r, dict)
        ]
        return key_or_none([ctx.data, earlier])

    return key


def stage_order(config: CascadeConfig) -> list[str]:
    """The order stages are considered in: `execution_order`, else `run_order` (declaration
    order, moved after dependencies and after the stages routing implies come first)."""
    if config.execution_order:
        return list(config.execution_order)
    return run_order(config.stages)


Compile = Callable[[Any], CompiledCondition]
"""Compiles a condition (`compile_condition`, or a `ConditionEvaluator`'s cached `compile`)."""


def _rule(
    rule: RoutingRule | Any,
    name: str,
    rule_type: str,
    priority: int,
    bits: Mapping[str, int],
    compile: Compile = compile_condition,
    owner: str | None = None,
) -> RulePlan:
    compiled = compile(_condition_source(rule.condition))
    action = rule.action
    stages = tuple(action.stages or ())
    return RulePlan(
        name=name,
        type=rule_type,
        priority=priority,
        test=compiled.fn,
        condition=compiled,
        action=action.type,
        target=action.target,
        stages=stages,
        mask=stage_mask(stages, bits),
        field=action.field,
        value=action.value,
        reason=action.reason,
        owner=owner,
    )


def _condition_source(condition: Any) -> Any:
    if isinstance(condition, str):
        return condition
    if hasattr(condition, "model_dump"):
        return condition.to_dict()
    return condition


def _termination(index: int, condition: Any, compile: Compile = compile_condition) -> RulePlan:
    compiled = compile(_condition_source(condition))
    return RulePlan(
        name=f"termination_conditions[{index}]",
        type="termination",
        priority=0,
        test=compiled.fn,
        condition=compiled,
        action="terminate",
    )


def _by_priority(
    rules: list[RoutingRule],
    rule_type: str,
    bits: Mapping[str, int],
    compile: Compile,
    owner: str,
) -> tuple[RulePlan, ...]:
    chosen = [r for r in rules if r.type == rule_type and r.enabled]
    chosen.sort(key=lambda r: -r.priority)  # stable: equal priorities keep file order
    return tuple(_rule(r, r.name, r.type, r.priority, bits, compile, owner) for r in chosen)


def _no_handler(name: str, handlers: Mapping[str, Any], config: CascadeConfig) -> str:
    """What the result of a stage without a handler says: the stage, how to register one,
    and the handler registered under a name no stage has any more when it is close."""
    text = (
        f"no handler for stage {name!r}: register one with engine.register_stage({name!r}, "
        "handler), or set `handler: 'package.module:function'` on the stage"
    )
    strays = [other for other in handlers if other not in config.stages]
    hint = closest(name, strays)
    if hint is not None:
        text += (
            f"; the handler registered for {hint!r} serves no stage of version "
            f"{config.version!r}: if it is meant for {name!r}, register it as {name!r}"
        )
    return text


def _policy(
    stage: StageConfig,
    clock: Clock,
    keep: Callable[[str, str, Callable[[], Any]], Any],
    cascade: str = "",
    breaker_store: Any = None,
) -> StepPolicy:
    retry = None
    if stage.max_retries > 0:
        retry = RetryPolicy(
            max_attempts=stage.max_retries + 1,
            delay=stage.retry_delay_ms / 1000.0,
            backoff=stage.retry_backoff,
            multiplier=stage.retry_backoff_multiplier,
            max_delay=(
                stage.retry_max_delay_ms / 1000.0 if stage.retry_max_delay_ms is not None else None
            ),
        )
    cache = None
    if stage.cache_enabled:
        ttl = float(stage.cache_ttl_seconds)
        fields = tuple(stage.cache_key_fields or ())
        cache = keep(
            stage.name,
            f"cache:{ttl}:{fields}",
            lambda: ResultCache(ttl=ttl, key=stage_cache_key(fields), clock=clock),
        )
    breaker = None
    if stage.circuit_breaker is not None:
        cb = stage.circuit_breaker
        breaker = keep(
            stage.name,
            f"breaker:{cb.failure_threshold}:{cb.reset_timeout_seconds}",
            lambda: CircuitBreaker(
                f"{cascade}:{stage.name}" if cascade else stage.name,
                cb.failure_threshold,
                cb.reset_timeout_seconds,
                clock=clock,
                store=breaker_store,
            ),
        )
    timeout = stage.timeout_ms / 1000.0 if stage.timeout_ms is not None else None
    return StepPolicy(timeout=timeout, retry=retry, cache=cache, breaker=breaker, clock=clock)


def compile_cascade(
    config: CascadeConfig,
    handlers: Mapping[str, AsyncHandler],
    clock: Clock,
    keep: Callable[[str, str, Callable[[], Any]], Any],
    policies: Mapping[str, StepPolicy] | None = None,
    breaker_store: Any = None,
    compile: Compile = compile_condition,
) -> CascadePlan:
    """Build the executable plan of `config` with the given handlers.

    Args:
        config: A validated cascade configuration.
        handlers: Async handlers by stage name (a stage without one gets `fn=None` and the
            error its result records if it has to run).
        clock: Time source for retries, caches and breakers.
        keep: Returns the stateful object (cache, breaker) stored under (stage, key), creating
            it with the factory the first time, so state survives a hot reload.
        policies: Extra policies per stage (from plugins or decorators), merged over the
            config's own.
        breaker_store: Where circuit breakers keep their state (None: in this process); a
            shared store makes every engine of the same cascade open and close together.
        compile: Compiles each condition (a `ConditionEvaluator.compile` shares the compiled
            form of conditions written more than once).
    """
    if not _well_typed(config):  # changed in place: convert, or say what is wrong
        config = settled_config(config)
    plans: list[StagePlan] = []
    order = stage_order(config)
    bits = {name: 1 << index for index, name in enumerate(order)}
    for index, name in enumerate(order):
        stage = config.stages[name]
        policy = _policy(stage, clock, keep, config.name, breaker_store)
        if policies and name in policies:
            policy = policy.merged(policies[name])
        group = (stage.parallel_group or "__parallel__") if stage.can_run_parallel else None
        rules = list(stage.routing_rules)
        plans.append(
            StagePlan(
                name=name,
                index=index,
                fn=handlers.get(name),
                policy=policy,
                cost=float(stage.cost),
                depends_on=tuple(stage.depends_on),
                deps_mask=stage_mask(stage.depends_on, bits),
                group=group,
                enabled=stage.enabled,
                stop_on_failure=stage.stop_on_failure,
                pre_rules=_by_priority(rules, "precondition", bits, compile, name),
                post_rules=(
                    _by_priority(rules, "routing", bits, compile, name)
                    + _by_priority(rules, "postcondition", bits, compile, name)
                ),
                handler_path=stage.handler,
                properties=dict(stage.custom_properties),
                no_handler=None if name in handlers else _no_handler(name, handlers, config),
            )
        )
    return CascadePlan(
        name=config.name,
        version=str(config.version),
        stages=tuple(plans),
        global_timeout=(
            config.global_timeout_ms / 1000.0 if config.global_timeout_ms is not None else None
        ),
        max_parallel=config.max_parallel_stages,
        termination=tuple(
            _termination(i, c, compile) for i, c in enumerate(config.termination_conditions)
        ),
        stop_on_failure=config.stop_on_failure,
        source=config,
        ordered=bool(config.execution_order),
    )


# -- a config changed in place --------------------------------------------------------------

_RULE_EXPECTED = (
    "a RoutingRule, a mapping of its fields (name, condition, action), or an object whose "
    "routing_rules() returns them (a learned GeneratedRule); merge_rules(config, rules) from "
    "cascadence.learning makes the next version with learned rules"
)


def _config_data(config: CascadeConfig) -> dict[str, Any]:
    """`config` as plain data, as the checks of a loaded file read it, with what was changed
    in place: the lists a stage or the config had by default (`routing_rules`,
    `depends_on`, `termination_conditions`) and then filled are there too."""
    from cascadence.cascade.nesting import plain_data

    data: dict[str, Any] = plain_data(config)
    stages = data.get("stages")
    for key, stage in config.stages.items():
        plain = stages.get(key) if isinstance(stages, dict) else None
        if not isinstance(stage, StageConfig) or not isinstance(plain, dict):
            continue
        for field in ("depends_on", "routing_rules"):
            value = getattr(stage, field)
            if value and field not in stage.model_fields_set:
                plain[field] = plain_data(value)
    if config.termination_conditions and "termination_conditions" not in config.model_fields_set:
        data["termination_conditions"] = plain_data(config.termination_conditions)
    return data


def settled_config(config: CascadeConfig) -> CascadeConfig:
    """`config` as a plan is built from it.

    pydantic validates a config when it is built, not when its lists and dicts are changed in
    place afterwards (`config.stages["A"].routing_rules.append(...)`). So every part a plan
    reads is checked again: a routing rule given as a mapping is validated into a
    `RoutingRule`; an object with a `routing_rules()` method (a learned `GeneratedRule`)
    stands for the rules it returns; a stage given as a mapping is validated into a
    `StageConfig`, a termination condition into a `Condition`; stage names in `depends_on`
    and `execution_order` must be strings. Then the checks across the whole config (stage
    names, order, cycles) run as loading runs them, over the rules added too.

    Args:
        config: The config, possibly changed in place since it was validated.

    Returns:
        The config to build the plan from: `config` itself when no part had to be converted.

    Raises:
        ConfigError: Every problem, each at its path (`stages.A.routing_rules[2]`), naming
            what was found there and what is expected.
    """
    issues: list[ConfigIssue] = []
    known: list[Loc] = []
    origins: dict[str, list[tuple[int, str]]] = {}  # per stage: where each rule came from
    stages: dict[str, StageConfig] = {}
    changed = False
    entries: Mapping[Any, Any] = config.stages  # changed in place: anything may be there
    for key, stage in list(entries.items()):
        if not isinstance(key, str):
            issues.append(
                _at(("stages",), f"stage key {key!r} is not a string", "stage names as keys")
            )
            continue
        fixed = _settled_stage(key, stage, issues, known, origins)
        if fixed is not None:
            stages[key] = fixed
            changed = changed or fixed is not stage
    if not config.stages:
        issues.append(_at(("stages",), "the cascade has no stage", "at least one stage"))
    order = config.execution_order
    if order is not None:
        _names(order, ("execution_order",), "execution_order", issues)
    update: dict[str, Any] = {"stages": stages} if changed else {}
    terminations = [
        _settled_condition(raw, ("termination_conditions", index), issues)
        for index, raw in enumerate(config.termination_conditions)
    ]
    if any(new is not old for new, old in zip(terminations, config.termination_conditions)):
        update["termination_conditions"] = terminations
    settled = config.model_copy(update=update) if update else config
    for problem in check_config(_config_data(settled), known=known):
        loc, note = _origin(problem.loc, origins)
        issues.append(
            _at(
                loc,
                note + problem.message,
                problem.expected,
                problem.suggestion,
                column=problem.column,
                source_line=problem.source_line,
            )
        )
    if issues:
        raise ConfigError(issues)
    return settled


def _well_typed(config: CascadeConfig) -> bool:
    """Whether every part a plan reads has the type validation gives it (a quick look, not a
    check of the values)."""
    stages: Mapping[str, Any] = config.stages
    for stage in stages.values():
        if not isinstance(stage, StageConfig):
            return False
        rules: list[Any] = stage.routing_rules
        for rule in rules:
            if not isinstance(rule, RoutingRule):
                return False
            if rule.action.stages and not all(isinstance(t, str) for t in rule.action.stages):
                return False
        if not all(isinstance(name, str) for name in stage.depends_on):
            return False
        if stage.cache_key_fields and not all(isinstance(p, str) for p in stage.cache_key_fields):
            return False
    order = config.execution_order or ()
    return all(isinstance(name, str) for name in order) and all(
        isinstance(c, (str, Condition)) for c in config.termination_conditions
    )


def _at(
    loc: Loc, message: str, expected: str | None = None, suggestion: str | None = None, **more: Any
) -> ConfigIssue:
    from cascadence.cascade.loader import format_loc

    return ConfigIssue(
        path=format_loc(loc), message=message, expected=expected, suggestion=suggestion, **more
    )


def _under(exc: ConfigError, loc: Loc, note: str = "") -> list[ConfigIssue]:
    """The issues of a part validated on its own, placed at `loc` in the whole config."""
    from cascadence.cascade.loader import format_loc

    base = format_loc(loc)
    return [
        dataclasses.replace(
            issue,
            path=base
            + (issue.path if not issue.path or issue.path[0] == "[" else "." + issue.path),
            message=note + issue.message,
        )
        for issue in exc.issues
    ]


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _origin(loc: Loc, origins: Mapping[str, list[tuple[int, str]]]) -> tuple[Loc, str]:
    """Where a problem found in the settled config is in the config as changed: a rule's
    index before the rules an object stood for were put in its place, and a note naming
    which of them it is."""
    if len(loc) >= 4 and loc[0] == "stages" and loc[2] == "routing_rules":
        came = origins.get(str(loc[1]))
        if came is not None and isinstance(loc[3], int) and loc[3] < len(came):
            index, note = came[loc[3]]
            return (*loc[:3], index, *loc[4:]), note
    return loc, ""


def _settled_stage(
    key: str,
    stage: Any,
    issues: list[ConfigIssue],
    known: list[Loc],
    origins: dict[str, list[tuple[int, str]]],
) -> StageConfig | None:
    """The stage under `key` as a `StageConfig` (the same object when it needs nothing), or
    None with its problems in `issues`."""
    loc: Loc = ("stages", key)
    if isinstance(stage, StageConfig):
        rules = _settled_rules(key, stage.routing_rules, issues, known, origins)
        for index, rule in enumerate(stage.routing_rules):
            targets = rule.action.stages if isinstance(rule, RoutingRule) else None
            if targets:
                at: Loc = (*loc, "routing_rules", index, "action", "stages")
                _names(targets, at, f"{rule.action.type} stages", issues)
        _names(stage.depends_on, (*loc, "depends_on"), "depends_on", issues)
        paths: list[Any] = stage.cache_key_fields or []
        for index, path in enumerate(paths):
            if not isinstance(path, str):
                issues.append(
                    _at(
                        (*loc, "cache_key_fields", index),
                        f"cache_key_fields holds {_shown(path)}, not a path",
                        "a dot path (a str), such as 'user.id'",
                    )
                )
        if rules is stage.routing_rules:
            return stage
        return stage.model_copy(update={"routing_rules": rules})
    if stage is None or isinstance(stage, Mapping):
        data = {"name": key, **dict(stage or {})}  # in `stages`, the name defaults to the key
        given = data.get("routing_rules")
        if isinstance(given, list):
            data["routing_rules"] = _settled_rules(key, given, issues, known, origins)
        try:
            return StageConfig.model_validate(data)
        except ConfigError as exc:
            issues.extend(_under(exc, loc))
            known.append(loc)
            return None
    issues.append(
        _at(
            loc,
            f"stage {key!r} is {_shown(stage)}, not a stage",
            "a StageConfig, or a mapping of its fields",
        )
    )
    return None


def _settled_rules(
    stage: str,
    rules: list[Any],
    issues: list[ConfigIssue],
    known: list[Loc],
    origins: dict[str, list[tuple[int, str]]],
) -> list[Any]:
    """A stage's routing rules as `RoutingRule`s: `rules` itself when they all are one.
    `origins[stage]` gets, for each rule returned, its index in `rules` and a note naming it
    when an object stood for several."""
    if all(isinstance(rule, RoutingRule) for rule in rules):
        return rules
    settled: list[tuple[RoutingRule, int, str]] = []
    for index, rule in enumerate(rules):
        loc: Loc = ("stages", stage, "routing_rules", index)
        if isinstance(rule, RoutingRule):
            settled.append((rule, index, ""))
        elif isinstance(rule, Mapping):
            made = _validated_rule(rule, loc, "", issues, known)
            if made is not None:
                settled.append((made, index, ""))
        elif callable(getattr(rule, "routing_rules", None)):
            settled.extend((made, index, note) for made, note in _expand(rule, loc, issues, known))
        else:
            hint = ""
            if isinstance(rule, (list, tuple)):
                hint = " (a list appended as one rule: extend routing_rules with it instead)"
            issues.append(
                _at(
                    loc, f"routing rule is {_shown(rule)}, not a routing rule{hint}", _RULE_EXPECTED
                )
            )
    origins[stage] = [(index, note) for _, index, note in settled]
    return [made for made, _, _ in settled]


def _expand(
    rule: Any, loc: Loc, issues: list[ConfigIssue], known: list[Loc]
) -> list[tuple[RoutingRule, str]]:
    """The rules `rule.routing_rules()` returns (a learned `GeneratedRule`'s two rules), each
    with a note naming it."""
    what = f"{type(rule).__name__}.routing_rules()"
    try:
        made = rule.routing_rules()
    except Exception as exc:
        issues.append(_at(loc, f"{what} raised {type(exc).__name__}: {exc}", _RULE_EXPECTED))
        return []
    if isinstance(made, (RoutingRule, Mapping)):
        made = [made]
    if not isinstance(made, (list, tuple)):
        issues.append(_at(loc, f"{what} returned {_shown(made)}", "a list of routing rules"))
        return []
    found: list[tuple[RoutingRule, str]] = []
    for number, item in enumerate(made):
        note = f"rule {number} of {what}: "
        if isinstance(item, RoutingRule):
            found.append((item, note))
        elif isinstance(item, Mapping):
            validated = _validated_rule(item, loc, note, issues, known)
            if validated is not None:
                found.append((validated, note))
        else:
            issues.append(_at(loc, f"{note}{_shown(item)} is not a routing rule", _RULE_EXPECTED))
    return found


def _validated_rule(
    data: Mapping[str, Any], loc: Loc, note: str, issues: list[ConfigIssue], known: list[Loc]
) -> RoutingRule | None:
    """A rule given as a mapping, validated (None, with its problems in `issues`)."""
    try:
        return RoutingRule.model_validate(dict(data))
    except ConfigError as exc:
        issues.extend(_under(exc, loc, note))
        known.append(loc)
        return None


def _names(values: list[Any], loc: Loc, what: str, issues: list[ConfigIssue]) -> None:
    """Report each entry of a list of stage names that is not a string."""
    for index, value in enumerate(values):
        if not isinstance(value, str):
            named = getattr(value, "name", None)
            issues.append(
                _at(
                    (*loc, index),
                    f"{what} holds {_shown(value)}, not a stage name",
                    "a stage name (a str)",
                    named if isinstance(named, str) else None,
                )
            )


def _settled_condition(raw: Any, loc: Loc, issues: list[ConfigIssue]) -> Any:
    """A termination condition as validation gives it: an expression string or a
    `Condition` (a mapping is validated into one)."""
    if isinstance(raw, (str, Condition)):
        return raw
    if isinstance(raw, Mapping):
        try:
            return Condition.model_validate(dict(raw))
        except ConfigError as exc:
            issues.extend(_under(exc, loc))
            return raw
    issues.append(
        _at(loc, f"condition is {_shown(raw)}", "an expression string or a condition mapping")
    )
    return raw
