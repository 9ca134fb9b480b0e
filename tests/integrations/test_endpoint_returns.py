"""An endpoint function that returns something other than a score for its flow: the flow does
not run, the answer is a 500 `run_failed` (`TypeError`), and the error names the function."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask

from cascadence import Cadence, Score
from cascadence.integrations.fastapi import CadenceRouter
from cascadence.integrations.flask import CadenceBlueprint


@dataclass
class Ticket(Score):
    name: str = ""
    done: bool = False


@dataclass
class Other(Score):
    name: str = ""


def flow(ran: list[str]) -> Cadence[Any]:
    async def finish(score: Any) -> None:
        ran.append("finish")
        score.done = True

    return Cadence("tickets", Ticket()).then("finish", finish)


def fastapi_client(ran: list[str], *, expose: bool = False) -> TestClient:
    app = FastAPI()
    router = CadenceRouter(expose_errors=expose)
    tickets = flow(ran)

    @router.cadence("/dict/{name}", tickets)
    async def make_dict(name: str) -> Any:
        return {"name": name}

    @router.cadence("/other/{name}", tickets)
    def make_other(name: str) -> Any:
        return Other(name=name)

    @router.cadence("/ok/{name}", tickets)
    async def make_ticket(name: str) -> Ticket:
        return Ticket(name=name)

    @router.cadence("/default", tickets)
    async def make_default() -> None:
        return None

    app.include_router(router)
    return TestClient(app)


def flask_client(ran: list[str], *, expose: bool = False) -> Any:
    app = Flask(__name__)
    bp = CadenceBlueprint("tickets", __name__, expose_errors=expose)
    tickets = flow(ran)

    @bp.cadence_route("/dict/<name>", tickets)
    def make_dict(name: str) -> Any:
        return {"name": name}

    @bp.cadence_route("/tuple/<name>", tickets)
    def make_tuple(name: str) -> Any:
        return {"name": name}, 201

    @bp.cadence_route("/ok/<name>", tickets)
    async def make_ticket(name: str) -> Ticket:
        return Ticket(name=name)

    app.register_blueprint(bp)
    return app.test_client()


def refused(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cascadence.integrations"]


def test_fastapi_dict_is_a_clear_500_and_the_flow_does_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []
    client = fastapi_client(ran)
    with caplog.at_level(logging.ERROR, logger="cascadence.integrations"):
        answer = client.post("/dict/a")
    assert answer.status_code == 500
    body = answer.json()
    assert (body["error"], body["note"], body["error_type"]) == ("run_failed", None, "TypeError")
    assert "detail" not in body  # messages stay out of answers unless exposed
    assert body["run_id"] == answer.headers["X-Run-Id"]
    assert ran == []
    [message] = refused(caplog)
    assert answer.headers["X-Run-Id"] in message
    assert "endpoint function 'fastapi_client.<locals>.make_dict'" in message
    assert "must return the score of flow 'tickets', of class Ticket" in message
    assert message.endswith("got dict")


def test_fastapi_score_of_another_class_is_refused_and_exposed_on_request() -> None:
    ran: list[str] = []
    answer = fastapi_client(ran, expose=True).post("/other/a")
    assert answer.status_code == 500
    detail = answer.json()["detail"]
    assert "'fastapi_client.<locals>.make_other'" in detail and "got Other" in detail
    assert "of class Ticket" in detail
    assert ran == []


def test_fastapi_scores_and_none_still_run() -> None:
    ran: list[str] = []
    client = fastapi_client(ran)
    answer = client.post("/ok/a")
    assert answer.status_code == 200 and answer.json() == {"name": "a", "done": True}
    assert client.post("/default").json() == {"name": "", "done": True}
    assert ran == ["finish", "finish"]


def test_fastapi_flow_without_a_score_takes_any() -> None:
    app = FastAPI()
    router = CadenceRouter()

    async def finish(score: Any) -> None:
        score["done"] = True

    @router.cadence("/free", Cadence("free").then("finish", finish))
    async def make() -> Any:
        return {"name": "x"}

    app.include_router(router)
    answer = TestClient(app).post("/free")
    assert answer.status_code == 200 and answer.json() == {"name": "x", "done": True}


def test_flask_dict_and_tuple_are_clear_500s(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    client = flask_client(ran)
    with caplog.at_level(logging.ERROR, logger="cascadence.integrations"):
        answers = [client.post("/dict/a"), client.post("/tuple/a")]
    for answer in answers:
        assert answer.status_code == 500
        body = answer.get_json()
        assert (body["error"], body["note"], body["error_type"]) == (
            "run_failed",
            None,
            "TypeError",
        )
        assert body["run_id"] == answer.headers["X-Run-Id"]
    assert ran == []
    dict_message, tuple_message = refused(caplog)
    assert "endpoint function 'flask_client.<locals>.make_dict'" in dict_message
    assert "of class Ticket" in dict_message and dict_message.endswith("got dict")
    assert "'flask_client.<locals>.make_tuple'" in tuple_message
    assert tuple_message.endswith("got tuple")


def test_flask_exposed_detail_and_scores_still_run() -> None:
    ran: list[str] = []
    client = flask_client(ran, expose=True)
    detail = client.post("/dict/a").get_json()["detail"]
    assert "must return the score of flow 'tickets', of class Ticket" in detail
    answer = client.post("/ok/b")
    assert answer.status_code == 200 and answer.get_json() == {"name": "b", "done": True}
    assert ran == ["finish"]
