"""What the web integrations share: JSON encoding, input validation, and the mapping from a
run's outcome to an HTTP status, body and headers. Nothing here imports a web framework.

Status codes, for both front ends (every run's id is in the `X-Run-Id` header):

- 200: the flow finished (body: the final score) or the decision was made (the result).
- 422: the input is invalid; body `{"detail": [{"loc": ["body", "amount"], "msg", "type"}]}`.
- 500: a step failed (`NoteError`); body `{"error": "note_failed", "note", "error_type"}`;
  any other exception escaping a run: `{"error": "run_failed", "note": null, "error_type"}`;
  so is an endpoint function that returned something other than a score for its flow
  (`error_type` `TypeError`; the message is logged on `cascadence.integrations`, see
  `wrong_score`).
- A web framework's own HTTP exception raised by a step (FastAPI's `HTTPException`, Flask's
  `abort(404)`) is answered by the framework, as if the endpoint had raised it, with the
  `X-Run-Id` header added (see `http_exception`).
- 504: a step (flow) or the run (cascade) timed out; for a cascade the body is the partial
  result with an `error` member.
- 503: a circuit breaker refused a call; `Retry-After` says when to try again.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import decimal
import enum
import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, TypeVar

from cascadence.errors import CircuitOpenError, NoteError
from cascadence.reporters._errors import find_error, root_error

__all__ = [
    "InputError",
    "JSON",
    "Outcome",
    "RETRY_AFTER",
    "RUN_ID_HEADER",
    "as_engine",
    "decision_outcome",
    "encode_json",
    "engine_input",
    "flow_error",
    "health",
    "http_exception",
    "input_validator",
    "instrument_engine",
    "new_run_id",
    "parse_input",
    "refused_stage",
    "wrong_score",
]

E = TypeVar("E", bound=BaseException)

_log = logging.getLogger("cascadence.integrations")

RUN_ID_HEADER = "X-Run-Id"
"""Response header carrying the id of the run that served the request."""
RETRY_AFTER = "Retry-After"
JSON = "application/json"


def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


# -- JSON --------------------------------------------------------------------------------------
def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if dump is not None and not isinstance(obj, type):
        return dump(mode="json")
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, (uuid.UUID, PurePath)):
        return str(obj)
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    items = getattr(obj, "items", None)
    if callable(items):
        return dict(items())
    get = getattr(obj, "get", None)
    if callable(get) and type(obj).__name__ == "Atomic":
        return get()
    if isinstance(obj, (set, frozenset)) or hasattr(obj, "__iter__"):
        return list(obj)
    fields = getattr(obj, "__dict__", None)
    if isinstance(fields, dict):
        return {k: v for k, v in fields.items() if not k.startswith("_")}
    return str(obj)


CYCLE = "<cycle>"
"""Written where a value contains itself (a handler returned `d` with `d["self"] = d`)."""
TOO_DEEP = "<nested too deep>"
"""Written past `JSON_DEPTH` levels of nesting."""
JSON_DEPTH = 200


def _clean(obj: Any, on_path: set[int] | None = None, depth: int = 0) -> Any:
    """The slow path: non-finite floats become null, every key a string, a value that contains
    itself `"<cycle>"` where it repeats, and nesting past `JSON_DEPTH` `"<nested too deep>"`."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if on_path is None:
        on_path = set()
    key = id(obj)
    if key in on_path:
        return CYCLE
    if depth >= JSON_DEPTH:
        return TOO_DEEP
    on_path.add(key)
    deeper = depth + 1
    try:
        if isinstance(obj, Mapping):
            return {
                k if isinstance(k, str) else str(k): _clean(v, on_path, deeper)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [_clean(v, on_path, deeper) for v in obj]
        return _clean(_default(obj), on_path, deeper)
    finally:
        on_path.discard(key)


def encode_json(obj: Any) -> bytes:
    """Encode a result or a score as compact JSON.

    Dataclasses (scores), pydantic models, dates, enums, decimals, sets, atomics and plain
    objects (their public attributes) are converted; NaN and infinities become null; keys
    that are not strings become strings; where a value contains itself, the repeat is the
    text `"<cycle>"`.
    """
    try:
        text = json.dumps(obj, default=_default, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        text = json.dumps(_clean(obj), default=str, allow_nan=False, separators=(",", ":"))
    return text.encode()


# -- outcomes ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """An HTTP response, framework-neutral."""

    status: int
    body: bytes
    headers: dict[str, str]


def _retry_after(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "1"
    return str(max(1, math.ceil(seconds)))


def flow_error(error: BaseException, run_id: str, *, expose_errors: bool = False) -> Outcome:
    """The response for a run that raised `error`.

    A step's failure (`NoteError` and its kinds) answers 500 `note_failed`, 504 or 503; any
    other exception that escaped the run (an `on_error` handler that raised, a hook or a store
    that failed) answers 500 `run_failed` naming its type, so that every failed run answers
    with the same JSON body and its `X-Run-Id`.

    Args:
        error: What `Cadence.run` (or `CascadeEngine.execute`) raised.
        run_id: The run's id (sent back in `X-Run-Id`).
        expose_errors: Include the underlying error's message (`detail`); off by default, so
            that internal messages do not reach clients.
    """
    headers = {RUN_ID_HEADER: run_id}
    note = error.note_name if isinstance(error, NoteError) else None
    body: dict[str, Any] = {"run_id": run_id}
    refused = find_error(error, CircuitOpenError)
    if isinstance(refused, CircuitOpenError):
        status = 503
        headers[RETRY_AFTER] = _retry_after(refused.retry_after)
        body.update(error="circuit_open", note=note, breaker=refused.breaker_name)
        body["retry_after"] = int(headers[RETRY_AFTER])
    elif find_error(error, builtins.TimeoutError) is not None:
        status = 504
        body.update(error="timeout", note=note)
    else:
        status = 500
        cause = root_error(error) or error
        body.update(
            error="note_failed" if note is not None else "run_failed",
            note=note,
            error_type=type(cause).__name__,
        )
        if expose_errors:
            body["detail"] = str(cause)
    return Outcome(status, encode_json(body), headers)


def wrong_score(
    endpoint: Callable[..., Any], flow: Any, score: Any, run_id: str, *, expose_errors: bool = False
) -> Outcome | None:
    """The response when `score`, what the function `endpoint` returned for a request, is not
    a score for `flow` (not of the class of the flow's own score), else None.

    The flow is not run. The answer is a 500 `run_failed` with `error_type` `TypeError`
    (as for any programming error around a run); the message, naming the endpoint function
    and the class expected, is logged as an error on `cascadence.integrations` and is the
    body's `detail` with `expose_errors`. A flow without a score of its own takes any score.
    """
    template = getattr(flow, "score", None)
    if template is None or isinstance(score, template.__class__):
        return None
    name = getattr(endpoint, "__qualname__", None) or getattr(endpoint, "__name__", "?")
    error = TypeError(
        f"endpoint function {name!r} must return the score of flow "
        f"{getattr(flow, 'name', '?')!r}, of class {template.__class__.__name__} (or None, for "
        f"a copy of the flow's own score, or a Response, sent as it is), got "
        f"{type(score).__name__}"
    )
    _log.error("run %s not started: %s", run_id, error)
    return flow_error(error, run_id, expose_errors=expose_errors)


def http_exception(error: BaseException, kind: type[E]) -> E | None:
    """The web framework's own HTTP exception (an instance of `kind`) that failed a run, or
    None.

    That is `error` itself, or the original error of the step that raised it, looked for
    through the run's wrappers (`NoteError`, `ParallelNoteError`, retries, child flows).
    """
    found = find_error(error, kind)
    return found if isinstance(found, kind) else None


def _breaker_retry_after(engine: Any, stage: str) -> float | None:
    breaker = engine.breaker(stage)
    if breaker is None:
        return None
    clock = breaker.clock
    now = clock.time() if breaker.store is not None else clock.now()
    return float(breaker.snapshot.opened_at + breaker.recovery_timeout - now)


def _refused(engine: Any, stage: str, result: Mapping[str, Any]) -> bool:
    kind = result.get("error_type")
    if kind == "CircuitOpenError":
        return True
    if kind == "RetryExhaustedError":  # the last attempt may have been refused
        breaker = engine.breaker(stage)
        return breaker is not None and breaker.state.value == "open"
    return False


def refused_stage(engine: Any, result: Mapping[str, Any]) -> str | None:
    """The stage whose open circuit left the decision incomplete, or None.

    That is the last stage of the path, or the stage whose failure stopped the run, when a
    circuit breaker refused to call it. A refused stage that the cascade routed around does
    not make the decision incomplete.
    """
    stages = result.get("stage_results") or {}
    candidates = []
    final = result.get("final_stage")
    if final is not None:
        candidates.append(final)
    stopped = result.get("terminated_by")
    if isinstance(stopped, str) and stopped.startswith("failure of "):
        candidates.append(stopped[len("failure of ") :])
    for name in candidates:
        stage = stages.get(name)
        if stage is not None and stage.get("error") is not None and _refused(engine, name, stage):
            return str(name)
    return None


def _scrubbed(result: dict[str, Any]) -> dict[str, Any]:
    """The result with every error message replaced by its error type: messages can carry
    internal details (hosts, paths, credentials) that must not reach clients."""
    out = dict(result)
    stages = result.get("stage_results")
    if isinstance(stages, dict):
        out["stage_results"] = {
            name: {**sr, "error": sr.get("error_type") or "error"}
            if isinstance(sr, dict) and sr.get("error") is not None
            else sr
            for name, sr in stages.items()
        }
    errors = result.get("errors")
    if isinstance(errors, list):
        out["errors"] = [
            {**e, "error": e.get("type") or e.get("error_type") or "error"}
            if isinstance(e, dict) and "error" in e
            else e
            for e in errors
        ]
    return out


def decision_outcome(
    engine: Any, result: dict[str, Any], run_id: str, *, expose_errors: bool = False
) -> Outcome:
    """The response for one engine execution (see the module docstring for the statuses).

    Without `expose_errors`, the error messages in the result are replaced by their error
    types (the result still says which stage failed and how).
    """
    headers = {RUN_ID_HEADER: run_id}
    if not expose_errors and (result.get("errors") or not result.get("success", True)):
        result = _scrubbed(result)
    if result.get("timed_out"):
        body = dict(result)
        body["error"] = {
            "type": "global_timeout",
            "message": "the cascade ran past its global timeout; this is the partial decision",
        }
        return Outcome(504, encode_json(body), headers)
    if not result.get("success", True):
        stage = refused_stage(engine, result)
        if stage is not None:
            seconds = _breaker_retry_after(engine, stage)
            headers[RETRY_AFTER] = retry = _retry_after(seconds)
            body = dict(result)
            body["error"] = {
                "type": "circuit_open",
                "stage": stage,
                "retry_after": int(retry),
                "message": f"the circuit breaker of stage {stage!r} is open",
            }
            return Outcome(503, encode_json(body), headers)
    return Outcome(200, encode_json(result), headers)


# -- input -------------------------------------------------------------------------------------
class InputError(Exception):
    """A request body that failed validation; `errors` are pydantic-style error dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} validation error(s)")

    def outcome(self) -> Outcome:
        """The 422 response, shaped like FastAPI's: `{"detail": [...]}`."""
        return Outcome(422, encode_json({"detail": self.errors}), {})


def input_validator(model: Any) -> Any:
    """A `pydantic.TypeAdapter` for `model` (a pydantic model, dataclass or TypedDict)."""
    from pydantic import TypeAdapter

    return TypeAdapter(model)


def _errors(exc: Any, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False):
        item = {"type": err["type"], "loc": [*prefix, *err["loc"]], "msg": err["msg"]}
        if "input" in err:
            item["input"] = err["input"]
        if "ctx" in err:
            item["ctx"] = {k: str(v) for k, v in err["ctx"].items()}
        out.append(item)
    return out


def _json_invalid(position: int, reason: str) -> dict[str, Any]:
    return {
        "type": "json_invalid",
        "loc": ["body", position],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": reason},
    }


def parse_input(raw: bytes, validator: Any = None) -> Any:
    """Decode a JSON request body and validate it.

    Args:
        raw: The body.
        validator: From `input_validator(model)`; None accepts any JSON object.

    Returns:
        The validated value (a model instance, or the dict).

    Raises:
        InputError: The body is not JSON, not an object, or fails the model; each error's
            `loc` names the offending field, e.g. `["body", "amount"]`.
    """
    # the errors are FastAPI's own, field for field, so both frameworks answer alike
    try:
        value = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        raise InputError([_json_invalid(exc.pos, exc.msg)]) from None
    except (ValueError, RecursionError) as exc:  # bad text encoding; nested too deeply
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InputError([_json_invalid(0, reason)]) from None
    if value is None:
        raise InputError(
            [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    if not isinstance(value, dict):
        kind, message = (
            ("dict_type", "Input should be a valid dictionary")
            if validator is None  # the body is any object
            else (  # the body is a model
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )
        )
        raise InputError([{"type": kind, "loc": ["body"], "msg": message, "input": value}])
    if validator is None:
        return value
    from pydantic import ValidationError

    try:
        return validator.validate_python(value)
    except ValidationError as exc:
        raise InputError(_errors(exc, ("body",))) from None


def engine_input(value: Any) -> Any:
    """What to pass to `CascadeEngine.execute` for a validated body."""
    if isinstance(value, dict) or hasattr(value, "to_flat_dict"):
        return value
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


# -- engines, reporters and health -------------------------------------------------------------
def as_engine(engine: Any) -> Any:
    """A `CascadeEngine` from an engine, a `CascadeConfig`, a dict or a config file path."""
    from cascadence.cascade.engine import CascadeEngine

    if isinstance(engine, CascadeEngine):
        return engine
    if isinstance(engine, PurePath):
        engine = str(engine)
    return CascadeEngine(engine)


def _metrics_reporter(metrics: Any) -> Any:
    from cascadence.reporters.prometheus import PrometheusReporter

    if metrics is True:
        return PrometheusReporter()
    if metrics is False or metrics is None:
        return None
    if isinstance(metrics, PrometheusReporter):
        return metrics
    raise TypeError(
        f"metrics= expects a bool or a PrometheusReporter, got {type(metrics).__name__}"
    )


def _tracing_reporter(tracing: Any, name: str) -> Any:
    if tracing is False or tracing is None:
        return None
    from cascadence.reporters.opentelemetry import OpenTelemetryReporter

    if tracing is True:
        return OpenTelemetryReporter(service_name=name)
    if isinstance(tracing, OpenTelemetryReporter):
        return tracing
    raise TypeError(
        f"tracing= expects a bool or an OpenTelemetryReporter, got {type(tracing).__name__}"
    )


def instrument_engine(engine: Any, metrics: Any = True, tracing: Any = False) -> tuple[Any, Any]:
    """Attach a Prometheus and an OpenTelemetry reporter to `engine` (each at most once).

    Returns:
        The (PrometheusReporter or None, OpenTelemetryReporter or None) in use.
    """
    reporter = _metrics_reporter(metrics)
    tracer = _tracing_reporter(tracing, engine.plan.name)
    if reporter is not None:
        reporter.instrument(engine)
    if tracer is not None:
        tracer.instrument(engine)
    return reporter, tracer


def health(engine: Any = None) -> dict[str, Any]:
    """The `/healthz` body: status, and for an engine its name, version and breaker states."""
    body: dict[str, Any] = {"status": "ok"}
    if engine is not None:
        plan = engine.plan
        body["cascade"] = plan.name
        body["version"] = plan.version
        breakers = {}
        for stage in plan.stages:
            breaker = engine.breaker(stage.name)
            if breaker is not None:
                breakers[stage.name] = breaker.state.value
        if breakers:
            body["breakers"] = breakers
    return body
