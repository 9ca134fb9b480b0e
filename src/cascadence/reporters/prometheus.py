"""Prometheus metrics for flows and cascades, and for the HTTP apps that serve them.

```python
from cascadence.reporters import PrometheusReporter

reporter = PrometheusReporter(prefix="myapp")
flow = Cadence("tracked", MyScore()).with_reporter(reporter.report).then("note1", do_work)
engine = CascadeEngine(config, reporters=[reporter.report])   # or reporter.instrument(engine)
```

Metrics (`{prefix}` defaults to `cascadence`; `kind` is `cadence` for flows, `cascade` for
cascades; `name` is the flow or cascade name; `step` the note or stage name):

- `{prefix}_runs_total{kind, name, outcome}`: finished runs; outcome `completed`, `failed`.
- `{prefix}_run_duration_seconds{kind, name}`: histogram.
- `{prefix}_steps_total{kind, name, step, outcome}`: finished steps; outcome `completed`,
  `failed`, `timeout`, `circuit_open` or `cancelled` (stopped from outside: a sibling in a
  group failed, or the caller gave up; not counted as an error).
- `{prefix}_step_duration_seconds{kind, name, step}`: histogram, retries included.
- `{prefix}_step_errors_total{kind, name, step, error}`: failures by exception class name.
- `{prefix}_retries_total{kind, name, step}`, `{prefix}_timeouts_total{kind, name, step}`.
- `{prefix}_routing_decisions_total{name, stage, rule, action}`: matched routing rules.
- `{prefix}_cost_total{kind, name, step}`: cost spent (cascade stages declare it).
- `{prefix}_circuit_state{name, breaker}`: gauge, 0 closed, 1 half-open, 2 open.
- `{prefix}_http_requests_total{method, route, status}` and
  `{prefix}_http_request_duration_seconds{method, route}`: requests of a served app.

Label values only ever come from names written in code or configuration (flow, step, stage,
rule and breaker names, exception class names, route templates), never from inputs or run ids,
so the number of series stays bounded. `prometheus_client` is imported when the first reporter
is created, not when `cascadence` is.
"""

from __future__ import annotations

import itertools
import re
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from cascadence.events import (
    CADENCE_COMPLETED,
    CADENCE_FAILED,
    NOTE_COMPLETED,
    NOTE_FAILED,
    NOTE_RETRYING,
    ROUTING_DECISION,
    CadenceEvent,
)
from cascadence.reporters._errors import failure_kind, root_error

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from cascadence.policies.circuit_breaker import BreakerState, CircuitBreaker

__all__ = [
    "DEFAULT_BUCKETS",
    "PrometheusMiddleware",
    "PrometheusReporter",
    "UNMATCHED_ROUTE",
]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Duration buckets in seconds: decisions take from well under a millisecond to seconds."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_STATE_VALUE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UNMATCHED_ROUTE = "<unmatched>"
"""The `route` label of HTTP requests that matched no route (never the raw path)."""


class _Metrics:
    """The metric families of one prefix in one registry, shared by every reporter using them."""

    def __init__(self, registry: CollectorRegistry, prefix: str, buckets: Sequence[float]):
        from prometheus_client import Counter, Gauge, Histogram

        self.buckets = tuple(float(b) for b in buckets)
        reg = None  # built unregistered, then registered all or nothing (`register`)
        p = prefix
        self.runs = Counter(
            f"{p}_runs_total", "Finished runs.", ["kind", "name", "outcome"], registry=reg
        )
        self.run_duration = Histogram(
            f"{p}_run_duration_seconds",
            "Run duration in seconds.",
            ["kind", "name"],
            buckets=self.buckets,
            registry=reg,
        )
        self.steps = Counter(
            f"{p}_steps_total",
            "Finished steps (notes or stages).",
            ["kind", "name", "step", "outcome"],
            registry=reg,
        )
        self.step_duration = Histogram(
            f"{p}_step_duration_seconds",
            "Step duration in seconds, including retries.",
            ["kind", "name", "step"],
            buckets=self.buckets,
            registry=reg,
        )
        self.errors = Counter(
            f"{p}_step_errors_total",
            "Failed steps, by the class of the error that caused the failure.",
            ["kind", "name", "step", "error"],
            registry=reg,
        )
        self.retries = Counter(
            f"{p}_retries_total", "Step retries.", ["kind", "name", "step"], registry=reg
        )
        self.timeouts = Counter(
            f"{p}_timeouts_total", "Steps that timed out.", ["kind", "name", "step"], registry=reg
        )
        self.routing = Counter(
            f"{p}_routing_decisions_total",
            "Routing rules that matched.",
            ["name", "stage", "rule", "action"],
            registry=reg,
        )
        self.cost = Counter(
            f"{p}_cost_total", "Cost spent by steps.", ["kind", "name", "step"], registry=reg
        )
        self.circuit = Gauge(
            f"{p}_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["name", "breaker"],
            registry=reg,
        )
        self.http_requests = Counter(
            f"{p}_http_requests_total",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.http_duration = Histogram(
            f"{p}_http_request_duration_seconds",
            "HTTP request duration in seconds.",
            ["method", "route"],
            buckets=self.buckets,
            registry=reg,
        )
        self.register(registry)
        # label tuple -> series, shared by every reporter of this prefix and registry
        self.run_series: dict[tuple[str, str], _RunSeries] = {}
        self.step_series: dict[tuple[str, str, str], _StepSeries] = {}
        self.children: dict[tuple[Any, ...], Any] = {}
        # engines and flows reporting into these families: each is attached once, by whichever
        # reporter of this prefix and registry comes first (two apps serving one engine)
        self.instrumented: weakref.WeakSet[Any] = weakref.WeakSet()

    def register(self, registry: CollectorRegistry) -> None:
        """Register every family, or none: a name taken by other code leaves nothing behind,
        so the prefix can be used once that code's metric is gone."""
        families = [
            self.runs,
            self.run_duration,
            self.steps,
            self.step_duration,
            self.errors,
            self.retries,
            self.timeouts,
            self.routing,
            self.cost,
            self.circuit,
            self.http_requests,
            self.http_duration,
        ]
        done: list[Any] = []
        try:
            for family in families:
                registry.register(family)
                done.append(family)
        except ValueError:
            for family in done:
                registry.unregister(family)
            raise


class _RunSeries:
    __slots__ = ("completed", "duration", "failed")

    def __init__(self, m: _Metrics, kind: str, name: str) -> None:
        self.completed = m.runs.labels(kind, name, "completed")
        self.failed = m.runs.labels(kind, name, "failed")
        self.duration = m.run_duration.labels(kind, name)


class _StepSeries:
    __slots__ = ("completed", "cost", "duration", "labels", "metrics")

    def __init__(self, m: _Metrics, kind: str, name: str, step: str) -> None:
        self.metrics = m
        self.labels = (kind, name, step)
        self.completed = m.steps.labels(kind, name, step, "completed")
        self.duration = m.step_duration.labels(kind, name, step)
        self.cost = m.cost.labels(kind, name, step)


_BUNDLES: MutableMapping[Any, dict[str, _Metrics]] = weakref.WeakKeyDictionary()


def _bundle(registry: CollectorRegistry, prefix: str, buckets: Sequence[float]) -> _Metrics:
    per_registry = _BUNDLES.setdefault(registry, {})
    found = per_registry.get(prefix)
    wanted = tuple(float(b) for b in buckets)
    if not wanted or any(b <= a for a, b in itertools.pairwise(wanted)):
        raise ValueError(
            f"buckets must be upper bounds in seconds, in increasing order, got {tuple(buckets)}"
        )
    if found is not None:
        if found.buckets != wanted:
            raise ValueError(
                f"metrics with prefix {prefix!r} already exist in this registry with buckets "
                f"{found.buckets}; use the same buckets, another prefix or another registry"
            )
        return found
    try:
        made = _Metrics(registry, prefix, wanted)
    except ValueError as exc:
        raise ValueError(
            f"the registry already holds metrics named like {prefix}_*, registered by other "
            f"code ({exc}); pass another prefix= or registry="
        ) from None
    per_registry[prefix] = made
    return made


class PrometheusReporter:
    """Count runs, steps, retries, timeouts, routing decisions, cost and breaker states.

    Reporters with the same `prefix` on the same registry share their metric families, so
    creating two (one per engine, say) is safe.

    Args:
        prefix: Prefix of every metric name.
        registry: Where metrics are registered; default `prometheus_client.REGISTRY`.
        buckets: Histogram buckets in seconds, for run, step and HTTP durations.

    Attributes:
        registry: The registry the metrics live in (serve it with `generate_latest()`).
    """

    def __init__(
        self,
        prefix: str = "cascadence",
        registry: CollectorRegistry | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if not _NAME.match(prefix):
            raise ValueError(
                f"invalid metric prefix {prefix!r}: expected letters, digits, '_' or ':' "
                "not starting with a digit, e.g. 'myapp'"
            )
        try:
            import prometheus_client
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "PrometheusReporter needs prometheus_client: pip install cascadence[prometheus]"
            ) from None
        self.prefix = prefix
        self.registry: CollectorRegistry = (
            registry if registry is not None else prometheus_client.REGISTRY
        )
        self._m = _bundle(self.registry, prefix, buckets)
        self._watched: set[str] = set()
        self._inferred: dict[tuple[str, str], str] = {}
        self._dispatch: dict[str, Callable[[CadenceEvent], None]] = {
            NOTE_COMPLETED: self._step_completed,
            NOTE_FAILED: self._step_failed,
            CADENCE_COMPLETED: self._run_finished,
            CADENCE_FAILED: self._run_finished,
            NOTE_RETRYING: self._retry,
            ROUTING_DECISION: self._routing,
        }

    # -- events ---------------------------------------------------------------------------
    def report(self, event: CadenceEvent) -> None:
        """Record one lifecycle event (pass this method to `with_reporter` or `reporters=`)."""
        handler = self._dispatch.get(event.type)
        if handler is not None:
            handler(event)

    def __call__(self, event: CadenceEvent) -> None:
        """Same as `report`."""
        self.report(event)

    def _step(self, event: CadenceEvent) -> _StepSeries:
        key = (event.kind, event.cadence_name, event.note_name or "")
        series = self._m.step_series.get(key)
        if series is None:
            series = self._m.step_series[key] = _StepSeries(self._m, *key)
        return series

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        children = self._m.children
        child = children.get(key)
        if child is None:
            child = children[key] = metric.labels(*labels)
        return child

    def _step_completed(self, event: CadenceEvent) -> None:
        series = self._step(event)
        series.completed.inc()
        if event.duration is not None:
            series.duration.observe(event.duration)
        data = event.data
        if data is not None:
            cost = data.get("cost")
            if cost:
                series.cost.inc(cost)
        if self._inferred:
            breaker = self._inferred.pop((event.cadence_name, event.note_name or ""), None)
            if breaker is not None and breaker not in self._watched:
                self._child(self._m.circuit, event.cadence_name, breaker).set(0.0)

    def _step_failed(self, event: CadenceEvent) -> None:
        series = self._step(event)
        m = self._m
        kind, name, step = series.labels
        error = event.error
        outcome = failure_kind(error)
        self._child(m.steps, kind, name, step, outcome).inc()
        if outcome == "cancelled":  # stopped from outside: counted and timed, not an error
            if event.duration is not None:
                series.duration.observe(event.duration)
            return
        cause = root_error(error)
        self._child(m.errors, kind, name, step, type(cause).__name__ if cause else "unknown").inc()
        if event.duration is not None:
            series.duration.observe(event.duration)
        data = event.data
        if data is not None:
            cost = data.get("cost")
            if cost:
                series.cost.inc(cost)
        if outcome == "timeout":
            self._child(m.timeouts, kind, name, step).inc()
        elif outcome == "circuit_open":
            breaker = _breaker_name(error) or step
            self._inferred[(name, step)] = breaker
            if breaker not in self._watched:
                self._child(m.circuit, name, breaker).set(2.0)

    def _run_finished(self, event: CadenceEvent) -> None:
        key = (event.kind, event.cadence_name)
        series = self._m.run_series.get(key)
        if series is None:
            series = self._m.run_series[key] = _RunSeries(self._m, *key)
        (series.completed if event.type == CADENCE_COMPLETED else series.failed).inc()
        if event.duration is not None:
            series.duration.observe(event.duration)

    def _retry(self, event: CadenceEvent) -> None:
        self._child(self._m.retries, event.kind, event.cadence_name, event.note_name or "").inc()

    def _routing(self, event: CadenceEvent) -> None:
        data = event.data or {}
        self._child(
            self._m.routing,
            event.cadence_name,
            str(data.get("stage") or event.note_name or ""),
            str(data.get("rule", "")),
            str(data.get("action", "")),
        ).inc()

    # -- circuit breakers -----------------------------------------------------------------
    def watch_breaker(self, breaker: CircuitBreaker, *, name: str = "") -> None:
        """Follow `breaker`'s state exactly in `{prefix}_circuit_state{name, breaker}`.

        Without this, the gauge is inferred from events: open when a step is refused, closed
        when that step next completes.

        Args:
            breaker: The breaker to follow.
            name: The `name` label (the flow or cascade the breaker belongs to).
        """
        gauge = self._child(self._m.circuit, name, breaker.name)
        self._watched.add(breaker.name)
        gauge.set(_STATE_VALUE[breaker.state.value])

        def on_change(_breaker: str, _old: BreakerState, new: BreakerState) -> None:
            gauge.set(_STATE_VALUE[new.value])

        breaker.add_state_listener(on_change)

    def instrument(self, target: Any) -> Any:
        """Attach this reporter to a `CascadeEngine` or a `Cadence` and return it.

        At most once per metric families: a second reporter on the same registry and prefix
        (another app serving the same engine) does not count its runs again.

        For an engine, its stages' circuit breakers are watched too (`watch_breaker`).
        """
        if target in self._m.instrumented:
            return target
        attached = getattr(target, "_reporters", ())
        if any(self._counts_into_same_metrics(reporter) for reporter in attached):
            # already given as a reporter (`reporters=[reporter.report]`): not a second time
            self._m.instrumented.add(target)
            return target
        add_reporter = getattr(target, "add_reporter", None)
        if add_reporter is not None:
            add_reporter(self.report)
            plan = target.plan
            for stage in plan.stages:
                breaker = target.breaker(stage.name)
                if breaker is not None:
                    self.watch_breaker(breaker, name=plan.name)
        elif hasattr(target, "with_reporter"):
            target.with_reporter(self.report)
        else:
            raise TypeError(
                f"instrument() expects a CascadeEngine or a Cadence, got {type(target).__name__}"
            )
        self._m.instrumented.add(target)
        return target

    def _counts_into_same_metrics(self, reporter: Any) -> bool:
        """Whether `reporter` is the `report` of a reporter with these metric families."""
        owner = getattr(reporter, "__self__", None)
        return isinstance(owner, PrometheusReporter) and owner._m is self._m

    # -- HTTP -----------------------------------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one HTTP request (`route` must be a route template, not the raw path).

        Methods outside the standard ones are counted as `OTHER`.
        """
        m = self._m
        if method not in _METHODS:
            method = "OTHER"
        self._child(m.http_requests, method, route, str(status)).inc()
        self._child(m.http_duration, method, route).observe(seconds)

    def generate_latest(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        """The content type of `generate_latest()`."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return str(CONTENT_TYPE_LATEST)

    def __repr__(self) -> str:
        return f"PrometheusReporter(prefix={self.prefix!r})"


def _breaker_name(error: BaseException | None) -> str | None:
    while error is not None:
        name = getattr(error, "breaker_name", None)
        if name is not None:
            return str(name)
        error = getattr(error, "original_error", None)
    return None


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


_MOUNT_DEPTH = 32
"""Mounts nested deeper than this are not looked into (the route's own template is used)."""


def _mount_template(routes: Any, prefix: str, depth: int = 0) -> tuple[str, Any] | None:
    """The template of the mounts a request went through, e.g. `/tenants/{tenant}/v2`, and
    the innermost of those mounts.

    `prefix` is the concrete path the mounts matched (what they added to `root_path`, e.g.
    `/tenants/acme/v2`); `routes` are the routes of the app the middleware wraps. Mount paths
    are templates, so parameters in them (`/tenants/{tenant}`) stay parameters and never put
    a path's values into labels. None when no chain of mounts explains `prefix`.
    """
    if depth > _MOUNT_DEPTH or not isinstance(routes, (list, tuple)):
        return None
    probe = prefix + "/"
    for mount in routes:
        regex = getattr(mount, "path_regex", None)
        template = getattr(mount, "path", None)
        if not hasattr(mount, "routes") or regex is None or not isinstance(template, str):
            continue  # not a mount
        match = regex.match(probe)
        if match is None or "path" not in match.groupdict():
            continue
        consumed = probe[: len(probe) - len(match.group("path")) - 1]
        rest = prefix[len(consumed) :]
        if not rest:
            return template, mount
        below = _mount_template(mount.routes, rest, depth + 1)
        if below is not None:
            return template + below[0], below[1]
    return None


def _route_path(scope: MutableMapping[str, Any], route: Any) -> str | None:
    """The path template of the matched route, include-time prefixes included.

    FastAPI (from 0.137) puts the route as declared in `scope["route"]`, without the
    prefixes of `include_router(..., prefix=...)`; the prefixed path is on the route context
    it keeps in `scope["fastapi"]`, used when it belongs to that same route.
    """
    if route is None:
        return None
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        context = fastapi_scope.get("effective_route_context")
        path = getattr(context, "path", None)
        if getattr(context, "original_route", None) is route and isinstance(path, str) and path:
            return path
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class PrometheusMiddleware:
    """ASGI middleware counting HTTP requests per route template, method and status.

    Works with any ASGI app whose router stores the matched route in `scope["route"]`
    (Starlette and FastAPI do); requests that match no route get the route label
    `<unmatched>`, so the raw path never becomes a label value.

    The route label is the template as the wrapped app routes it: a route of a mounted app
    gets its mount's path in front (`app.mount("/v1", sub)` with `/items/{i}` in `sub` is
    `/v1/items/{i}`), through any depth of mounts, with a mount's own parameters kept as
    templates. A `root_path` set by the server (`uvicorn --root-path /api` behind a proxy)
    is not part of the label: the same app counts under the same routes wherever a proxy
    puts it, as with Flask's `url_rule`.

    Args:
        app: The ASGI app to wrap.
        reporter: Where the counts go.
        exclude: Route templates not to count (for example `("/metrics",)`).
    """

    def __init__(
        self, app: ASGIApp, reporter: PrometheusReporter, exclude: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.reporter = reporter
        self.exclude = frozenset(exclude)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        root = scope.get("root_path", "")
        owner = scope.get("app")  # the app this middleware was added to (Starlette sets it)
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = self._template(scope, root, owner)
            if template not in self.exclude:
                self.reporter.observe_request(
                    scope.get("method", "GET"), template, status, time.perf_counter() - started
                )

    def _template(self, scope: MutableMapping[str, Any], root: str, owner: Any) -> str:
        """The route label of a finished request (see the class docstring)."""
        route = scope.get("route")
        template = _route_path(scope, route)
        full = scope.get("root_path", "")
        if isinstance(full, str) and full != root and full.startswith(root):
            routes = getattr(self.app, "routes", None) or getattr(owner, "routes", None)
            mounts = _mount_template(routes, full[len(root) :])
            if mounts is not None:
                prefix, innermost = mounts
                # a mounted app that is no router, or a path its router does not know
                if template is None or route is innermost:
                    return prefix
                return prefix + template
        return template if template is not None else UNMATCHED_ROUTE
