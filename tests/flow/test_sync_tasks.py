"""`.sync` groups: a task each, started eagerly; isolation, order, errors, cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from cascadence import Cadence, ImmutableScore, ParallelNoteError, Score, Skip, note

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


@dataclass
class Doc(Score):
    a: int = 0
    b: int = 0
    c: int = 0
    seen: list[Any] = field(default_factory=list)


async def test_a_suspending_task_in_the_middle_overlaps_the_tasks_after_it() -> None:
    """Task 0 finishes at once; task 1 suspends; task 2 starts while task 1 is still waiting."""
    loop = asyncio.get_running_loop()
    spans: dict[str, tuple[float, float]] = {}
    gate = asyncio.Event()

    async def first(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        start = loop.time()
        await gate.wait()
        spans["slow"] = (start, loop.time())
        score.b = 2

    async def last(score: Doc) -> None:
        start = loop.time()
        gate.set()  # only reachable while `slow` is suspended: the tasks overlap
        await asyncio.sleep(0)
        spans["last"] = (start, loop.time())
        score.c = 3

    result = await Cadence("g", Doc()).sync("abc", [first, slow, last]).run(Doc())
    assert (result.a, result.b, result.c) == (1, 2, 3)
    assert spans["last"][0] < spans["slow"][1]


async def test_tasks_do_not_see_each_others_writes() -> None:
    async def writer(score: Doc) -> None:
        score.a = 10
        score.seen.append("w")

    async def reader(score: Doc) -> None:
        score.b = score.a  # must read the base value, not the sibling's write
        score.seen.append("r")

    result = await Cadence("g", Doc()).sync("wr", [writer, reader]).run(Doc())
    assert (result.a, result.b) == (10, 0)
    assert result.seen == ["w", "r"]


async def test_a_failing_task_stops_the_group_before_any_merge() -> None:
    ran: list[str] = []

    async def ok(score: Doc) -> None:
        ran.append("ok")
        score.a = 1

    async def boom(score: Doc) -> None:
        raise ValueError("bad input")

    async def after(score: Doc) -> None:
        ran.append("after")

    base = Doc()
    with pytest.raises(ParallelNoteError) as info:
        await Cadence("g", base).sync("grp", [ok, boom, after]).run(base)
    err = info.value
    assert (err.note_name, err.task_index, err.group_name) == ("boom", 1, "grp")
    assert isinstance(err.original_error, ValueError)
    assert sorted(ran) == ["after", "ok"]  # every task had started, as under asyncio.gather
    assert base.a == 0  # nothing merged
    assert base.a == 0  # nothing merged


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_skip_in_one_task_does_not_stop_its_siblings(timeout: float | None) -> None:
    """Skip is not a failure: the other tasks run and merge (inline and under a timeout)."""

    async def skipper(score: Doc) -> None:
        score.a = 99  # a skipped task's writes are kept, as a skipped note's are
        raise Skip("nothing to do")

    async def writer(score: Doc) -> None:
        score.b = 2

    tasks = [note(timeout=timeout)(skipper), writer] if timeout else [skipper, writer]
    result = await Cadence("g", Doc()).sync("g", tasks).run(Doc())
    assert (result.a, result.b) == (99, 2)


async def test_each_task_runs_in_its_own_context_copy() -> None:
    observed: list[str] = []

    async def setter(score: Doc) -> None:
        VAR.set("task")

    async def reader(score: Doc) -> None:
        observed.append(VAR.get())

    await Cadence("g", Doc()).sync("g", [setter, reader]).run(Doc())
    assert observed == ["outer"]
    assert VAR.get() == "outer"


@dataclass(frozen=True)
class Frozen(ImmutableScore):
    x: int = 0
    y: int = 0


async def test_frozen_scores_merge_the_scores_their_tasks_return() -> None:
    async def set_x(score: Frozen) -> Frozen:
        return score.with_field("x", 1)

    async def set_y(score: Frozen) -> Frozen:
        await asyncio.sleep(0)
        return score.with_field("y", 2)

    result = await Cadence("g", Frozen()).sync("xy", [set_x, set_y]).run(Frozen())
    assert (result.x, result.y) == (1, 2)


async def test_a_suspended_sibling_is_cancelled_into_its_cleanup() -> None:
    """When a later task fails before suspending, a sibling that suspended gets CancelledError
    at its await and runs its async cleanup before the group's error is raised."""
    log: list[str] = []

    class Tx:
        async def __aenter__(self) -> Tx:
            log.append("begin")
            return self

        async def __aexit__(self, kind: Any, *_: Any) -> None:
            log.append(f"rollback({kind.__name__ if kind else None})")
            await asyncio.sleep(0)  # async cleanup, as real drivers do
            log.append("released")

    async def write(score: Doc) -> None:
        async with Tx():
            await asyncio.sleep(10)

    async def validate(score: Doc) -> None:
        raise ValueError("invalid")

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("f", Doc()).sync("g", [write, validate]).run()
    assert info.value.task_index == 1
    assert log == ["begin", "rollback(CancelledError)", "released"]


@pytest.mark.parametrize("hooked", [False, True])
async def test_skip_rest_in_a_group_ends_the_flow_after_the_group(hooked: bool) -> None:
    """`Skip(rest=True)` in a task: the group's other writes are merged, nothing after runs,
    with and without hooks."""
    from cascadence import CadenceHooks

    async def title(score: Doc) -> None:
        score.a = 1

    async def nothing_to_do(score: Doc) -> None:
        raise Skip("done", rest=True)

    async def after(score: Doc) -> None:
        score.a = 2

    flow = Cadence("f", Doc())
    if hooked:
        flow = flow.with_hooks(CadenceHooks())
    result = await flow.sync("g", [title, nothing_to_do]).then("after", after).run()
    assert result.a == 1


@dataclass
class RAG(Score):
    query: str = "q"
    context: list[Any] = field(default_factory=list)
    web: list[Any] = field(default_factory=list)


async def test_a_timed_out_note_in_a_group_falls_back_as_the_readme_shows() -> None:
    """The code document's RAG example: a hanging web search times out inside `.sync` and its
    fallback fills the field; the run goes on (before, the timeout cancelled the whole run)."""

    async def retrieve(score: RAG) -> None:
        score.context = ["doc"]

    @note(fallback={"default": [], "field": "web"}, timeout=0.05)
    async def web_search(score: RAG) -> None:
        await asyncio.sleep(5)
        score.web = ["late"]

    attempts: list[int] = []

    @note(retry={"max_attempts": 3, "delay": 0}, timeout=0.02)
    async def flaky(score: RAG) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)  # the first attempt hangs and times out
        score.web = ["second try"]

    result = await Cadence("rag", RAG()).sync("retrieve", [retrieve, web_search]).run(RAG())
    assert (result.context, result.web) == (["doc"], [])
    result = await Cadence("rag", RAG()).sync("r", [retrieve, flaky]).run(RAG())
    assert (result.web, len(attempts)) == (["second try"], 2)


NEEDS_311 = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio.timeout and TaskGroup are Python 3.11+"
)


@NEEDS_311
@pytest.mark.parametrize("hooked", [False, True])
async def test_code_in_a_task_sees_its_own_task(hooked: bool) -> None:
    """`asyncio.timeout`, `TaskGroup` and anyio cancel scopes entered before a task's first
    `await` belong to that task: they time out and clean up inside it."""
    import anyio

    from cascadence import CadenceHooks

    async def own_timeout(score: Doc) -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(5)
        except TimeoutError:
            score.a = 1

    async def task_group(score: Doc) -> None:
        async def bad() -> None:
            raise KeyError("x")

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(bad())
                await asyncio.sleep(5)
        except Exception as group_error:  # an ExceptionGroup holding the KeyError
            if isinstance(group_error.exceptions[0], KeyError):  # type: ignore[attr-defined]
                score.b = 2

    async def cancel_scope(score: Doc) -> None:
        with anyio.move_on_after(0.01):
            await anyio.sleep(5)
        score.c = 3

    def main_task(score: Doc) -> None:
        score.seen.append(asyncio.current_task() is not outer)

    async def note_task(score: Doc) -> None:
        main_task(score)

    outer = asyncio.current_task()
    flow = Cadence("t", Doc()).sync("g", [own_timeout, task_group, cancel_scope, note_task])
    if hooked:
        flow = flow.with_hooks(CadenceHooks())
    result = await flow.run(Doc())
    assert (result.a, result.b, result.c, result.seen) == (1, 2, 3, [True])


@NEEDS_311
async def test_parallel_cascade_stages_run_in_tasks_of_their_own() -> None:
    """The same for parallel cascade stages: a stage's own `asyncio.timeout` is its own."""
    from cascadence import CascadeEngine

    engine = CascadeEngine(
        {
            "name": "p",
            "stages": {
                name: {"parallel_group": "g", "can_run_parallel": True} for name in ("A", "B")
            },
        }
    )

    async def guarded(_ctx: Any) -> dict[str, Any]:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(5)
        except TimeoutError:
            return {"result": "gave up"}
        return {"result": "slept"}

    async def quick(_ctx: Any) -> dict[str, Any]:
        return {"result": "quick"}

    engine.register_stages({"A": guarded, "B": quick})
    result = await engine.execute({})
    assert result["success"]
    assert result["stage_results"]["A"]["result"] == "gave up"
    assert result["stage_results"]["B"]["result"] == "quick"


async def test_a_breaker_shared_by_two_members_recovers() -> None:
    """In half-open, one member probes and the other is refused; the refusal does not cancel
    the probe, so the probe's success closes the circuit again."""
    from cascadence import CircuitOpenError
    from cascadence.policies import CircuitBreaker
    from cascadence.testing import FakeClock

    clock = FakeClock()
    breaker = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=5, clock=clock)
    up = [False]

    def member(name: str) -> Any:
        @note(circuit_breaker=breaker)
        async def call(score: Doc) -> None:
            await asyncio.sleep(0.005)
            if not up[0]:
                raise ConnectionError("down")

        call.__name__ = name
        return call

    flow = Cadence("f", Doc()).sync("fetch", [member("a"), member("b")])
    with pytest.raises(ParallelNoteError):
        await flow.run(Doc())
    assert breaker.state.value == "open"
    up[0] = True
    clock.advance(6)
    with pytest.raises(ParallelNoteError) as info:
        await flow.run(Doc())  # one probe runs, its sibling is refused
    assert isinstance(info.value.original_error, CircuitOpenError)
    assert breaker.state.value == "closed"
    await flow.run(Doc())


@pytest.mark.parametrize("hooked", [False, True])
async def test_skip_rest_does_not_cancel_siblings_with_policies(hooked: bool) -> None:
    """`Skip(rest=True)` in one member ends the flow after the group, whatever its siblings'
    policies or hooks; the siblings finish and their writes are merged."""
    from cascadence import CadenceHooks

    async def stop_here(score: Doc) -> None:
        raise Skip("enough", rest=True)

    @note(retry=2)
    async def slower(score: Doc) -> None:
        await asyncio.sleep(0.02)
        score.b = 2

    async def after(score: Doc) -> None:
        score.c = 3

    flow = Cadence("f", Doc()).sync("g", [stop_here, slower]).then("after", after)
    if hooked:
        flow = flow.with_hooks(CadenceHooks())
    result = await flow.run(Doc())
    assert (result.b, result.c) == (2, 0)


async def test_an_open_circuit_still_fails_a_group_fast() -> None:
    """A member refused by its own open breaker cancels the group at once (only a breaker
    shared by members lets the others finish, for the half-open probe)."""
    from cascadence import CircuitOpenError
    from cascadence.policies import CircuitBreaker

    breaker = CircuitBreaker("alone", failure_threshold=1, recovery_timeout=60)

    @note(circuit_breaker=breaker)
    async def guarded(score: Doc) -> None:
        raise ConnectionError("down")

    async def forever(score: Doc) -> None:
        await asyncio.Event().wait()

    flow = Cadence("f", Doc()).sync("g", [guarded, forever])
    with pytest.raises(ParallelNoteError):
        await asyncio.wait_for(flow.run(Doc()), 2)
    with pytest.raises(ParallelNoteError) as info:
        await asyncio.wait_for(flow.run(Doc()), 2)  # refused: still fails at once
    assert isinstance(info.value.original_error, CircuitOpenError)


async def test_a_cancelled_member_ends_with_an_event() -> None:
    """Every NOTE_STARTED has its end: a member cancelled by a failing sibling gets a
    NOTE_FAILED carrying the CancelledError (reporters count it as cancelled)."""
    from cascadence.events import EventEmitter

    seen: list[tuple[str, str, str]] = []
    emitter = EventEmitter()
    emitter.on(
        "*",
        lambda event: seen.append((event.type, event.note_name or "", type(event.error).__name__)),
    )

    async def slow(score: Doc) -> None:
        await asyncio.sleep(5)

    async def boom(score: Doc) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    with pytest.raises(ParallelNoteError):
        await Cadence("f", Doc()).with_hooks(emitter).sync("g", [slow, boom]).run(Doc())
    ends = {(kind, name, error) for kind, name, error in seen if kind.startswith("note.")}
    assert ("note.failed", "slow", "CancelledError") in ends
    assert ("note.failed", "boom", "NoteError") in ends
    starts = [name for kind, name, _ in seen if kind == "note.started"]
    assert sorted(starts) == ["boom", "slow"]


async def test_a_group_of_members_that_never_suspend_does_not_wait_for_the_loop() -> None:
    """Each member's first step runs at once, in its own task's name: a group whose members
    all finish there is done without giving the event loop a turn."""
    loop = asyncio.get_running_loop()
    turns: list[int] = []
    tasks: list[Any] = []

    async def a(score: Doc) -> None:
        tasks.append(asyncio.current_task())
        score.a = 1

    async def b(score: Doc) -> None:
        tasks.append(asyncio.current_task())
        score.b = 2

    flow = Cadence("g", Doc()).sync("ab", [a, note(timeout=1.0)(b)])
    loop.call_soon(turns.append, 1)
    result = await flow.run(Doc())
    assert turns == []  # the loop had no turn during the run
    assert (result.a, result.b) == (1, 2)
    outer = asyncio.current_task()
    assert outer not in tasks and all(isinstance(t, asyncio.Task) for t in tasks)


async def test_the_run_goes_on_after_a_group_whose_member_was_cancelled() -> None:
    """The first member to suspend goes on where it started; when a sibling fails, it is
    cancelled, and that cancellation is over once the group ends: a note after the group
    (reached through `on_error(stop=False)`) sleeps undisturbed."""
    log: list[str] = []

    async def slow(score: Doc) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            log.append("slow cancelled")
            raise

    async def boom(score: Doc) -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def handle(score: Doc, error: Exception) -> None:
        log.append(type(error).__name__)

    async def after(score: Doc) -> None:
        await asyncio.sleep(0.01)
        task = asyncio.current_task()
        assert task is not None
        log.append(f"after, cancelling={task.cancelling()}")  # type: ignore[attr-defined,unused-ignore]

    flow = (
        Cadence("f", Doc())
        .sync("g", [slow, boom])
        .on_error(handle, stop=False)
        .then("after", after)
    )
    await flow.run(Doc())
    assert log == ["slow cancelled", "ParallelNoteError", "after, cancelling=0"]


async def test_a_member_that_swallows_the_cancellation_keeps_its_result() -> None:
    async def stubborn(score: Doc) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            score.a = 7  # gives up waiting, but finishes normally

    async def boom(score: Doc) -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("f", Doc()).sync("g", [stubborn, boom]).run(Doc())
    assert info.value.note_name == "boom"
    await asyncio.sleep(0.01)  # the caller's task carries no cancellation on
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # type: ignore[attr-defined,unused-ignore]


async def test_cancelling_the_run_cancels_every_member_into_its_cleanup() -> None:
    log: list[str] = []
    both_waiting = asyncio.Event()
    waiting = 0

    def sleeper(name: str) -> Any:
        async def fn(score: Doc) -> None:
            nonlocal waiting
            waiting += 1
            if waiting == 2:
                both_waiting.set()
            try:
                await asyncio.sleep(5)
            finally:
                await asyncio.sleep(0)  # async cleanup
                log.append(f"{name} cleaned up")

        fn.__name__ = name
        return fn

    run = asyncio.ensure_future(
        Cadence("f", Doc()).sync("g", [sleeper("first"), sleeper("second")]).run(Doc())
    )
    await both_waiting.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(log) == ["first cleaned up", "second cleaned up"]


async def test_a_failure_before_a_member_suspends_still_starts_it_then_cancels_it() -> None:
    """As under a task group: every member takes its first step; one that then waits is
    cancelled because an earlier sibling failed."""
    log: list[str] = []

    async def boom(score: Doc) -> None:
        raise ValueError("boom")

    async def waiter(score: Doc) -> None:
        log.append("started")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def last(score: Doc) -> None:
        log.append("last started")
        await asyncio.sleep(5)

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("f", Doc()).sync("g", [boom, waiter, last]).run(Doc())
    assert info.value.task_index == 0
    assert log == ["started", "last started", "cancelled"]


async def test_a_suspending_member_keeps_its_own_context_across_awaits() -> None:
    seen: list[str] = []

    async def first(score: Doc) -> None:
        VAR.set("first")
        await asyncio.sleep(0.001)
        seen.append(VAR.get())

    async def second(score: Doc) -> None:
        await asyncio.sleep(0)
        seen.append(VAR.get())

    await Cadence("g", Doc()).sync("g", [first, second]).run(Doc())
    assert sorted(seen) == ["first", "outer"]
    assert VAR.get() == "outer"


@pytest.mark.parametrize("first", [True, False])
async def test_a_member_that_raises_cancelled_error_itself_fails_the_group_not_the_run(
    first: bool,
) -> None:
    """A member awaiting a shared future that someone else cancels ends with CancelledError;
    the run was not cancelled, so the group fails with that member's error, wherever it is."""
    shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits_shared(score: Doc) -> None:
        await shared

    async def canceller(score: Doc) -> None:
        await asyncio.sleep(0)
        shared.cancel()
        await asyncio.sleep(0.01)

    async def suspends(score: Doc) -> None:
        await asyncio.sleep(0.02)

    members = [waits_shared, canceller] if first else [suspends, waits_shared, canceller]
    with pytest.raises(ParallelNoteError) as info:
        await Cadence("f", Doc()).sync("g", members).run(Doc())
    assert info.value.note_name == "waits_shared"
    assert isinstance(info.value.original_error, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # type: ignore[attr-defined,unused-ignore]


@NEEDS_311
async def test_a_cancellation_a_member_absorbs_still_cancels_the_run() -> None:
    """Cancelling the run reaches every member; one that absorbs it does not keep the run
    going, and an enclosing timeout still ends as TimeoutError."""
    after: list[str] = []

    async def stubborn(score: Doc) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            score.a = 1  # absorbs it and returns

    async def later(score: Doc) -> None:
        after.append("ran")

    flow = Cadence("f", Doc()).sync("g", [stubborn]).then("later", later)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await flow.run(Doc())
    assert after == []


@NEEDS_311
async def test_a_task_group_inside_a_member_leaves_nothing_on_the_run() -> None:
    """On Python 3.11 a TaskGroup whose child fails while it waits may leave a cancellation
    count on its task; that task is the member's own, not the run's."""

    async def fetch_all(score: Doc) -> None:
        async def bad() -> None:
            await asyncio.sleep(0.001)
            raise KeyError("one request failed")

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(bad())
                group.create_task(asyncio.sleep(0.002))
        except Exception:
            score.a = -1  # tolerates the partial failure
        await asyncio.sleep(0.01)

    async def fails_later(score: Doc) -> None:
        await asyncio.sleep(0.005)
        raise ValueError("real failure")

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("f", Doc()).sync("g", [fetch_all, fails_later]).run(Doc())
    assert info.value.note_name == "fails_later"
    result = await Cadence("f", Doc()).sync("g", [fetch_all]).run(Doc())
    assert result.a == -1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # type: ignore[attr-defined,unused-ignore]


async def test_groups_run_with_plain_tasks_where_the_first_step_cannot_run_eagerly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an interpreter without the task switch, every member simply runs in its task."""
    from cascadence.runtime import gather

    monkeypatch.setattr(gather, "_EAGER", False)

    async def quick(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        score.b = 2

    async def boom(score: Doc) -> None:
        raise ValueError("x")

    result = await Cadence("g", Doc()).sync("g", [quick, slow]).run(Doc())
    assert (result.a, result.b) == (1, 2)
    with pytest.raises(ParallelNoteError) as info:
        await Cadence("g", Doc()).sync("g", [slow, boom]).run(Doc())
    assert info.value.note_name == "boom"


def _counting_tasks(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Record every task the loop creates from now on."""
    made: list[Any] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    return made


async def test_members_that_never_suspend_cost_no_task() -> None:
    """A task is made only for a member that suspends: after the first group on a loop,
    groups whose members all finish in their first step create none."""
    loop = asyncio.get_running_loop()

    async def a(score: Doc) -> None:
        score.a = 1

    async def b(score: Doc) -> None:
        score.b = 2

    flow = Cadence("g", Doc()).sync("ab", [a, note(timeout=1.0)(b)])
    await flow.run(Doc())  # the loop's first group may make the one idle task
    made = _counting_tasks(loop)
    try:
        for _ in range(50):
            result = await flow.run(Doc())
            assert (result.a, result.b) == (1, 2)
    finally:
        loop.set_task_factory(None)
    assert made == []


async def test_a_task_is_made_per_member_that_suspends_and_is_listed_while_it_runs() -> None:
    loop = asyncio.get_running_loop()
    listed: list[bool] = []

    async def quick(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        listed.append(asyncio.current_task() in asyncio.all_tasks())
        score.b = 2

    flow = Cadence("g", Doc()).sync("g", [quick, slow, quick])
    await flow.run(Doc())
    before = asyncio.all_tasks()
    made = _counting_tasks(loop)
    try:
        result = await flow.run(Doc())
    finally:
        loop.set_task_factory(None)
    assert (result.a, result.b) == (1, 2)
    # at most: a fresh idle task for the group (the last one may have ended while the loop
    # turned) and one to replace the idle task the suspending member kept
    assert 1 <= len(made) <= 2
    assert listed == [True, True]
    assert asyncio.all_tasks() == before  # idle tasks are not listed
    for _ in range(3):
        await asyncio.sleep(0)
    assert all(task.done() for task in made)  # an unused idle task ends within two turns


async def test_nested_groups_in_a_members_first_step() -> None:
    """A member whose first step runs a flow with a group of its own (that does not suspend
    either) uses another idle task: each first step has a task of its own."""
    seen: list[Any] = []

    async def inner_a(score: Doc) -> None:
        seen.append(asyncio.current_task())
        score.a = 1

    async def inner_b(score: Doc) -> None:
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())
        score.b = 2

    inner = Cadence("inner", Doc()).sync("in", [inner_a, inner_b])

    async def outer_member(score: Doc) -> None:
        seen.append(asyncio.current_task())
        done = await inner.run(Doc())
        score.a, score.b = done.a, done.b

    async def other(score: Doc) -> None:
        score.c = 3

    result = await Cadence("outer", Doc()).sync("out", [outer_member, other]).run(Doc())
    assert (result.a, result.b, result.c) == (1, 2, 3)
    assert seen[0] is not seen[1] and seen[0] is not seen[2]


def test_groups_on_successive_loops_and_threads() -> None:
    """Idle tasks belong to one loop: a new loop on the same thread, and loops on other
    threads, each run their groups with their own."""
    import threading

    async def quick(score: Doc) -> None:
        score.a += 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        score.b += 1

    flow = Cadence("g", Doc()).sync("g", [quick, slow])

    async def runs() -> list[tuple[int, int]]:
        return [((r := await flow.run(Doc())).a, r.b) for _ in range(20)]

    assert asyncio.run(runs()) == [(1, 1)] * 20
    assert asyncio.run(runs()) == [(1, 1)] * 20
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(asyncio.run(runs()))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[(1, 1)] * 20] * 4


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is new in 3.12")
async def test_groups_under_the_eager_task_factory() -> None:
    loop = asyncio.get_running_loop()

    async def quick(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        score.b = 2

    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        for _ in range(3):
            result = await Cadence("g", Doc()).sync("g", [quick, slow, quick]).run(Doc())
            assert (result.a, result.b) == (1, 2)
    finally:
        loop.set_task_factory(None)


async def test_a_cancellation_left_on_a_members_task_reaches_no_other_member() -> None:
    """A member that cancels its own task and returns ends cancelled, as its own task would
    (the group fails with `CancelledError` for it); the cancellation reaches no sibling and no
    later group."""

    async def rude(score: Doc) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.002)
        score.b = 2

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("g", Doc()).sync("g", [slow, rude, slow]).run(Doc())
    assert info.value.note_name == "rude" and info.value.task_index == 1
    assert isinstance(info.value.original_error, asyncio.CancelledError)
    after = await Cadence("g", Doc()).sync("g", [slow, slow]).run(Doc())
    assert after.b == 2
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # type: ignore[attr-defined,unused-ignore]


@NEEDS_311
async def test_a_count_a_task_group_leaves_on_a_members_task_reaches_no_other_member() -> None:
    """Python 3.11's TaskGroup can leave a cancellation count on its task; a member whose
    group failed in its first step leaves the count behind on no other member's task."""
    counts: list[int] = []

    async def grouped(score: Doc) -> None:
        async def bad() -> None:
            raise KeyError("x")

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(bad())
        except Exception:
            score.a = 1

    async def counted(score: Doc) -> None:
        task = asyncio.current_task()
        assert task is not None
        counts.append(task.cancelling())
        await asyncio.sleep(0)
        score.b = 2

    result = await Cadence("g", Doc()).sync("g", [grouped, counted]).run(Doc())
    assert (result.a, result.b) == (1, 2)
    assert counts == [0]


async def test_a_member_timed_out_before_its_first_await_fails_the_group_with_its_timeout() -> None:
    """A note with a timeout whose first step outlasts it (blocking work before the first
    `await`) is cancelled at that `await`: its group fails with the note's timeout, after a
    group that left an idle task behind."""
    import time

    from cascadence.errors import TimeoutError as NoteTimeout

    async def quick(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        score.b = 2

    @note(timeout=0.005)
    async def busy(score: Doc) -> None:
        time.sleep(0.02)  # blocking on purpose: the deadline passes here
        await asyncio.sleep(0.001)

    flow = Cadence("f", Doc()).sync("g1", [quick, slow]).sync("g2", [busy, quick])
    for _ in range(3):
        with pytest.raises(ParallelNoteError) as info:
            await flow.run(Doc())
        assert info.value.note_name == "busy"
        assert isinstance(info.value.original_error, NoteTimeout)


async def test_a_member_that_cancels_its_own_task_then_waits_is_cancelled_alone() -> None:
    """As in a task of its own: the cancellation reaches the member at its next `await`, and
    its siblings and later groups are not touched."""
    reached: list[str] = []

    async def quick(score: Doc) -> None:
        score.a = 1

    async def slow(score: Doc) -> None:
        await asyncio.sleep(0.001)
        reached.append("slow")
        score.b = 2

    async def cancels_then_waits(score: Doc) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0.001)
        reached.append("never")

    flow = Cadence("f", Doc()).sync("g1", [quick, slow]).sync("g2", [cancels_then_waits, slow])
    with pytest.raises(ParallelNoteError) as info:
        await flow.run(Doc())
    assert info.value.note_name == "cancels_then_waits"
    assert isinstance(info.value.original_error, asyncio.CancelledError)
    assert "never" not in reached
    again = await Cadence("f", Doc()).sync("g", [quick, slow]).sync("h", [slow, quick]).run(Doc())
    assert (again.a, again.b) == (1, 2)


async def test_a_task_factory_that_fails_mid_group_leaves_the_run_intact() -> None:
    """When the loop cannot make a task (a factory that refuses, memory), the group fails with
    that error, the members that already suspended are cancelled, and the caller's task is
    still the current task."""
    loop = asyncio.get_running_loop()
    made = [0]
    cancelled: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made[0] += 1
        if made[0] == 3:
            coro.close()
            raise RuntimeError("task budget exhausted")
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def slow(score: Doc) -> None:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    outer = asyncio.current_task()
    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        with pytest.raises(Exception, match="task budget exhausted"):
            await Cadence("f", Doc()).sync("g", [slow, slow, slow]).run(Doc())
    finally:
        loop.set_task_factory(None)
    assert asyncio.current_task() is outer
    for _ in range(3):
        await asyncio.sleep(0)
    assert cancelled  # the member that had suspended was not left running


async def test_idle_tasks_end_so_a_factory_waiting_for_its_tasks_finishes() -> None:
    """A task factory that tracks every task it made, and waits for them all (a shutdown
    step), sees the idle tasks end too."""
    loop = asyncio.get_running_loop()
    made = _counting_tasks(loop)

    async def quick(score: Doc) -> None:
        score.a = 1

    try:
        for _ in range(5):
            await Cadence("f", Doc()).sync("g", [quick, quick]).run(Doc())
            await asyncio.sleep(0)
    finally:
        loop.set_task_factory(None)
    assert made
    await asyncio.wait_for(asyncio.gather(*made), 1.0)


async def test_the_message_of_a_failure_deep_in_nested_groups_grows_with_the_depth() -> None:
    """Each level of nesting adds its own line of context to the message, linearly: nested
    errors do not escape each other's quotes (which doubled the message at every level)."""

    async def boom(score: Doc) -> None:
        raise ValueError("the 'leaf' failed")

    flow: Cadence[Doc] = Cadence("level0", Doc()).sync("g0", [boom])
    lengths = []
    for depth in range(1, 13):
        inner = flow

        async def member(score: Doc, inner: Cadence[Doc] = inner) -> None:
            await inner.run(Doc())

        flow = Cadence(f"level{depth}", Doc()).sync(f"g{depth}", [member])
        with pytest.raises(ParallelNoteError) as info:
            await flow.run(Doc())
        lengths.append(len(str(info.value)))
    assert "ValueError(\"the 'leaf' failed\")" in str(info.value)
    steps = [lengths[i + 1] - lengths[i] for i in range(len(lengths) - 1)]
    assert max(steps) < 200  # a bounded amount per level


async def test_members_finish_their_cleanup_inside_an_anyio_scope_that_times_out() -> None:
    """anyio delivers a scope's cancellation again while the group waits for its cancelled
    members; they still finish their cleanup before the scope exits, as in a TaskGroup."""
    import anyio

    cleaned: list[str] = []

    async def member(score: Doc) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.02)  # cleanup that waits
            cleaned.append("member")

    flow = Cadence("f", Doc()).sync("g", [member, member])
    with anyio.move_on_after(0.01):
        await flow.run(Doc())
    assert cleaned == ["member", "member"]
