"""Calling one step: the handler under its timeout, retry, breaker, cache and fallback.

Both front ends call steps only through `call_step`. The fast path matters: most decision
handlers return without ever suspending, and arming a timer (about 4 us) or creating a task
(about 8 us) for them would cost more than the work itself. So a handler's coroutine is first
driven by hand, one `send(None)`; if it finishes, no timer was ever armed. Only a handler that
actually suspends is resumed under a deadline, by handing its pending future to the current task
(`_Resume`), which keeps cancellation exact: the handler sees `CancelledError` at its `await`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import replace
from typing import Any, TypeVar

from cascadence.errors import CircuitOpenError, RetryExhaustedError, Skip
from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.policies.cache import MISS, NO_KEY
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.fallback import Fallback
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.cancel import TIMEOUT_CANCEL, is_timeout_cancel
from cascadence.runtime.threads import run_in_thread

__all__ = [
    "AsyncHandler",
    "CUT_ATTR",
    "add_note",
    "RetryListener",
    "call_step",
    "call_with_deadline",
    "mark_coroutine_function",
    "mark_cut",
    "resume",
    "resume_until",
    "retries_cut",
    "start",
    "time_limit",
    "to_async",
]

T = TypeVar("T")
AsyncHandler = Callable[[Any], Coroutine[Any, Any, Any]]
RetryListener = Callable[[int, BaseException, float], object]
"""Called as (failed attempt number, its error, delay before the next attempt)."""


class _Resume:
    """Await the rest of a coroutine that was already started by hand.

    `first` is what the coroutine yielded on its first step (a pending future, or None for a
    bare yield). Awaiting this object hands that value to the current task, then relays every
    send and throw to the coroutine, exactly as `await coro` would have done from the start.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        value = self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # relay cancellation and errors into the handler
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def start(coro: Coroutine[Any, Any, T]) -> tuple[bool, Any]:
    """Run a coroutine up to its first suspension.

    Returns:
        `(True, result)` if it finished without suspending, else `(False, yielded)` where
        `yielded` must be passed to `resume`.
    """
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, yielded


async def resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Await the remainder of a coroutine that `start` left suspended."""
    result: T = await _Resume(coro, yielded)
    return result


class _ResumeUntil:
    """Await the rest of a started coroutine, cancelling it at `limit` (event-loop time).

    One object does what `async with asyncio.timeout_at(limit): await _Resume(...)` does, with
    the same cancellation bookkeeping (`Task.cancelling` / `uncancel`), but without the scope
    object, its coroutine frames and the generator: a suspended step holds this object, one
    timer handle and the handler's own coroutine. Awaiting it hands the handler's first pending
    future to the current task and arms the timer; the timer cancels the task, the handler
    sees `CancelledError` at its `await`, and it comes out as `cascadence.errors.TimeoutError`.

    A deadline measures the handler, not the event loop: when the timer fires while what the
    handler waits for is already done (it finished in time, but a busy loop has not yet resumed
    the handler), the handler gets that one step first, and is cancelled only if it then waits
    again. Under load this keeps short timeouts from failing work that completed in time.
    """

    __slots__ = (
        "_cancelling",
        "_coro",
        "_deferred",
        "_expired",
        "_handle",
        "_limit",
        "_name",
        "_task",
        "_timeout",
        "_waiting",
    )

    def __init__(
        self, coro: Coroutine[Any, Any, Any], first: Any, limit: float, name: str, timeout: float
    ) -> None:
        self._coro = coro
        self._waiting = first
        self._limit = limit
        self._name = name
        self._timeout = timeout
        self._handle: asyncio.Handle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._expired = False
        self._deferred = 0

    def __await__(self) -> Generator[Any, Any, Any]:
        # A generator, not `send`/`throw` methods: the task drives it without a Python call per
        # step, and it finishes by returning. A Python-level `send` has to raise StopIteration,
        # and an exception leaving a Python frame makes CPython give the awaiting coroutine a
        # frame object (a copy of its whole frame) for as long as that coroutine lives.
        # Few locals: the generator's frame is held for as long as the handler waits.
        coro = self._arm()
        value = self._waiting
        try:
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # relay cancellation and errors into the handler
                    value = coro.throw(exc)
                else:
                    value = coro.send(sent)
                self._waiting = value  # what the handler waits for now (see `__call__`)
        except StopIteration as exc:
            self._finish(exc)
            return exc.value
        except BaseException as exc:
            value = self._finish(exc)  # the step timeout the cancellation stands for, if any
            if value is None:
                raise
            raise value from None

    def _arm(self) -> Coroutine[Any, Any, Any]:
        """Take the current task and arm the timer; returns the handler's coroutine."""
        task = asyncio.current_task()
        if task is None:
            self._coro.close()
            raise RuntimeError("a step with a timeout must be awaited inside a task")
        self._task = task
        self._cancelling = task.cancelling()  # type: ignore[attr-defined,unused-ignore]
        loop = task.get_loop()
        if self._limit <= loop.time():
            self._expired = True
            task.cancel(TIMEOUT_CANCEL)
        else:
            # no bound method to keep, and no copy of the context: the timer only cancels
            self._handle = loop.call_at(self._limit, self, context=_timer_context())
        return self._coro

    def __call__(self) -> None:
        """The timer fired: cancel the task (the timer handle calls the object itself)."""
        task = self._task
        assert task is not None
        done = getattr(self._waiting, "done", None)
        if done is not None and self._deferred < _DEFER_TURNS and done():
            # The handler's wait is over and its task is scheduled to resume: let it take that
            # step before a second look. A task resumes within a turn or two of the loop (two
            # when its wakeup is itself scheduled from the future's callback, as under uvloop);
            # the look is put off a few turns at most.
            self._deferred += 1
            self._handle = task.get_loop().call_soon(self, context=_timer_context())
            return
        self._handle = None
        self._expired = True
        task.cancel(TIMEOUT_CANCEL)

    def _disarm(self) -> None:
        handle = self._handle
        if handle is not None:
            self._handle = None
            handle.cancel()

    def _finish(self, exc: BaseException) -> StepTimeoutError | None:
        """Disarm the timer; return the step timeout the timer's cancellation stands for."""
        self._disarm()
        if self._expired:
            self._expired = False
            assert self._task is not None
            remaining = self._task.uncancel()  # type: ignore[attr-defined,unused-ignore]
            if isinstance(exc, asyncio.CancelledError) and remaining <= self._cancelling:
                return StepTimeoutError(self._name, self._timeout)
        return None


_DEFER_TURNS = 4
"""Turns of the loop a deadline's last look waits for a handler whose wait is already over."""

_TIMER_CONTEXTS = threading.local()


def _timer_context() -> contextvars.Context:
    """An empty context for deadline timers, one per thread (a context runs one callback at a
    time, and a thread's loop runs its callbacks one after another)."""
    try:
        context: contextvars.Context = _TIMER_CONTEXTS.context
    except AttributeError:
        context = _TIMER_CONTEXTS.context = contextvars.Context()
    return context


def resume_until(
    coro: Coroutine[Any, Any, Any], yielded: Any, deadline: float, name: str, timeout: float
) -> Awaitable[Any]:
    """Await the rest of a started coroutine, cancelling it at `deadline` (event-loop time).

    Raises (when awaited):
        cascadence.errors.TimeoutError: The deadline passed first.
    """
    if sys.version_info >= (3, 11):
        return _ResumeUntil(coro, yielded, deadline, name, timeout)
    return _resume_until_310(coro, yielded, deadline, name, timeout)


async def _resume_until_310(
    coro: Coroutine[Any, Any, Any], yielded: Any, deadline: float, name: str, timeout: float
) -> Any:
    """Python 3.10 (no `Task.uncancel`): the timer cancels the current task, and a flag tells
    that cancellation from any other. No task of its own, so the handler keeps running in
    the caller's context (a context variable it set before suspending can still be reset)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        coro.close()
        raise RuntimeError("a step with a timeout must be awaited inside a task")
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel(TIMEOUT_CANCEL)

    handle = loop.call_at(deadline, expire, context=_timer_context())
    try:
        return await _Resume(coro, yielded)
    except asyncio.CancelledError:
        if fired:
            raise StepTimeoutError(name, timeout) from None
        raise
    finally:
        handle.cancel()


async def call_with_deadline(
    fn: AsyncHandler, arg: Any, timeout: float | None, name: str, deadline: float | None = None
) -> Any:
    """Call `fn(arg)`; cancel it if it is still running `timeout` seconds later.

    `deadline` (event-loop time) caps the timeout further, for a run-wide deadline. A handler
    that finishes without suspending never arms a timer.

    Raises:
        cascadence.errors.TimeoutError: The handler was cancelled at the deadline.
    """
    coro = fn(arg)
    if timeout is None and deadline is None:
        return await coro
    loop = asyncio.get_running_loop()
    limit, timeout_s = time_limit(loop, timeout, deadline)
    assert limit is not None
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        if loop.time() > limit:  # it never awaited: no timer could stop it
            raise StepTimeoutError(name, timeout_s, loop.time() - limit + timeout_s) from None
        return stop.value
    return await resume_until(coro, yielded, limit, name, timeout_s)


async def call_step(
    name: str,
    fn: AsyncHandler,
    arg: Any,
    policy: StepPolicy,
    *,
    cache_input: Any = None,
    deadline: float | None = None,
    on_retry: RetryListener | None = None,
    assign: Callable[[Any, str, Any], Any] | None = None,
    hits: list[Any] | None = None,
) -> Any:
    """Call a step's handler under every part of its policy (see `StepPolicy`).

    Args:
        name: The step name, for errors.
        fn: The async handler.
        arg: What the handler receives (an execution context or a score).
        policy: The step's resilience settings.
        cache_input: The input the cache key is built from.
        deadline: Event-loop time by which the whole run must end.
        on_retry: Told about each retry before its backoff sleep.
        assign: Writes a fallback value into `arg` when the fallback names a field.
        hits: Told of a cache hit (the key is appended), for callers that report it.

    Raises:
        cascadence.errors.RetryExhaustedError: Every attempt of a retried step failed.
        cascadence.errors.TimeoutError: A single-attempt step timed out.
        cascadence.errors.CircuitOpenError: The breaker refused the call (and no fallback).
    """
    if policy.is_plain:
        return await call_with_deadline(fn, arg, policy.timeout, name, deadline)
    if policy.breaker_outside and policy.breaker is not None:
        return await _guarded(name, fn, arg, policy, cache_input, deadline, on_retry, assign, hits)
    cache = policy.cache
    key: Any = None
    if cache is not None:
        key = cache.key_for(cache_input if cache_input is not None else arg)
        if key is NO_KEY:  # an input whose content makes no key: neither served nor stored
            cache = None
        else:
            hit = cache.get(key)
            if hit is not MISS:
                if hits is not None:
                    hits.append(key)
                return hit
    retry = policy.retry
    breaker = policy.breaker
    total = policy.total_timeout
    loop = asyncio.get_running_loop()
    own_limit: float | None = None  # one time limit over every attempt and backoff sleep
    ahead = 0.0  # backoff the policy's clock slept in less real time (a test's fake clock)
    if total is not None:
        own_limit = loop.time() + total
    attempt = 0
    while True:
        attempt += 1
        limit = deadline
        if own_limit is not None and (limit is None or own_limit - ahead < limit):
            limit = own_limit - ahead
        try:
            if breaker is not None:
                try:
                    await breaker.before_call()
                except CircuitOpenError as refused:
                    refused.note_name = name  # the step refused; `breaker_name` says by whom
                    raise
            # the step gets less than half its own timeout before the run's deadline (earlier
            # steps spent the run's budget): running out of it then is the run's budget
            # ending, not the step's service failing
            run_cut = (
                breaker is not None
                and deadline is not None
                and limit == deadline
                and policy.timeout is not None
                and deadline - loop.time() < 0.5 * policy.timeout
            )
            try:
                result = await call_with_deadline(fn, arg, policy.timeout, name, limit)
            except Exception as exc:
                if breaker is not None and not isinstance(exc, Skip):
                    if (
                        run_cut
                        and type(exc) is StepTimeoutError
                        and exc.name == name  # this step's deadline, not one raised inside it
                        and deadline is not None
                        and loop.time() >= deadline - 0.001
                    ):
                        await breaker.release()
                    else:
                        await breaker.record_failure()
                raise
            except asyncio.CancelledError as cancelled:
                if breaker is not None:
                    await _settle_cancelled(breaker, cancelled)
                raise
        except Skip:
            raise
        except Exception as exc:
            delay = None
            cut: str | None = None
            if retry is not None and not isinstance(exc, CircuitOpenError):
                delay = retry.next_delay(attempt, exc)
                if delay is not None and limit is not None and loop.time() + delay >= limit:
                    # the time limit comes first: no attempt would finish
                    cut = (
                        f"{name!r}: no retry after attempt {attempt}: the next would start "
                        f"{delay:g}s from now, after the step's time limit"
                    )
                    add_note(exc, cut)
                    mark_cut(exc, cut, attempt, delay)
                    delay = None
            if delay is None:
                fallback = policy.fallback
                if fallback is not None and fallback.applies_to(exc):
                    return _fallback(fallback, exc, arg, assign)
                if (
                    own_limit is not None
                    and limit == own_limit - ahead
                    and isinstance(exc, StepTimeoutError)
                    and loop.time() >= limit - 0.001  # a timer may fire that much early
                ):
                    assert total is not None  # the limit over all attempts cut this one off
                    raise StepTimeoutError(name, total) from exc
                if attempt > 1 and not isinstance(exc, CircuitOpenError):
                    exhausted = RetryExhaustedError(name, attempt, exc)
                    if cut is not None:
                        add_note(exhausted, cut)
                        mark_cut(exhausted, cut, attempt, getattr(exc, CUT_ATTR)[2])
                    raise exhausted from exc
                raise  # a breaker that opened during the retries refused: that is the error
            if on_retry is not None:
                outcome = on_retry(attempt, exc, delay)
                if outcome is not None and inspect.isawaitable(outcome):
                    await outcome
            slept_from = loop.time()
            await policy.clock.sleep(delay)
            if own_limit is not None:
                ahead += max(0.0, delay - (loop.time() - slept_from))
            continue
        if breaker is not None:
            await breaker.record_success()
        if cache is not None:
            cache.set(key, result)
        return result


def _fallback(
    fallback: Fallback, exc: BaseException, arg: Any, assign: Callable[[Any, str, Any], Any] | None
) -> Any:
    """The step's result when its fallback takes over from `exc`."""
    value = fallback.value(exc)
    if fallback.field is not None and assign is not None:
        replaced = assign(arg, fallback.field, value)
        if replaced is not None:  # a frozen score, copied with the field
            return replaced
    return value


async def _settle_cancelled(breaker: CircuitBreaker, cancelled: asyncio.CancelledError) -> None:
    """Tell the breaker how a cancelled call ended: an enclosing timeout means it was slow (a
    failure); any other cancellation (the caller gave up) leaves it without an outcome."""
    if is_timeout_cancel(cancelled):
        await asyncio.shield(breaker.record_failure())
    else:
        await asyncio.shield(breaker.release())


async def _guarded(
    name: str,
    fn: AsyncHandler,
    arg: Any,
    policy: StepPolicy,
    cache_input: Any,
    deadline: float | None,
    on_retry: RetryListener | None,
    assign: Callable[[Any, str, Any], Any] | None,
    hits: list[Any] | None,
) -> Any:
    """`call_step` with the breaker around the whole retried call (`breaker_outside`): it is
    consulted once and counts one outcome, after the last attempt; the fallback, outermost,
    answers for a refusal as for a failure."""
    breaker = policy.breaker
    assert breaker is not None
    fallback = policy.fallback
    inner = replace(policy, breaker=None, breaker_outside=False, fallback=None)
    try:
        try:
            await breaker.before_call()
        except CircuitOpenError as refused:
            refused.note_name = name
            raise
        try:
            result = await call_step(
                name,
                fn,
                arg,
                inner,
                cache_input=cache_input,
                deadline=deadline,
                on_retry=on_retry,
                assign=assign,
                hits=hits,
            )
        except Skip:
            await breaker.release()  # no outcome to count
            raise
        except Exception:
            await breaker.record_failure()
            raise
        except asyncio.CancelledError as cancelled:
            await _settle_cancelled(breaker, cancelled)
            raise
    except Skip:
        raise
    except Exception as exc:
        if fallback is not None and fallback.applies_to(exc):
            return _fallback(fallback, exc, arg, assign)
        raise
    await breaker.record_success()
    return result


CUT_ATTR = "__cascadence_retry_cut__"
"""On the error of a step whose retries a time limit cut short: (note, last attempt, delay the
next attempt would have waited), as `retries_cut` reads it."""


def mark_cut(exc: BaseException, note: str, attempt: int, delay: float) -> None:
    """Record on `exc` that no retry followed `attempt` because `delay` would pass the limit."""
    with contextlib.suppress(AttributeError, TypeError):  # an exception type without a dict
        setattr(exc, CUT_ATTR, (note, attempt, delay))


def retries_cut(exc: BaseException) -> tuple[str, int, float] | None:
    """What `mark_cut` recorded on `exc`, or None when its retries were not cut short."""
    cut = getattr(exc, CUT_ATTR, None)
    return cut if isinstance(cut, tuple) else None


def add_note(exc: BaseException, text: str) -> None:
    """Add `text` to the notes a traceback shows under `exc` (Python 3.11+). Before 3.11 the
    note is still kept in `exc.__notes__`, where a cascade run reads why its retries stopped."""
    method = getattr(exc, "add_note", None)
    if method is not None:
        method(text)
        return
    try:
        notes = getattr(exc, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            setattr(exc, "__notes__", notes)  # noqa: B010 - not an attribute mypy knows on 3.10
        notes.append(text)
    except (AttributeError, TypeError):  # an exception that takes no attributes
        pass


def time_limit(
    loop: asyncio.AbstractEventLoop, timeout: float | None, deadline: float | None
) -> tuple[float | None, float]:
    """The loop time a call must end by, and the timeout that stands for, or (None, 0)."""
    if timeout is None and deadline is None:
        return None, 0.0
    now = loop.time()
    if timeout is not None and (deadline is None or now + timeout <= deadline):
        return now + timeout, timeout  # the timeout as declared (`now + t - now` is not `t`)
    assert deadline is not None
    return deadline, max(deadline - now, 0.0)


_ASYNC_MARK: Any = getattr(asyncio.coroutines, "_is_coroutine", None)


def mark_coroutine_function(fn: T) -> T:
    """Mark a plain function that returns a coroutine as a coroutine function, for
    `inspect.iscoroutinefunction` on Python 3.12+ and `asyncio.iscoroutinefunction` before."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        return mark(fn)  # type: ignore[no-any-return]
    fn._is_coroutine = _ASYNC_MARK  # type: ignore[attr-defined]
    return fn


def _is_coroutine_function(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    return _ASYNC_MARK is not None and getattr(fn, "_is_coroutine", None) is _ASYNC_MARK


def is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if _is_coroutine_function(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and _is_coroutine_function(call)


def to_async(fn: Callable[..., Any], *, in_thread: bool = True) -> AsyncHandler:
    """Adapt a handler to one async signature, deciding once how to call it.

    Coroutine functions are used as they are. Plain functions run in a worker thread (so a
    blocking call cannot stall the event loop and a timeout still returns on time), or inline
    on the loop with `in_thread=False`, which is faster for cheap, non-blocking functions. A
    plain function that returns an awaitable has it awaited.
    """
    if is_async_callable(fn):
        return fn

    if in_thread:

        async def threaded(arg: Any) -> Any:
            result = await run_in_thread(fn, arg)
            if inspect.isawaitable(result):
                return await result
            return result

        threaded.__wrapped__ = fn  # type: ignore[attr-defined]
        return threaded

    async def inline(arg: Any) -> Any:
        result = fn(arg)
        if inspect.isawaitable(result):
            return await result
        return result

    inline.__wrapped__ = fn  # type: ignore[attr-defined]
    return inline
