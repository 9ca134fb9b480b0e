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
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

from cascadence.errors import CircuitOpenError, RetryExhaustedError, Skip
from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.policies.cache import MISS, NO_KEY
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.cancel import TIMEOUT_CANCEL, is_timeout_cancel
from cascadence.runtime.threads import run_in_thread

try:  # switching the current task for a call's first step, as eager tasks do (3.12+)
    from asyncio.tasks import _enter_task, _leave_task, _register_task, _unregister_task

    _EAGER = True
except ImportError:  # pragma: no cover - an interpreter without them: plain tasks
    _EAGER = False

__all__ = [
    "AsyncHandler",
    "add_note",
    "Launched",
    "RetryListener",
    "call_step",
    "call_with_deadline",
    "gather_calls",
    "mark_coroutine_function",
    "resume",
    "resume_until",
    "start",
    "start_calls",
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
    limit, timeout_s = _limit(asyncio.get_running_loop(), timeout, deadline)
    assert limit is not None
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
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
                    if is_timeout_cancel(cancelled):  # an enclosing timeout: the call was slow
                        await asyncio.shield(breaker.record_failure())
                    else:  # cancelled from outside: the call had no outcome
                        await asyncio.shield(breaker.release())
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
                    delay = None
            if delay is None:
                fallback = policy.fallback
                if fallback is not None and fallback.applies_to(exc):
                    value = fallback.value(exc)
                    if fallback.field is not None and assign is not None:
                        replaced = assign(arg, fallback.field, value)
                        if replaced is not None:  # a frozen score, copied with the field
                            return replaced
                    return value
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


Call = tuple[AsyncHandler, Any, "float | None", str]
"""(handler, argument, timeout in seconds or None, name) for `gather_calls`."""


async def _timed(fn: AsyncHandler, arg: Any, limit: float | None, timeout: float, name: str) -> Any:
    """One concurrent call, in its own task: `fn(arg)`, cancelled at `limit` (loop time)."""
    coro = fn(arg)
    if limit is None:
        return await coro
    try:
        yielded = coro.send(None)
    except StopIteration as stop:  # finished without suspending: no timer armed
        return stop.value
    return await resume_until(coro, yielded, limit, name, timeout)


async def gather_calls(
    calls: list[Call],
    *,
    deadline: float | None = None,
    fail_fast: bool = False,
    spare: Callable[[BaseException], bool] | None = None,
) -> list[tuple[bool, Any, float]]:
    """Run handler calls concurrently, each in an asyncio task and a copy of the context of
    its own, as `asyncio.gather` would.

    Code that looks at the current task (`asyncio.timeout`, `TaskGroup`, anyio cancel scopes
    in HTTP clients, a step's own timeout) sees the call's task from its first line on. Each
    call's first step runs at once, in order, in the name of that task (as Python 3.12's eager
    tasks do): a call that finishes without suspending is done before this returns, and the
    caller waits on the event loop only for calls that suspended, which their tasks then carry
    on. A call that finishes in its first step leaves its task unused, so the next call (of
    this group, or of a later one while the idle task lives: a turn or two of the loop) takes
    its first step in the same task object: a task is created only for a call that suspends,
    and calls that never suspend cost no task at all. A call that cancelled its own task in
    its first step passes the task on to no one, and a task with a cancellation count left on
    it goes back to no pool. Per-task state that a finished call leaves behind (a done
    callback, a cancel scheduled for later, an entry in a registry keyed by the current task)
    is seen by the next call that runs in the same task.

    Returns:
        Per call, in order: (succeeded, result or exception, perf_counter time it ended).
        With `fail_fast`, the first failure cancels the calls still running (they report
        `CancelledError`), unless it is a skip or `spare(error)` is true. As under
        `asyncio.gather` or a task group, every call takes its first step before a failure
        cancels the others.
    """
    fns = [call[0] for call in calls]
    args = [call[1] for call in calls]
    timeouts = [call[2] for call in calls]
    names = [call[3] for call in calls]
    out, batch = start_calls(fns, args, timeouts, names, deadline, fail_fast, spare)
    if batch is None:
        return out
    return await batch.collect(fail_fast, spare)


def start_calls(
    fns: Sequence[AsyncHandler],
    args: Sequence[Any],
    timeouts: Sequence[float | None] | None = None,
    names: Sequence[str] = (),
    deadline: float | None = None,
    fail_fast: bool = False,
    spare: Callable[[BaseException], bool] | None = None,
) -> tuple[list[Any], Launched | None]:
    """`gather_calls` up to its wait: every call's first step, the calls given by column:
    `fns[i](args[i])` under `timeouts[i]` (no timeouts at all: None), named `names[i]`.

    Returns:
        The outcomes list (filled in for calls that finished) and, when some call suspended,
        the `Launched` batch whose `collect(fail_fast, spare)` waits for the rest; None when
        every call is done.
    """
    loop = _get_running_loop()
    if not _EAGER:  # an interpreter without the task switch
        return _start_in_tasks(loop, fns, args, timeouts, names, deadline)
    host = _current_task(loop)
    out: list[Any] = [None] * len(fns)
    batch: Launched | None = None
    failed = False
    idle = _take_idle(loop)
    task = idle.task
    # the first steps run one after another with the idle task current; the host task is
    # current again before anything else can run
    if host is not None:
        _leave_task(loop, host)
    _enter_task(loop, task)
    entered = True
    try:
        untimed = timeouts is None and deadline is None
        index = -1
        for fn in fns:
            index += 1
            context = _copy_context()
            try:
                if untimed:
                    work = context.run(fn, args[index])
                else:
                    limit, timeout_s = _limit(
                        loop, None if timeouts is None else timeouts[index], deadline
                    )
                    if limit is None:
                        work = context.run(fn, args[index])
                    else:
                        name = names[index] if names else ""
                        work = _timed(fn, args[index], limit, timeout_s, name)
                yielded = context.run(work.send, None)
            except StopIteration as stop:
                out[index] = (True, stop.value, _perf())
                if not task._must_cancel:  # type: ignore[attr-defined]
                    continue
                # it cancelled its own task and returned: a task ends cancelled then (and, as
                # for a task that ends cancelled, its siblings are not cancelled for it)
                out[index] = (False, asyncio.CancelledError(), out[index][2])
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # as a task records it
                out[index] = (False, exc, _perf())
                failed = failed or _stops_siblings(exc, fail_fast, spare)
                if not task._must_cancel:  # type: ignore[attr-defined]
                    continue
            else:  # it suspended: the idle task is now its task and carries on the rest
                idle.rest.hand_over(work, yielded, context)
                _register_task(task)
                if batch is None:
                    batch = Launched(out)
                batch.tasks[task] = index
            # the task is the call's now, or the call that finished cancelled it (an idle
            # task never waits on a future, so a cancel always leaves `_must_cancel` set):
            # the next call gets a fresh one
            _leave_task(loop, task)
            entered = False
            idle = _take_idle(loop)
            task = idle.task
            _enter_task(loop, task)
            entered = True
    except BaseException:
        if batch is not None:  # calls that already suspended are not left running unowned
            batch.cancel_all()
        raise
    finally:
        if entered:
            _leave_task(loop, task)
        if host is not None:
            _enter_task(loop, host)
    if not (task._must_cancel or (_COUNTS and task.cancelling())):  # type: ignore[attr-defined]
        _IDLE.tasks.append(idle)
    if failed and batch is not None:  # every call has started: cancel those still running
        batch.cancel_all()
    return out, batch


_copy_context = contextvars.copy_context
_get_running_loop = asyncio.get_running_loop
_current_task = asyncio.current_task
_perf = time.perf_counter
_COUNTS = sys.version_info >= (3, 11)
"""Tasks count cancellation requests (`Task.cancelling`): Python 3.11+."""


def _start_in_tasks(
    loop: asyncio.AbstractEventLoop,
    fns: Sequence[AsyncHandler],
    args: Sequence[Any],
    timeouts: Sequence[float | None] | None,
    names: Sequence[str],
    deadline: float | None,
) -> tuple[list[Any], Launched]:
    """`start_calls` with a plain task per call, started on the loop's next turn."""
    out: list[Any] = [None] * len(fns)
    batch = Launched(out)
    for index, fn in enumerate(fns):
        timeout = None if timeouts is None else timeouts[index]
        limit, timeout_s = _limit(loop, timeout, deadline)
        name = names[index] if names else ""
        work = _timed(fn, args[index], limit, timeout_s, name)
        batch.tasks[_task_in(loop, work, _copy_context())] = index
    return out, batch


class _Idle:
    """A task with no work yet, and the relay it runs (`_Rest`)."""

    __slots__ = ("loop", "rest", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rest = _Rest()
        # its own empty context: an idle task holds none of its creator's context values;
        # the call it is given runs in the call's context (see `_Rest`)
        self.task = _task_in(loop, self.rest, contextvars.Context())
        # not in `asyncio.all_tasks()` until it has work, so `asyncio.run` does not cancel it
        # at shutdown: a loop closed within its turn or two of life drops it pending, quietly
        _unregister_task(self.task)
        self.task._log_destroy_pending = False  # type: ignore[attr-defined]


class _IdleTasks(threading.local):
    def __init__(self) -> None:
        self.tasks: list[_Idle] = []


_IDLE = _IdleTasks()
"""Idle tasks per thread: taken for a group's first steps, given back while unused."""


def _take_idle(loop: asyncio.AbstractEventLoop) -> _Idle:
    tasks = _IDLE.tasks
    while tasks:
        idle = tasks.pop()
        task = idle.task
        if idle.loop is loop and not task.done() and not task._must_cancel:  # type: ignore[attr-defined]
            return idle
        if idle.loop is not loop:  # another loop ran on this thread before: forget its tasks
            tasks.clear()
    return _Idle(loop)


class _Rest(Coroutine[Any, Any, Any]):
    """What an idle task runs: the rest of a call whose first step already ran.

    An idle task never waits on a future: until `hand_over`, its first step yields to the
    event loop once (a bare yield) and its second ends it, so an unused idle task lives for
    one or two turns of the loop and is then done (a task factory that tracks its tasks sees
    it end). After `hand_over`, the task's next step receives what the call waits for
    (`first`) and every later step is relayed to the call, in the call's context, as if the
    task had run the call from the start; a cancellation that reaches the task before that
    step is delivered to the call at its `await`.
    """

    __slots__ = ("_context", "_coro", "_first", "_yielded")

    def __init__(self) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._first: Any = _NOTHING
        self._context: contextvars.Context | None = None
        self._yielded = False

    def hand_over(self, coro: Coroutine[Any, Any, Any], first: Any, context: Any) -> None:
        self._coro = coro
        self._first = first
        self._context = context

    def send(self, value: Any) -> Any:
        coro = self._coro
        if coro is None:  # no work: give the loop one turn, then end
            if self._yielded:
                raise StopIteration
            self._yielded = True
            return None
        first = self._first
        if first is not _NOTHING:
            self._first = _NOTHING
            return first
        return self._context.run(coro.send, value)  # type: ignore[union-attr]

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = typ if isinstance(typ, BaseException) else (typ() if val is None else val)
        coro = self._coro
        if coro is None:  # cancelled while idle
            raise exc
        self._first = _NOTHING
        return self._context.run(coro.throw, exc)  # type: ignore[union-attr]

    def close(self) -> None:
        coro, self._coro = self._coro, None
        if coro is not None:
            coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]

    def __next__(self) -> Any:
        return self.send(None)


_NOTHING: Any = object()


def add_note(exc: BaseException, text: str) -> None:
    """Add `text` to the notes a traceback shows under `exc` (Python 3.11+)."""
    method = getattr(exc, "add_note", None)
    if method is not None:
        method(text)


def _limit(
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


def _stops_siblings(
    error: BaseException, fail_fast: bool, spare: Callable[[BaseException], bool] | None
) -> bool:
    return (
        fail_fast and not _lets_siblings_finish(error) and not (spare is not None and spare(error))
    )


class Launched:
    """The tasks of calls that suspended, and the outcomes of every call.

    Outcomes are recorded by the tasks' done callbacks, and the caller waits on one future
    that the last of them completes: no `asyncio.wait` round per finished call.
    """

    __slots__ = ("fail_fast", "failed", "left", "out", "spare", "tasks", "waiter")

    def __init__(self, out: list[Any]) -> None:
        self.out = out
        self.tasks: dict[asyncio.Future[Any], int] = {}
        self.failed = False
        self.fail_fast = False
        self.spare: Callable[[BaseException], bool] | None = None
        self.left = 0
        self.waiter: asyncio.Future[None] | None = None

    def _done(self, task: asyncio.Future[Any]) -> None:
        index = self.tasks[task]
        ended = time.perf_counter()
        if task.cancelled():
            self.out[index] = (False, asyncio.CancelledError(), ended)
        else:
            error = task.exception()
            if error is None:
                self.out[index] = (True, task.result(), ended)
            else:
                self.out[index] = (False, error, ended)
                if not self.failed and _stops_siblings(error, self.fail_fast, self.spare):
                    self.cancel_all()
        self.left -= 1
        waiter = self.waiter
        if not self.left and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def cancel_all(self) -> None:
        """A call failed: cancel the others (a no-op for those already done)."""
        self.failed = True
        for task in self.tasks:
            task.cancel()

    async def collect(
        self, fail_fast: bool, spare: Callable[[BaseException], bool] | None = None
    ) -> list[tuple[bool, Any, float]]:
        """Wait for every task; return every outcome in call order. With `fail_fast`, the
        first failure cancels the calls still running."""
        self.fail_fast = fail_fast
        self.spare = spare
        self.left = len(self.tasks)
        for task in self.tasks:
            task.add_done_callback(self._done)
        if not self.left:
            return self.out
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            # the caller was cancelled: so is the work it started, which gets to finish its
            # cleanup (`finally`, `async with`) before the cancellation goes on; tasks that a
            # failed sibling already cancelled are not cancelled again in their cleanup
            if not self.failed:
                self.cancel_all()
            pending = [task for task in self.tasks if not task.done()]
            while pending:  # as a TaskGroup does, however often the caller is cancelled again
                # (anyio's cancel scopes deliver their cancellation again and again)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait(pending)
                pending = [task for task in pending if not task.done()]
            raise
        return self.out


def _lets_siblings_finish(error: BaseException) -> bool:
    """Failures that do not cancel the other members of a group: a skip (of the rest of the
    flow too: `keeps_siblings` on the flow runner's stop signal)."""
    return isinstance(error, Skip) or getattr(error, "keeps_siblings", False)


def _task_in(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], context: contextvars.Context
) -> asyncio.Task[Any]:
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # 3.10: the task copies the current context


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
