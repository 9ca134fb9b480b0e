"""FastAPI: the spec's CadenceRouter example, the decision endpoint and every status code."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serving_apps import (
    OrderScore,
    Transaction,
    breaker_cadence,
    breaker_engine,
    checkout_cadence,
    decision_engine,
    failing_cadence,
    slow_cadence,
    timeout_engine,
)

from cascadence import CascadeEngine
from cascadence.integrations.fastapi import CadenceRouter, CascadeRouter, create_app
from cascadence.reporters import OpenTelemetryReporter, PrometheusReporter

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def test_spec_example_as_written() -> None:
    """The spec's FastAPI snippet serves the checkout flow on a fresh score per request."""
    from fastapi import FastAPI

    from cascadence.integrations.fastapi import CadenceRouter

    app = FastAPI()
    router = CadenceRouter()

    @router.cadence("/orders/{order_id}", checkout_cadence)
    async def create_order(order_id: str):  # type: ignore[no-untyped-def]
        return OrderScore(order_id=order_id)

    app.include_router(router)

    with TestClient(app) as client:
        first = client.post("/orders/ORD-1")
        second = client.post("/orders/ORD-2")
    assert first.status_code == 200
    body = first.json()
    assert body["order_id"] == "ORD-1"
    assert body["status"] == "paid"
    assert body["total"] == 15.5
    assert body["items"] == [{"price": 10.0}, {"price": 5.5}]
    assert second.json()["order_id"] == "ORD-2"
    assert RUN_ID.match(first.headers["X-Run-Id"])
    assert first.headers["X-Run-Id"] != second.headers["X-Run-Id"]
    template = checkout_cadence.score
    assert template is not None
    assert (template.order_id, template.status) == ("ORD-123", "pending")


def test_sync_endpoint_none_and_query_validation() -> None:
    """A plain-def endpoint works; None runs on a copy of the template; bad params get 422."""
    router = CadenceRouter()
    seen: list[int] = []

    @router.cadence("/copy", checkout_cadence, methods=["GET", "POST"])
    def use_template(qty: int) -> None:
        seen.append(qty)

    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        ok = client.get("/copy", params={"qty": 3})
        bad = client.post("/copy", params={"qty": "many"})
    assert ok.status_code == 200 and ok.json()["order_id"] == "ORD-123"
    assert ok.json()["status"] == "paid"
    assert checkout_cadence.score.status == "pending"  # type: ignore[union-attr]
    assert seen == [3]
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "qty"]


def flow_client(cadence: Any, **router_kwargs: Any) -> TestClient:
    router = CadenceRouter(**router_kwargs)

    @router.cadence("/run", cadence)
    async def start() -> OrderScore:
        return OrderScore(order_id="o-1")

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_flow_note_failure_is_500_naming_the_note() -> None:
    """A failing note answers 500 with the note and error class, message only on request."""
    with flow_client(failing_cadence) as client:
        hidden = client.post("/run")
    with flow_client(failing_cadence, expose_errors=True) as client:
        shown = client.post("/run")
    assert hidden.status_code == 500
    body = hidden.json()
    assert body["error"] == "note_failed"
    assert body["note"] == "charge"
    assert body["error_type"] == "ValueError"
    assert "detail" not in body
    assert body["run_id"] == hidden.headers["X-Run-Id"]
    assert shown.json()["detail"] == "card declined"


def test_flow_timeout_is_504() -> None:
    """A note that runs past its timeout answers 504 naming the note."""
    with flow_client(slow_cadence) as client:
        response = client.post("/run")
    assert response.status_code == 504
    assert response.json()["error"] == "timeout"
    assert response.json()["note"] == "charge"
    assert RUN_ID.match(response.headers["X-Run-Id"])


def test_flow_open_circuit_is_503_with_retry_after() -> None:
    """A note refused by an open breaker answers 503 with Retry-After."""
    flow, breaker = breaker_cadence()
    asyncio.run(breaker.record_failure())
    with flow_client(flow) as client:
        response = client.post("/run")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json()["error"] == "circuit_open"
    assert response.json()["breaker"] == "payments"
    assert RUN_ID.match(response.headers["X-Run-Id"])


def decision_client(engine: CascadeEngine, **kwargs: Any) -> TestClient:
    app = FastAPI()
    app.include_router(CascadeRouter(engine, **kwargs))
    return TestClient(app)


def test_decision_200_with_run_id() -> None:
    """A valid request gets the engine's result; X-Run-Id is the result's run id."""
    with decision_client(decision_engine(), input_model=Transaction) as client:
        response = client.post("/decide", json={"user_id": "u1", "amount": 120})
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == ["FAST", "DEEP"]
    assert body["final_result"] == "pass"
    assert body["routing_decisions"][0]["rule"] == "escalate"
    assert body["run_id"] == response.headers["X-Run-Id"]
    assert RUN_ID.match(body["run_id"])


def test_decision_whose_result_contains_itself_is_200_with_cycle_marks() -> None:
    """A handler's result that contains itself (and a dataclass that does) is answered, the
    repeat written as "<cycle>"; nesting deeper than JSON can hold is cut off, not a 500."""
    from dataclasses import dataclass

    from cascadence import CascadeConfig

    @dataclass
    class Node:
        name: str
        parent: Any = None

    async def loop(ctx: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"result": "pass", "confidence": 0.9}
        d["data"] = {"self": d}
        node = Node("n")
        node.parent = node
        deep: list[Any] = []
        for _ in range(2000):
            deep = [deep]
        d["node"], d["deep"] = node, deep
        return d

    engine = CascadeEngine(CascadeConfig(name="c", stages=[{"name": "A"}]))
    engine.register_stage("A", loop)
    with decision_client(engine) as client:
        response = client.post("/decide", json={"x": 1})
    assert response.status_code == 200
    stage = response.json()["stage_results"]["A"]
    assert stage["data"]["self"]["data"] == "<cycle>"
    assert stage["node"] == {"name": "n", "parent": "<cycle>"}
    assert "<nested too deep>" in response.text


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"user_id": "u1"}, ["body", "amount"], "missing"),
        ({"user_id": "u1", "amount": -5}, ["body", "amount"], "greater_than_equal"),
        ({"user_id": 7, "amount": 1}, ["body", "user_id"], "string_type"),
    ],
)
def test_decision_422_names_the_field(payload: dict[str, Any], loc: list[str], kind: str) -> None:
    """A body that fails the input model answers 422 with the offending field's location."""
    with decision_client(decision_engine(), input_model=Transaction) as client:
        response = client.post("/decide", json=payload)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"] == loc
    assert errors[0]["type"] == kind


def test_decision_without_model_needs_an_object() -> None:
    """Without a model any JSON object is accepted; an array or broken JSON is 422."""
    with decision_client(decision_engine()) as client:
        ok = client.post("/decide", json={"user_id": "trusted_amy"})
        array = client.post("/decide", json=[1, 2])
        broken = client.post(
            "/decide", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert ok.status_code == 200 and ok.json()["terminated_by"] == "sure"
    assert array.status_code == 422 and array.json()["detail"][0]["loc"] == ["body"]
    assert broken.status_code == 422


def test_decision_global_timeout_is_504_with_partial_decision() -> None:
    """A run past its global timeout answers 504; the body is the partial decision."""
    with decision_client(timeout_engine()) as client:
        response = client.post("/decide", json={"user_id": "u1"})
    assert response.status_code == 504
    body = response.json()
    assert body["timed_out"] is True
    assert body["stage_results"]["FAST"]["result"] == "review"
    assert body["error"]["type"] == "global_timeout"
    assert RUN_ID.match(response.headers["X-Run-Id"])


def test_decision_open_breaker_is_503_with_retry_after() -> None:
    """A stage failure is reported in a 200; once its breaker is open the answer is 503."""
    with decision_client(breaker_engine()) as client:
        failed = client.post("/decide", json={})
        refused = client.post("/decide", json={})
    assert failed.status_code == 200
    assert failed.json()["success"] is False
    assert failed.json()["errors"][0]["type"] == "ConnectionError"
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "60"
    assert refused.json()["error"]["stage"] == "MODEL"
    assert refused.json()["stage_results"]["MODEL"]["error_type"] == "CircuitOpenError"
    assert RUN_ID.match(refused.headers["X-Run-Id"])


def test_create_app_health_metrics_and_request_counts(metrics: PrometheusReporter) -> None:
    """create_app serves /decide, /healthz and /metrics, counting requests per route template."""
    app = create_app(breaker_engine(), metrics=metrics)
    with TestClient(app) as client:
        assert client.post("/decide", json={}).status_code == 200
        assert client.post("/decide", json={}).status_code == 503
        health = client.get("/healthz")
        assert client.get("/no/such/page").status_code == 404
        scraped = client.get("/metrics")
    assert health.json() == {
        "status": "ok",
        "cascade": "fragile",
        "version": "1.0",
        "breakers": {"MODEL": "open"},
    }
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'cascadence_circuit_state{breaker="fragile:MODEL",name="fragile"} 2.0' in text
    reg = metrics.registry
    http = "cascadence_http_requests_total"
    assert reg.get_sample_value(http, {"method": "POST", "route": "/decide", "status": "503"}) == 1
    assert reg.get_sample_value(http, {"method": "GET", "route": "<unmatched>", "status": "404"})
    labels = {"kind": "cascade", "name": "fragile", "step": "MODEL"}
    assert reg.get_sample_value("cascadence_steps_total", {**labels, "outcome": "circuit_open"})
    assert app.state.engine.plan.name == "fragile"


def test_create_app_from_yaml_path_with_tracing(
    quickstart_engine: Callable[[], CascadeEngine], metrics: PrometheusReporter
) -> None:
    """A YAML path is enough; a tracing reporter records one run span per request."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = OpenTelemetryReporter(tracer_provider=provider)
    engine = quickstart_engine()
    app = create_app(engine, metrics=metrics, tracing=tracing)
    with TestClient(app) as client:
        response = client.post("/decide", json={"user_id": "user_1", "amount": 10})
    assert response.status_code == 200
    assert response.json()["path"] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    runs = [s for s in exporter.get_finished_spans() if s.name == "cascade trust_scoring_cascade"]
    assert len(runs) == 1
    assert dict(runs[0].attributes or {})["cascadence.run_id"] == response.headers["X-Run-Id"]
    assert app.state.tracing is tracing
    create_app(engine, metrics=metrics, tracing=tracing)  # same reporters: attached once
    assert sum(1 for h in engine._hooks if h is tracing) == 1


def test_create_app_without_metrics_and_bad_arguments() -> None:
    """metrics=False serves no /metrics; wrong reporter types are refused by name."""
    app = create_app(decision_engine(), metrics=False)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").json()["cascade"] == "trust"
    with pytest.raises(TypeError, match="metrics= expects"):
        create_app(decision_engine(), metrics="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tracing= expects"):
        create_app(decision_engine(), metrics=False, tracing="yes")


@pytest.mark.parametrize("expose", [False, True])
def test_decision_error_messages_follow_expose_errors(expose: bool) -> None:
    """A stage's error message (which may carry hosts, paths or secrets) reaches the client
    only with expose_errors; otherwise the result names the error type."""
    engine = CascadeEngine({"name": "leaky", "stages": {"S": {}}})

    def boom(_ctx: Any) -> None:
        raise RuntimeError("password=hunter2 at /srv/internal")

    engine.register_stage("S", boom)
    app = create_app(engine, expose_errors=expose, metrics=False)
    with TestClient(app) as client:
        body = client.post("/decide", json={}).json()
    assert ("hunter2" in str(body)) is expose
    assert body["stage_results"]["S"]["error_type"] == "RuntimeError"
    assert body["errors"][0]["type"] == "RuntimeError"
    if not expose:
        assert body["stage_results"]["S"]["error"] == "RuntimeError"
