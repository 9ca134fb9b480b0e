"""Flask integration: serve flows and cascades from Flask views.

```python
from flask import Flask
from cascadence.integrations.flask import CadenceBlueprint

app = Flask(__name__)
bp = CadenceBlueprint("orders", __name__)

@bp.cadence_route("/orders/<order_id>", checkout_cadence)
def create_order(order_id):
    return OrderScore(order_id=order_id)

app.register_blueprint(bp)
```

The view builds each run's score; the blueprint runs the flow and answers with the final score
as JSON. View parameters that the URL rule does not supply are read from the request: the JSON
body's keys, then form fields, then the query string. So the spec's form,
`@bp.cadence_route("/orders/", ...)` with `def create_order(order_id)`, serves
`POST /orders/` with `{"order_id": "ORD-1"}` (or `?order_id=ORD-1`); when the value is missing
or does not fit the parameter's annotation, the answer is 422 naming it.

Flask views are synchronous, so flows and cascades run on one event loop in a background
thread shared by every request of the process; the request's thread waits for its run. That
keeps loop-bound resources (connection pools, breaker stores, the engine's in-flight limit)
valid across requests, which `asyncio.run` per request would not, and costs no new loop per
request. Context variables of the request (for example an OpenTelemetry span) are carried into
the run.

Status codes are those of the FastAPI integration: 200, 422, 500, 503 (`Retry-After`), 504,
and the run id in `X-Run-Id`. A werkzeug `HTTPException` a note raises (`abort(404)`) is
answered by Flask as if the view had raised it (its own status and error handlers), with
`X-Run-Id`.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import threading
import time
import typing
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, after_this_request, g, request
from werkzeug.exceptions import HTTPException

from cascadence.integrations._decision import (
    JSON,
    RUN_ID_HEADER,
    InputError,
    as_engine,
    decision_outcome,
    encode_json,
    engine_input,
    flow_error,
    health,
    http_exception,
    input_validator,
    instrument_engine,
    new_run_id,
    parse_input,
    wrong_score,
)
from cascadence.reporters.prometheus import UNMATCHED_ROUTE, PrometheusReporter

__all__ = [
    "BackgroundLoop",
    "CadenceBlueprint",
    "RUN_ID_HEADER",
    "create_app",
    "instrument_app",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class BackgroundLoop:
    """An event loop in a daemon thread that runs coroutines for synchronous callers.

    `run(coro)` blocks the calling thread until the coroutine finishes and returns its value
    (or raises its exception). The loop starts on first use.

    A process forked after the loop started (gunicorn `--preload` with a warm-up request,
    `multiprocessing` with the fork start method) inherits the loop object but not its
    thread, so nothing would ever run there: the child starts a loop and thread of its own
    on first use instead, and leaves the inherited ones alone.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._inherited: list[asyncio.AbstractEventLoop] = []
        _LOOPS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's loop, whose thread did not come along.

        The inherited loop is kept referenced, never closed: it still looks like it is
        running, and closing (or collecting) it would act on the parent's state.
        """
        self._lock = threading.Lock()  # another thread may have held it at the fork
        if self._loop is not None:
            self._inherited.append(self._loop)
        self._loop = self._thread = None
        self._pid = os.getpid()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        if self._pid != os.getpid():  # forked without the fork hook (it runs for os.fork)
            self._after_fork()
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="cascadence-loop", daemon=True
                )
                thread.start()
                self._thread = thread
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result.

        The coroutine runs in a copy of the caller's context variables.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return future.result()

    def close(self) -> None:
        """Stop the loop and its thread (a later `run` starts new ones)."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


_LOOPS: weakref.WeakSet[BackgroundLoop] = weakref.WeakSet()
"""Every `BackgroundLoop` of the process, reset in a forked child."""


def _reset_loops_after_fork() -> None:
    for background in list(_LOOPS):
        background._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_reset_loops_after_fork)

_DEFAULT_LOOP = BackgroundLoop()


def _response(status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status=status, headers=headers, mimetype=JSON)


def _run_failed(error: Exception, run_id: str, expose_errors: bool) -> Response:
    """The answer for a run that raised `error`: Flask's own for an `HTTPException` a step
    raised (`abort(404)`, re-raised; the response gets the run's `X-Run-Id`), else the JSON
    error body."""
    http = http_exception(error, HTTPException)
    if http is not None:

        def add_run_id(response: Response) -> Response:
            response.headers[RUN_ID_HEADER] = run_id
            return response

        after_this_request(add_run_id)
        raise http from None
    outcome = flow_error(error, run_id, expose_errors=expose_errors)
    return _response(outcome.status, outcome.body, outcome.headers)


class _ViewArgs:
    """Validates a view's arguments, gathered from the URL rule and the request."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        from pydantic import create_model

        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable annotations: accept any value
            hints = {}
        fields: dict[str, Any] = {}
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        self.names = tuple(fields)
        self.model: Any = create_model(f"{fn.__name__}_arguments", **fields)

    def bind(self, url_values: dict[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        body = None
        # The body is read only when a parameter may come from it (the URL rule does not give
        # them all), as FastAPI ignores a body no parameter takes; then it is parsed as FastAPI
        # does: malformed or not an object is 422.
        reads_body = request.is_json and any(name not in url_values for name in self.names)
        raw = request.get_data(cache=True) if reads_body else b""
        if raw.strip():
            body = parse_input(raw)
        is_json = isinstance(body, dict)
        for name in self.names:
            if name in url_values:
                values[name], source[name] = url_values[name], "path"
            elif is_json and name in body:  # type: ignore[operator]
                values[name], source[name] = body[name], "body"  # type: ignore[index]
            elif name in request.form:
                values[name], source[name] = request.form[name], "form"
            elif name in request.args:
                values[name], source[name] = request.args[name], "query"
        try:
            parsed = self.model.model_validate(values)
        except ValidationError as exc:
            errors = []
            for err in exc.errors(include_url=False):
                name = str(err["loc"][0]) if err["loc"] else ""
                where = source.get(name, "body" if request.is_json else "query")
                item = {"type": err["type"], "loc": [where, *err["loc"]], "msg": err["msg"]}
                if "input" in err:
                    item["input"] = err["input"]
                errors.append(item)
            raise InputError(errors) from None
        return {name: getattr(parsed, name) for name in self.names}


class CadenceBlueprint(Blueprint):
    """A `Blueprint` that also serves flows (`cadence_route`) and cascades
    (`decision_route`), plus `/healthz` and `/metrics` (`health_routes`).

    Args:
        name: The blueprint's name.
        import_name: Usually `__name__`.
        *args: Passed to `Blueprint`.
        runner: Runs a coroutine to completion from a view (default: a shared
            `BackgroundLoop`).
        expose_errors: Put the failing step's error message in 500 responses (`detail`).
        **kwargs: Passed to `Blueprint` (url_prefix, ...).
    """

    def __init__(
        self,
        name: str,
        import_name: str,
        *args: Any,
        runner: Runner | None = None,
        expose_errors: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, import_name, *args, **kwargs)
        self.runner: Runner = runner if runner is not None else _DEFAULT_LOOP.run
        self.expose_errors = expose_errors

    def cadence_route(
        self, rule: str, cadence: Any, *, methods: Sequence[str] = ("POST",), **options: Any
    ) -> Callable[[F], F]:
        """Serve `cadence` at `rule`; the decorated view builds each run's score.

        The view receives the URL rule's values, and its other parameters from the request
        (JSON body, form, query string; see the module docstring), validated against their
        annotations. It returns a fresh score (None: a deep copy of the flow's own score); a
        Flask `Response` it returns is sent as is. Anything else that is not of the class of
        the flow's own score (a dict, a `(body, status)` tuple) is a programming error: the
        flow does not run, the answer is a 500 `run_failed` (`error_type` `TypeError`), and
        the error, naming the view, is logged on `cascadence.integrations`. The view may be
        `async def`.

        Args:
            rule: The URL rule, e.g. `/orders/<order_id>`.
            cadence: The `Cadence` to run.
            methods: HTTP methods of the route.
            **options: Passed to `add_url_rule` (endpoint, ...).

        Returns:
            A decorator that registers the route and returns the view unchanged.
        """

        def decorate(fn: F) -> F:
            args = _ViewArgs(fn)
            is_async = inspect.iscoroutinefunction(fn)

            def view(**url_values: Any) -> Any:
                try:
                    kwargs = args.bind(url_values)
                except InputError as exc:
                    outcome = exc.outcome()
                    return _response(outcome.status, outcome.body, outcome.headers)
                score = self.runner(fn(**kwargs)) if is_async else fn(**kwargs)
                if isinstance(score, Response):
                    return score
                if score is None:
                    score = copy.deepcopy(cadence.score)
                run_id = new_run_id()
                wrong = wrong_score(fn, cadence, score, run_id, expose_errors=self.expose_errors)
                if wrong is not None:
                    return _response(wrong.status, wrong.body, wrong.headers)
                try:
                    final = self.runner(cadence.run(score, run_id=run_id))
                except Exception as exc:
                    return _run_failed(exc, run_id, self.expose_errors)
                return _response(200, encode_json(final), {RUN_ID_HEADER: run_id})

            view.__doc__ = fn.__doc__
            options.setdefault("endpoint", fn.__name__)
            self.add_url_rule(rule, view_func=view, methods=list(methods), **options)
            return fn

        return decorate

    def decision_route(
        self,
        rule: str,
        engine: Any,
        *,
        input_model: Any = None,
        explain: bool | None = None,
        methods: Sequence[str] = ("POST",),
        **options: Any,
    ) -> None:
        """Serve a cascade at `rule`: the JSON body is the input, the result the answer.

        Args:
            rule: The URL rule.
            engine: A `CascadeEngine` (or a config, dict or path to build one from).
            input_model: A pydantic model (or dataclass, TypedDict) the body must satisfy;
                None accepts any JSON object. Validation errors answer 422.
            explain: Include the routing explanation in results (default: the engine's).
            methods: HTTP methods of the route.
            **options: Passed to `add_url_rule`.
        """
        engine = as_engine(engine)
        validator = input_validator(input_model) if input_model is not None else None
        runner = self.runner

        def decide() -> Response:
            try:
                value = parse_input(request.get_data(cache=False), validator)
            except InputError as exc:
                outcome = exc.outcome()
                return _response(outcome.status, outcome.body, outcome.headers)
            run_id = engine.new_run_id()
            try:
                result = runner(engine.execute(engine_input(value), run_id=run_id, explain=explain))
            except Exception as exc:  # a stage's errors are in the result; this is not one
                return _run_failed(exc, run_id, self.expose_errors)
            outcome = decision_outcome(engine, result, run_id, expose_errors=self.expose_errors)
            return _response(outcome.status, outcome.body, outcome.headers)

        options.setdefault("endpoint", f"decide_{engine.plan.name}")
        self.add_url_rule(rule, view_func=decide, methods=list(methods), **options)

    def health_routes(self, engine: Any = None, metrics: PrometheusReporter | None = None) -> None:
        """Add `GET /healthz` and, with a reporter, `GET /metrics`."""

        def healthz() -> Response:
            return _response(200, encode_json(health(engine)), {})

        self.add_url_rule("/healthz", endpoint="healthz", view_func=healthz, methods=["GET"])
        if metrics is not None:
            reporter = metrics

            def prometheus_metrics() -> Response:
                return Response(reporter.generate_latest(), content_type=reporter.content_type)

            self.add_url_rule(
                "/metrics", endpoint="metrics", view_func=prometheus_metrics, methods=["GET"]
            )


def instrument_app(app: Flask, reporter: PrometheusReporter) -> None:
    """Count every request of `app` per route template (`url_rule.rule`), method and status
    in `reporter`'s HTTP metrics."""

    @app.before_request
    def _start_timer() -> None:
        g._cascadence_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("_cascadence_started", None)
        if started is not None:
            rule = request.url_rule
            reporter.observe_request(
                request.method,
                rule.rule if rule is not None else UNMATCHED_ROUTE,
                response.status_code,
                time.perf_counter() - started,
            )
        return response


def create_app(
    engine: Any,
    *,
    path: str = "/decide",
    input_model: Any = None,
    explain: bool | None = None,
    metrics: bool | PrometheusReporter = True,
    tracing: Any = False,
    expose_errors: bool = False,
    import_name: str = "cascadence",
    runner: Runner | None = None,
) -> Flask:
    """A Flask app serving `engine` as a decision service (see the FastAPI `create_app`).

    Routes: `POST {path}`, `GET /healthz`, and `GET /metrics` when metrics are on; with
    metrics on, every request is counted per route template, method and status.

    Returns:
        The app; `app.extensions["cascadence"]` holds `engine`, `metrics` and `tracing`.
    """
    engine = as_engine(engine)
    reporter, tracer = instrument_engine(engine, metrics, tracing)
    app = Flask(import_name)
    bp = CadenceBlueprint("cascadence", import_name, runner=runner, expose_errors=expose_errors)
    bp.decision_route(path, engine, input_model=input_model, explain=explain)
    bp.health_routes(engine, reporter)
    app.register_blueprint(bp)
    if reporter is not None:
        instrument_app(app, reporter)
    app.extensions["cascadence"] = {"engine": engine, "metrics": reporter, "tracing": tracer}
    return app
