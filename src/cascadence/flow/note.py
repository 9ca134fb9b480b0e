"""`@note` and the standalone resilience decorators `retry`, `timeout`, `fallback`,
`circuit_breaker`.

Each decorator only builds a `StepPolicy` and attaches it to the function. The decorated function
still works when called directly (the policy applies through the same runtime call a flow
uses; a decorated `async def` is awaited, a decorated plain function returns its result); inside
a flow the runtime reads the policy and calls the original function, so nothing is applied
twice. Decorators stack in any order; the outermost setting wins on a clash, except for time
limits, where the tighter one holds (as nested timeouts would). Order matters where it means
something: `@timeout` above `@retry` limits all attempts together, below it (or in one
`@note(retry=..., timeout=...)`) each attempt; `@circuit_breaker` above `@retry` counts one
failure per call (after its last attempt) and refuses the whole call when open, below it (or
in one `@note`) each attempt is a call the breaker counts and may refuse. A fallback applies
once the last attempt has failed, wherever it sits in the stack.

In a flow, every attempt of a retried note, and the one attempt of a note with a fallback, runs
on a copy-on-write view of the score: a failed attempt leaves nothing behind (no item appended
twice by two attempts), a successful attempt's writes land on the score, and a fallback lands on
the score as it was before the step. A note with a result cache runs on the score itself.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar, overload

from cascadence.errors import Skip
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.fallback import Fallback, fallback_from
from cascadence.policies.retry import RetryPolicy, retry_policy_from
from cascadence.policies.stack import OWNER_ATTR, POLICY_ATTR, RAW_ATTR, StepPolicy, note_parts
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock
from cascadence.runtime.flow_runner import assign_field
from cascadence.runtime.invoke import call_step, is_async_callable, to_async
from cascadence.runtime.threads import in_event_loop, run_blocking

__all__ = [
    "Skip",
    "circuit_breaker",
    "fallback",
    "note",
    "note_parts",
    "retry",
    "timeout",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _attach(fn: Callable[..., Any], extra: StepPolicy) -> Callable[..., Any]:
    raw, policy = note_parts(fn)
    if extra.timeout is not None and extra.retry is None and policy.retry is not None:
        # `@timeout` stacked above `@retry`: the time limit covers every attempt together
        extra = replace(extra, timeout=None, total_timeout=extra.timeout)
    if extra.breaker is not None and extra.retry is None and policy.retry is not None:
        # `@circuit_breaker` stacked above `@retry`: one outcome per call, not per attempt
        extra = replace(extra, breaker_outside=True)
    for limit in ("timeout", "total_timeout"):  # nested time limits: the tighter one holds
        inner, outer = getattr(policy, limit), getattr(extra, limit)
        if inner is not None and outer is not None and inner < outer:
            extra = replace(extra, **{limit: inner})
    combined = policy.merged(extra)
    name = getattr(raw, "__name__", "note")
    handler = to_async(raw)
    try:
        first_param = next(iter(inspect.signature(raw).parameters), None)
    except (TypeError, ValueError):  # no signature (some builtins and C callables)
        first_param = None
    # A method called through its object gets (self, score): the score is the second argument
    score_at = 1 if first_param in ("self", "cls") else 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs:  # a note call: fn(score)
            return await call_step(name, handler, args[0], combined, assign=assign_field)

        # Any other call (no arguments, several, keywords): the policy over a closure; a
        # fallback field is written to the first argument when there is one.
        async def bound(_: Any) -> Any:
            result = raw(*args, **kwargs)
            if hasattr(result, "__await__"):
                return await result
            return result

        first = args[score_at] if len(args) > score_at else None
        assign = assign_field if len(args) > score_at else None
        return await call_step(name, bound, first, combined, assign=assign)

    decorated: Callable[..., Any] = wrapper
    if not is_async_callable(raw):

        def plain(*args: Any, **kwargs: Any) -> Any:
            return _run_blocking(wrapper(*args, **kwargs))

        decorated = plain  # a plain function stays plain when called directly
    functools.update_wrapper(decorated, raw)
    setattr(decorated, POLICY_ATTR, combined)
    setattr(decorated, RAW_ATTR, raw)
    setattr(decorated, OWNER_ATTR, decorated)
    # public handles: the policy the note runs under, and its breaker, to read its state
    decorated.policy = combined  # type: ignore[attr-defined]
    decorated.circuit_breaker = combined.breaker  # type: ignore[attr-defined]
    return decorated


def _run_blocking(coro: Awaitable[T]) -> T:
    """Run `coro` to completion from synchronous code and return its result.

    Without a running event loop in this thread, on a fresh loop here. Called from inside
    one (a plain function called from async code), on a fresh loop in a worker thread, with
    this context's variables, while the caller waits, as for any blocking call.
    """
    if not in_event_loop():
        return run_blocking(coro)  # type: ignore[arg-type]
    context = contextvars.copy_context()
    with ThreadPoolExecutor(1, thread_name_prefix="cascadence-note") as pool:
        return pool.submit(context.run, run_blocking, coro).result()  # type: ignore[arg-type]


@overload
def note(fn: F, /) -> F: ...


@overload
def note(
    fn: None = None,
    /,
    *,
    retry: int | dict[str, Any] | RetryPolicy | None = None,
    timeout: float | None = None,
    fallback: dict[str, Any] | Fallback | None = None,
    circuit_breaker: CircuitBreaker | dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Callable[[F], F]: ...


def note(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    retry: int | dict[str, Any] | RetryPolicy | None = None,
    timeout: float | None = None,
    fallback: dict[str, Any] | Fallback | None = None,
    circuit_breaker: CircuitBreaker | dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Any:
    """Mark a function as a note, optionally with resilience settings.

    ```python
    @note
    async def fetch(score): ...

    @note(retry=3, timeout=15.0)
    async def call_service(score): ...

    @note(retry={"max_attempts": 3, "backoff": "exponential", "delay": 0.5},
          timeout=30.0, fallback={"default": None, "field": "result"})
    async def call_service(score): ...
    ```

    Args:
        retry: Attempts as an int, or a dict (`max_attempts`, `delay`, `backoff`, ...).
        timeout: Seconds before an attempt is cancelled (sync notes included, no signals).
        fallback: `{"default": value, "field": "name"}`: on final failure write `value` to
            `score.name` and carry on.
        circuit_breaker: A `CircuitBreaker`, or a dict of its arguments.
        clock: Time source for backoff sleeps (tests inject a `FakeClock`).
    """
    breaker = _breaker_from(circuit_breaker, fn)
    if timeout is not None:
        timeout = _seconds(timeout)
    policy = StepPolicy(
        timeout=timeout,
        retry=retry_policy_from(retry),
        fallback=fallback_from(fallback),
        breaker=breaker,
        clock=clock or SYSTEM_CLOCK,
    )

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if policy == StepPolicy() and getattr(f, POLICY_ATTR, None) is None:
            setattr(f, "__cascadence_note__", True)  # noqa: B010 - marker on plain notes
            return f
        if fn is None and isinstance(circuit_breaker, dict):
            # `@note(circuit_breaker={...})`: one breaker per decorated function, named after it
            return _attach(f, replace(policy, breaker=_breaker_from(circuit_breaker, f)))
        return _attach(f, policy)

    return decorate(fn) if fn is not None else decorate


def _breaker_from(spec: Any, fn: Any) -> CircuitBreaker | None:
    if spec is None or isinstance(spec, CircuitBreaker):
        return spec
    if isinstance(spec, dict):
        name = str(spec.get("name") or getattr(fn, "__name__", "note"))
        return CircuitBreaker(name, **{k: v for k, v in spec.items() if k != "name"})
    raise TypeError(f"circuit_breaker= expects a CircuitBreaker or a dict, got {spec!r}")


@overload
def retry(fn: F, /) -> F: ...


@overload
def retry(
    fn: int,
    /,
    *,
    delay: float = 1.0,
    backoff: str = "exponential",
    multiplier: float = 2.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    clock: Clock | None = None,
) -> Callable[[F], F]: ...


@overload
def retry(
    fn: dict[str, Any] | RetryPolicy,
    /,
    *,
    clock: Clock | None = None,
) -> Callable[[F], F]: ...


@overload
def retry(
    fn: None = None,
    /,
    *,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: str = "exponential",
    multiplier: float = 2.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    clock: Clock | None = None,
) -> Callable[[F], F]: ...


def retry(
    fn: Callable[..., Any] | int | dict[str, Any] | RetryPolicy | None = None,
    /,
    *,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: str = "exponential",
    multiplier: float = 2.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    clock: Clock | None = None,
) -> Any:
    """Retry a failing note or function: `@retry`, `@retry(max_attempts=5, delay=0.2)`, or,
    as `@note(retry=...)` takes them, `@retry(3)` and `@retry({"max_attempts": 3, ...})`."""
    options: dict[str, Any] = {
        "delay": delay,
        "backoff": backoff,
        "multiplier": multiplier,
        "max_delay": max_delay,
        "jitter": jitter,
        "retry_on": retry_on,
    }
    spec: RetryPolicy | None
    if fn is None or callable(fn):
        spec = RetryPolicy(max_attempts=max_attempts, **options)
    elif isinstance(fn, int) and not isinstance(fn, bool):  # `@retry(3, delay=0.5)`
        if fn < 0:
            raise ValueError(f"retry takes the number of attempts (0 or 1: no retry), got {fn}")
        spec = RetryPolicy(max_attempts=fn, **options) if fn > 1 else None
        fn = None
    else:  # a dict or a RetryPolicy holds every option itself
        if RetryPolicy(max_attempts=max_attempts, **options) != RetryPolicy():
            raise TypeError(
                "retry() takes its options in the dict (or RetryPolicy) or as keywords, "
                f"not both: got {fn!r} and keywords"
            )
        spec = retry_policy_from(fn)
        fn = None
    policy = StepPolicy(retry=spec, clock=clock or SYSTEM_CLOCK)
    if fn is not None:
        return _attach(fn, policy)
    return lambda f: _attach(f, policy)


def _seconds(value: Any) -> float:
    """A timeout in seconds: a positive number, or a clear error naming what was given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds (e.g. timeout=30.0), got {type(value).__name__}"
            f" {value!r}"
        )
    if not value > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {value!r}")
    return float(value)


def timeout(seconds: float) -> Callable[[F], F]:
    """Cancel a note or function still running after `seconds` (`@timeout(5.0)`)."""
    policy = StepPolicy(timeout=_seconds(seconds))
    return lambda f: _attach(f, policy)  # type: ignore[return-value]


@overload
def fallback(default: F, /) -> F: ...


@overload
def fallback(
    default: Any = None,
    *,
    field: str | None = None,
    factory: Callable[[BaseException], Any] | None = None,
    on: tuple[type[BaseException], ...] = (Exception,),
) -> Callable[[F], F]: ...


def fallback(
    default: Any = None,
    *,
    field: str | None = None,
    factory: Callable[[BaseException], Any] | None = None,
    on: tuple[type[BaseException], ...] = (Exception,),
) -> Any:
    """On failure, use `default` (written to `score.<field>` when `field` is given).

    Bare `@fallback` (no parentheses) falls back to None.
    """
    if _is_decorated_function(default) and field is None and factory is None:
        return _attach(default, StepPolicy(fallback=Fallback(on=on)))
    policy = StepPolicy(fallback=Fallback(default=default, field=field, factory=factory, on=on))
    return lambda f: _attach(f, policy)


def _is_decorated_function(value: Any) -> bool:
    """Whether a decorator's first argument is the function it decorates (used bare)."""
    return inspect.isfunction(value) or inspect.ismethod(value)


@overload
def circuit_breaker(failure_threshold: F, /) -> F: ...


@overload
def circuit_breaker(
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
    *,
    name: str | None = None,
    half_open_max_calls: int = 1,
    clock: Clock | None = None,
    store: Any = None,
) -> Callable[[F], F]: ...


def circuit_breaker(
    failure_threshold: Any = 5,
    recovery_timeout: float = 30.0,
    *,
    name: str | None = None,
    half_open_max_calls: int = 1,
    clock: Clock | None = None,
    store: Any = None,
) -> Any:
    """Open a circuit after `failure_threshold` consecutive failures for `recovery_timeout` s.

    The breaker is shared by every call of the decorated function (and every flow using it),
    and readable as the function's `circuit_breaker` attribute (`fn.circuit_breaker.state`).
    Bare `@circuit_breaker` (no parentheses) uses the defaults.
    """
    if _is_decorated_function(failure_threshold):
        bare: Any = failure_threshold
        decorate_bare = circuit_breaker(
            name=name, half_open_max_calls=half_open_max_calls, clock=clock, store=store
        )
        return decorate_bare(bare)

    def decorate(f: F) -> F:
        raw, _ = note_parts(f)
        breaker = CircuitBreaker(
            name or str(getattr(raw, "__name__", "circuit")),
            failure_threshold,
            recovery_timeout,
            half_open_max_calls=half_open_max_calls,
            clock=clock or SYSTEM_CLOCK,
            store=store,
        )
        return _attach(f, StepPolicy(breaker=breaker))  # type: ignore[return-value]

    return decorate


AsyncNote = Callable[[Any], Awaitable[Any]]
