"""End to end: the quick-start cascade served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from cascadence import CascadeEngine
from cascadence.integrations.fastapi import create_app
from cascadence.reporters import PrometheusReporter


@pytest.fixture
def served(
    quickstart_engine: Callable[[], CascadeEngine], metrics: PrometheusReporter
) -> Iterator[str]:
    """The quick-start decision app on a free port; yields its base URL."""
    app = create_app(quickstart_engine(), metrics=metrics)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_serves_decisions_health_and_metrics_over_http(served: str) -> None:
    """Decisions, validation errors, health and Prometheus metrics over real HTTP."""
    with httpx.Client(base_url=served, timeout=10) as client:
        decisions = [
            client.post("/decide", json={"user_id": f"user_{i}", "amount": i}) for i in range(5)
        ]
        invalid = client.post("/decide", json=["not", "an", "object"])
        health = client.get("/healthz")
        scraped = client.get("/metrics")
    for response in decisions:
        assert response.status_code == 200
        body = response.json()
        assert body["path"] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
        assert body["final_result"] == "pass"
        assert body["run_id"] == response.headers["x-run-id"]
    assert len({r.headers["x-run-id"] for r in decisions}) == 5
    assert invalid.status_code == 422
    assert health.json()["cascade"] == "trust_scoring_cascade"
    text = scraped.text
    assert (
        'cascadence_runs_total{kind="cascade",name="trust_scoring_cascade",outcome="completed"} 5.0'
        in text
    )
    assert (
        'cascadence_routing_decisions_total{action="enable_stages",name="trust_scoring_cascade",'
        'rule="low_confidence_escalate",stage="FAST_CHECK"} 5.0' in text
    )
    assert 'cascadence_http_requests_total{method="POST",route="/decide",status="200"} 5.0' in text
    assert 'cascadence_http_requests_total{method="POST",route="/decide",status="422"} 1.0' in text
    assert "user_" not in text  # inputs never become label values
