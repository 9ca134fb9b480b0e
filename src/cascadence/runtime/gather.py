"""Running calls as a concurrent group: a parallel group of stages, a `.sync` group of notes.

`gather_calls` behaves as `asyncio.gather` with a task and a copy of the context per call, but a
call that finishes without suspending never needs its task: each call's first step runs at once,
in the name of a reused idle task (`_Idle`, `_Rest`), and only calls that suspend carry on in it
(`Launched` waits for those). Most decision handlers never suspend, so a group of them costs no
task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

from cascadence.errors import Skip
from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.runtime.invoke import AsyncHandler, resume_until, time_limit

try:  # switching the current task for a call's first step, as eager tasks do (3.12+)
    from asyncio.tasks import _enter_task, _leave_task, _register_task, _unregister_task

    _EAGER = True
except ImportError:  # pragma: no cover - an interpreter without them: plain tasks
    _EAGER = False

__all__ = ["Call", "Launched", "gather_calls", "start_calls"]


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
        now = asyncio.get_running_loop().time()
        if now > limit:  # it never awaited: no timer could stop it
            raise StepTimeoutError(name, timeout, now - limit + timeout) from None
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
                    limit, timeout_s = time_limit(
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
        limit, timeout_s = time_limit(loop, timeout, deadline)
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
