"""Executing a `FlowPlan` over a score: steps, parallel groups, branches and child flows.

A run's state is the score object it was given and local variables, so one plan serves many
concurrent runs, each with its own score. Steps go through `call_step`, the same call cascade
stages use. A step that returns a new score object (an `ImmutableScore.with_field` result, for
example) replaces the run's score.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cascadence.errors import (
    CadenceError,
    CircuitOpenError,
    MergeConflict,
    NoteError,
    ParallelNoteError,
    RetryExhaustedError,
    Skip,
)
from cascadence.runtime.gather import start_calls
from cascadence.runtime.invoke import add_note, call_step
from cascadence.runtime.observe import Observers
from cascadence.runtime.plan import (
    BranchNode,
    ChildNode,
    FlowNode,
    FlowPlan,
    ParallelNode,
    StepNode,
)

__all__ = ["NodeDone", "assign_field", "run_flow"]

_perf = time.perf_counter
_copy_context = contextvars.copy_context
NodeDone = Callable[[int, str, Any], Awaitable[None]]
"""Called after each top-level node with (index, node name, score): the checkpoint hook."""


class _StopFlow(Exception):
    """`Skip(rest=True)`: end the run successfully; `score` is the run's score by then, when
    the step that stopped it made a new one (a parallel group's merge)."""

    keeps_siblings = True  # like a skip, it does not cancel the other tasks of a group

    def __init__(self, score: Any = None) -> None:
        super().__init__()
        self.score = score


class _Attempt:
    """A successful attempt of a note that runs on a view of the score (`StepNode.isolate`)."""

    __slots__ = ("value", "view")

    def __init__(self, view: Any, value: Any) -> None:
        self.view = view
        self.value = value

    def commit(self, node: StepNode, score: Any) -> tuple[Any, Any]:
        """The score with the attempt's writes, and what the note returned (None when it
        returned its view: that is the score)."""
        assert node.commit is not None
        score = node.commit(score, self.view)
        return score, None if self.value is self.view else self.value


def _in_view(fn: Callable[[Any], Any], isolate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`fn` run on a fresh view of the score per attempt."""

    async def attempt(score: Any) -> _Attempt:
        view = isolate(score)
        return _Attempt(view, await fn(view))

    return attempt


def assign_field(target: Any, field: str, value: Any) -> Any:
    """Write a fallback value into a score's field: in place, or, for a frozen score, into a
    copy that is returned (the step's result then replaces the score)."""
    params = getattr(type(target), "__dataclass_params__", None)
    if params is not None and params.frozen:
        return dataclasses.replace(target, **{field: value})
    setattr(target, field, value)
    return None


def _adopt(score: Any, returned: Any) -> Any:
    """Keep the score a step returned when it is a score of the same kind (a snapshot stands
    for its score's class)."""
    if returned is not None and returned is not score and isinstance(returned, score.__class__):
        return returned
    return score


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _merge(node: ParallelNode, score: Any, snaps: list[Any]) -> Any:
    """The group's merge; an error of a custom merge function is the group's `NoteError`
    (a `MergeConflict` stays what it is)."""
    try:
        return _adopt(score, node.merge(score, snaps))
    except MergeConflict as conflict:
        if conflict.group_name is not None:
            raise
        raise MergeConflict(conflict.field, conflict.values, node.name) from None
    except CadenceError:
        raise
    except Exception as exc:
        raise NoteError(node.name, exc) from exc


def _task_error(node: ParallelNode, index: int, exc: BaseException) -> ParallelNoteError:
    # what the note raised: a plain `NoteError` is the runner's wrapper, and a retried note's
    # error is its last attempt's (as `original_error` of the error outside a group); a step
    # timeout stays itself
    original = (
        exc.original_error if type(exc) is NoteError or type(exc) is RetryExhaustedError else exc
    )
    return ParallelNoteError(node.tasks[index].name, index, node.name, original)


def _merge_outcomes(
    node: ParallelNode, score: Any, snaps: list[Any], outcomes: list[tuple[bool, Any, float]]
) -> Any:
    """Merge the snapshots of a finished group, or raise the error of its first failed task.

    A task that raised `Skip` contributes its snapshot as it was left. Tasks cancelled because
    a sibling failed are not reported as the cause.
    """
    for ok, value, _ended in outcomes:
        if not ok or value is not None:
            break
    else:  # the common case: every task finished and returned nothing
        return _merge(node, score, snaps)
    results: list[Any] = []
    first_error: tuple[int, BaseException] | None = None
    cancelled: tuple[int, BaseException] | None = None
    stop = False
    for index, (ok, value, _ended) in enumerate(outcomes):
        if ok:
            results.append(_adopt(snaps[index], value))
            continue
        results.append(snaps[index])
        if isinstance(value, (Skip, _StopFlow)):
            stop = stop or isinstance(value, _StopFlow) or value.rest
            continue
        if isinstance(value, asyncio.CancelledError):
            cancelled = cancelled or (index, value)
        elif first_error is None:
            first_error = (index, value)
    failure = first_error or cancelled
    if failure is not None:
        index, exc = failure
        raise _task_error(node, index, exc) from exc
    merged = _merge(node, score, results)
    if stop:  # a task skipped the rest of the flow: after the group, nothing else runs
        raise _StopFlow(merged)
    return merged


def _shared_refusal(node: ParallelNode) -> Callable[[BaseException], bool] | None:
    """For a group whose members share a circuit breaker: a refusal by that breaker does not
    cancel the siblings. In half-open one member holds the probe and the others are refused;
    cancelling the probe would give its slot back undecided, and the circuit would stay
    half-open for good. Any other failure still cancels the group at once."""
    shared = node.shared_breakers
    if not shared:
        return None

    def spare(error: BaseException) -> bool:
        return isinstance(error, CircuitOpenError) and error.breaker_name in shared

    return spare


class _FlowRun:
    __slots__ = ("obs", "plan", "root", "run_id", "stopped")

    def __init__(self, plan: FlowPlan, obs: Observers | None, run_id: str | None) -> None:
        self.plan = plan
        self.root = plan.name
        self.obs = obs
        self.run_id = run_id
        self.stopped: BaseException | None = None
        """The error an `on_error(stop=True)` handler handled, ending the run early."""

    async def step(self, node: StepNode, score: Any) -> Any:
        obs = self.obs
        if obs is None:
            try:
                if node.bare:
                    returned = await node.fn(score)
                else:
                    fn = node.fn if node.isolate is None else _in_view(node.fn, node.isolate)
                    returned = await call_step(
                        node.name, fn, score, node.policy, assign=assign_field
                    )
                    if type(returned) is _Attempt:
                        score, returned = returned.commit(node, score)
            except Skip as skip:
                if skip.rest:
                    raise _StopFlow from None
                return score
            except NoteError:
                raise
            except Exception as exc:
                raise NoteError(node.name, exc) from exc
            if returned is None or returned is score:
                return score
            return _adopt(score, returned)
        await obs.step_started(self.root, self.run_id, node.name, score)
        started = _perf()
        try:
            returned = await call_step(
                node.name,
                node.fn if node.isolate is None else _in_view(node.fn, node.isolate),
                score,
                node.policy,
                assign=assign_field,
                on_retry=obs.retry_listener(self.root, self.run_id, node.name, score),
            )
            if type(returned) is _Attempt:
                score, returned = returned.commit(node, score)
        except Skip as skip:
            await obs.step_finished(
                self.root, self.run_id, node.name, score, _perf() - started, None
            )
            if skip.rest:
                raise _StopFlow from None
            return score
        except Exception as exc:
            error = exc if isinstance(exc, NoteError) else NoteError(node.name, exc)
            await obs.step_finished(
                self.root, self.run_id, node.name, score, _perf() - started, error
            )
            if error is exc:
                raise
            raise error from exc
        except asyncio.CancelledError as cancelled:
            # stopped from outside (a sibling failed, the run was cancelled): hooks that saw
            # the step start see it end, as a failure with the cancellation
            await obs.step_finished(
                self.root, self.run_id, node.name, score, _perf() - started, cancelled
            )
            raise
        score = _adopt(score, returned)
        await obs.step_finished(self.root, self.run_id, node.name, score, _perf() - started, None)
        return score

    async def parallel(self, node: ParallelNode, score: Any) -> Any:
        # Every task runs on its own snapshot and in its own copy of the context; one that
        # suspends is never moved to another task (see `gather.gather_calls`).
        snaps = node.snapshots(score, len(node.tasks))
        spare = _shared_refusal(node)
        if self.obs is None and node.plain:
            outcomes, suspended = start_calls(
                node.fns, snaps, node.timeouts, node.names, None, True, spare
            )
        else:
            fns = [self._task_call(task) for task in node.tasks]
            outcomes, suspended = start_calls(fns, snaps, None, node.names, None, True, spare)
        if suspended is not None:  # wait only for tasks that suspended
            outcomes = await suspended.collect(True, spare)
        return _merge_outcomes(node, score, snaps, outcomes)

    def _task_call(self, task: StepNode) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        async def run(snap: Any) -> Any:
            return await self.step(task, snap)

        return run

    async def nodes(self, nodes: tuple[FlowNode, ...], score: Any) -> Any:
        for node in nodes:
            score = await self.node(node, score)
        return score

    async def node(self, node: FlowNode, score: Any) -> Any:
        kind = type(node)
        if kind is StepNode:
            return await self.step(node, score)  # type: ignore[arg-type]
        if kind is ParallelNode:
            return await self.parallel(node, score)  # type: ignore[arg-type]
        if kind is BranchNode:
            assert isinstance(node, BranchNode)
            try:
                chosen = await _maybe_await(node.condition(score))
            except Exception as exc:
                raise NoteError(node.name, exc) from exc
            return await self.nodes(node.if_true if chosen else node.if_false, score)
        assert isinstance(node, ChildNode)
        child_score = node.factory(score)
        obs = self.obs
        if node.observers is not None:  # the child flow's own hooks see its steps too
            obs = node.observers if obs is None else obs.joined(node.observers)
        child = _FlowRun(node.plan, obs, self.run_id)
        try:
            child_score = await child.run(child_score)
        except CadenceError as exc:  # say where the child ran: its steps' names are its own
            add_note(exc, f"in child flow {node.plan.name!r}, step {node.name!r} of {self.root!r}")
            raise
        if node.merge is None:
            return score
        try:
            merged = await _maybe_await(node.merge(score, child_score))
        except Exception as exc:
            raise NoteError(node.name, exc) from exc
        if merged is None or merged is score:
            return score
        if isinstance(merged, score.__class__):
            return merged
        wrong = TypeError(
            f"child {node.name!r}: its merge function returned a {type(merged).__name__}; it "
            f"must return None (having updated the parent score) or a new "
            f"{score.__class__.__name__} score"
        )
        raise NoteError(node.name, wrong)

    async def run(self, score: Any, start_at: int = 0, on_node: NodeDone | None = None) -> Any:
        plan = self.plan
        obs = self.obs
        if obs is not None:
            await obs.run_started(plan.name, self.run_id, score)
        started = _perf()
        try:
            for index, node in enumerate(plan.nodes):
                if index < start_at:
                    continue
                try:
                    if type(node) is StepNode:
                        if obs is None and node.bare:
                            # `step`'s bare path, inlined: one coroutine less per note
                            try:
                                returned = await node.fn(score)
                            except Skip as skip:
                                if skip.rest:
                                    raise _StopFlow from None
                                returned = None
                            except NoteError:
                                raise
                            except Exception as exc:
                                raise NoteError(node.name, exc) from exc
                            if returned is not None and returned is not score:
                                score = _adopt(score, returned)
                        else:
                            score = await self.step(node, score)
                    elif type(node) is ParallelNode:
                        score = await self.parallel(node, score)
                    else:
                        score = await self.node(node, score)
                except _StopFlow as stopped:
                    if stopped.score is not None:
                        score = stopped.score
                    break
                except Exception as exc:
                    if plan.on_error is None:
                        raise
                    score = _adopt(score, await _maybe_await(plan.on_error(score, exc)))
                    if plan.stop_on_error:  # handled: the flow stops there and returns the score
                        self.stopped = exc
                        break
                if on_node is not None:
                    await on_node(index, node.name, score)
        except BaseException as exc:
            if obs is not None:
                await obs.run_finished(plan.name, self.run_id, score, _perf() - started, exc)
            raise
        if obs is not None:
            await obs.run_finished(plan.name, self.run_id, score, _perf() - started, None)
        return score


async def run_flow(
    plan: FlowPlan,
    score: Any,
    *,
    observers: Observers | None = None,
    run_id: str | None = None,
    start_at: int = 0,
    on_node: NodeDone | None = None,
) -> tuple[Any, BaseException | None]:
    """Run `plan` on `score`.

    Args:
        plan: The compiled flow.
        score: This run's score (not shared with other runs).
        observers: Hooks, listeners and reporters.
        run_id: Identifies the run in events and checkpoints.
        start_at: Index of the first top-level node to run (resuming a checkpointed run).
        on_node: Called after each top-level node finished.

    Returns:
        The final score, and the error an `on_error(stop=True)` handler handled when the run
        stopped early for it (the failed step is not reported to `on_node`), else None.

    Raises:
        NoteError: A step failed (its subclasses say how: timeout, retries, open circuit).
        ParallelNoteError: A task of a parallel group failed.
    """
    flow_run = _FlowRun(plan, observers, run_id)
    final = await flow_run.run(score, start_at, on_node)
    return final, flow_run.stopped
