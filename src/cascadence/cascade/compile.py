"""Compile a `CascadeConfig` into a `runtime.CascadePlan`.

Conditions are compiled here, once; policies are built from the stage fields; the stage order
comes from `execution_order` or a stable topological sort of `depends_on`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from cascadence.cascade.config import CascadeConfig, RoutingRule, StageConfig
from cascadence.cascade.validate import dependency_order
from cascadence.conditions import CompiledCondition, compile_condition
from cascadence.policies.cache import ResultCache, key_or_none
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.retry import RetryPolicy
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.clock import Clock
from cascadence.runtime.invoke import AsyncHandler
from cascadence.runtime.plan import CascadePlan, RulePlan, StagePlan, stage_mask

__all__ = ["compile_cascade", "stage_order"]


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
    """The order stages are considered in: `execution_order`, else dependencies first."""
    if config.execution_order:
        return list(config.execution_order)
    return dependency_order({name: st.depends_on for name, st in config.stages.items()})


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
        handlers: Async handlers by stage name (stages without one get `fn=None`).
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
