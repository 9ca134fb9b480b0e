"""FastAPI integration: serve flows and cascades as HTTP endpoints.

Flows, as in the spec: the decorated endpoint builds the run's score; the router runs the flow
on it and answers with the final score as JSON.

```python
from fastapi import FastAPI
from cascadence.integrations.fastapi import CadenceRouter

app = FastAPI()
router = CadenceRouter()

@router.cadence("/orders/{order_id}", checkout_cadence)
async def create_order(order_id: str):
    return OrderScore(order_id=order_id)

app.include_router(router)
```

Cascades, as a decision endpoint (`CascadeRouter`), or a whole app with `/healthz`, `/metrics`
and request metrics (`create_app`):

```python
app = create_app("cascade.yaml", input_model=Transaction)   # POST /decide
```

Status codes (the same for the Flask integration): 200 with the final score or decision;
422 when the request is invalid (`detail[].loc` names the field); 500 when a step failed (the
body names it); 504 on a timeout (for a cascade, the body is the partial decision); 503 while
a circuit breaker is open, with `Retry-After`. Every run's id is in the `X-Run-Id` header.
An `HTTPException` a note raises (`raise HTTPException(404, "order not found")`) is answered by
FastAPI as if the endpoint had raised it (its status, detail and headers, and `X-Run-Id`).
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cascadence.integrations._decision import (
    JSON,
    RUN_ID_HEADER,
    as_engine,
    decision_outcome,
    encode_json,
    engine_input,
    flow_error,
    health,
    http_exception,
    instrument_engine,
    new_run_id,
    wrong_score,
)
from cascadence.reporters.prometheus import PrometheusMiddleware, PrometheusReporter

__all__ = [
    "CadenceRouter",
    "CascadeRouter",
    "PrometheusMiddleware",
    "RUN_ID_HEADER",
    "create_app",
    "health_router",
]

F = TypeVar("F", bound=Callable[..., Any])


def _typed_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """`fn`'s signature with string annotations resolved in `fn`'s own module."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable names: leave them for FastAPI to report
        hints = {}
    params = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
    ]
    return sig.replace(parameters=params, return_annotation=inspect.Signature.empty)


def _response(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def _run_failed(error: Exception, run_id: str, expose_errors: bool) -> Response:
    """The answer for a run that raised `error`: FastAPI's own for an `HTTPException` a step
    raised (re-raised with the run's `X-Run-Id`), else the JSON error body."""
    http = http_exception(error, HTTPException)
    if http is not None:
        http.headers = {**(http.headers or {}), RUN_ID_HEADER: run_id}
        raise http from None
    outcome = flow_error(error, run_id, expose_errors=expose_errors)
    return _response(outcome.status, outcome.body, outcome.headers)


class CadenceRouter(APIRouter):
    """An `APIRouter` that also serves flows (`.cadence`) and cascades (`.decision`).

    Args:
        *args: Passed to `APIRouter`.
        expose_errors: Put the failing step's error message in 500 responses (`detail`).
        **kwargs: Passed to `APIRouter`.
    """

    def __init__(self, *args: Any, expose_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expose_errors = expose_errors

    def cadence(
        self, path: str, cadence: Any, *, methods: Sequence[str] = ("POST",), **route_kwargs: Any
    ) -> Callable[[F], F]:
        """Serve `cadence` at `path`; the decorated function builds each run's score.

        The function takes path, query and body parameters like any FastAPI endpoint (it may
        be `async def` or plain `def`), and returns a fresh score for this request; returning
        None runs on a deep copy of the flow's own score. A `Response` it returns is sent as
        is, without running the flow. Anything else that is not of the class of the flow's own
        score (a dict, say) is a programming error: the flow does not run, the answer is a 500
        `run_failed` (`error_type` `TypeError`), and the error, naming the function, is logged
        on `cascadence.integrations`.

        Args:
            path: The route path, e.g. `/orders/{order_id}`.
            cadence: The `Cadence` to run.
            methods: HTTP methods of the route.
            **route_kwargs: Passed to `APIRouter.add_api_route` (tags, summary, ...).

        Returns:
            A decorator that registers the route and returns the function unchanged.
        """
        expose = self.expose_errors

        def decorate(fn: F) -> F:
            is_async = inspect.iscoroutinefunction(fn)

            async def endpoint(**kwargs: Any) -> Response:
                if is_async:
                    score = await fn(**kwargs)
                else:
                    score = await run_in_threadpool(fn, **kwargs)
                if isinstance(score, Response):
                    return score
                if score is None:
                    score = copy.deepcopy(cadence.score)
                run_id = new_run_id()
                wrong = wrong_score(fn, cadence, score, run_id, expose_errors=expose)
                if wrong is not None:
                    return _response(wrong.status, wrong.body, wrong.headers)
                try:
                    final = await cadence.run(score, run_id=run_id)
                except Exception as exc:
                    return _run_failed(exc, run_id, expose)
                return _response(200, encode_json(final), {RUN_ID_HEADER: run_id})

            endpoint.__signature__ = _typed_signature(fn)  # type: ignore[attr-defined]
            endpoint.__name__ = fn.__name__
            endpoint.__qualname__ = fn.__qualname__
            endpoint.__doc__ = fn.__doc__
            route_kwargs.setdefault("response_model", None)
            self.add_api_route(path, endpoint, methods=list(methods), **route_kwargs)
            return fn

        return decorate

    def decision(
        self,
        path: str,
        engine: Any,
        *,
        input_model: Any = None,
        explain: bool | None = None,
        methods: Sequence[str] = ("POST",),
        **route_kwargs: Any,
    ) -> None:
        """Serve a cascade as a decision endpoint: the JSON body is the input, the result the
        answer.

        Args:
            path: The route path.
            engine: A `CascadeEngine` (or a config, dict or path to build one from).
            input_model: A pydantic model (or dataclass, TypedDict) the body must satisfy;
                None accepts any JSON object. Validation errors answer 422.
            explain: Include the routing explanation in results (default: the engine's).
            methods: HTTP methods of the route.
            **route_kwargs: Passed to `APIRouter.add_api_route`.
        """
        engine = as_engine(engine)
        model: Any = input_model if input_model is not None else dict[str, Any]

        async def decide(payload: Any) -> Response:
            run_id = engine.new_run_id()
            try:
                result = await engine.execute(engine_input(payload), run_id=run_id, explain=explain)
            except Exception as exc:  # a stage's errors are in the result; this is not one
                return _run_failed(exc, run_id, self.expose_errors)
            outcome = decision_outcome(engine, result, run_id, expose_errors=self.expose_errors)
            return _response(outcome.status, outcome.body, outcome.headers)

        decide.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    "payload", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[model, Body()]
                )
            ]
        )
        decide.__name__ = f"decide_{engine.plan.name}"
        route_kwargs.setdefault("response_model", None)
        route_kwargs.setdefault("summary", f"Decide with cascade {engine.plan.name!r}")
        self.add_api_route(path, decide, methods=list(methods), **route_kwargs)


class CascadeRouter(CadenceRouter):
    """A router with one decision endpoint for `engine` (see `CadenceRouter.decision`).

    Args:
        engine: A `CascadeEngine` (or a config, dict or path to build one from).
        path: Where the decision endpoint is.
        input_model: The model request bodies must satisfy (None: any JSON object).
        explain: Include routing explanations in results.
        **kwargs: Passed to `APIRouter` (prefix, tags, ...).
    """

    def __init__(
        self,
        engine: Any,
        *,
        path: str = "/decide",
        input_model: Any = None,
        explain: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.engine = as_engine(engine)
        self.decision(path, self.engine, input_model=input_model, explain=explain)


def health_router(engine: Any = None, metrics: PrometheusReporter | None = None) -> APIRouter:
    """`GET /healthz` (status, cascade name and version, breaker states) and, with a
    reporter, `GET /metrics` (the Prometheus text format)."""
    router = APIRouter()

    async def healthz() -> Response:
        return _response(200, encode_json(health(engine)), {})

    router.add_api_route("/healthz", healthz, methods=["GET"], response_model=None)
    if metrics is not None:
        reporter = metrics

        async def prometheus_metrics() -> Response:
            return Response(reporter.generate_latest(), media_type=reporter.content_type)

        router.add_api_route("/metrics", prometheus_metrics, methods=["GET"], response_model=None)
    return router


def create_app(
    engine: Any,
    *,
    path: str = "/decide",
    input_model: Any = None,
    explain: bool | None = None,
    metrics: bool | PrometheusReporter = True,
    tracing: Any = False,
    expose_errors: bool = False,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """A FastAPI app serving `engine` as a decision service.

    Routes: `POST {path}` (the decision), `GET /healthz`, and `GET /metrics` when metrics
    are on. With metrics on, every request is counted per route template, method and status.

    Args:
        engine: A `CascadeEngine`, or a `CascadeConfig`, dict or YAML path to build one from
            (stage handlers named by import path in the YAML).
        path: Where the decision endpoint is.
        input_model: The model request bodies must satisfy (None: any JSON object).
        explain: Include routing explanations in results.
        metrics: True for a `PrometheusReporter` on the default registry, or your own
            reporter (with its own registry), or False for none.
        tracing: True for an `OpenTelemetryReporter` on the global tracer provider, or your
            own, or False for none.
        expose_errors: Put error messages in 500 responses.
        **fastapi_kwargs: Passed to `FastAPI` (title, version, ...).

    Returns:
        The app; `app.state.engine`, `app.state.metrics` and `app.state.tracing` hold what it
        serves with.
    """
    engine = as_engine(engine)
    reporter, tracer = instrument_engine(engine, metrics, tracing)
    fastapi_kwargs.setdefault("title", f"{engine.plan.name} decisions")
    app = FastAPI(**fastapi_kwargs)
    router = CascadeRouter(engine, path=path, input_model=input_model, explain=explain)
    router.expose_errors = expose_errors
    app.include_router(router)
    app.include_router(health_router(engine, reporter))
    if reporter is not None:
        app.add_middleware(PrometheusMiddleware, reporter=reporter)
    app.state.engine = engine
    app.state.metrics = reporter
    app.state.tracing = tracer
    return app
