"""Parallel groups, timeouts and cancellation, retries, hot reload and concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_helpers import config, returning

from cascadence import CascadeEngine, ConfigError, GlobalTimeoutError
from cascadence.testing import FakeClock


def _recording(spans: dict[str, tuple[float, float]], name: str, delay: float) -> Any:
    async def handler(_ctx: Any) -> dict:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(delay)
        spans[name] = (start, loop.time())
        return {"result": name}

    return handler


async def test_parallel_group_stages_overlap() -> None:
    """Five stages of one parallel group run concurrently: every interval overlaps the others."""
    names = [f"P{i}" for i in range(5)]
    stages = {n: {"can_run_parallel": True, "parallel_group": "g"} for n in names}
    engine = CascadeEngine(config(stages, max_parallel_stages=5))
    spans: dict[str, tuple[float, float]] = {}
    for n in names:
        engine.register_stage(n, _recording(spans, n, 0.01))
    result = await engine.execute({})
    assert result["path"] and sorted(result["path"]) == names
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())
    starts = [t["start_ms"] for t in result["timeline"]]
    ends = [t["end_ms"] for t in result["timeline"]]
    assert max(starts) < min(ends)


async def test_max_parallel_stages_bounds_concurrency() -> None:
    """With max_parallel_stages=2, at most two stages of a group run at once."""
    running = 0
    peak = 0

    async def handler(_ctx: Any) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return {"result": 1}

    names = [f"P{i}" for i in range(6)]
    engine = CascadeEngine(
        config(
            {n: {"can_run_parallel": True, "parallel_group": "g"} for n in names},
            max_parallel_stages=2,
        )
    )
    for n in names:
        engine.register_stage(n, handler)
    result = await engine.execute({})
    assert len(result["path"]) == 6
    assert peak == 2


async def test_parallel_group_waits_for_dependencies() -> None:
    """Group members whose dependency is outside the group run after it, not before."""
    order: list[str] = []

    def rec(name: str) -> Any:
        async def handler(_ctx: Any) -> dict:
            order.append(name)
            return {"result": name}

        return handler

    engine = CascadeEngine(
        config(
            {
                "PREP": {},
                "X": {"can_run_parallel": True, "parallel_group": "g", "depends_on": ["PREP"]},
                "Y": {"can_run_parallel": True, "parallel_group": "g", "depends_on": ["PREP"]},
                "FINAL": {"depends_on": ["X", "Y"]},
            }
        )
    )
    for n in ("PREP", "X", "Y", "FINAL"):
        engine.register_stage(n, rec(n))
    result = await engine.execute({})
    assert order[0] == "PREP" and order[-1] == "FINAL"
    assert result["path"][-1] == "FINAL"


async def test_stage_timeout_cancels_the_handler() -> None:
    """A stage past its timeout_ms is cancelled (the handler sees it) and recorded as an error."""
    cancelled: list[bool] = []

    async def slow(_ctx: Any) -> dict:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {"result": "late"}

    engine = CascadeEngine(config({"SLOW": {"timeout_ms": 10}, "NEXT": {}}))
    engine.register_stages({"SLOW": slow, "NEXT": returning("next")})
    result = await engine.execute({})
    assert cancelled == [True]
    assert result["stage_results"]["SLOW"]["error_type"] == "TimeoutError"
    assert result["path"] == ["SLOW", "NEXT"]
    assert result["timed_out"] is False


async def test_global_timeout_keeps_partial_results() -> None:
    """At the global deadline the running stage is cancelled and earlier results are kept."""
    cancelled: list[bool] = []

    async def slow(_ctx: Any) -> dict:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {"result": "late"}

    engine = CascadeEngine(
        config({"FAST": {}, "SLOW": {"timeout_ms": 10_000}, "AFTER": {}}, global_timeout_ms=30)
    )
    engine.register_stages({"FAST": returning("ok", 0.5), "SLOW": slow, "AFTER": returning(1)})
    result = await engine.execute({})
    assert cancelled == [True]
    assert result["timed_out"] is True
    assert result["success"] is False
    assert result["stage_results"]["FAST"]["result"] == "ok"
    assert result["path"] == ["FAST", "SLOW"]

    with pytest.raises(GlobalTimeoutError) as info:
        await engine.execute({}, raise_on_timeout=True)
    assert info.value.partial_result["stage_results"]["FAST"]["result"] == "ok"


async def test_yaml_retries_use_the_injected_clock() -> None:
    """max_retries waits retry_delay_ms between attempts ("Delay between retries"), on the
    engine's clock; `retry_backoff: exponential` doubles it after each retry."""
    clock = FakeClock()
    attempts = 0

    async def flaky(_ctx: Any) -> dict:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("down")
        return {"result": "ok"}

    engine = CascadeEngine(config({"A": {"max_retries": 3, "retry_delay_ms": 100}}), clock=clock)
    engine.register_stage("A", flaky)
    result = await engine.execute({})
    assert result["success"]
    assert attempts == 3
    assert clock.sleeps == pytest.approx([0.1, 0.1])

    clock = FakeClock()
    attempts = 0
    stage = {"max_retries": 3, "retry_delay_ms": 100, "retry_backoff": "exponential"}
    engine = CascadeEngine(config({"A": stage}), clock=clock)
    engine.register_stage("A", flaky)
    assert (await engine.execute({}))["success"]
    assert clock.sleeps == pytest.approx([0.1, 0.2])


async def test_stage_cache_reuses_results_per_key_fields() -> None:
    """cache_enabled with cache_key_fields calls the handler once per key within the TTL."""
    clock = FakeClock()
    calls = 0

    async def scored(ctx: Any) -> dict:
        nonlocal calls
        calls += 1
        return {"result": ctx.get("user_id")}

    engine = CascadeEngine(
        config(
            {"A": {"cache_enabled": True, "cache_ttl_seconds": 60, "cache_key_fields": ["user_id"]}}
        ),
        clock=clock,
    )
    engine.register_stage("A", scored)
    await engine.execute({"user_id": "u1", "nonce": 1})
    await engine.execute({"user_id": "u1", "nonce": 2})
    assert calls == 1
    clock.advance(61)
    await engine.execute({"user_id": "u1"})
    assert calls == 2
    engine.clear_cache()
    await engine.execute({"user_id": "u1"})
    assert calls == 3


async def test_a_cached_stage_is_keyed_by_what_the_stages_before_it_decided() -> None:
    """A cached stage may read earlier stages' results: the same input after another
    decision is another key (never a stale answer), the same decision a hit. Times and
    costs of the earlier stages are not part of the key. `cache_key_fields` may name
    `stages.NAME.*` paths."""
    verdicts = iter(["low", "high", "high", "low"])
    calls: list[str] = []

    async def first(_ctx: Any) -> dict:
        return {"result": next(verdicts), "confidence": 0.5}

    async def second(ctx: Any) -> dict:
        calls.append(ctx.get_stage_result("A").result)
        return {"result": f"after {ctx.get_stage_result('A').result}"}

    for key_fields in (None, ["user", "stages.A.result"]):
        verdicts = iter(["low", "high", "high", "low"])
        calls.clear()
        stage: dict[str, Any] = {"cache_enabled": True}
        if key_fields:
            stage["cache_key_fields"] = key_fields
        engine = CascadeEngine(config({"A": {}, "B": stage}))
        engine.register_stages({"A": first, "B": second})
        finals = [(await engine.execute({"user": "u"}))["final_result"] for _ in range(4)]
        assert finals == ["after low", "after high", "after high", "after low"], key_fields
        assert calls == ["low", "high"], key_fields  # runs 3 and 4 were served from the cache


async def test_clear_cache_empties_plugin_and_note_caches_of_registered_handlers() -> None:
    """`clear_cache()` also empties a CachePlugin handler and one inside a PluginFactory
    chain."""
    from cascadence import CachePlugin, PluginFactory

    calls = {"A": 0, "B": 0}

    def counting(name: str) -> Any:
        async def handler(_ctx: Any) -> dict:
            calls[name] += 1
            return {"result": name}

        return handler

    engine = CascadeEngine(config({"A": {}, "B": {}}))
    engine.register_stage("A", CachePlugin(counting("A"), ttl_seconds=60))
    engine.register_stage("B", await PluginFactory.wrap_handler(counting("B"), ["cache", "retry"]))
    for _ in range(2):
        await engine.execute({"x": 1})
    assert calls == {"A": 1, "B": 1}
    engine.clear_cache()
    await engine.execute({"x": 1})
    assert calls == {"A": 2, "B": 2}


async def test_unknown_stage_name_is_a_plan_key_and_value_error() -> None:
    """Registering a handler under a name no stage has names the closest stage; the error is a
    PlanError, a KeyError and a ValueError, with a plain message."""
    from cascadence import PlanError, UnknownStageError

    engine = CascadeEngine(config({"FAST_CHECK": {}}))
    for kind in (UnknownStageError, PlanError, KeyError, ValueError):
        with pytest.raises(kind) as info:
            engine.register_stage("FAST_CHEK", returning({"result": 1}))
        assert str(info.value).startswith("cannot register a handler for unknown stage 'FAST_CHEK'")
        assert "did you mean 'FAST_CHECK'?" in str(info.value)


async def test_hot_reload_keeps_in_flight_executions_on_their_version() -> None:
    """An execution started before update_config finishes on the old version; new ones use
    the new version; handlers and statistics survive."""
    gate = asyncio.Event()

    async def a(_ctx: Any) -> dict:
        await gate.wait()
        return {"result": "a", "confidence": 0.5}

    v1 = config(
        {
            "A": {
                "routing_rules": [
                    {
                        "name": "go",
                        "condition": "stages.A.confidence < 0.9",
                        "action": {"type": "enable_stages", "stages": ["B"]},
                    }
                ]
            },
            "B": {"enabled": False},
        },
        version="1",
    )
    v2 = config({"A": {}, "B": {"enabled": False}}, version="2")
    engine = CascadeEngine(v1)
    engine.register_stages({"A": a, "B": returning("b")})
    in_flight = asyncio.ensure_future(engine.execute({}))
    await asyncio.sleep(0)
    engine.update_config(v2)
    gate.set()
    old = await in_flight
    new = await engine.execute({})
    assert old["version"] == "1" and old["path"] == ["A", "B"]
    assert new["version"] == "2" and new["path"] == ["A"]
    assert engine.get_statistics()["A"]["count"] == 2


def test_invalid_reload_keeps_the_running_version() -> None:
    """A config that fails validation raises and leaves the engine on its current version."""
    engine = CascadeEngine(config({"A": {}}, version="1"))
    engine.register_stage("A", returning(1))
    with pytest.raises(ConfigError):
        engine.update_config({"name": "t", "stages": {"A": {}}, "execution_order": ["A", "Z"]})
    assert engine.config.version == "1"


async def test_thousand_concurrent_executions_get_their_own_results() -> None:
    """1,000 concurrent executions with distinct inputs each get their own correct result."""

    async def echo(ctx: Any) -> dict:
        await asyncio.sleep(0.001 * (ctx.get("n") % 3))
        return {"result": ctx.get("n"), "confidence": (ctx.get("n") % 10) / 10}

    async def double(ctx: Any) -> dict:
        await asyncio.sleep(0)
        return {"result": ctx.get_stage_result("ECHO").result * 2}

    engine = CascadeEngine(
        config(
            {
                "ECHO": {
                    "routing_rules": [
                        {
                            "name": "esc",
                            "condition": "stages.ECHO.confidence < 0.5",
                            "action": {"type": "enable_stages", "stages": ["DOUBLE"]},
                        }
                    ]
                },
                "DOUBLE": {"enabled": False},
            }
        )
    )
    engine.register_stages({"ECHO": echo, "DOUBLE": double})
    results = await asyncio.gather(*(engine.execute({"n": n}) for n in range(1000)))
    for n, result in enumerate(results):
        if n % 10 < 5:
            assert result["path"] == ["ECHO", "DOUBLE"]
            assert result["final_result"] == 2 * n
        else:
            assert result["path"] == ["ECHO"]
            assert result["final_result"] == n


async def test_max_in_flight_applies_back_pressure() -> None:
    """With max_in_flight=3 no more than three executions run at once."""
    running = 0
    peak = 0

    async def handler(_ctx: Any) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return {"result": 1}

    engine = CascadeEngine(config({"A": {}}), max_in_flight=3)
    engine.register_stage("A", handler)
    await asyncio.gather(*(engine.execute({}) for _ in range(20)))
    assert peak == 3


async def test_sync_handlers_run_in_a_thread_or_inline() -> None:
    """Plain functions work as handlers, in a worker thread by default or inline on request."""
    import threading

    main = threading.get_ident()
    threads: list[int] = []

    def plain(ctx: Any) -> dict:
        threads.append(threading.get_ident())
        return {"result": ctx.get("x")}

    engine = CascadeEngine(config({"A": {}}))
    engine.register_stage("A", plain)
    assert (await engine.execute({"x": 3}))["final_result"] == 3
    engine.register_stage("A", plain, in_thread=False)
    await engine.execute({"x": 4})
    assert threads[0] != main and threads[1] == main


async def test_skip_in_a_parallel_group_is_recorded_as_skipped_not_failed() -> None:
    """A handler raising Skip inside a parallel group is a skip, as it is outside one."""
    from cascadence import Skip

    async def skipper(_ctx: Any) -> dict:
        raise Skip("nothing to check")

    names = ["P0", "P1"]
    engine = CascadeEngine(
        config({n: {"can_run_parallel": True, "parallel_group": "g"} for n in names})
    )
    engine.register_stage("P0", skipper)
    engine.register_stage("P1", returning("ok", 0.9))
    result = await engine.execute({})
    assert result["success"] and not result["errors"]
    assert result["stage_results"]["P0"]["skipped_reason"] == "nothing to check"
    assert result["stage_results"]["P1"]["result"] == "ok"


async def test_a_set_field_with_no_place_to_write_is_a_recorded_error() -> None:
    """set_field into a value that is not a mapping records a RoutingError on the result; the
    execution still returns, with every stage result."""
    rule = {
        "name": "mark",
        "condition": {"field": "stages.A.confidence", "operator": ">=", "value": 0},
        "action": {"type": "set_field", "field": "x.y", "value": 1},
    }
    engine = CascadeEngine(config({"A": {"routing_rules": [rule]}, "B": {}}))
    engine.register_stages({"A": returning("a", 0.5), "B": returning("b", 0.9)})
    result = await engine.execute({"x": "not a mapping"})
    assert result["path"] == ["A", "B"]
    assert not result["success"]
    (error,) = result["errors"]
    assert error["type"] == "RoutingError" and "'mark' could not set 'x.y'" in error["error"]


async def test_a_handler_cost_that_is_not_a_number_is_recorded_and_the_configured_one_charged() -> (
    None
):
    """A handler returning `cost: "5"` gets an error on the result; the stage's cost counts."""

    async def priced(_ctx: Any) -> dict:
        return {"result": 1, "cost": "5"}

    engine = CascadeEngine(config({"A": {"cost": 2}}))
    engine.register_stage("A", priced)
    result = await engine.execute({})
    assert result["cost"] == 2 and result["stage_results"]["A"]["cost"] == 2
    assert (
        result["errors"][0]["stage"] == "A" and "returned cost '5'" in result["errors"][0]["error"]
    )


async def test_a_handler_returning_an_error_fails_the_run_consistently() -> None:
    """A result with an `error` key counts as a failed stage everywhere, `errors` included."""

    async def refused(_ctx: Any) -> dict:
        return {"result": "decline", "error": "upstream said no"}

    engine = CascadeEngine(config({"A": {"stop_on_failure": True}, "B": {}}))
    engine.register_stages({"A": refused, "B": returning("b")})
    result = await engine.execute({})
    assert result["terminated_by"] == "failure of A" and result["path"] == ["A"]
    assert not result["success"]
    assert result["errors"] == [{"stage": "A", "error": "upstream said no", "type": "StageError"}]


async def test_an_action_reason_is_shown_with_its_routing_decision() -> None:
    """`reason` on an action appears on the routing decision it produced."""
    rule = {
        "name": "sure",
        "condition": {"field": "stages.A.confidence", "operator": ">=", "value": 0.9},
        "action": {"type": "terminate", "reason": "rules are certain"},
    }
    engine = CascadeEngine(config({"A": {"routing_rules": [rule]}, "B": {}}))
    engine.register_stages({"A": returning("a", 0.95), "B": returning("b")})
    result = await engine.execute({})
    assert result["routing_decisions"] == [
        {
            "stage": "A",
            "rule": "sure",
            "type": "routing",
            "action": "terminate",
            "reason": "rules are certain",
        }
    ]


async def test_retries_stop_when_the_global_deadline_would_pass_first() -> None:
    """A retry whose backoff would outlast the run's global timeout is not attempted; short
    backoffs within it still are."""
    attempts: list[int] = []

    async def failing(_ctx: Any) -> dict:
        attempts.append(1)
        raise ConnectionError("down")

    for delay_ms, expected_sleeps in ((1000, []), (10, [0.01, 0.01, 0.01])):
        clock = FakeClock()
        attempts.clear()
        engine = CascadeEngine(
            config(
                {"A": {"max_retries": 3, "retry_delay_ms": delay_ms}},
                global_timeout_ms=200,
            ),
            clock=clock,
        )
        engine.register_stage("A", failing)
        result = await engine.execute({})
        assert clock.sleeps == pytest.approx(expected_sleeps)
        assert len(attempts) == len(expected_sleeps) + 1
        assert not result["success"]


async def test_a_stage_its_precondition_stopped_is_listed_as_skipped() -> None:
    """A precondition that terminates keeps its stage from running, and says so."""
    stop = {
        "name": "closed",
        "type": "precondition",
        "condition": {"field": "closed", "operator": "==", "value": True},
        "action": {"type": "terminate"},
    }
    engine = CascadeEngine(config({"A": {}, "B": {"routing_rules": [stop]}}))
    engine.register_stages({"A": returning("a"), "B": returning("b")})
    result = await engine.execute({"closed": True})
    assert result["path"] == ["A"] and result["terminated_by"] == "closed"
    assert result["skipped_stages"] == {"B": "stopped by precondition 'closed'"}


async def test_cached_and_constant_results_are_never_changed_by_a_run() -> None:
    """A cache hit is a copy (a caller changing its result changes no later hit), and a
    handler returning the same result object every time keeps it unchanged."""
    from cascadence.runtime.result import StageResult

    constant = StageResult(result="ok", confidence=0.9, data={"tags": []})

    async def fixed(_ctx: Any) -> StageResult:
        return constant

    engine = CascadeEngine(config({"A": {"cache_enabled": True}, "B": {}}))
    engine.register_stages({"A": returning("a", 0.5, tags=[]), "B": fixed})
    first = await engine.execute({"k": 1})
    first["stage_results"]["A"]["data"]["tags"].append("changed by the caller")
    second = await engine.execute({"k": 1})
    assert second["stage_results"]["A"]["data"] == {"tags": []}
    assert dict(constant) == {"result": "ok", "confidence": 0.9, "data": {"tags": []}}


@pytest.mark.parametrize("data", [None, 5, "text", [1, 2]])
async def test_execute_refuses_input_that_is_not_a_mapping(data: Any) -> None:
    """The input is a dict (or any mapping, or an event): anything else is a TypeError up
    front, not a run on nothing."""
    engine = CascadeEngine({"name": "t", "stages": {"A": {}}})
    engine.register_stage("A", lambda ctx: {"result": "ok"})
    with pytest.raises(TypeError, match="takes the input as a dict"):
        await engine.execute(data)
    from types import MappingProxyType

    assert (await engine.execute(MappingProxyType({"a": 1})))["success"]


async def test_every_stage_result_has_result_confidence_and_data() -> None:
    """A handler that returns a bare value, or a dict without some keys, still gives stage
    results with `result`, `confidence` and `data`, as the result format promises."""
    engine = CascadeEngine({"name": "t", "stages": {"A": {}, "B": {}, "C": {}}})
    engine.register_stages(
        {
            "A": lambda ctx: "plain",
            "B": lambda ctx: {"result": "partial"},
            "C": lambda ctx: {"result": "full", "confidence": 0.9, "data": {"k": 1}},
        }
    )
    stages = (await engine.execute({}))["stage_results"]
    assert {k: stages["A"][k] for k in ("result", "confidence", "data")} == {
        "result": "plain",
        "confidence": None,
        "data": {},
    }
    assert (stages["B"]["confidence"], stages["B"]["data"]) == (None, {})
    assert (stages["C"]["confidence"], stages["C"]["data"]) == (0.9, {"k": 1})


def test_status_enums_print_their_value() -> None:
    """Proposal statuses, pattern types and breaker states print as their values."""
    from cascadence.learning import PatternType, ProposalStatus
    from cascadence.policies.circuit_breaker import BreakerState

    assert f"{ProposalStatus.ACTIVE}" == str(ProposalStatus.ACTIVE) == "ACTIVE"
    assert f"{PatternType.THRESHOLD:>10}" == " THRESHOLD"
    assert f"{BreakerState.OPEN}" == "open"


async def test_a_cache_hit_or_a_refused_call_spends_nothing() -> None:
    """A result served from the stage's cache costs 0 and says `cached`; so does a call an
    open circuit refused: the cost reported is what was spent."""
    engine = CascadeEngine({"name": "c", "stages": {"A": {"cost": 5, "cache_enabled": True}}})
    engine.register_stage("A", lambda ctx: {"result": "x", "confidence": 0.9})
    first = await engine.execute({"u": 1})
    again = await engine.execute({"u": 1})
    assert (first["cost"], first["stage_results"]["A"].get("cached")) == (5, None)
    assert (again["cost"], again["stage_results"]["A"]["cached"]) == (0, True)
    assert again["stage_results"]["A"]["result"] == "x"
    assert engine.get_statistics()["A"]["total_cost"] == 5

    breaker = {"failure_threshold": 1, "reset_timeout_seconds": 60}
    engine = CascadeEngine({"name": "b", "stages": {"A": {"cost": 7, "circuit_breaker": breaker}}})

    def down(_ctx: Any) -> None:
        raise ConnectionError("down")

    engine.register_stage("A", down)
    assert (await engine.execute({}))["cost"] == 7
    refused = await engine.execute({})
    assert refused["stage_results"]["A"]["error_type"] == "CircuitOpenError"
    assert refused["cost"] == 0


async def test_execute_is_a_coroutine_function_whichever_path_it_takes() -> None:
    """`execute` hands the common call straight to the run (no frame of its own while the run
    waits); it is still recognised as a coroutine function, every call returns an awaitable,
    bad input fails when awaited, and every path counts its execution."""
    import inspect
    import sys

    from cascadence.runtime.invoke import is_async_callable

    engine = CascadeEngine(config({"A": {}}))
    engine.register_stage("A", returning("a", 0.9))
    assert asyncio.iscoroutinefunction(engine.execute)
    assert is_async_callable(engine.execute)
    if sys.version_info >= (3, 12):
        assert inspect.iscoroutinefunction(engine.execute)
    fast = engine.execute({"x": 1})
    assert inspect.isawaitable(fast)
    assert (await fast)["path"] == ["A"]
    assert (await engine.execute({"x": 1}, raise_on_timeout=True))["path"] == ["A"]
    bad = engine.execute(42)  # no error until awaited, as with any coroutine function
    with pytest.raises(TypeError, match="takes the input as a dict"):
        await bad
    assert engine.executions == 2
    bounded = CascadeEngine(config({"A": {}}), max_in_flight=2)
    bounded.register_stage("A", returning("a", 0.9))
    assert (await bounded.execute({}))["path"] == ["A"]
    assert bounded.executions == 1
    engine.reset_statistics()
    assert engine.executions == 0


async def test_a_stage_ordered_between_members_of_a_group_runs_before_the_later_members() -> None:
    """execution_order A, S, B with A and B in one group: S runs after A and before B, so
    S's terminate keeps B (and its cost) from running at all."""
    member = {"can_run_parallel": True, "parallel_group": "g"}
    stop = {
        "name": "stop",
        "condition": "stages.S.confidence >= 1",
        "action": {"type": "terminate"},
    }
    engine = CascadeEngine(
        config(
            {"A": member, "S": {"routing_rules": [stop]}, "B": {**member, "cost": 500}},
            execution_order=["A", "S", "B"],
        )
    )
    engine.register_stages({name: returning(name, 1.0) for name in "ASB"})
    result = await engine.execute({})
    assert result["path"] == ["A", "S"]
    assert result["terminated_by"] == "stop"
    assert result["cost"] == 2.0

    # a stage in between that is not due (disabled) does not split the group
    engine = CascadeEngine(
        config(
            {"A": member, "S": {"enabled": False}, "B": member},
            execution_order=["A", "S", "B"],
        )
    )
    spans: dict[str, tuple[float, float]] = {}
    engine.register_stages(
        {"A": _recording(spans, "A", 0.02), "S": returning("S"), "B": _recording(spans, "B", 0.02)}
    )
    result = await engine.execute({})
    assert result["path"] == ["A", "B"]
    assert spans["B"][0] < spans["A"][1]  # they overlapped


@pytest.mark.parametrize("order", [["A", "B", "C"], ["B", "A", "C"]])
async def test_a_member_that_terminates_its_group_is_the_decision(order: list[str]) -> None:
    """When a member's rule terminates the run, the result's decision is that member's, in
    whichever order the group's members are listed."""
    member = {"can_run_parallel": True, "parallel_group": "g"}
    stop = {"name": "t", "condition": "stages.A.confidence >= 1", "action": {"type": "terminate"}}

    async def slow(_ctx: Any) -> dict:
        await asyncio.sleep(0.02)
        return {"result": "slow", "confidence": 0.1}

    engine = CascadeEngine(
        config(
            {"A": {**member, "routing_rules": [stop]}, "B": member, "C": {}},
            execution_order=order,
        )
    )
    engine.register_stages({"A": returning("stop", 1.0), "B": slow, "C": returning("C")})
    result = await engine.execute({})
    assert result["terminated_by"] == "t"
    assert "C" not in result["path"]
    assert (result["final_stage"], result["final_result"]) == ("A", "stop")
    assert result["final_confidence"] == 1.0


async def test_a_global_timeout_keeps_the_last_decision_and_says_what_it_cut_off() -> None:
    """The decision of a timed-out run is the last one reached; the stage the deadline
    cancelled (retries and all) has a global-timeout error, and stages never reached are
    listed as skipped for that reason."""

    async def stuck(_ctx: Any) -> dict:
        await asyncio.sleep(5)
        return {"result": "late"}

    for stage in ({}, {"max_retries": 2, "retry_delay_ms": 1}):
        engine = CascadeEngine(
            config({"A": {}, "B": stage, "C": {}}, global_timeout_ms=50, name="g")
        )
        engine.register_stages({"A": returning("approve", 0.7), "B": stuck, "C": returning(1)})
        result = await engine.execute({})
        assert result["timed_out"] is True
        assert (result["final_stage"], result["final_result"]) == ("A", "approve")
        assert result["final_confidence"] == 0.7
        assert result["path"] == ["A", "B"]
        [error] = result["errors"]
        assert error["stage"] == "B"
        assert error["type"] == "GlobalTimeoutError"
        assert "global timeout (0.05s)" in error["error"]
        assert result["stage_results"]["B"]["error_type"] == "GlobalTimeoutError"
        assert set(result["skipped_stages"]) == {"C"}
        assert "global timeout" in result["skipped_stages"]["C"]


async def test_without_an_execution_order_every_ready_member_of_a_group_runs_together() -> None:
    """With the order only the dependencies', a stage declared between two members (here one
    that needs the first member) does not split the group."""
    member = {"can_run_parallel": True, "parallel_group": "fetch"}
    engine = CascadeEngine(
        config(
            {
                "FETCH_USER": member,
                "SCORE_USER": {"depends_on": ["FETCH_USER"]},
                "FETCH_TXN": member,
            }
        )
    )
    spans: dict[str, tuple[float, float]] = {}
    engine.register_stages(
        {name: _recording(spans, name, 0.02) for name in ("FETCH_USER", "SCORE_USER", "FETCH_TXN")}
    )
    result = await engine.execute({})
    assert result["path"] == ["FETCH_USER", "FETCH_TXN", "SCORE_USER"]
    assert spans["FETCH_TXN"][0] < spans["FETCH_USER"][1]  # they overlapped


async def test_hooks_see_a_global_timeout_as_the_result_records_it() -> None:
    """The stage the global deadline cut off fails as a GlobalTimeoutError for hooks and
    events too, not as the stage's own timeout."""
    from cascadence.events import NOTE_FAILED, EventEmitter

    async def stuck(_ctx: Any) -> dict:
        await asyncio.sleep(5)
        return {"result": "late"}

    emitter = EventEmitter()
    failed: list[BaseException | None] = []
    emitter.on(NOTE_FAILED, lambda event: failed.append(event.error))
    engine = CascadeEngine(config({"S": {}}, global_timeout_ms=30), hooks=[emitter])
    engine.register_stage("S", stuck)
    result = await engine.execute({})
    assert result["stage_results"]["S"]["error_type"] == "GlobalTimeoutError"
    assert len(failed) == 1 and isinstance(failed[0], GlobalTimeoutError)
    assert "global timeout (0.03s) cancelled 'S'" in str(failed[0])


async def test_a_run_out_of_its_global_budget_does_not_count_against_a_stage_breaker() -> None:
    """A stage the global timeout cuts off (its own timeout is longer) was not failing: its
    circuit breaker does not count it, and a later run that has time gets the stage."""
    slow = [True]

    async def first(_ctx: Any) -> dict:
        await asyncio.sleep(0.05 if slow[0] else 0)
        return {"result": "a"}

    async def second(_ctx: Any) -> dict:
        await asyncio.sleep(0.03)
        return {"result": "b"}

    breaker = {"failure_threshold": 2, "reset_timeout_seconds": 30}
    engine = CascadeEngine(
        config(
            {"A": {}, "B": {"timeout_ms": 1000, "circuit_breaker": breaker}}, global_timeout_ms=60
        )
    )
    engine.register_stages({"A": first, "B": second})
    for _ in range(3):
        result = await engine.execute({})
        assert result["timed_out"]
        assert all(error["type"] != "CircuitOpenError" for error in result["errors"])
    slow[0] = False
    result = await engine.execute({})
    assert result["success"] and result["final_result"] == "b"
    stage_breaker = engine.breaker("B")
    assert stage_breaker is not None and stage_breaker.state.value == "closed"


async def test_a_parallel_member_that_hit_its_own_timeout_keeps_that_error() -> None:
    """In a parallel group cut off by the global timeout, a member stopped earlier by its own
    `timeout_ms` records its TimeoutError, not the global one (results of a group are
    recorded once every member is done, after the deadline)."""

    def member(**extra: Any) -> dict[str, Any]:
        return {"can_run_parallel": True, "parallel_group": "g", **extra}

    async def slow(_ctx: Any) -> dict:
        await asyncio.sleep(5)
        return {"result": "late"}

    engine = CascadeEngine(
        config({"P1": member(), "P2": member(timeout_ms=50)}, global_timeout_ms=200)
    )
    engine.register_stages({"P1": slow, "P2": slow})
    result = await engine.execute({})
    assert result["timed_out"]
    types = {e["stage"]: e["type"] for e in result["errors"]}
    assert types == {"P1": "GlobalTimeoutError", "P2": "TimeoutError"}
    assert "timed out after 0.05s" in result["stage_results"]["P2"]["error"]


@pytest.mark.parametrize("simple", [True, False], ids=["plain stage", "stage with policy"])
async def test_a_confidence_that_is_not_a_probability_fails_the_stage(simple: bool) -> None:
    """`confidence` is a number from 0 to 1 or none: anything else fails the stage, so a
    routing rule on it never silently reads a string or an out-of-range number."""
    import decimal
    import fractions

    stage: dict[str, Any] = {} if simple else {"max_retries": 1, "retry_delay_ms": 0}
    bad = ["high", 1.5, -3, float("nan"), True]
    good = [0, 1, 0.5, None, decimal.Decimal("0.7"), fractions.Fraction(1, 3)]
    for value, ok in [(v, False) for v in bad] + [(v, True) for v in good]:
        engine = CascadeEngine(config({"A": stage}))
        engine.register_stage("A", returning("ok", value))
        result = await engine.execute({})
        error = result["stage_results"]["A"].get("error")
        assert result["success"] is ok, value
        if ok:
            assert error is None
        else:
            assert error == (
                f"the handler returned confidence {value!r}; expected a number from 0 to 1 "
                "(or none)"
            )
            assert result["errors"][0]["type"] == "ValueError"


async def test_an_error_that_cannot_describe_itself_is_still_recorded() -> None:
    """A handler's exception whose `__str__` fails is a stage error like any other; the run
    goes on and its result is returned."""

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("cannot str")

    async def broken(_ctx: Any) -> dict[str, Any]:
        raise Unprintable

    engine = CascadeEngine(config({"A": {}, "B": {}}))
    engine.register_stages({"A": broken, "B": returning("ok")})
    result = await engine.execute({})
    assert result["path"] == ["A", "B"]
    assert result["errors"] == [
        {
            "stage": "A",
            "error": "Unprintable (its message could not be read: ValueError)",
            "type": "Unprintable",
        }
    ]
