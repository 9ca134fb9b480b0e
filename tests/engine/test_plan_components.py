"""The architecture's named components: `ExecutionOptimizer` and `PluginRegistry`."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import config, returning

from cascadence import (
    CascadeEngine,
    ExecutionOptimizer,
    MetricsPlugin,
    PlanError,
    PluginFactory,
    PluginRegistry,
)

SHARED = {"field": "amount", "operator": ">", "value": 100}


def fan_out() -> Any:
    """A, then B and C in one parallel group (C also needs A), then D after both."""
    action = {"type": "enable_stages", "stages": ["D"]}
    rule = {"name": "big", "condition": SHARED, "action": action}
    return config(
        {
            "D": {
                "depends_on": ["B", "C"],
                "routing_rules": [dict(rule, name="big_d", action={"type": "terminate"})],
            },
            "B": {"can_run_parallel": True, "parallel_group": "g", "depends_on": ["A"]},
            "A": {"routing_rules": [rule]},
            "C": {"can_run_parallel": True, "parallel_group": "g", "depends_on": ["A"]},
        }
    )


def test_order_and_batches_follow_dependencies_and_groups() -> None:
    """Dependencies first (declaration order among equals); a group runs as one batch."""
    optimizer = ExecutionOptimizer()
    cfg = fan_out()
    assert optimizer.order(cfg) == ["A", "B", "C", "D"]
    assert optimizer.batches(cfg) == [["A"], ["B", "C"], ["D"]]
    explicit = config(
        {"X": {}, "Y": {"can_run_parallel": True}, "Z": {"can_run_parallel": True}},
        execution_order=["Z", "X", "Y"],
    )
    assert optimizer.order(explicit) == ["Z", "X", "Y"]
    assert optimizer.batches(explicit) == [["Z"], ["X"], ["Y"]]  # X comes between them
    together = config(
        {"X": {}, "Y": {"can_run_parallel": True}, "Z": {"can_run_parallel": True}},
        execution_order=["Z", "Y", "X"],
    )
    assert optimizer.batches(together) == [["Z", "Y"], ["X"]]
    implicit = config(  # no execution_order: a stage declared between members does not split
        {"Z": {"can_run_parallel": True}, "X": {}, "Y": {"can_run_parallel": True}}
    )
    assert optimizer.batches(implicit) == [["Z", "Y"], ["X"]]


def test_a_condition_written_twice_is_compiled_once() -> None:
    """Rules with the same condition share one compiled closure, across plans too."""
    optimizer = ExecutionOptimizer()
    cfg = fan_out()
    plan = optimizer.plan(cfg)
    tests = {rule.test for stage in plan.stages for rule in stage.post_rules}
    assert len(tests) == 1
    again = optimizer.plan(cfg)
    assert {rule.test for stage in again.stages for rule in stage.post_rules} == tests
    assert len(optimizer.evaluator) == 1


async def test_the_engine_plans_through_its_optimizer() -> None:
    """The engine's plan is the optimizer's; runs follow it."""
    engine = CascadeEngine(fan_out())
    assert isinstance(engine.optimizer, ExecutionOptimizer)
    engine.register_stages({name: returning(name) for name in "ABCD"})
    assert [s.name for s in engine.plan.stages] == engine.optimizer.order(engine.config)
    result = await engine.execute({"amount": 500})
    assert result["path"][0] == "A" and result["path"][-1] == "D"
    assert sorted(result["path"][1:3]) == ["B", "C"]


async def test_registry_handlers_and_plugins_drive_an_engine() -> None:
    """Handlers registered by callable or import path, wrapped by plugins, run a cascade."""
    registry = PluginRegistry()
    registry.register_handler("A", "engine_helpers:returning")  # a factory, called below
    registry.register_handler("A", registry.handler("A")("from-path", 0.9))
    registry.register_handler("B", registry.wrap(returning("b"), ["metrics"]))
    metrics = registry.handler("B")
    assert isinstance(metrics, MetricsPlugin)
    engine = CascadeEngine(config({"A": {}, "B": {}}))
    engine.register_stages(registry.handlers)
    result = await engine.execute({})
    assert result["stage_results"]["A"]["result"] == "from-path"
    assert metrics.metrics["count"] == 1
    registry.unregister_handler("B")
    assert "B" not in registry.handlers


def test_registry_errors_name_the_closest_choice() -> None:
    """Unknown names, bad paths and bad options are clear errors."""
    registry = PluginRegistry()
    with pytest.raises(ValueError, match="did you mean 'retry'"):
        registry.plugin("retyr")
    with pytest.raises(ValueError, match="invalid options for plugin 'cache'"):
        registry.wrap(returning(1), ["cache"], {"cache": {"ttl": 5, "colour": "red"}})
    registry.register_handler("FAST_CHECK", returning(1))
    with pytest.raises(KeyError, match="did you mean 'FAST_CHECK'"):
        registry.handler("FAST_CHEK")
    with pytest.raises(PlanError, match="not_there"):
        registry.register_handler("X", "engine_helpers:not_there")
    with pytest.raises(TypeError, match="must be callable"):
        registry.register_handler("X", 42)  # type: ignore[arg-type]
    assert PluginRegistry(builtins=False).available() == []


def test_plugin_factory_uses_the_default_registry() -> None:
    """`PluginFactory.register` makes a plugin available to `PluginRegistry.default()`."""

    def tagging(handler: Any, tag: str = "t") -> Any:
        return handler

    PluginFactory.register("tagging_for_test", tagging)
    try:
        assert "tagging_for_test" in PluginRegistry.default().available()
        assert "tagging_for_test" in PluginFactory.available()
        assert "tagging_for_test" not in PluginRegistry().available()
    finally:
        PluginRegistry.default()._plugins.pop("tagging_for_test")
