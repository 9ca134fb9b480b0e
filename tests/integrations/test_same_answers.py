"""The two frameworks answer a decision route's invalid input with the same 422 body."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from pydantic import BaseModel

from cascadence import CascadeEngine
from cascadence.integrations.fastapi import CadenceRouter
from cascadence.integrations.flask import CadenceBlueprint


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
