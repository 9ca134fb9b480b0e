"""`ExecutionOptimizer`: turns a `CascadeConfig` into the plan executions run on.

Everything that can be decided before the first execution is decided here, once per
configuration, so an execution only walks a tuple of stages and tests bit masks:

- the stage order: `execution_order`, or declaration order moved after dependencies and the
  stages routing needs first (`order.run_order`);
- each stage's rules split into preconditions, routing rules and postconditions, each sorted by
  priority (equal priorities keep file order);
- every condition compiled into a closure, once: a condition written on several rules (or
  again after a hot reload) is compiled once, by the optimizer's `ConditionEvaluator`;
- one scan per rule list, so a stage whose rules do not match touches no rule object;
- bit masks for the stages enabled at the start and for each stage's dependencies;
- the resilience policy of each stage (timeout, retry, cache, circuit breaker).

`CascadeEngine` builds its plans through one (`engine.optimizer`); use one directly to see the
order and the parallel batches a configuration will run in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cascadence.cascade.compile import compile_cascade, stage_order
from cascadence.cascade.config import CascadeConfig
from cascadence.conditions.evaluator import ConditionEvaluator
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock
from cascadence.runtime.invoke import AsyncHandler
from cascadence.runtime.plan import CascadePlan

__all__ = ["ExecutionOptimizer"]


def _fresh(_stage: str, _key: str, make: Callable[[], Any]) -> Any:
    return make()


class ExecutionOptimizer:
    """Builds execution plans for cascade configurations.

    Args:
        evaluator: Compiles the conditions (default: a new `ConditionEvaluator`), so
            conditions written more than once share one compiled closure.
    """

    def __init__(self, evaluator: ConditionEvaluator | None = None) -> None:
        self.evaluator = evaluator if evaluator is not None else ConditionEvaluator()

    def order(self, config: CascadeConfig) -> list[str]:
        """The order stages are considered in: `execution_order`, else `order.run_order`."""
        return stage_order(config)

    def batches(self, config: CascadeConfig) -> list[list[str]]:
        """The stages in the order they run when all are enabled, parallel groups together.

        A stage marked `can_run_parallel` runs with the later stages of its `parallel_group`
        whose dependencies finished before it (with an explicit `execution_order`, up to the
        first stage outside the group, which runs first); every other stage is a batch of
        its own.
        """
        plan = self.plan(config)
        stages = plan.stages  # the plan's groups: what an execution batches
        placed: set[str] = set()
        batches: list[list[str]] = []
        for position, stage in enumerate(stages):
            if stage.name in placed:
                continue
            batch = [stage.name]
            if stage.group is not None:
                for later in stages[position + 1 :]:
                    if later.group != stage.group:
                        if plan.ordered and later.name not in placed:
                            break
                        continue
                    if later.name not in placed and all(d in placed for d in later.depends_on):
                        batch.append(later.name)
            placed.update(batch)
            batches.append(batch)
        return batches

    def plan(
        self,
        config: CascadeConfig,
        handlers: Mapping[str, AsyncHandler] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        keep: Callable[[str, str, Callable[[], Any]], Any] = _fresh,
        policies: Mapping[str, StepPolicy] | None = None,
        breaker_store: Any = None,
    ) -> CascadePlan:
        """The executable plan of `config`.

        Args:
            config: A validated cascade configuration.
            handlers: Async handlers by stage name (stages without one are in the plan with no
                handler; a run that reaches one records a `PlanError` as that stage's error).
            clock: Time source for retries, caches and circuit breakers.
            keep: Returns the stateful object (cache, breaker) stored under (stage, key),
                creating it the first time; the engine's keeps state across hot reloads.
                Default: a new object every time.
            policies: Extra policies per stage (from plugins or decorators).
            breaker_store: Where circuit breakers keep their state (None: in this process).
        """
        return compile_cascade(
            config,
            handlers or {},
            clock,
            keep,
            policies,
            breaker_store,
            compile=self.evaluator.compile,
        )

    def __repr__(self) -> str:
        return f"ExecutionOptimizer({self.evaluator!r})"
