"""Running a plain function in a worker thread so that cancelling the caller stops it.

`asyncio.to_thread` returns control on cancellation but leaves the thread running the function
to its end, so a timed-out step still performs its side effects (and every retry of it does).
`run_in_thread` runs the function the same way (in a worker thread, with a copy of the current
context) and, when the coroutine awaiting it is cancelled or closed, stops the function:

- not started yet: it never runs;
- running: a private `BaseException` subclass is raised inside its thread (CPython's
  `PyThreadState_SetAsyncExc`), which `except Exception:` blocks in the function do not catch.

The limit: the exception is raised at the thread's next bytecode boundary where CPython checks
for pending events (calls, loop iterations). A blocking or long C call in progress (`time.sleep`,
a socket read, a lock wait, a C extension's computation) runs to its end first; nothing after it
in Python runs. Code that catches `BaseException` (or uses a bare `except:`) can swallow the
cancellation, and, as with any asynchronous exception, it can land between any two bytecodes of
the function (`with` and `finally` blocks still run).

The exception never reaches unrelated work running later on the same pool thread: it is only
injected while the call is marked running (under a per-call lock), and the call, on leaving,
marks itself finished under that lock and clears a still-pending injection before returning.

The worker threads are cascadence's own pool, not the event loop's default executor, whose
few threads (CPUs + 4) would make plain steps of a parallel group run in batches and let a step's
timeout run out while it waits for a thread. The pool starts threads as calls need them, up to
`max_threads()` (default 128, or the `CASCADENCE_MAX_THREADS` environment variable; change it
with `set_max_threads`); a call beyond that waits for a free thread.

A function that raises `StopIteration` fails with `RuntimeError`, as a coroutine does (an
executor cannot carry `StopIteration` into a future; the await would never end).

Where `ctypes.pythonapi` is unavailable (not CPython), a running function is left to finish, as
with `asyncio.to_thread`.

`run_blocking` is `asyncio.run` for the synchronous entry points (`run_sync`, `execute_sync`, a
decorated plain function called directly): a call that a timeout abandoned inside a blocking C
call does not hold up the return, as `asyncio.run` would by joining the loop's worker threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["max_threads", "run_blocking", "run_in_thread", "set_max_threads"]

A = TypeVar("A")
T = TypeVar("T")


class _ThreadCancelled(BaseException):
    """Raised inside a worker thread whose awaiting coroutine was cancelled."""


@functools.cache
def _async_exc_setter() -> Callable[[int, type[BaseException] | None], int] | None:
    """`PyThreadState_SetAsyncExc` as a function, or None; loaded (with ctypes) on first use."""
    try:
        import ctypes

        api: Any = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError, OSError):  # not CPython, or no ctypes
        return None

    def set_async_exc(ident: int, exc: type[BaseException] | None) -> int:
        # The argument types are given per call rather than through `api.argtypes`, which
        # would change the shared `ctypes.pythonapi` function for every other user of it.
        target = ctypes.c_ulong(ident)
        if exc is None:
            return int(api(target, None))  # None is NULL: clears a pending exception
        changed = int(api(target, ctypes.py_object(exc)))
        if changed > 1:  # cannot happen for a live ident; the documented way to undo it
            api(target, None)
            return 0
        return changed

    return set_async_exc


_PENDING = 0
_RUNNING = 1
_DONE = 2


class _ThreadCall(Generic[A, T]):
    """One call's state, shared by its worker thread and the coroutine awaiting it."""

    __slots__ = ("_arg", "_context", "_fn", "_ident", "_injected", "_lock", "_state")

    def __init__(self, fn: Callable[[A], T], arg: A) -> None:
        self._fn = fn
        self._arg = arg
        self._context = contextvars.copy_context()  # as asyncio.to_thread does
        self._lock = threading.Lock()
        self._state = _PENDING
        self._ident = 0
        self._injected = False

    def run(self) -> T:
        """Call the function (in the worker thread), unless the call was already stopped."""
        with self._lock:
            if self._state != _PENDING:
                raise _ThreadCancelled  # stopped before it started: the function never runs
            self._ident = threading.get_ident()
            self._state = _RUNNING
        try:
            return self._context.run(self._fn, self._arg)
        except StopIteration as stop:  # a future cannot hold it (the await would hang)
            name = getattr(self._fn, "__qualname__", None) or repr(self._fn)
            raise RuntimeError(f"{name} raised StopIteration") from stop
        finally:
            with self._lock:
                self._state = _DONE
                injected = self._injected
            setter = _async_exc_setter() if injected else None
            if setter is not None:
                # Not raised yet (e.g. the function had just returned): it must not surface
                # in the executor's worker loop or in the next call on this thread.
                setter(self._ident, None)

    def stop(self) -> None:
        """Keep a pending call from starting; interrupt a running one (at most once)."""
        with self._lock:
            if self._state == _PENDING:
                self._state = _DONE
            elif self._state == _RUNNING and not self._injected:
                setter = _async_exc_setter()
                if setter is not None:
                    self._injected = True
                    setter(self._ident, _ThreadCancelled)


def _default_max_threads() -> int:
    raw = os.environ.get("CASCADENCE_MAX_THREADS", "")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    return value if value > 0 else 128


class _Pool:
    """The process's worker pool, made on first use (again in a forked child)."""

    lock = threading.Lock()
    limit = _default_max_threads()
    executor: ThreadPoolExecutor | None = None
    pid = 0


def _executor() -> ThreadPoolExecutor:
    executor = _Pool.executor
    if executor is not None and _Pool.pid == os.getpid():
        return executor
    with _Pool.lock:
        if _Pool.executor is None or _Pool.pid != os.getpid():
            _Pool.executor = ThreadPoolExecutor(_Pool.limit, thread_name_prefix="cascadence-step")
            _Pool.pid = os.getpid()
        return _Pool.executor


def max_threads() -> int:
    """How many plain-function steps may run at once in the process (see the module doc)."""
    return _Pool.limit


def set_max_threads(limit: int) -> None:
    """Let up to `limit` plain-function steps run at once; calls already running finish in
    the threads they have.

    Raises:
        ValueError: `limit` is not a positive whole number.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"set_max_threads needs a whole number >= 1, got {limit!r}")
    with _Pool.lock:
        old, _Pool.executor, _Pool.limit = _Pool.executor, None, limit
    if old is not None:
        old.shutdown(wait=False)


async def run_in_thread(
    fn: Callable[[A], T], arg: A, *, executor: ThreadPoolExecutor | None = None
) -> T:
    """Await `fn(arg)` run in a worker thread; cancelling the await stops it.

    Like `asyncio.to_thread(fn, arg)`, including contextvars propagation, except that when
    the awaiting coroutine is cancelled (or closed) the function is stopped: see the module
    docstring for what that guarantees.

    Args:
        fn: The function.
        arg: Its one argument.
        executor: Where to run it; cascadence's worker pool by default.
    """
    loop = asyncio.get_running_loop()
    call = _ThreadCall(fn, arg)
    future = loop.run_in_executor(executor or _executor(), call.run)
    try:
        return await future
    finally:
        if not future.done():
            future.cancel()  # a queued call leaves the executor's queue
        call.stop()  # a no-op once the call has finished


class _DetachedPool(ThreadPoolExecutor):
    """A loop's default executor whose shutdown does not wait for calls still running.

    Such a call was abandoned by a timeout (its result is discarded, and it was told to stop:
    see `run_in_thread`); it ends in the background, and the interpreter still waits for it
    at exit, as for any worker thread.
    """

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=cancel_futures)


def in_event_loop() -> bool:
    """Whether this thread is running an event loop (without leaving a `RuntimeError` as the
    context of an exception raised afterwards, as a try/except around
    `asyncio.get_running_loop()` does)."""
    return asyncio._get_running_loop() is not None


def run_blocking(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a new event loop, as `asyncio.run` does, and return its result, without
    waiting at the end for worker threads still blocked in calls that timed out."""
    pool = _DetachedPool(thread_name_prefix="cascadence")
    if sys.version_info >= (3, 11):
        with asyncio.Runner() as runner:
            runner.get_loop().set_default_executor(pool)
            return runner.run(main)
    loop = asyncio.new_event_loop()  # pragma: no cover - 3.10: asyncio.run's steps
    loop.set_default_executor(pool)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
