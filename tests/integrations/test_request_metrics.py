"""PrometheusMiddleware labels each request with the full route template of the app it wraps:
include prefixes and mount paths included, the server's root_path left out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from cascadence.integrations.fastapi import PrometheusMiddleware
from cascadence.reporters import PrometheusReporter

HTTP = "cascadence_http_requests_total"


def items_app() -> FastAPI:
    """A sub-app with a route of its own and one from a router included with a prefix."""
    sub = FastAPI()

    @sub.get("/items/{i}")
    async def item(i: int) -> dict[str, int]:
        return {"i": i}

    router = APIRouter()

    @router.get("/things/{t}")
    async def thing(t: str) -> dict[str, str]:
        return {"t": t}

    sub.include_router(router, prefix="/r")
    return sub


def counted(metrics: PrometheusReporter) -> dict[tuple[str, str], float]:
    """(route, status) -> requests counted."""
    out: dict[tuple[str, str], float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == HTTP:
                out[(sample.labels["route"], sample.labels["status"])] = sample.value
    return out


def test_a_route_of_a_mounted_app_carries_the_mount_path(metrics: PrometheusReporter) -> None:
    """Two versions mounting sub-apps with the same routes count as two series, not one."""
    app = FastAPI()
    app.mount("/v1", items_app())
    app.mount("/v2", items_app())
    app.add_middleware(PrometheusMiddleware, reporter=metrics)
    client = TestClient(app)
    assert client.get("/v1/items/1").status_code == 200
    assert client.get("/v2/items/2").status_code == 200
    assert client.get("/v2/items/3").status_code == 200
    assert counted(metrics) == {("/v1/items/{i}", "200"): 1, ("/v2/items/{i}", "200"): 2}


def test_one_app_mounted_twice_and_nested_mounts(metrics: PrometheusReporter) -> None:
    """The mount a request went through is told apart even for one app mounted twice;
    nested mounts add up, and a mount's own parameters stay templates."""
    shared = items_app()
    tenants = FastAPI()
    tenants.mount("/deep", shared)
    app = FastAPI()
    app.mount("/a", shared)
    app.mount("/b", shared)
    app.mount("/tenants/{tenant}", tenants)
    app.add_middleware(PrometheusMiddleware, reporter=metrics)
    client = TestClient(app)
    for path in ["/a/items/1", "/b/r/things/x", "/tenants/acme/deep/items/2"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/tenants/globex/deep/r/things/y").status_code == 200
    assert counted(metrics) == {
        ("/a/items/{i}", "200"): 1,
        ("/b/r/things/{t}", "200"): 1,
        ("/tenants/{tenant}/deep/items/{i}", "200"): 1,
        ("/tenants/{tenant}/deep/r/things/{t}", "200"): 1,
    }


def test_include_router_prefixes_are_part_of_the_label(metrics: PrometheusReporter) -> None:
    """One router included under two prefixes counts under each prefixed template."""
    router = APIRouter()

    @router.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    outer = APIRouter(prefix="/api")
    outer.include_router(router, prefix="/v2")
    app = FastAPI()
    app.include_router(router, prefix="/v1")
    app.include_router(outer)
    app.add_middleware(PrometheusMiddleware, reporter=metrics)
    client = TestClient(app)
    assert client.get("/v1/orders/1").status_code == 200
    assert client.get("/api/v2/orders/2").status_code == 200
    assert counted(metrics) == {
        ("/v1/orders/{order_id}", "200"): 1,
        ("/api/v2/orders/{order_id}", "200"): 1,
    }


def test_mounted_apps_without_a_route_count_under_the_mount(metrics: PrometheusReporter) -> None:
    """A mounted plain ASGI app, and a path a mounted app does not know, count under the
    mount's path; a path nothing mounts stays `<unmatched>`."""

    async def files(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("body {}")(scope, receive, send)

    app = FastAPI()
    app.mount("/static", files)
    app.mount("/v1", items_app())
    app.add_middleware(PrometheusMiddleware, reporter=metrics)
    client = TestClient(app)
    assert client.get("/static/css/site.css").status_code == 200
    assert client.get("/v1/missing").status_code == 404
    assert client.get("/missing").status_code == 404
    assert counted(metrics) == {
        ("/static", "200"): 1,
        ("/v1", "404"): 1,
        ("<unmatched>", "404"): 1,
    }


def test_starlette_mounts_around_an_app_wrapped_by_hand(metrics: PrometheusReporter) -> None:
    """A Starlette app with `Mount(routes=...)`, wrapped directly, labels the same way."""

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Mount("/greet", routes=[Route("/hello/{name}", hello)])])
    client = TestClient(PrometheusMiddleware(app, reporter=metrics))
    assert client.get("/greet/hello/ada").status_code == 200
    assert counted(metrics) == {("/greet/hello/{name}", "200"): 1}


def test_a_root_path_set_by_the_server_is_not_in_the_label(metrics: PrometheusReporter) -> None:
    """Served under `--root-path /api`, routes and mounts keep the labels they have at `/`."""
    app = FastAPI()
    app.mount("/v1", items_app())

    @app.get("/health/{part}")
    async def health(part: str) -> dict[str, str]:
        return {"part": part}

    app.add_middleware(PrometheusMiddleware, reporter=metrics)
    client = TestClient(app, root_path="/api")
    assert client.get("/api/v1/items/1").status_code == 200
    assert client.get("/api/health/db").status_code == 200
    assert counted(metrics) == {("/v1/items/{i}", "200"): 1, ("/health/{part}", "200"): 1}
