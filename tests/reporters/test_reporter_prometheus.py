"""PrometheusReporter: samples read back from the registry for flows and cascades."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from cascadence import Cadence, CascadeConfig, CascadeEngine, Score, note
from cascadence.events import NOTE_FAILED, CadenceEvent
from cascadence.policies import BreakerState, CircuitBreaker, InMemoryBreakerStore, StepPolicy
from cascadence.reporters import PrometheusReporter
from cascadence.runtime.invoke import call_step
from cascadence.testing import FakeClock


@dataclass
class Order(Score):
    order_id: str = ""
    total: float = 0.0
    status: str = "new"


async def price(score: Order) -> None:
    score.total = 42.0


async def pay(score: Order) -> None:
    score.status = "paid"


async def explode(score: Order) -> None:
    raise ValueError("card declined")


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    """A sample's value, 0.0 when the series does not exist."""
    found = registry.get_sample_value(metric, labels)
    return 0.0 if found is None else found


def cascade(stages: dict[str, Any], **extra: Any) -> CascadeConfig:
    return CascadeConfig.from_dict({"name": "risk", "stages": stages, **extra})


async def handler_ok(ctx: Any) -> dict[str, Any]:
    return {"result": "pass", "confidence": 0.4}


async def test_flow_runs_and_steps_are_counted(registry: CollectorRegistry) -> None:
    """A flow run counts one completed run and each step, with duration histograms."""
    reporter = PrometheusReporter(prefix="app", registry=registry)
    flow = Cadence("checkout", Order()).with_reporter(reporter.report)
    flow.then("price", price).then("pay", pay)
    for _ in range(3):
        await flow.run(Order(order_id="o"))
    labels = {"kind": "cadence", "name": "checkout"}
    assert value(registry, "app_runs_total", outcome="completed", **labels) == 3
    assert value(registry, "app_run_duration_seconds_count", **labels) == 3
    for step in ("price", "pay"):
        assert value(registry, "app_steps_total", step=step, outcome="completed", **labels) == 3
        assert value(registry, "app_step_duration_seconds_count", step=step, **labels) == 3


async def test_a_reporter_given_twice_counts_once(registry: CollectorRegistry) -> None:
    """`.with_reporter(reporter.report)` twice (or in a parent and its child flow) is one
    observer: each run and step counts once."""
    reporter = PrometheusReporter(prefix="twice", registry=registry)
    child = Cadence("pay", Order()).with_reporter(reporter.report).then("pay", pay)
    flow = (
        Cadence("checkout", Order())
        .with_reporter(reporter.report)
        .with_reporter(reporter.report)
        .then("price", price)
        .child("paying", child, lambda parent, kid: parent)
    )
    await flow.run(Order(order_id="o"))
    labels = {"kind": "cadence", "name": "checkout"}
    assert value(registry, "twice_runs_total", outcome="completed", **labels) == 1
    assert value(registry, "twice_steps_total", step="price", outcome="completed", **labels) == 1
    child_labels = {"kind": "cadence", "name": "pay"}
    assert value(registry, "twice_runs_total", outcome="completed", **child_labels) == 1


async def test_flow_failure_counts_error_class(registry: CollectorRegistry) -> None:
    """A failing note counts a failed run, a failed step and its underlying error class."""
    reporter = PrometheusReporter(registry=registry)
    flow = Cadence("checkout", Order()).with_reporter(reporter.report).then("pay", explode)
    with pytest.raises(Exception, match="card declined"):
        await flow.run(Order())
    labels = {"kind": "cadence", "name": "checkout"}
    assert value(registry, "cascadence_runs_total", outcome="failed", **labels) == 1
    assert value(registry, "cascadence_steps_total", step="pay", outcome="failed", **labels) == 1
    assert (
        value(registry, "cascadence_step_errors_total", step="pay", error="ValueError", **labels)
        == 1
    )


async def test_retries_counted_on_injected_clock(registry: CollectorRegistry) -> None:
    """Each retry of a note increments retries_total; the final success is one completion."""
    clock = FakeClock()
    calls = {"n": 0}

    @note(retry={"max_attempts": 3, "delay": 1.0}, clock=clock)
    async def flaky(score: Order) -> None:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("flaky")

    reporter = PrometheusReporter(registry=registry)
    flow = Cadence("f", Order()).with_reporter(reporter.report).then("flaky", flaky)
    await flow.run(Order())
    labels = {"kind": "cadence", "name": "f", "step": "flaky"}
    assert value(registry, "cascadence_retries_total", **labels) == 2
    assert value(registry, "cascadence_steps_total", outcome="completed", **labels) == 1


async def test_cascade_routing_cost_and_timeouts(registry: CollectorRegistry) -> None:
    """A cascade records routing decisions, stage cost and stage timeouts."""

    async def slow(ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"result": "late"}

    config = cascade(
        {
            "FAST": {
                "cost": 1,
                "routing_rules": [
                    {
                        "name": "escalate",
                        "type": "routing",
                        "condition": {
                            "field": "stages.FAST.confidence",
                            "operator": "<",
                            "value": 0.8,
                        },
                        "action": {"type": "enable_stages", "stages": ["SLOW"]},
                    }
                ],
            },
            "SLOW": {"enabled": False, "cost": 25, "timeout_ms": 20},
        },
        execution_order=["FAST", "SLOW"],
    )
    reporter = PrometheusReporter(registry=registry)
    engine = CascadeEngine(config, reporters=[reporter.report])
    engine.register_stage("FAST", handler_ok)
    engine.register_stage("SLOW", slow)
    result = await engine.execute({"user": "u1"})
    assert result["path"] == ["FAST", "SLOW"]
    labels = {"kind": "cascade", "name": "risk"}
    assert (
        value(
            registry,
            "cascadence_routing_decisions_total",
            name="risk",
            stage="FAST",
            rule="escalate",
            action="enable_stages",
        )
        == 1
    )
    assert value(registry, "cascadence_cost_total", step="FAST", **labels) == 1
    assert value(registry, "cascadence_cost_total", step="SLOW", **labels) == 25
    assert value(registry, "cascadence_timeouts_total", step="SLOW", **labels) == 1
    assert value(registry, "cascadence_steps_total", step="SLOW", outcome="timeout", **labels) == 1
    assert value(registry, "cascadence_runs_total", outcome="failed", **labels) == 1


async def test_engine_breaker_state_followed_exactly(registry: CollectorRegistry) -> None:
    """instrument(engine) watches stage breakers: the gauge reads 0, then 2 when it opens."""
    clock = FakeClock()

    async def down(ctx: Any) -> Any:
        raise ConnectionError("down")

    config = cascade(
        {"CALL": {"circuit_breaker": {"failure_threshold": 1, "reset_timeout_seconds": 30}}}
    )
    engine = CascadeEngine(config, clock=clock)
    engine.register_stage("CALL", down)
    reporter = PrometheusReporter(registry=registry)
    assert reporter.instrument(engine) is engine
    reporter.instrument(engine)  # a second call attaches nothing more
    gauge = {"name": "risk", "breaker": "risk:CALL"}
    assert value(registry, "cascadence_circuit_state", **gauge) == 0
    await engine.execute({})
    assert value(registry, "cascadence_circuit_state", **gauge) == 2
    await engine.execute({})
    labels = {"kind": "cascade", "name": "risk", "step": "CALL"}
    assert value(registry, "cascadence_steps_total", outcome="failed", **labels) == 1
    assert value(registry, "cascadence_steps_total", outcome="circuit_open", **labels) == 1
    assert value(registry, "cascadence_step_errors_total", error="CircuitOpenError", **labels) == 1


async def test_watch_breaker_follows_every_transition(registry: CollectorRegistry) -> None:
    """A watched breaker moves the gauge closed -> open -> half-open -> closed."""
    clock = FakeClock()
    breaker = CircuitBreaker("svc", failure_threshold=1, recovery_timeout=10, clock=clock)
    reporter = PrometheusReporter(registry=registry)
    reporter.watch_breaker(breaker, name="flow")
    seen: list[float] = []

    def read() -> None:
        seen.append(value(registry, "cascadence_circuit_state", name="flow", breaker="svc"))

    read()
    await breaker.record_failure()
    read()
    clock.advance(10)
    await breaker.before_call()
    read()
    await breaker.record_success()
    read()
    assert seen == [0, 2, 1, 0]
    assert breaker.state is BreakerState.CLOSED


async def test_breaker_state_listeners() -> None:
    """add_state_listener calls every listener on transitions, reset included, once each."""
    clock = FakeClock()
    changes: list[tuple[str, str, str]] = []
    old_style: list[str] = []
    breaker = CircuitBreaker(
        "svc",
        failure_threshold=1,
        recovery_timeout=5,
        clock=clock,
        on_state_change=lambda name, old, new: old_style.append(new.value),
    )

    def listener(name: str, old: BreakerState, new: BreakerState) -> None:
        changes.append((name, old.value, new.value))

    breaker.add_state_listener(listener)
    breaker.add_state_listener(listener)  # idempotent
    await breaker.record_failure()
    breaker.reset()
    assert changes == [("svc", "closed", "open"), ("svc", "open", "closed")]
    assert old_style == ["open", "closed"]


async def test_shared_breaker_refresh_notifies(registry: CollectorRegistry) -> None:
    """A replica that sees another open the shared breaker (refresh) moves its gauge too."""
    clock = FakeClock()
    store = InMemoryBreakerStore()
    here = CircuitBreaker("shared", failure_threshold=1, clock=clock, store=store)
    there = CircuitBreaker("shared", failure_threshold=1, clock=clock, store=store)
    reporter = PrometheusReporter(registry=registry)
    reporter.watch_breaker(here, name="svc")
    await there.record_failure()
    assert value(registry, "cascadence_circuit_state", name="svc", breaker="shared") == 0
    assert await here.refresh() is BreakerState.OPEN
    assert value(registry, "cascadence_circuit_state", name="svc", breaker="shared") == 2


async def test_breaker_gauge_inferred_from_events(registry: CollectorRegistry) -> None:
    """Without watch_breaker, a refused note opens the gauge and its next success closes it."""
    clock = FakeClock()
    breaker = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=5, clock=clock)
    fail = {"on": True}

    async def charge(score: Order) -> None:
        if fail["on"]:
            raise ConnectionError("down")

    reporter = PrometheusReporter(registry=registry)
    flow = Cadence("pay", Order()).with_reporter(reporter.report)
    flow.then("charge", note(circuit_breaker=breaker)(charge))
    gauge = {"name": "pay", "breaker": "payments"}
    with pytest.raises(Exception, match="down"):
        await flow.run(Order())
    with pytest.raises(Exception, match="open"):
        await flow.run(Order())
    assert value(registry, "cascadence_circuit_state", **gauge) == 2
    clock.advance(5)
    fail["on"] = False
    await flow.run(Order())
    assert value(registry, "cascadence_circuit_state", **gauge) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inputs=st.lists(
        st.dictionaries(st.text(max_size=8), st.text(max_size=12) | st.integers(), max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_labels_never_carry_inputs_or_run_ids(inputs: list[dict[str, Any]]) -> None:
    """Whatever the inputs and run ids, the set of series stays the same (labels are bounded)."""
    registry = CollectorRegistry()
    reporter = PrometheusReporter(registry=registry)
    engine = CascadeEngine(cascade({"A": {}}), reporters=[reporter.report])
    engine.register_stage("A", handler_ok)

    def series() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {
            (s.name, tuple(sorted(s.labels.items())))
            for family in registry.collect()
            for s in family.samples
        }

    async def drive(items: list[dict[str, Any]]) -> None:
        for item in items:
            await engine.execute(item, run_id=f"run-{len(str(item))}-{id(item)}")

    asyncio.run(drive([{}]))
    baseline = series()
    asyncio.run(drive(inputs))
    assert series() == baseline
    label_values = {v for _, labels in baseline for k, v in labels if k != "le"}
    assert label_values == {"cascade", "risk", "A", "completed", "failed"}


def test_reporters_share_families_on_one_registry(registry: CollectorRegistry) -> None:
    """Two reporters with one prefix and registry share metrics; a bucket clash is explained."""
    first = PrometheusReporter(registry=registry)
    second = PrometheusReporter(registry=registry)
    first.report(CadenceEvent(NOTE_FAILED, "f", "s", duration=0.1, error=ValueError("x")))
    second.report(CadenceEvent(NOTE_FAILED, "f", "s", duration=0.1, error=ValueError("x")))
    labels = {"kind": "cadence", "name": "f", "step": "s"}
    assert value(registry, "cascadence_steps_total", outcome="failed", **labels) == 2
    with pytest.raises(ValueError, match="buckets"):
        PrometheusReporter(registry=registry, buckets=(1.0, 2.0))
    PrometheusReporter(prefix="other", registry=registry)  # another prefix is independent


async def test_one_engine_instrumented_by_two_reporters_counts_each_run_once(
    registry: CollectorRegistry,
) -> None:
    """Two reporters on one registry (two apps serving one engine) attach to it once."""
    engine = CascadeEngine(cascade({"A": {}}))
    engine.register_stage("A", handler_ok)
    PrometheusReporter(registry=registry).instrument(engine)
    PrometheusReporter(registry=registry).instrument(engine)
    await engine.execute({})
    assert (
        value(registry, "cascadence_runs_total", kind="cascade", name="risk", outcome="completed")
        == 1
    )


def test_foreign_metric_with_same_name_is_a_clear_error(registry: CollectorRegistry) -> None:
    """A registry that already has a metric named like ours gets an error naming the prefix."""
    Counter("mine_runs_total", "not ours", registry=registry)
    with pytest.raises(ValueError, match=r"mine_\*.*prefix="):
        PrometheusReporter(prefix="mine", registry=registry)


def test_invalid_prefix_rejected() -> None:
    """A prefix that is not a valid metric name is refused with the expected form."""
    with pytest.raises(ValueError, match="invalid metric prefix 'my-app'"):
        PrometheusReporter(prefix="my-app", registry=CollectorRegistry())


def test_default_registry_and_http_observations() -> None:
    """The default registry is prometheus_client's; unknown HTTP methods count as OTHER."""
    reporter = PrometheusReporter(prefix="cascadence_default_test")
    assert reporter.registry is REGISTRY
    reporter.observe_request("BREW", "/decide", 418, 0.01)
    reporter.observe_request("GET", "/healthz", 200, 0.001)
    assert (
        value(
            REGISTRY,
            "cascadence_default_test_http_requests_total",
            method="OTHER",
            route="/decide",
            status="418",
        )
        == 1
    )
    assert b"cascadence_default_test_http_request_duration_seconds" in reporter.generate_latest()
    assert reporter.content_type.startswith("text/plain")


async def test_call_step_breaker_events_via_policy(registry: CollectorRegistry) -> None:
    """A refused call through call_step is classified as circuit_open from its error alone."""
    clock = FakeClock()
    breaker = CircuitBreaker("b", failure_threshold=1, recovery_timeout=5, clock=clock)
    await breaker.record_failure()
    policy = StepPolicy(breaker=breaker)
    reporter = PrometheusReporter(registry=registry)
    try:
        await call_step("s", handler_ok, None, policy)
    except Exception as exc:
        reporter.report(CadenceEvent(NOTE_FAILED, "n", "s", duration=0.0, error=exc))
    assert value(registry, "cascadence_circuit_state", name="n", breaker="b") == 2


async def test_siblings_cancelled_by_a_failure_are_not_failures(
    registry: CollectorRegistry,
) -> None:
    """Members of a group cancelled because another failed have no outcome: one failed step
    is counted, not three, and on_error hooks hear of the one failure only."""
    from cascadence import CadenceHooks

    errors: list[str] = []

    class OnError(CadenceHooks):
        async def on_error(self, note_name: str, score: Any, error: BaseException) -> None:
            errors.append(note_name)

    async def slow(score: Order) -> None:
        await asyncio.sleep(5)

    async def slow2(score: Order) -> None:
        await asyncio.sleep(5)

    reporter = PrometheusReporter(registry=registry)
    flow = (
        Cadence("grp", Order())
        .with_reporter(reporter.report)
        .with_hooks(OnError())
        .sync("g", [explode, slow, slow2])
    )
    with pytest.raises(Exception, match="card declined"):
        await flow.run(Order())
    labels = {"kind": "cadence", "name": "grp"}
    failed = sum(
        value(registry, "cascadence_steps_total", step=step, outcome="failed", **labels)
        for step in ("explode", "slow", "slow2")
    )
    assert failed == 1
    assert errors == ["explode"]


def test_a_refused_reporter_leaves_nothing_registered(registry: CollectorRegistry) -> None:
    """A name taken by other code, or unsorted buckets, register none of the families: the
    prefix works once the other metric is gone, or with sorted buckets."""
    taken = Counter("yy_cost", "not ours", registry=registry)
    with pytest.raises(ValueError, match="yy_"):
        PrometheusReporter(prefix="yy", registry=registry)
    assert registry.get_sample_value("yy_runs_total", {}) is None
    registry.unregister(taken)
    PrometheusReporter(prefix="yy", registry=registry)  # now free
    with pytest.raises(ValueError, match="increasing order"):
        PrometheusReporter(prefix="uu", registry=registry, buckets=(1, 0.5))
    PrometheusReporter(prefix="uu", registry=registry, buckets=(0.5, 1))


async def test_instrument_does_not_count_a_reporter_given_already(
    registry: CollectorRegistry,
) -> None:
    """`reporters=[reporter.report]` and then `reporter.instrument(engine)` count each run
    once."""
    reporter = PrometheusReporter(registry=registry)
    engine = CascadeEngine(cascade({"A": {}}), reporters=[reporter.report])
    engine.register_stage("A", handler_ok)
    assert reporter.instrument(engine) is engine
    await engine.execute({})
    runs = value(
        registry, "cascadence_runs_total", kind="cascade", name="risk", outcome="completed"
    )
    assert runs == 1
