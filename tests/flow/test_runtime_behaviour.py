"""Flow behaviour beyond the spec's examples: event order, concurrency, composition, errors."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from cascadence import (
    Cadence,
    CadenceHooks,
    CascadeConfig,
    CascadeEngine,
    CascadenceWarning,
    CircuitOpenError,
    ImmutableScore,
    MergeConflict,
    MergeStrategy,
    NoteError,
    ParallelNoteError,
    RetryExhaustedError,
    Score,
    Skip,
    note,
    retry,
    timeout,
    to_dot,
    to_mermaid,
)
from cascadence import TimeoutError as CadenceTimeout
from cascadence.events import EventEmitter
from cascadence.policies import CircuitBreaker, StepPolicy
from cascadence.testing import FakeClock


@dataclass
class S(Score):
    n: int = 0
    tags: list = field(default_factory=list)
    flag: bool = True
    child_total: int = 0


def tagger(tag: str, pause: float = 0.0) -> Any:
    async def note_fn(score: S) -> None:
        if pause:
            await asyncio.sleep(pause)
        score.tags.append(tag)

    note_fn.__name__ = tag
    return note_fn


async def test_hook_and_event_order_with_parallel_branch_and_child() -> None:
    """Events arrive in run order: the parallel group's tasks, the chosen branch, the child
    flow's own run events nested inside the parent's."""
    emitter = EventEmitter()
    seen: list[str] = []
    emitter.on("*", lambda e: seen.append(f"{e.type}:{e.note_name or e.cadence_name}"))

    child = Cadence("child", S()).then("c1", tagger("c1"))
    flow = (
        Cadence("parent", S())
        .with_hooks(emitter)
        .then("first", tagger("first"))
        .sync("group", [tagger("p1", 0.002), tagger("p2", 0.0)])
        .split("route", lambda s: s.flag, if_true=[tagger("yes")], if_false=[tagger("no")])
        .child("sub", child, lambda parent, c: setattr(parent, "child_total", len(c.tags)))
    )
    await flow.run()
    assert seen[0] == "cadence.started:parent"
    assert seen[1:3] == ["note.started:first", "note.completed:first"]
    group = seen[3:7]
    assert sorted(group[:2]) == ["note.started:p1", "note.started:p2"]
    assert group[2:] == ["note.completed:p2", "note.completed:p1"]  # p1 sleeps longer
    assert seen[7:9] == ["note.started:yes", "note.completed:yes"]
    assert seen[9:13] == [
        "cadence.started:child",
        "note.started:c1",
        "note.completed:c1",
        "cadence.completed:child",
    ]
    assert seen[-1] == "cadence.completed:parent"


async def test_thousand_concurrent_runs_of_one_definition() -> None:
    """One flow definition runs 1,000 times concurrently, each on its own score, no cross-talk."""

    async def add(score: S) -> None:
        await asyncio.sleep(0.001 * (score.n % 3))
        score.tags.append(score.n)

    async def double(score: S) -> None:
        score.n *= 2

    flow = (
        Cadence("many", S())
        .then("add", add)
        .sync("both", [double, tagger("t")])
        .split("odd", "n > 1000", if_true=[tagger("big")])
    )
    scores = await asyncio.gather(*(flow.run(S(n=i)) for i in range(1000)))
    for i, score in enumerate(scores):
        assert score.n == 2 * i
        expected = [i, "t"] + (["big"] if 2 * i > 1000 else [])
        assert score.tags == expected


async def test_sync_of_sleeping_notes_overlaps() -> None:
    """Notes of one .sync group that sleep run concurrently (their intervals overlap)."""
    loop = asyncio.get_running_loop()
    spans: list[tuple[float, float]] = []

    def sleeper(i: int) -> Any:
        async def fn(score: S) -> None:
            start = loop.time()
            await asyncio.sleep(0.01)
            spans.append((start, loop.time()))

        fn.__name__ = f"sleep{i}"
        return fn

    await Cadence("par", S()).sync("five", [sleeper(i) for i in range(5)]).run()
    assert max(s for s, _ in spans) < min(e for _, e in spans)


async def test_parallel_tasks_are_isolated_until_merge() -> None:
    """A task never sees a sibling's writes; conflicting writes fail under FAIL_ON_CONFLICT."""
    observed: list[int] = []

    async def write_one(score: S) -> None:
        score.n = 1
        await asyncio.sleep(0.001)

    async def read_later(score: S) -> None:
        await asyncio.sleep(0.002)
        observed.append(score.n)
        score.n = 2

    with pytest.raises(MergeConflict) as info:
        await (
            Cadence("iso", S())
            .sync("g", [write_one, read_later], merge=MergeStrategy.FAIL_ON_CONFLICT)
            .run()
        )
    assert observed == [0]
    assert info.value.field == "n" and info.value.values == [1, 2]
    assert info.value.group_name == info.value.note_name == "g"
    assert str(info.value).startswith("parallel group 'g': tasks wrote conflicting values to 'n'")
    score = (
        await Cadence("iso2", S())
        .sync("g", [write_one, read_later], merge=MergeStrategy.LAST_WRITE_WINS)
        .run()
    )
    assert score.n == 2


async def test_error_types_carry_their_fields() -> None:
    """NoteError, RetryExhaustedError, TimeoutError and CircuitOpenError carry their data."""

    async def boom(score: S) -> None:
        raise ValueError("bad input")

    with pytest.raises(NoteError) as plain:
        await Cadence("e", S()).then("boom", boom).run()
    assert plain.value.note_name == "boom"
    assert isinstance(plain.value.original_error, ValueError)

    clock = FakeClock()

    @note(retry={"max_attempts": 3, "delay": 1.0}, clock=clock)
    async def flaky(score: S) -> None:
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError) as retried:
        await Cadence("r", S()).then("flaky", flaky).run()
    assert retried.value.attempts == 3
    assert isinstance(retried.value.last_error, ConnectionError)
    assert clock.sleeps == [1.0, 2.0]

    @note(timeout=0.005)
    async def slow(score: S) -> None:
        await asyncio.sleep(1)

    with pytest.raises(CadenceTimeout) as timed:
        await Cadence("t", S()).then("slow", slow).run()
    assert timed.value.timeout == pytest.approx(0.005)
    assert isinstance(timed.value, TimeoutError)

    breaker = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=10, clock=clock)

    @note(circuit_breaker=breaker)
    async def pay(score: S) -> None:
        raise ConnectionError("x")

    flow = Cadence("cb", S()).then("pay", pay)
    with pytest.raises(NoteError):
        await flow.run(S())
    with pytest.raises(CircuitOpenError) as opened:
        await flow.run(S())
    assert opened.value.breaker_name == "payments"
    assert opened.value.note_name == "pay"  # the step refused, named as every NoteError is
    assert opened.value.retry_after == pytest.approx(10)


async def test_parallel_note_error_fields_when_the_failure_is_a_timeout() -> None:
    """A timed-out task of a group is reported with its index and the TimeoutError."""

    @note(timeout=0.005)
    async def slow(score: S) -> None:
        await asyncio.sleep(1)

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("p", S()).sync("grp", [tagger("ok"), slow]).run()
    assert (info.value.note_name, info.value.task_index, info.value.group_name) == (
        "slow",
        1,
        "grp",
    )
    assert isinstance(info.value.original_error, CadenceTimeout)


@pytest.mark.parametrize("seconds", [0.01, 0.03, 0.05, 0.1])
async def test_a_timeout_error_carries_the_timeout_as_declared(seconds: float) -> None:
    """`error.timeout` is the number written, not one rounded through the loop's clock, in a
    flow, called directly, for @note and @timeout, and in a group."""

    async def slow(score: S) -> None:
        await asyncio.sleep(1)

    for limited in (note(timeout=seconds)(slow), timeout(seconds)(slow)):
        with pytest.raises(CadenceTimeout) as info:
            await Cadence("c", S()).then("slow", limited).run()
        assert info.value.timeout == seconds
        with pytest.raises(CadenceTimeout) as info:
            await limited(S())
        assert info.value.timeout == seconds
        with pytest.raises(ParallelNoteError) as group:
            await Cadence("p", S()).sync("grp", [tagger("ok"), limited]).run()
        assert group.value.original_error.timeout == seconds  # type: ignore[attr-defined]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are 3.11+")
async def test_a_retry_cut_by_the_time_limit_says_so_in_a_note() -> None:
    """When the next attempt would start after the time limit, no retry is made, and the
    error's traceback notes why (so fewer attempts than configured are explained)."""

    @timeout(0.05)
    @retry(max_attempts=50, delay=0.02, backoff="fixed")
    async def flaky(score: S) -> None:
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError) as info:
        await Cadence("c", S()).then("flaky", flaky).run()
    assert info.value.attempts < 50
    (text,) = info.value.__notes__
    assert text.startswith(f"'flaky': no retry after attempt {info.value.attempts}: the next")
    assert text.endswith("after the step's time limit")


async def test_sync_note_timeout_without_signals() -> None:
    """A plain (sync) note with a timeout is cancelled on time; no SIGALRM is involved."""
    import threading

    release = threading.Event()

    @note(timeout=0.02)
    def blocking(score: S) -> None:
        release.wait(5)

    with pytest.raises(CadenceTimeout):
        await Cadence("sync", S()).then("blocking", blocking).run()
    release.set()


async def test_skip_skips_a_note_or_the_rest() -> None:
    """Raising Skip skips the note; Skip(rest=True) ends the flow successfully."""
    from cascadence import Skip

    async def skip_me(score: S) -> None:
        raise Skip("not today")

    async def stop_here(score: S) -> None:
        raise Skip(rest=True)

    score = await (
        Cadence("skip", S())
        .then("a", skip_me)
        .then("b", tagger("b"))
        .then("c", stop_here)
        .then("d", tagger("d"))
        .run()
    )
    assert score.tags == ["b"]


@dataclass(frozen=True)
class Frozen(ImmutableScore):
    n: int = 0
    tags: tuple = ()


def _steps_at(where: str, flow: Cadence[Any], notes: list[Any]) -> Cadence[Any]:
    """`notes` as top-level steps, or the same notes inside a branch that always holds."""
    if where == "top":
        for fn in notes:
            flow = flow.then(fn.__name__, fn)
        return flow
    return flow.split("always", lambda score: True, notes)


@pytest.mark.parametrize("where", ["top", "branch"])
async def test_a_note_fails_returns_and_skips_the_same_at_any_depth(where: str) -> None:
    """Top-level notes (run inline) and notes in a branch wrap errors, pass a NoteError on,
    adopt a returned score and honour Skip the same way."""

    async def boom(score: S) -> None:
        raise ValueError("bad input")

    with pytest.raises(NoteError) as caught:
        await _steps_at(where, Cadence("f", S()), [boom]).run()
    assert caught.value.note_name == "boom"
    assert isinstance(caught.value.original_error, ValueError)

    own = NoteError("custom", KeyError("k"))

    async def raises_note_error(score: S) -> None:
        raise own

    with pytest.raises(NoteError) as caught:
        await _steps_at(where, Cadence("f", S()), [raises_note_error]).run()
    assert caught.value is own

    seen: list[str] = []

    def on_error(score: S, error: BaseException) -> None:
        seen.append(type(error).__name__)

    flow = _steps_at(where, Cadence("f", S()), [boom, tagger("after")])
    if where == "top":  # after a failed step the flow goes on with the next top-level step
        score = await flow.on_error(on_error, stop=False).run()
        assert seen == ["NoteError"] and score.tags == ["after"]

    async def bump(score: Frozen) -> Frozen:
        return score.with_field("n", score.n + 1)

    async def returns_other(score: Frozen) -> str:
        return "not a score"

    async def bump_again(score: Frozen) -> Frozen:
        return score.with_field("n", score.n + 1)

    notes = [bump, returns_other, bump_again]
    final = await _steps_at(where, Cadence("f", Frozen()), notes).run()
    assert final.n == 2

    async def skip_one(score: S) -> None:
        raise Skip("later")

    async def skip_rest(score: S) -> None:
        raise Skip(rest=True)

    score = await _steps_at(
        where, Cadence("f", S()), [skip_one, tagger("b"), skip_rest, tagger("never")]
    ).run()
    assert score.tags == ["b"]


# -- composition both ways ----------------------------------------------------------------------
@dataclass
class Review(Score):
    text: str = ""
    result: str = ""
    confidence: float = 0.0


async def test_flow_as_a_cascade_stage_handler() -> None:
    """A Cadence registered as a stage handler runs per execution on a score built from the
    input; its result/confidence fields become the stage result."""

    async def classify(score: Review) -> None:
        score.result = "spam" if "buy now" in score.text else "ham"
        score.confidence = 0.9

    flow = Cadence("review", Review()).then("classify", classify)
    config = CascadeConfig.from_dict(
        {
            "name": "moderation",
            "stages": {
                "LLM_REVIEW": {
                    "routing_rules": [
                        {
                            "name": "sure",
                            "condition": "stages.LLM_REVIEW.confidence > 0.8",
                            "action": {"type": "terminate"},
                        }
                    ]
                },
                "HUMAN": {},
            },
        }
    )
    engine = CascadeEngine(config)
    engine.register_stage("LLM_REVIEW", flow)
    engine.register_stage("HUMAN", lambda ctx: {"result": "queued"})
    result = await engine.execute({"text": "buy now!!!"})
    assert result["path"] == ["LLM_REVIEW"]
    assert result["stage_results"]["LLM_REVIEW"]["result"] == "spam"
    assert result["stage_results"]["LLM_REVIEW"]["data"] == {"text": "buy now!!!"}

    @dataclass
    class Verdict(Score):
        amount: int = 0
        result: str = ""
        confidence: float = 0.0
        data: dict = field(default_factory=dict)

    async def decide(score: Verdict) -> None:
        score.result, score.confidence, score.data = "ok", 1.0, {"why": "small"}

    stage = Cadence("v", Verdict()).then("decide", decide)
    engine.register_stage("HUMAN", stage)
    engine.register_stage("LLM_REVIEW", lambda ctx: {"result": "unsure", "confidence": 0.1})
    result = await engine.execute({"text": "hi", "amount": 5})
    assert result["stage_results"]["HUMAN"]["data"] == {"why": "small"}  # its own data field


async def test_cascade_as_a_flow_step() -> None:
    """Cadence.cascade runs a CascadeEngine as one step and stores its result on the score."""

    @dataclass
    class Txn(Score):
        amount: float = 0
        screening: dict = field(default_factory=dict)

    config = CascadeConfig.from_dict({"name": "screen", "stages": {"RULES": {}}})
    engine = CascadeEngine(config)
    engine.register_stage(
        "RULES", lambda ctx: {"result": "block" if ctx.get("amount") > 100 else "allow"}
    )
    flow = Cadence("pay", Txn()).cascade("screening", engine)
    score = await flow.run(Txn(amount=500))
    assert score.screening["final_result"] == "block"
    # the engine's own step takes the score's fields as its input too
    step = engine.as_step()
    assert (await step(Txn(amount=5)))["final_result"] == "allow"
    assert (await Cadence("pay", Txn()).then("screen", step).run(Txn(amount=500))).amount == 500


# -- diagrams -------------------------------------------------------------------------------------
def test_cascade_diagram_draws_rules_as_labelled_edges() -> None:
    """A cascade's Mermaid and DOT show every stage and its routing rules as labelled edges."""
    from pathlib import Path

    config = CascadeConfig.from_file(
        Path(__file__).parents[2] / "examples" / "quickstart" / "cascade.yaml"
    )
    mermaid = to_mermaid(config)
    assert 'FAST_CHECK -->|"low_confidence_escalate: enable"| MEDIUM_CHECK' in mermaid
    assert 'FAST_CHECK -->|"high_confidence_terminate: terminate"| finish' in mermaid
    assert "class MEDIUM_CHECK,EXPENSIVE_CHECK disabled" in mermaid
    dot = to_dot(config)
    assert 'FAST_CHECK -> MEDIUM_CHECK [label="low_confidence_escalate: enable"];' in dot


def test_flow_diagram_shows_parallel_groups_and_children() -> None:
    """A flow's diagram has the fork/merge of a .sync group and a subgraph per child flow."""
    child = Cadence("pay", S()).then("charge", tagger("charge"))
    flow = (
        Cadence("checkout", S()).sync("enrich", [tagger("a"), tagger("b")]).child("payment", child)
    )
    mermaid = to_mermaid(flow)
    assert "sync enrich" in mermaid and "merge (smart)" in mermaid
    assert "subgraph payment_cluster" in mermaid
    assert "subgraph cluster_payment_cluster" in to_dot(flow)
    named = Cadence("steps", S()).sequence("prepare", [tagger("x"), tagger("y")])
    assert '["sequence: prepare"]' in to_mermaid(named)
    assert 'label="sequence: prepare"' in to_dot(named)


def test_diagram_ids_are_distinct_safe_and_labels_escaped() -> None:
    """Stage names that clash after sanitising, name a keyword of either language or the
    start/end nodes, or start with a digit get distinct plain ids; labels keep their text."""
    import re

    names = ["end", "begin", "a-b", "a_b", "node", "1st", "graph"]
    stages: dict[str, Any] = {
        n: {"parallel_group": "a_b", "can_run_parallel": True} for n in names[2:4]
    }
    stages.update({n: {} for n in names if n not in stages})
    stages["end"]["routing_rules"] = [
        {
            "name": 'r<b>|"x"#1;',
            "type": "routing",
            "condition": {"field": "s", "operator": "==", "value": 1},
            "action": {"type": "skip_to", "target": "node"},
        }
    ]
    config = CascadeConfig.from_dict(
        {"name": "multi\nline", "stages": stages, "execution_order": names}
    )
    mermaid = to_mermaid(config)
    ids = re.findall(r"^\s+(\w+)[\[(]", mermaid, re.MULTILINE)
    ids += re.findall(r"^\s+subgraph (\w+)\[", mermaid, re.MULTILINE)
    assert len(ids) == len(set(ids)) == len(names) + 3  # start, end, the group's cluster
    keywords = {"end", "graph", "node", "subgraph", "digraph", "edge", "strict"}
    assert not {i.lower() for i in ids} & keywords
    assert all(re.fullmatch(r"[A-Za-z_]\w*", i) for i in ids)
    assert "%% multi line" in mermaid
    assert '"r#lt;b>#124;#quot;x#quot;#35;1;: skip_to node"' in mermaid
    dot = to_dot(config)
    assert 'digraph "multi\\nline" {' in dot
    assert 'label="r<b>|\\"x\\"#1;: skip_to node"' in dot
    dot_ids = re.findall(r"^\s+(\w+) \[label", dot, re.MULTILINE)
    assert len(dot_ids) == len(set(dot_ids)) == len(names) + 2

    flow = Cadence("f", S()).then("end", tagger("x")).sync("end_1", [tagger("y")])
    drawn = to_mermaid(flow)
    assert re.search(r"^\s+end\W", drawn.replace("    end\n", ""), re.MULTILINE) is None
    flow_ids = re.findall(r"^\s+(\w+)[\[(]", drawn, re.MULTILINE)
    assert len(flow_ids) == len(set(flow_ids)) == 6  # start, end, the step, fork, task, merge


async def test_a_child_flow_runs_as_it_is_when_the_parent_runs() -> None:
    """Steps added to a child after `.child(...)` run too; a flow cannot contain itself."""
    child = Cadence("pay", S()).then("charge", tagger("charge"))

    def keep_tags(parent: S, done: S) -> None:
        parent.tags.extend(done.tags)

    parent = Cadence("checkout", S()).then("start", tagger("start"))
    parent.child("payment", child, keep_tags)
    assert (await parent.run(S())).tags == ["start", "charge"]
    child.then("receipt", tagger("receipt"))
    assert (await parent.run(S())).tags == ["start", "charge", "receipt"]

    seen: list[str] = []

    class Seen(CadenceHooks):
        async def before_note(self, note_name: str, score: Any) -> None:
            seen.append(note_name)

    shared = Seen()
    child.with_hooks([shared])  # attached after .child(...): still called
    await parent.run(S())
    assert seen == ["charge", "receipt"]
    seen.clear()
    parent.with_hooks([shared])  # on both flows: called once per step
    await parent.run(S())
    assert seen == ["start", "charge", "receipt"]

    with pytest.raises(ValueError, match="cannot be its own child"):
        parent.child("again", parent)
    with pytest.raises(ValueError, match="contains itself through child flows"):
        child.child("loop", parent)
    assert child.steps == ["charge", "receipt"]  # the refused step was not added


def test_step_names_are_unique() -> None:
    """Two steps with one name are refused (they key checkpoints and metrics)."""
    with pytest.raises(ValueError, match="already has a step named 'a'"):
        Cadence("dup", S()).then("a", tagger("x")).then("a", tagger("y"))


def test_policy_objects_are_shared_by_both_front_ends() -> None:
    """@note(retry=...) builds the same RetryPolicy type a YAML max_retries builds."""
    from cascadence.cascade.compile import compile_cascade
    from cascadence.flow.note import note_parts
    from cascadence.runtime.clock import SYSTEM_CLOCK

    @note(retry={"max_attempts": 4, "delay": 0.1, "backoff": "fixed"})
    async def fn(score: S) -> None:
        return None

    _, policy = note_parts(fn)
    config = CascadeConfig.from_dict(
        {"name": "c", "stages": {"A": {"max_retries": 3, "retry_delay_ms": 100}}}
    )
    plan = compile_cascade(config, {}, SYSTEM_CLOCK, lambda _s, _k, make: make())
    assert isinstance(policy, StepPolicy)
    assert plan.stages[0].policy.retry == policy.retry


async def test_events_also_read_as_event_type_and_metadata() -> None:
    """A listener may read an event's type as `event_type` and its detail as `metadata`."""
    seen: list[tuple[str, dict[str, Any]]] = []
    emitter = EventEmitter()
    emitter.on("*", lambda e: seen.append((e.event_type, e.metadata)))

    async def work(score: S) -> None:
        score.n = 1

    await Cadence("ev", S()).with_hooks(emitter).then("work", work).run()
    assert [t for t, _ in seen] == [
        "cadence.started",
        "note.started",
        "note.completed",
        "cadence.completed",
    ]
    assert all(meta == {} or isinstance(meta, dict) for _, meta in seen)


def test_a_timeout_that_is_not_a_number_is_a_clear_error() -> None:
    """`timeout=` takes seconds; a dict or a string says so instead of failing on `<=`."""

    async def work(score: S) -> None:
        pass

    for bad in ({"seconds": 1.0}, "5", True):
        with pytest.raises(TypeError, match="timeout must be a number of seconds"):
            note(timeout=bad)(work)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="timeout must be > 0 seconds"):
        note(timeout=0)(work)


async def test_a_dict_score_in_a_sync_group_is_a_clear_error() -> None:
    """Parallel tasks need a score with attributes; a dict score says so."""

    async def work(score: Any) -> None:
        score["x"] = 1

    with pytest.raises(TypeError, match="must be an object with attributes"):
        await Cadence("d", {}).sync("g", [work, work]).run()


def test_a_decorated_plain_function_called_directly_returns_its_result() -> None:
    """`@retry` on a plain function keeps it plain: a direct call retries and returns the
    value, from synchronous code and from inside a running event loop."""
    from cascadence import retry

    calls: list[int] = []

    @retry(max_attempts=3, delay=0.001)
    def flaky(score: S) -> str:
        calls.append(score.n)
        if len(calls) % 3:
            raise ConnectionError("try again")
        return "ok"

    assert flaky(S(n=1)) == "ok" and calls == [1, 1, 1]

    async def from_async_code() -> str:
        return flaky(S(n=2))  # type: ignore[no-any-return]

    assert asyncio.run(from_async_code()) == "ok" and calls[3:] == [2, 2, 2]


async def test_a_decorated_plain_function_still_runs_as_a_note() -> None:
    """Inside a flow the same decorated plain function runs under its policy once."""
    from cascadence import retry

    attempts: list[int] = []

    @retry(max_attempts=2, delay=0.001)
    def step(score: S) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("once")
        score.n = 7

    result = await Cadence("plain", S()).then("step", step).run()
    assert result.n == 7 and len(attempts) == 2


async def test_a_fallback_field_on_a_frozen_score_replaces_the_score() -> None:
    """`fallback={"field": ...}` on an ImmutableScore yields a copy with the field set."""

    @note(fallback={"default": ("unknown",), "field": "tags"})
    async def classify(score: Frozen) -> Frozen:
        raise ConnectionError("down")

    original = Frozen(n=1)
    result = await Cadence("frozen", original).then("classify", classify).run()
    assert result == Frozen(n=1, tags=("unknown",)) and original.tags == ()


async def test_a_sync_task_returning_a_new_score_is_merged() -> None:
    """A `.sync` task may return a new score of the flow's class, as a `.then` step may."""

    async def replace_n(score: S) -> S:
        return S(n=42, tags=list(score.tags))

    async def tag(score: S) -> None:
        score.tags.append("t")

    result = await Cadence("f", S()).sync("g", [replace_n, tag]).run()
    assert result.n == 42 and result.tags == ["t"]


async def test_bare_fallback_and_circuit_breaker_decorators_work_with_their_defaults() -> None:
    """`@fallback` without parentheses falls back to None; `@circuit_breaker` without them
    guards the note with the default thresholds."""
    from cascadence import circuit_breaker, fallback

    @fallback
    async def lookup(score: S) -> str:
        raise ConnectionError("down")

    assert await lookup(S()) is None

    @circuit_breaker
    async def guarded(score: S) -> None:
        score.n += 1

    result = await Cadence("cb", S()).then("guarded", guarded).run()
    assert result.n == 1


async def test_errors_of_conditions_and_merge_functions_are_note_errors() -> None:
    """A split condition, a child's merge and a custom group merge that raise fail the flow
    with a NoteError naming the step, as a note's error does."""

    async def noop(score: S) -> None:
        pass

    def broken(*_: Any) -> Any:
        raise ZeroDivisionError("oops")

    child = Cadence("kid", S()).then("noop", noop)
    flows = {
        "route": Cadence("a", S()).split("route", broken, [noop], [noop]),
        "kid": Cadence("b", S()).child("kid", child, broken),
        "g": Cadence("c", S()).sync("g", [noop, noop], merge=broken),
    }
    for step, flow in flows.items():
        with pytest.raises(NoteError) as info:
            await flow.run()
        assert info.value.note_name == step
        assert isinstance(info.value.original_error, ZeroDivisionError)


async def test_misuse_of_the_builder_is_a_clear_error_at_once(tmp_path: Any) -> None:
    """Wrong argument types fail when the flow is built, saying what was expected."""

    async def noop(score: S) -> None:
        pass

    cases = [
        (lambda: Cadence("f", S()).then(noop, noop), "name comes first"),  # type: ignore[arg-type]
        (lambda: Cadence("f", S()).sync("g", "abc"), "list of functions"),
        (lambda: Cadence("f", S()).child("c", noop), "needs a Cadence flow"),  # type: ignore[arg-type]
        (lambda: Cadence("f", S()).on_error("nope"), "needs a function"),  # type: ignore[arg-type]
        (lambda: Cadence("f", S()).with_hooks(lambda e: None), "use .with_reporter"),
        (lambda: Cadence("f", S()).with_checkpoint(42), "store URL"),  # type: ignore[arg-type]
        (lambda: note(retry={"max_attempts": "3"})(noop), "max_attempts must be a number"),
    ]
    for build, message in cases:
        with pytest.raises(TypeError, match=message):
            build()
    with pytest.raises(ValueError, match="number of attempts"):
        note(retry=-2)(noop)


async def test_with_checkpoint_takes_a_store_url(tmp_path: Any) -> None:
    """`with_checkpoint("sqlite:///...")` opens the store the URL names."""

    async def work(score: S) -> None:
        score.n += 1

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Cadence("u", S()).with_checkpoint(url, run_id="r").then("work", work)
    assert (await flow.run(S())).n == 1
    assert (await flow.run(S())).n == 1  # finished: the stored score, not a second run


async def test_resilience_decorators_work_on_any_signature() -> None:
    """A decorated function with no arguments, or several and keywords, keeps its policy when
    called directly."""
    from cascadence import fallback, retry

    attempts: list[int] = []

    @retry(max_attempts=3, delay=0.001)
    async def ping() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return "pong"

    @fallback(default=0)
    async def divide(a: int, b: int = 1) -> float:
        return a / b

    assert await ping() == "pong" and len(attempts) == 3
    assert await divide(6, b=3) == 2 and await divide(1, b=0) == 0


def test_a_note_breaker_from_a_dict_is_named_after_its_function() -> None:
    """`@note(circuit_breaker={...})` gives each decorated function its own breaker, named
    after it (in errors, 503 bodies and metrics)."""
    guard = note(circuit_breaker={"failure_threshold": 1, "recovery_timeout": 60})

    @guard
    async def pay(score: S) -> None:
        pass

    @guard
    async def ship(score: S) -> None:
        pass

    pay_breaker = pay.__cascadence_policy__.breaker  # type: ignore[attr-defined]
    ship_breaker = ship.__cascadence_policy__.breaker  # type: ignore[attr-defined]
    assert (pay_breaker.name, ship_breaker.name) == ("pay", "ship")
    assert pay_breaker is not ship_breaker


async def test_decorated_methods_keep_their_object_in_a_flow_and_in_an_engine() -> None:
    """`@note(...)`, `@timeout` on a plain method and `@fallback` on methods: the flow (and a
    cascade stage) calls the method on its object, under its policy."""
    from cascadence import CascadeEngine, fallback
    from cascadence import note as note_

    @dataclass
    class Data(Score):
        data: str = ""

    class Service:
        tag = "svc"

        @note_(retry={"max_attempts": 2, "delay": 0})
        async def fetch(self, score: Data) -> None:
            score.data = self.tag

        @note_(timeout=5)
        def blocking(self, score: Data) -> None:
            score.data = self.tag + "-blocking"

        @fallback(default="fb", field="data")
        async def guarded(self, score: Data) -> None:
            score.data = self.tag + "-guarded"

        @note_(retry=2)
        async def stage(self, _ctx: Any) -> dict[str, Any]:
            return {"result": self.tag}

    svc = Service()
    for method, expected in ((svc.fetch, "svc"), (svc.blocking, "svc-blocking")):
        assert (await Cadence("c", Data()).then("m", method).run()).data == expected
    assert (await Cadence("c", Data()).then("m", svc.guarded).run()).data == "svc-guarded"
    engine = CascadeEngine({"name": "e", "stages": {"A": {}}})
    engine.register_stage("A", svc.stage)
    assert (await engine.execute({}))["final_result"] == "svc"


async def test_a_users_own_wrapper_around_a_note_runs() -> None:
    """A decorator of the application's, made with functools.wraps, around a decorated note
    is called as it is: its code runs, and the note's policy still applies inside."""
    import functools

    @dataclass
    class Log(Score):
        log: list[str] = field(default_factory=list)

    def audited(fn: Any) -> Any:
        @functools.wraps(fn)
        async def wrapper(score: Log) -> Any:
            score.log.append("audit")
            return await fn(score)

        return wrapper

    attempts: list[int] = []

    @audited
    @note(retry={"max_attempts": 2, "delay": 0})
    async def work(score: Log) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        score.log.append("work")

    assert (await Cadence("c", Log()).then("w", work).run()).log == ["audit", "work"]


async def test_hooks_see_a_cancelled_sibling_end() -> None:
    """A task cancelled because a sibling failed gets its after_note, with the cancellation."""
    ends: list[tuple[str, str]] = []

    class Ends(CadenceHooks):
        async def after_note(
            self, note_name: str, score: Any, duration: float, error: Any = None
        ) -> None:
            ends.append((note_name, type(error).__name__))

    async def slow(_score: Any) -> None:
        await asyncio.sleep(5)

    async def bad(_score: Any) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    with pytest.raises(ParallelNoteError):
        await Cadence("c", S()).with_hooks(Ends()).sync("g", [slow, bad]).run(S())
    assert sorted(ends) == [("bad", "NoteError"), ("slow", "CancelledError")]


def test_builder_arguments_are_checked_when_the_flow_is_built() -> None:
    """A misspelt fallback field, a reporter or child merge that is not callable, a name that
    is not a string, and an unknown log level fail at once with what to fix."""
    from cascadence import LoggingHooks

    @dataclass
    class Ctx(Score):
        context: list[Any] = field(default_factory=list)

    @note(fallback={"default": [], "field": "contxt"})
    async def search(_score: Ctx) -> None:
        return None

    with pytest.raises(ValueError, match="did you mean 'context'"):
        Cadence("c", Ctx()).sync("g", [search])
    with pytest.raises(TypeError, match="reporter is a callable"):
        Cadence("c", Ctx()).with_reporter(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="merge must be a function"):
        Cadence("c", Ctx()).child("k", Cadence("k", Ctx()), merge=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string"):
        Cadence(5, Ctx())  # type: ignore[arg-type]
    assert LoggingHooks(level="debug").level == 10
    with pytest.raises(ValueError, match="unknown log level"):
        LoggingHooks(level="LOUD")


async def test_timing_and_debug_hooks_stay_bounded_over_many_runs() -> None:
    """A long-running service keeps the latest samples only; the summary still counts all."""
    from cascadence import DebugHooks, TimingHooks

    timing = TimingHooks(max_samples=10)
    debug = DebugHooks(max_trace=10)

    async def step(score: S) -> None:
        score.tags.append("x")

    flow = Cadence("bounded", S()).with_hooks([timing, debug]).then("step", step)
    for _ in range(100):
        await flow.run(S())
    assert 10 <= len(timing.timings["step"]) < 20
    assert 10 <= len(timing.run_timings["bounded"]) < 20
    assert 10 <= len(debug.trace) < 20
    summary = timing.summary()["step"]
    assert summary["count"] == 100 and summary["max"] >= summary["mean"] > 0
    with pytest.raises(ValueError, match="max_samples"):
        TimingHooks(max_samples=0)


async def test_a_decorated_method_called_directly_writes_its_fallback_to_the_score() -> None:
    """`await obj.method(score)` of a note with a fallback field writes the score's field, not
    one of the object's attributes."""

    @dataclass
    class A(Score):
        a: int = 0

    class Service:
        a = "service"

        @note(timeout=0.02, fallback={"default": -1, "field": "a"})
        async def slow(self, score: A) -> None:
            await asyncio.sleep(1)

    service = Service()
    score = A()
    await service.slow(score)
    assert (score.a, service.a) == (-1, "service")


async def test_a_retried_task_of_a_group_reports_its_own_error() -> None:
    """`ParallelNoteError.original_error` is what the note raised, as `original_error` is for a
    note outside a group, also when the note was retried."""
    clock = FakeClock()

    @note(retry={"max_attempts": 2, "delay": 0.5}, clock=clock)
    async def lookup(score: S) -> None:
        raise KeyError("sku")

    with pytest.raises(ParallelNoteError) as info:
        await Cadence("p", S()).sync("grp", [tagger("ok"), lookup]).run()
    assert isinstance(info.value.original_error, KeyError)
    assert info.value.task_index == 1
    with pytest.raises(RetryExhaustedError) as alone:
        await Cadence("p", S()).then("lookup", lookup).run()
    assert isinstance(alone.value.original_error, KeyError)


async def test_retry_takes_an_attempt_count_or_a_dict_as_note_does() -> None:
    from cascadence import retry

    clock = FakeClock()
    calls: list[int] = []

    @retry(3, delay=0.1, backoff="fixed", clock=clock)
    async def flaky(score: S) -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError) as info:
        await flaky(S())
    assert (info.value.attempts, len(calls)) == (3, 3)
    assert clock.sleeps == [0.1, 0.1]  # the keywords apply along with the count

    @retry({"max_attempts": 2, "delay": 0.25}, clock=clock)
    async def twice(score: S) -> None:
        calls.append(2)
        raise ConnectionError("down")

    clock.sleeps.clear()
    with pytest.raises(RetryExhaustedError):
        await twice(S())
    assert calls.count(2) == 2 and clock.sleeps == [0.25]
    with pytest.raises(TypeError, match="retry= expects"):
        retry("three")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not both"):
        retry({"max_attempts": 2}, delay=0.5)  # type: ignore[call-overload]


async def test_timeout_above_retry_limits_all_attempts_together() -> None:
    """Stacked decorators keep their order where it means something: `@timeout` above
    `@retry` bounds the whole retry loop; below it, each attempt."""
    from cascadence import retry, timeout

    attempts: list[float] = []
    loop = asyncio.get_running_loop()

    @timeout(0.05)
    @retry(max_attempts=50, delay=0.001, backoff="fixed")
    async def hanging(score: S) -> None:
        attempts.append(loop.time())
        await asyncio.sleep(10)

    with pytest.raises(CadenceTimeout) as info:
        await Cadence("t", S()).then("hanging", hanging).run()
    assert info.value.timeout == pytest.approx(0.05)
    assert len(attempts) == 1  # the one attempt was cancelled when the time was up

    failures: list[int] = []

    @timeout(0.05)
    @retry(max_attempts=1000, delay=0.002, backoff="fixed")
    async def failing(score: S) -> None:
        failures.append(1)
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError) as stopped:  # no attempt was cut off: the
        await failing(S())  # retries stopped when the next sleep no longer fitted
    assert isinstance(stopped.value.last_error, ConnectionError)
    assert 1 < len(failures) < 1000

    clock = FakeClock()  # backoff on an injected clock counts against the limit too
    counted: list[int] = []

    @timeout(1.0)
    @retry(max_attempts=10, delay=0.3, backoff="fixed", clock=clock)
    async def fails_fast(score: S) -> None:
        counted.append(1)
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError) as fake:
        await fails_fast(S())
    assert (fake.value.attempts, clock.sleeps) == (4, [0.3, 0.3, 0.3])

    per_attempt: list[int] = []

    @retry(max_attempts=3, delay=0.001, backoff="fixed")
    @timeout(0.01)
    async def slow(score: S) -> None:
        per_attempt.append(1)
        await asyncio.sleep(10)

    with pytest.raises(RetryExhaustedError) as each:
        await slow(S())
    assert len(per_attempt) == 3
    assert isinstance(each.value.last_error, CadenceTimeout)


async def test_fallback_fields_are_checked_against_the_score_run_gets() -> None:
    """A fallback field the score class lacks is refused, with the closest field: at build
    time against the flow's own score, and on the first run against the class of a score
    given to `run` (a flow built without a score included). A `.split` condition reading a
    field the flow's own score lacks is refused; in a flow built without a score, a field
    the score lacks is false, as for any input, and attributes notes add are read."""

    @note(fallback={"default": "unknown", "field": "flg"})
    async def broken(score: S) -> None:
        raise RuntimeError("down")

    async def noop(score: S) -> None:
        pass

    async def add_data(score: Any) -> None:
        score.data = {"ok": True}

    flow = Cadence("f").then("broken", broken)
    with pytest.raises(ValueError, match=r"fallback writes field 'flg'.*did you mean 'flag'"):
        await flow.run(S())
    ok = Cadence("f").then("noop", noop)
    assert (await ok.run(S(n=1))).n == 1
    # a step added later is checked against classes already run
    ok.then("late", broken)
    with pytest.raises(ValueError, match="did you mean 'flag'"):
        await ok.run(S())
    seen: list[str] = []

    async def took(score: Any) -> None:
        seen.append("true")

    with pytest.raises(ValueError, match=r"split 'r': condition 'data.ok == true' reads field"):
        Cadence("f", S()).then("add", add_data).split("r", "data.ok == true", [took])
    split = Cadence("f").then("add", add_data).split("r", "data.ok == true", [took])
    await split.run(S())
    await Cadence("f").split("r", "nothing_here > 1", [took]).run(S())
    assert seen == ["true"]


async def test_steps_that_cannot_work_in_a_flow_are_refused_when_added() -> None:
    """A note that cannot take the score alone, a fallback value with no field to go to, a
    second `.on_error` and a `stop` that is not a bool are build-time errors."""

    async def two(score: S, other: int) -> None:
        pass

    @note(fallback="unknown")
    async def lost(score: S) -> None:
        raise RuntimeError("down")

    @note(fallback={"default": None})
    async def quiet(score: S) -> None:
        raise RuntimeError("down")

    async def handler(score: S, error: BaseException) -> None:
        pass

    with pytest.raises(TypeError, match=r"'two': .*two\(score: 'S', other: 'int'\) cannot be"):
        Cadence("f", S()).then("two", two)
    with pytest.warns(CascadenceWarning, match="fallback value 'unknown' goes nowhere") as caught:
        lost_flow = Cadence("f", S()).then("lost", lost)
    assert caught[0].filename == __file__  # the warning points at the line that added the step
    assert (await lost_flow.run()).n == 0  # the failure is ignored, as the fallback asks
    with pytest.raises(TypeError, match="stop is True or False"):
        Cadence("f", S()).on_error(handler, stop="no")  # type: ignore[arg-type]
    flow = Cadence("f", S()).on_error(handler, stop=False)
    with pytest.raises(ValueError, match="already has an error handler 'handler'"):
        flow.on_error(handler)
    # a fallback of None (ignore the failure) and notes with defaults or *args still pass
    assert (await Cadence("f", S()).then("quiet", quiet).run()).n == 0

    async def defaults(score: S, extra: int = 1, *rest: Any) -> None:
        score.n = extra

    assert (await Cadence("f", S()).then("d", defaults).run()).n == 1


async def test_nested_time_limits_keep_the_tighter_one() -> None:
    """`@note(timeout=...)` over `@timeout(...)` (or the other way round) cancels at the
    shorter limit, as nested timeouts would; other settings of the outer decorator win."""
    from cascadence import timeout

    @note(timeout=5.0)
    @timeout(0.02)
    async def inner_tighter(score: S) -> None:
        await asyncio.sleep(1)
        score.n = 1

    @timeout(0.02)
    @note(timeout=5.0, retry={"max_attempts": 1})
    async def outer_tighter(score: S) -> None:
        await asyncio.sleep(1)
        score.n = 1

    for fn in (inner_tighter, outer_tighter):
        with pytest.raises(CadenceTimeout):
            await Cadence("t", S()).then("slow", fn).run()


def test_a_branch_diagram_shows_its_condition_and_labels_an_empty_side() -> None:
    """The decision node shows the condition; the edge past an empty side is labelled."""

    async def a(score: S) -> None:
        pass

    flow = Cadence("e", S()).split("route", "n > 3", if_false=[a]).then("after", a)
    mermaid = to_mermaid(flow)
    assert 'route{"route?<br/>n > 3"}' in mermaid
    assert 'route -->|"false"| a' in mermaid
    assert 'route -->|"true"| after' in mermaid
    dot = to_dot(flow)
    assert 'route [label="route?\\nn > 3", shape=diamond];' in dot
    assert 'route -> after [label="true"];' in dot


def test_diagram_ids_are_the_names_numbered_only_when_repeated() -> None:
    """A note's id is its name (`validate --> charge`); a name used twice, or a keyword of
    Mermaid or Graphviz, gets a distinct id, and every id is unique."""

    async def charge(score: S) -> None:
        pass

    flow = (
        Cadence("c", S())
        .then("validate", charge)
        .then("end", charge)
        .then("interpolate", charge)
        .split("route", "n > 3", [charge], [charge])
    )
    mermaid = to_mermaid(flow)
    assert "validate --> end_" in mermaid
    assert "end_ --> interpolate_" in mermaid  # Mermaid keywords get an underscore
    assert "interpolate_ --> route" in mermaid
    assert 'route -->|"true"| charge' in mermaid
    assert 'route -->|"false"| charge_2' in mermaid
    assert "charge_2 --> finish" in mermaid
    assert "validate -> end_;" in to_dot(flow)


async def test_score_classes_declared_wrongly_are_refused_by_a_flow() -> None:
    """A mutable default declared without @dataclass (one list every run shares), or an
    ImmutableScore that is not frozen, are refused when a flow is built on such a score or
    runs one. Annotations that are not shared state pass."""

    class Loose(Score):
        items: list = []

    @dataclass
    class Thawed(ImmutableScore):
        timeout: int = 30

    async def noop(score: Any) -> None:
        pass

    with pytest.raises(TypeError, match="Loose declares items with a mutable default"):
        Cadence("f", Loose()).then("n", noop)
    with pytest.raises(TypeError, match="not a dataclass"):
        await Cadence("f").then("n", noop).run(Loose())
    with pytest.raises(TypeError, match=r"Thawed is an ImmutableScore, so declare it with"):
        await Cadence("f").then("n", noop).run(Thawed())

    class Manual(Score):
        a: int

        def __init__(self, a: int = 0) -> None:
            self.a = a

    class Base(Score):
        id: str
        LIMIT: int = 3

    @dataclass
    class Concrete(Base):
        id: str = "x"

    assert (await Cadence("f").then("n", noop).run(Manual(2))).a == 2
    assert (await Cadence("f").then("n", noop).run(Concrete())).id == "x"

    @dataclass
    class Good(Score):
        n: int = 0

    class Helper(Good):  # no fields of its own: no decorator needed
        def double(self) -> int:
            return self.n * 2

    assert (await Cadence("f").then("n", noop).run(Helper(n=2))).double() == 4


async def test_a_note_or_listener_wrapped_to_supply_an_argument_is_accepted() -> None:
    """A decorator that wraps a function with functools.wraps and supplies an argument is
    checked by the wrapper's own signature, not the wrapped function's."""
    import functools

    from cascadence.events import NOTE_COMPLETED

    def with_db(fn: Any) -> Any:
        @functools.wraps(fn)
        async def wrapper(score: Any) -> Any:
            return await fn(score, 41)

        return wrapper

    @note(retry=2)
    @with_db
    async def load(score: S, db: int) -> None:
        score.n = db + 1

    def with_log(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(event: Any) -> Any:
            return fn(event, seen)

        return wrapper

    seen: list[str] = []

    @with_log
    def on_done(event: Any, log: list[str]) -> None:
        log.append(event.note_name)

    emitter = EventEmitter()
    emitter.on(NOTE_COMPLETED, on_done)
    flow = Cadence("f", S()).with_hooks(emitter).then("load", load)
    assert (await flow.run()).n == 42
    assert seen == ["load"]
