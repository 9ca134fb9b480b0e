"""Flask: the spec's CadenceBlueprint example, the decision endpoint and every status code."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import warnings
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
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

from cascadence import Cadence, CascadeEngine
from cascadence.integrations.flask import BackgroundLoop, CadenceBlueprint, create_app
from cascadence.reporters import OpenTelemetryReporter, PrometheusReporter

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def spec_app() -> Flask:
    """The spec's Flask snippet, as written (only the import changed)."""
    from flask import Flask

    from cascadence.integrations.flask import CadenceBlueprint

    app = Flask(__name__)
    bp = CadenceBlueprint("orders", __name__)

    @bp.cadence_route("/orders/", checkout_cadence)
    def create_order(order_id):  # type: ignore[no-untyped-def]
        return OrderScore(order_id=order_id)

    app.register_blueprint(bp)
    return app


def test_spec_example_as_written() -> None:
    """The spec's route takes order_id from the JSON body or the query string."""
    client = spec_app().test_client()
    from_body = client.post("/orders/", json={"order_id": "ORD-7"})
    from_query = client.post("/orders/?order_id=ORD-8")
    assert from_body.status_code == 200
    body = from_body.get_json()
    assert body["order_id"] == "ORD-7"
    assert body["status"] == "paid"
    assert body["total"] == 15.5
    assert from_query.get_json()["order_id"] == "ORD-8"
    assert RUN_ID.match(from_body.headers["X-Run-Id"])
    assert checkout_cadence.score.order_id == "ORD-123"  # type: ignore[union-attr]


def test_spec_example_missing_argument_is_422() -> None:
    """Without order_id anywhere in the request, the answer is 422 naming it."""
    client = spec_app().test_client()
    plain = client.post("/orders/")
    as_json = client.post("/orders/", json={"other": 1})
    assert plain.status_code == 422
    assert plain.get_json()["detail"][0]["loc"] == ["query", "order_id"]
    assert plain.get_json()["detail"][0]["type"] == "missing"
    assert as_json.get_json()["detail"][0]["loc"] == ["body", "order_id"]


def test_url_rule_values_forms_and_annotations() -> None:
    """URL rule values reach the view; annotated parameters are converted or refused."""
    app = Flask(__name__)
    bp = CadenceBlueprint("orders", __name__)

    @bp.cadence_route("/orders/<order_id>", checkout_cadence)
    def create_order(order_id: str, qty: int = 1) -> OrderScore:
        return OrderScore(order_id=f"{order_id}x{qty}")

    @bp.cadence_route("/async/<order_id>", checkout_cadence, endpoint="async_order")
    async def create_async(order_id: str) -> OrderScore:
        await asyncio.sleep(0)
        return OrderScore(order_id=order_id)

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.post("/orders/A1").get_json()["order_id"] == "A1x1"
    assert client.post("/orders/A1", data={"qty": "3"}).get_json()["order_id"] == "A1x3"
    bad = client.post("/orders/A1?qty=lots")
    assert bad.status_code == 422
    assert bad.get_json()["detail"][0]["loc"] == ["query", "qty"]
    assert bad.get_json()["detail"][0]["type"] == "int_parsing"
    assert client.post("/async/Z9").get_json()["order_id"] == "Z9"


def flow_client(cadence: Cadence[Any], **kwargs: Any) -> FlaskClient:
    app = Flask(__name__)
    bp = CadenceBlueprint("flows", __name__, **kwargs)

    @bp.cadence_route("/run", cadence)
    def start() -> OrderScore:
        return OrderScore(order_id="o-1")

    app.register_blueprint(bp)
    return app.test_client()


def test_flow_failure_timeout_and_open_circuit() -> None:
    """A failing note is 500, a timed-out one 504, a refused one 503 with Retry-After."""
    failed = flow_client(failing_cadence).post("/run")
    assert failed.status_code == 500
    assert failed.get_json()["note"] == "charge"
    assert failed.get_json()["error_type"] == "ValueError"
    assert "detail" not in failed.get_json()
    shown = flow_client(failing_cadence, expose_errors=True).post("/run")
    assert shown.get_json()["detail"] == "card declined"
    timed_out = flow_client(slow_cadence).post("/run")
    assert timed_out.status_code == 504
    assert timed_out.get_json()["error"] == "timeout"
    flow, breaker = breaker_cadence()
    asyncio.run(breaker.record_failure())
    refused = flow_client(flow).post("/run")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "30"
    for response in (failed, timed_out, refused):
        assert RUN_ID.match(response.headers["X-Run-Id"])


def decision_client(engine: CascadeEngine, **kwargs: Any) -> FlaskClient:
    app = Flask(__name__)
    bp = CadenceBlueprint("decisions", __name__)
    bp.decision_route("/decide", engine, **kwargs)
    app.register_blueprint(bp)
    return app.test_client()


def test_decision_200_and_422() -> None:
    """A valid body gets the decision; invalid ones get 422 with the offending field."""
    client = decision_client(decision_engine(), input_model=Transaction)
    ok = client.post("/decide", json={"user_id": "trusted_bo", "amount": 3})
    assert ok.status_code == 200
    assert ok.get_json()["terminated_by"] == "sure"
    assert ok.get_json()["run_id"] == ok.headers["X-Run-Id"]
    missing = client.post("/decide", json={"user_id": "u"})
    assert missing.status_code == 422
    assert missing.get_json()["detail"][0]["loc"] == ["body", "amount"]
    negative = client.post("/decide", json={"user_id": "u", "amount": -1})
    assert negative.get_json()["detail"][0]["type"] == "greater_than_equal"
    broken = client.post("/decide", data=b"{nope", content_type="application/json")
    assert broken.status_code == 422
    assert broken.get_json()["detail"][0]["type"] == "json_invalid"
    loose = decision_client(decision_engine())
    assert loose.post("/decide", json=[1]).get_json()["detail"][0]["loc"] == ["body"]
    assert loose.post("/decide").get_json()["detail"][0]["type"] == "missing"
    assert loose.post("/decide", json={"user_id": "u"}).status_code == 200


def test_decision_504_and_503() -> None:
    """A global timeout is 504 with the partial decision; an open breaker 503."""
    timed_out = decision_client(timeout_engine()).post("/decide", json={"user_id": "u"})
    assert timed_out.status_code == 504
    assert timed_out.get_json()["timed_out"] is True
    assert "FAST" in timed_out.get_json()["stage_results"]
    client = decision_client(breaker_engine())
    assert client.post("/decide", json={}).status_code == 200
    refused = client.post("/decide", json={})
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "60"
    assert refused.get_json()["error"]["type"] == "circuit_open"


def test_create_app_health_and_metrics(metrics: PrometheusReporter) -> None:
    """The Flask app serves /healthz and /metrics and counts requests per URL rule."""
    app = create_app(decision_engine(), metrics=metrics, input_model=Transaction)
    client = app.test_client()
    assert client.post("/decide", json={"user_id": "u", "amount": 1}).status_code == 200
    assert client.post("/decide", json={}).status_code == 422
    assert client.get("/nowhere").status_code == 404
    assert client.get("/healthz").get_json() == {
        "status": "ok",
        "cascade": "trust",
        "version": "2.1",
    }
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert b"cascadence_runs_total" in scraped.data
    reg = metrics.registry
    http = "cascadence_http_requests_total"
    assert reg.get_sample_value(http, {"method": "POST", "route": "/decide", "status": "422"}) == 1
    assert reg.get_sample_value(http, {"method": "GET", "route": "<unmatched>", "status": "404"})
    assert reg.get_sample_value(
        "cascadence_runs_total", {"kind": "cascade", "name": "trust", "outcome": "completed"}
    )
    assert app.extensions["cascadence"]["metrics"] is metrics
    bare = create_app(decision_engine(), metrics=False).test_client()
    assert bare.get("/metrics").status_code == 404


def test_request_context_reaches_the_run() -> None:
    """A span current in the request's thread is the parent of the run's span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(
        decision_engine(),
        metrics=False,
        tracing=OpenTelemetryReporter(tracer_provider=provider),
    )
    with provider.get_tracer("test").start_as_current_span("incoming"):
        assert app.test_client().post("/decide", json={"user_id": "u"}).status_code == 200
    spans = {s.name: s for s in exporter.get_finished_spans()}
    run = spans["cascade trust"]
    assert run.parent is not None
    assert run.parent.span_id == spans["incoming"].context.span_id


def test_background_loop_and_custom_runner() -> None:
    """The loop runs coroutines for sync callers, restarts after close, and can be replaced."""
    loop = BackgroundLoop()

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert loop.run(answer()) == 42
    loop.close()
    assert loop.run(answer()) == 42
    loop.close()
    app = Flask(__name__)
    bp = CadenceBlueprint("d", __name__, runner=asyncio.run)
    bp.decision_route("/decide", decision_engine())
    app.register_blueprint(bp)
    assert app.test_client().post("/decide", json={"user_id": "u"}).status_code == 200


def test_view_may_answer_itself() -> None:
    """A view that returns a Response skips the flow."""
    from flask import Response

    app = Flask(__name__)
    bp = CadenceBlueprint("orders", __name__)

    @bp.cadence_route("/o/<order_id>", checkout_cadence)
    def refuse(order_id: str) -> Response:
        return Response("no", status=409)

    app.register_blueprint(bp)
    assert app.test_client().post("/o/1").status_code == 409


@pytest.mark.parametrize("model", [None, Transaction])
def test_blueprint_health_routes(model: Any) -> None:
    """health_routes adds /healthz without a reporter (and no /metrics)."""
    app = Flask(__name__)
    bp = CadenceBlueprint("h", __name__)
    bp.decision_route("/decide", decision_engine(), input_model=model)
    bp.health_routes()
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 404


def test_a_body_nested_too_deeply_is_422() -> None:
    """JSON nested past what the decoder handles is a 422, not a 500 with a traceback."""
    engine = CascadeEngine({"name": "deep", "stages": {"S": {}}})
    engine.register_stage("S", lambda ctx: {"result": "ok"})
    app = create_app(engine, metrics=False)
    body = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = app.test_client().post("/decide", data=body, content_type="application/json")
    assert answer.status_code == 422
    assert answer.get_json()["detail"][0]["type"] == "json_invalid"


def test_a_malformed_or_non_object_json_body_is_422_for_a_flow_route() -> None:
    """`cadence_route` answers a broken JSON body (or an array) as FastAPI does."""
    client = spec_app().test_client()
    broken = client.post("/orders/", data="{bad", content_type="application/json")
    array = client.post("/orders/", data="[1]", content_type="application/json")
    assert broken.status_code == array.status_code == 422
    assert broken.get_json()["detail"][0]["type"] == "json_invalid"
    assert array.get_json()["detail"][0]["type"] == "dict_type"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_after_a_run_serves_requests() -> None:
    """A child forked after the shared loop started (gunicorn --preload with a warm-up
    request) runs its own flows instead of waiting forever on the parent's loop thread."""
    app = Flask(__name__)
    bp = CadenceBlueprint("orders", __name__)

    @bp.cadence_route("/orders/<order_id>", checkout_cadence)
    def create_order(order_id: str) -> OrderScore:
        return OrderScore(order_id=order_id)

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.post("/orders/warm").status_code == 200  # the loop runs in this process
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking with threads: that is the case
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, die of SIGALRM if the request hangs
        code = 1
        try:
            os.close(read)
            signal.alarm(20)
            answer = client.post("/orders/child")
            os.write(write, json.dumps([answer.status_code, answer.get_json()]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status), f"the child hung (killed by signal {os.WTERMSIG(status)})"
    assert os.WEXITSTATUS(status) == 0
    code, body = json.loads(sent)
    assert code == 200
    assert body["order_id"] == "child" and body["status"] == "paid"
    assert client.post("/orders/again").status_code == 200  # the parent's loop is untouched
