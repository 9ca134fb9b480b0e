"""The two frameworks answer alike: a decision route's invalid input, a flow route's unused
body, a framework HTTP exception raised in a note, and any exception escaping a run."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from flask import Flask
from pydantic import BaseModel, field_serializer

from cascadence import Cadence, CascadeEngine, Score
from cascadence.integrations.fastapi import CadenceRouter
from cascadence.integrations.flask import CadenceBlueprint

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class Txn(BaseModel):
    amount: int


@pytest.mark.parametrize("body", [b"{bad", b"[1]", b'{"x": 1}', b'{"amount": "many"}', b""])
@pytest.mark.parametrize("model", [Txn, None])
def test_decision_routes_answer_bad_input_alike(body: bytes, model: type[Txn] | None) -> None:
    """Broken JSON, a non-object and a field that fails the model: FastAPI's body, field for
    field (FastAPI's own answer when the route takes the model as its body)."""
    engine = CascadeEngine({"name": "d", "stages": {"S": {}}})
    engine.register_stage("S", lambda ctx: {"result": "ok"})
    router = CadenceRouter()
    router.decision("/decide", engine, input_model=model)
    fastapi_app = FastAPI()
    fastapi_app.include_router(router)
    blueprint = CadenceBlueprint("d", __name__)
    blueprint.decision_route("/decide", engine, input_model=model)
    flask_app = Flask(__name__)
    flask_app.register_blueprint(blueprint)
    headers = {"content-type": "application/json"}
    fast = TestClient(fastapi_app).post("/decide", content=body, headers=headers)
    flask = flask_app.test_client().post("/decide", data=body, content_type="application/json")
    if model is None and body in (b'{"x": 1}', b'{"amount": "many"}'):
        assert fast.status_code == flask.status_code == 200  # any object is an input
        return
    assert fast.status_code == flask.status_code == 422
    assert fast.json() == flask.get_json()

    plain = FastAPI()

    @plain.post("/own")
    def own(txn: Txn) -> Txn:
        return txn

    if model is Txn and body:  # the same as FastAPI answers for a route of its own
        assert TestClient(plain).post("/own", content=body, headers=headers).json() == fast.json()


@dataclass
class Order(Score):
    order_id: str = ""
    status: str = "new"


@dataclass(frozen=True)
class Answer:
    """What a client saw: status, JSON body (None when not JSON), headers."""

    status: int
    body: Any
    headers: Any  # the client's own headers, read without regard to case


Post = Callable[[str, bytes, str], Answer]


def serve(flow: Cadence[Order], framework: str) -> Post:
    """Serve `flow` at `/orders/{order_id}` (a view taking only `order_id`) with one framework;
    returns `post(path, body, content_type)`."""
    if framework == "fastapi":
        router = CadenceRouter()

        @router.cadence("/orders/{order_id}", flow)
        async def fast_order(order_id: str) -> Order:
            return Order(order_id=order_id)

        app = FastAPI()
        app.include_router(router)
        client = TestClient(app, raise_server_exceptions=False)

        def post_fast(path: str, body: bytes, content_type: str) -> Answer:
            got = client.post(path, content=body, headers={"content-type": content_type})
            is_json = got.headers.get("content-type", "").startswith("application/json")
            return Answer(got.status_code, got.json() if is_json else None, got.headers)

        return post_fast
    blueprint = CadenceBlueprint("orders", __name__)

    @blueprint.cadence_route("/orders/<order_id>", flow)
    def flask_order(order_id: str) -> Order:
        return Order(order_id=order_id)

    flask_app = Flask(__name__)
    flask_app.register_blueprint(blueprint)
    flask_client = flask_app.test_client()

    def post_flask(path: str, body: bytes, content_type: str) -> Answer:
        got = flask_client.post(path, data=body, content_type=content_type)
        return Answer(got.status_code, got.get_json(silent=True), got.headers)

    return post_flask


FRAMEWORKS = ["fastapi", "flask"]


async def confirm(score: Order) -> None:
    score.status = "confirmed"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("body", [b"[1,2]", b"{bad", b'"text"', b'{"order_id": "other"}'])
def test_a_body_no_parameter_reads_is_ignored(framework: str, body: bytes) -> None:
    """A view whose parameters all come from the URL runs whatever JSON body is sent."""
    post = serve(Cadence("orders", Order()).then("confirm", confirm), framework)
    answer = post("/orders/ORD-1", body, "application/json")
    assert answer.status == 200
    assert answer.body == {"order_id": "ORD-1", "status": "confirmed"}


def not_found(framework: str) -> Callable[[Order], Any]:
    """A note that raises the framework's own 404 (FastAPI `HTTPException`, Flask `abort`)."""

    async def lookup(score: Order) -> None:
        if framework == "fastapi":
            raise HTTPException(404, "order not found", headers={"X-Reason": "unknown"})
        flask.abort(404, "order not found")

    return lookup


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("where", ["then", "sync", "retry"])
def test_a_framework_http_exception_in_a_note_reaches_the_client(
    framework: str, where: str
) -> None:
    """`raise HTTPException(404)` / `abort(404)` in a note answers 404, not 500, also from a
    `.sync` group or after retries, and keeps the run's X-Run-Id."""
    from cascadence import note

    lookup = not_found(framework)
    flow = Cadence("orders", Order())
    if where == "then":
        flow.then("lookup", lookup)
    elif where == "sync":
        flow.sync("both", [lookup, confirm])
    else:
        flow.then("lookup", note(retry={"max_attempts": 2, "delay": 0})(lookup))
    answer = serve(flow, framework)("/orders/ORD-1", b"", "text/plain")
    assert answer.status == 404
    assert RUN_ID.match(answer.headers["X-Run-Id"])
    if framework == "fastapi":
        assert answer.body == {"detail": "order not found"}
        assert answer.headers["X-Reason"] == "unknown"


def test_flask_error_handlers_see_an_abort_from_a_note() -> None:
    """The app's own `errorhandler(404)` answers an `abort(404)` raised in a note."""
    blueprint = CadenceBlueprint("orders", __name__)
    flow = Cadence("orders", Order()).then("lookup", not_found("flask"))

    @blueprint.cadence_route("/orders/<order_id>", flow)
    def order(order_id: str) -> Order:
        return Order(order_id=order_id)

    app = Flask(__name__)
    app.register_blueprint(blueprint)

    @app.errorhandler(404)
    def missing(error: Exception) -> tuple[dict[str, str], int]:
        return {"error": "missing"}, 404

    answer = app.test_client().post("/orders/ORD-1")
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "missing"}
    assert RUN_ID.match(answer.headers["X-Run-Id"])


def broken_handler(score: Order, error: Exception) -> None:
    raise KeyError("internal-secret")


async def charge(score: Order) -> None:
    raise ValueError("card declined")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_exception_escaping_a_run_gets_the_json_error_answer(framework: str) -> None:
    """An `on_error` handler that raises answers 500 with the JSON body naming the error type
    (not its message) and X-Run-Id, like a failed note."""
    flow = Cadence("orders", Order()).then("charge", charge).on_error(broken_handler)
    answer = serve(flow, framework)("/orders/ORD-1", b"", "text/plain")
    assert answer.status == 500
    run_id = answer.headers["X-Run-Id"]
    assert RUN_ID.match(run_id)
    assert answer.body == {
        "run_id": run_id,
        "error": "run_failed",
        "note": None,
        "error_type": "KeyError",
    }


class Unconvertible(BaseModel):
    """An input model whose conversion to the cascade's input fails (a broken serializer)."""

    amount: int

    @field_serializer("amount")
    def broken(self, amount: int) -> int:
        raise LookupError("currency table missing")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_exception_escaping_a_decision_gets_the_json_error_answer(framework: str) -> None:
    """A decision that raises instead of deciding (its input fails to convert) answers the
    same JSON 500, naming the error type, with X-Run-Id."""
    engine = CascadeEngine({"name": "d", "stages": {"S": {}}})
    engine.register_stage("S", lambda ctx: {"result": "ok"})
    model = Unconvertible
    if framework == "fastapi":
        router = CadenceRouter()
        router.decision("/decide", engine, input_model=model)
        app = FastAPI()
        app.include_router(router)
        got = TestClient(app, raise_server_exceptions=False).post("/decide", json={"amount": 1})
        status, body, headers = got.status_code, got.json(), got.headers
    else:
        blueprint = CadenceBlueprint("d", __name__)
        blueprint.decision_route("/decide", engine, input_model=model)
        flask_app = Flask(__name__)
        flask_app.register_blueprint(blueprint)
        answer = flask_app.test_client().post("/decide", json={"amount": 1})
        status, body, headers = answer.status_code, answer.get_json(), answer.headers
    assert status == 500
    assert body == {
        "run_id": headers["X-Run-Id"],
        "error": "run_failed",
        "note": None,
        "error_type": "PydanticSerializationError",
    }
