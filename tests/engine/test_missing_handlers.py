"""Stages without a registered handler: they fail only when they have to run."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import config, returning

from cascadence import CadenceHooks, CascadeConfig, CascadeEngine, PlanError
from cascadence.checkpoint import InMemoryCheckpointStore

# the spec's quickstart configuration, as written there (no handler paths)
QUICKSTART = """
name: trust_scoring_cascade
version: "1.0"
stages:
  FAST_CHECK:
    name: FAST_CHECK
    enabled: true
    timeout_ms: 100
    routing_rules:
      - name: low_confidence_escalate
        type: routing
        priority: 100
        condition: {field: stages.FAST_CHECK.confidence, operator: "<", value: 0.8}
        action: {type: enable_stages, stages: ["MEDIUM_CHECK"]}
      - name: high_confidence_terminate
        type: routing
        priority: 90
        condition: {field: stages.FAST_CHECK.confidence, operator: ">=", value: 0.95}
        action: {type: terminate}
  MEDIUM_CHECK:
    name: MEDIUM_CHECK
    enabled: false
    timeout_ms: 500
    depends_on: ["FAST_CHECK"]
    routing_rules:
      - name: still_uncertain
        type: routing
        priority: 100
        condition: {field: stages.MEDIUM_CHECK.confidence, operator: "<", value: 0.9}
        action: {type: enable_stages, stages: ["EXPENSIVE_CHECK"]}
  EXPENSIVE_CHECK:
    name: EXPENSIVE_CHECK
    enabled: false
    timeout_ms: 2000
    depends_on: ["MEDIUM_CHECK"]
execution_order: [FAST_CHECK, MEDIUM_CHECK, EXPENSIVE_CHECK]
global_timeout_ms: 5000
max_parallel_stages: 3
"""


def quickstart(fast_confidence: float) -> CascadeEngine:
    engine = CascadeEngine(CascadeConfig.from_yaml(QUICKSTART))
    engine.register_stage("FAST_CHECK", returning("trusted", fast_confidence))
    return engine


async def test_stages_that_never_run_need_no_handler() -> None:
    """Only FAST_CHECK registered, and it decides: the run succeeds."""
    result = await quickstart(0.96).execute({"user_id": "u1", "amount": 10})
    assert result["success"]
    assert result["path"] == ["FAST_CHECK"]
    assert result["terminated_by"] == "high_confidence_terminate"
    assert result["final_result"] == "trusted"


@pytest.mark.parametrize("explain", [False, True])
async def test_a_stage_that_has_to_run_without_a_handler_fails_and_keeps_what_ran(
    explain: bool,
) -> None:
    """The stage fails as a handler error would: its result says which stage and how to
    register one, nothing is charged, earlier results are kept and the run goes on."""
    engine = quickstart(0.5)
    result = await engine.execute({"user_id": "u1"}, explain=explain)
    assert not result["success"]
    assert result["path"] == ["FAST_CHECK", "MEDIUM_CHECK"]
    assert result["stage_results"]["FAST_CHECK"]["result"] == "trusted"
    medium = result["stage_results"]["MEDIUM_CHECK"]
    assert medium["error_type"] == "PlanError"
    assert medium["error"] == (
        "no handler for stage 'MEDIUM_CHECK': register one with "
        "engine.register_stage('MEDIUM_CHECK', handler), or set "
        "`handler: 'package.module:function'` on the stage"
    )
    assert medium["cost"] == 0
    assert result["cost"] == 1.0
    assert result["errors"] == [
        {"stage": "MEDIUM_CHECK", "error": medium["error"], "type": "PlanError"}
    ]
    assert engine.get_statistics()["MEDIUM_CHECK"]["errors"] == 1


async def test_hooks_see_the_missing_handler_as_the_stage_error() -> None:
    """Observers are told about the stage and its error, as for a handler that raised."""
    seen: list[tuple[str, str]] = []

    class Seen(CadenceHooks):
        async def on_error(self, note_name: str, score: Any, error: BaseException) -> None:
            seen.append((note_name, type(error).__name__))

    engine = CascadeEngine(CascadeConfig.from_yaml(QUICKSTART), hooks=[Seen()])
    engine.register_stage("FAST_CHECK", returning("trusted", 0.5))
    result = await engine.execute({})
    assert seen == [("MEDIUM_CHECK", "PlanError")]
    assert result["path"] == ["FAST_CHECK", "MEDIUM_CHECK"]


@pytest.mark.parametrize("retries", [0, 2])
async def test_a_member_of_a_parallel_group_without_a_handler_fails_alone(retries: int) -> None:
    """In a parallel group, the other members run and keep their results; a missing handler
    is not retried."""
    engine = CascadeEngine(
        config(
            {
                "A": {"can_run_parallel": True, "max_retries": retries},
                "B": {"can_run_parallel": True},
                "C": {},
            }
        )
    )
    engine.register_stages({"B": returning("b", 0.9), "C": returning("c")})
    result = await engine.execute({})
    assert result["path"] == ["A", "B", "C"]
    assert result["stage_results"]["B"]["result"] == "b"
    assert result["stage_results"]["A"]["error_type"] == "PlanError"
    assert "engine.register_stage('A', handler)" in result["stage_results"]["A"]["error"]
    assert result["final_result"] == "c"


async def test_a_stage_renamed_by_a_reload_names_the_handler_left_behind() -> None:
    """After update_config renamed a stage, its result names the handler registered under the
    old name, which no stage has any more."""
    engine = CascadeEngine(config({"FAST": {}, "MEDIUM": {}}))
    engine.register_stages({"FAST": returning("f"), "MEDIUM": returning("m")})
    engine.update_config(
        {"name": "test", "version": "2", "stages": {"FAST": {}, "MEDIUM_CHECK": {}}}
    )
    result = await engine.execute({})
    error = result["stage_results"]["MEDIUM_CHECK"]["error"]
    assert "engine.register_stage('MEDIUM_CHECK', handler)" in error
    assert error.endswith(
        "; the handler registered for 'MEDIUM' serves no stage of version '2': if it is meant "
        "for 'MEDIUM_CHECK', register it as 'MEDIUM_CHECK'"
    )


async def test_check_handlers_refuses_up_front_and_require_handlers_still_refuses() -> None:
    """The eager check is there when wanted: check_handlers() and update_config(...,
    require_handlers=True) name every stage without a handler."""
    engine = quickstart(0.96)
    with pytest.raises(PlanError, match=r"no handler for stage\(s\) MEDIUM_CHECK, EXPENSIVE_CHECK"):
        engine.check_handlers()
    with pytest.raises(PlanError, match=r"no handler for stage\(s\) MEDIUM_CHECK"):
        engine.update_config(CascadeConfig.from_yaml(QUICKSTART), require_handlers=True)
    engine.register_stages({"MEDIUM_CHECK": returning("m"), "EXPENSIVE_CHECK": returning("e")})
    engine.check_handlers()


def test_a_handler_path_that_cannot_be_imported_is_still_refused_up_front() -> None:
    """A YAML `handler:` that does not import is bad input: the engine refuses the config."""
    with pytest.raises(PlanError, match="no_such_module_for_lazy_handlers"):
        CascadeEngine(config({"A": {"handler": "no_such_module_for_lazy_handlers:check"}}))


async def test_a_checkpointed_run_stopped_by_a_missing_handler_resumes_once_it_is_there() -> None:
    """A durable run fails at the stage without a handler; with the handler registered, the
    same run id resumes there and the stage before it is not run again."""
    calls: list[str] = []

    def fast(_ctx: Any) -> dict[str, Any]:
        calls.append("FAST_CHECK")
        return {"result": "trusted", "confidence": 0.5}

    engine = CascadeEngine(CascadeConfig.from_yaml(QUICKSTART))
    engine.register_stage("FAST_CHECK", fast)
    store = InMemoryCheckpointStore()
    first = await engine.execute({"user_id": "u1"}, run_id="run-1", checkpoint=store)
    assert not first["success"]
    assert first["stage_results"]["MEDIUM_CHECK"]["error_type"] == "PlanError"
    engine.register_stage("MEDIUM_CHECK", returning("fine", 0.95))
    second = await engine.execute({"user_id": "u1"}, run_id="run-1", checkpoint=store)
    assert second["success"]
    assert second["path"] == ["FAST_CHECK", "MEDIUM_CHECK"]
    assert second["final_result"] == "fine"
    assert calls == ["FAST_CHECK"]
