"""The code document's README examples, run as written with only the import changed.

Undefined services in the examples (db, payment_service, vector_db, llm, ...) are given small
in-process stand-ins; everything the document shows of cascadence is used as written. The
checkout example, which the web integration tests use too, is in `tests/spec_checkout.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from cascadence import (
    AtomicDict,
    AtomicList,
    Cadence,
    CadenceError,
    CadenceHooks,
    ImmutableScore,
    LoggingHooks,
    NoteError,
    ParallelNoteError,
    Score,
    TimingHooks,
    circuit_breaker,
    fallback,
    note,
    retry,
    timeout,
    to_dot,
    to_mermaid,
)
from cascadence.checkpoint import InMemoryCheckpointStore
from cascadence.events import CADENCE_FAILED, NOTE_COMPLETED, EventEmitter

# The checkout example's score and notes, with stand-ins for db and payment_service.
from spec_checkout import (
    OrderScore,
    calculate_total,
    fetch_items,
    payment_service,
    process_payment,
)


async def test_quick_start() -> None:
    """The quick start: three notes in sequence produce a paid order."""
    cadence = (
        Cadence("checkout", OrderScore(order_id="ORD-123"))
        .then("fetch_items", fetch_items)
        .then("calculate_total", calculate_total)
        .then("process_payment", process_payment)
    )
    result = await cadence.run()
    assert f"Order {result.order_id}: {result.status}" == "Order ORD-123: paid"
    assert result.total == 15.5
    assert ("ORD-123", 15.5) in payment_service.charged


# -- LLM pipeline example ---------------------------------------------------------------------
class _VectorDB:
    async def search(self, query: str) -> list[str]:
        await asyncio.sleep(0.001)
        return ["doc-a", "doc-b"]


class _SearchAPI:
    async def query(self, query: str) -> list[str]:
        await asyncio.sleep(0.002)
        return ["web-1"]


class _LLM:
    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, query: str, context: list[str]) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("rate limited")
        return f"answer from {len(context)} sources"


vector_db, search_api, llm = _VectorDB(), _SearchAPI(), _LLM()


@dataclass
class RAGScore(Score):
    query: str
    context: list = field(default_factory=list)
    answer: str = ""


@note(timeout=5.0)
async def retrieve(score: RAGScore):
    score.context = await vector_db.search(score.query)


@note(fallback={"default": [], "field": "context"}, timeout=10.0)
async def web_search(score: RAGScore):
    score.context += await search_api.query(score.query)


@note(retry={"max_attempts": 3, "backoff": "exponential", "delay": 0.001}, timeout=30.0)
async def generate(score: RAGScore):
    score.answer = await llm.generate(score.query, context=score.context)


async def test_llm_pipeline() -> None:
    """Parallel retrieval merges both tasks' context; generation retries past one failure."""
    rag = (
        Cadence("rag", RAGScore(query="What is Cadence?"))
        .sync("retrieve", [retrieve, web_search])  # parallel retrieval
        .then("generate", generate)  # LLM call with retry + timeout
    )
    result = await rag.run()
    assert sorted(result.context) == ["doc-a", "doc-b", "web-1"]
    assert result.answer == "answer from 3 sources"


# -- core concepts ------------------------------------------------------------------------------
@dataclass
class MyScore(Score):
    log: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    data: Any = None
    result: Any = None


async def do_first(score: MyScore) -> None:
    score.log.append("first")


async def do_second(score: MyScore) -> None:
    score.log.append("second")


def do_third(score: MyScore) -> None:  # a plain (sync) note
    score.log.append("third")


async def test_sequential_notes() -> None:
    """then() runs notes in order, sync and async alike."""
    cadence = (
        Cadence("process", MyScore())
        .then("note1", do_first)
        .then("note2", do_second)
        .then("note3", do_third)
    )
    assert (await cadence.run()).log == ["first", "second", "third"]


@dataclass
class UserScore(Score):
    user_id: str = ""
    profile: dict = field(default_factory=dict)
    preferences: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    summary: str = ""


async def fetch_profile(score: UserScore) -> None:
    await asyncio.sleep(0.001)
    score.profile = {"name": "Ada"}


async def fetch_preferences(score: UserScore) -> None:
    score.preferences = {"theme": "dark"}


async def fetch_history(score: UserScore) -> None:
    await asyncio.sleep(0.002)
    score.history.append("login")


async def combine_data(score: UserScore) -> None:
    score.summary = f"{score.profile['name']}/{score.preferences['theme']}/{len(score.history)}"


async def test_parallel_execution() -> None:
    """sync() runs tasks on isolated snapshots and merges every task's writes."""
    cadence = (
        Cadence("enrich", UserScore(user_id="123"))
        .sync(
            "fetch_data",
            [
                fetch_profile,
                fetch_preferences,
                fetch_history,
            ],
        )
        .then("merge_results", combine_data)
    )
    assert (await cadence.run()).summary == "Ada/dark/1"


@dataclass
class RouteScore(Score):
    tier: str = "basic"
    steps: list = field(default_factory=list)


def is_premium_customer(score: RouteScore) -> bool:
    return score.tier == "premium"


async def validate_order(score: RouteScore) -> None:
    score.steps.append("validate")


async def priority_processing(score: RouteScore) -> None:
    score.steps.append("priority")


async def express_shipping(score: RouteScore) -> None:
    score.steps.append("express")


async def standard_processing(score: RouteScore) -> None:
    score.steps.append("standard")


async def regular_shipping(score: RouteScore) -> None:
    score.steps.append("regular")


async def send_confirmation(score: RouteScore) -> None:
    score.steps.append("confirm")


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        ("premium", ["validate", "priority", "express", "confirm"]),
        ("basic", ["validate", "standard", "regular", "confirm"]),
    ],
)
async def test_conditional_branching(tier: str, expected: list[str]) -> None:
    """split() runs if_true or if_false by the condition."""
    cadence = (
        Cadence("order", RouteScore(tier=tier))
        .then("validate", validate_order)
        .split(
            "route",
            condition=is_premium_customer,
            if_true=[priority_processing, express_shipping],
            if_false=[standard_processing, regular_shipping],
        )
        .then("confirm", send_confirmation)
    )
    assert (await cadence.run()).steps == expected


async def test_split_with_a_condition_expression() -> None:
    """split() also takes a condition of the condition language over the score's fields."""
    cadence = Cadence("order", RouteScore(tier="premium")).split(
        "route", "tier == 'premium'", if_true=[express_shipping], if_false=[regular_shipping]
    )
    assert (await cadence.run()).steps == ["express"]


@dataclass
class PaymentScore(Score):
    order_id: str = ""
    amount: float = 0.0
    charged: bool = False
    disbursed: bool = False


@dataclass
class ShippingScore(Score):
    tracking: str = ""


@dataclass
class CheckoutScore(Score):
    order_id: str = "ORD-1"
    amount: float = 0.0
    paid: bool = False
    tracking: str = ""
    done: bool = False


async def charge_card(score: PaymentScore) -> None:
    score.charged = True


async def book_courier(score: ShippingScore) -> None:
    score.tracking = "TRK-9"


def merge_payment(parent: CheckoutScore, child: PaymentScore) -> None:
    parent.paid = child.charged


def merge_shipping(parent: CheckoutScore, child: ShippingScore) -> None:
    parent.tracking = child.tracking


async def prepare_order(score: CheckoutScore) -> None:
    score.amount = 42.0


async def finalize_order(score: CheckoutScore) -> None:
    score.done = score.paid and bool(score.tracking)


async def test_child_cadences() -> None:
    """child() runs a nested flow on its own score and merges it back."""
    payment_cadence = Cadence("payment", PaymentScore()).then("charge", charge_card)
    shipping_cadence = Cadence("shipping", ShippingScore()).then("book", book_courier)
    checkout_cadence = (
        Cadence("checkout", CheckoutScore())
        .then("prepare", prepare_order)
        .child("process_payment", payment_cadence, merge_payment)
        .child("arrange_shipping", shipping_cadence, merge_shipping)
        .then("complete", finalize_order)
    )
    result = await checkout_cadence.run()
    assert result.done and result.tracking == "TRK-9"


# -- resilience ---------------------------------------------------------------------------------
async def test_timeout_note_is_cancelled() -> None:
    """@note(timeout=...) cancels a slow note and the flow raises a TimeoutError NoteError."""
    from cascadence import TimeoutError as CadenceTimeout

    @note(timeout=0.01)
    async def slow_operation(score: MyScore) -> None:
        await asyncio.sleep(5)

    with pytest.raises(CadenceTimeout) as info:
        await Cadence("t", MyScore()).then("slow", slow_operation).run()
    assert isinstance(info.value, NoteError)


async def test_fallback_sets_field() -> None:
    """@note(fallback=...) writes the default to the field when the note fails."""

    @dataclass
    class StatusScore(Score):
        id: str = "1"
        status: str = ""

    @note(fallback={"default": "unknown", "field": "status"})
    async def get_status(score: StatusScore) -> None:
        raise ConnectionError("status service down")

    assert (await Cadence("s", StatusScore()).then("status", get_status).run()).status == "unknown"


async def test_stacked_standalone_decorators() -> None:
    """circuit_breaker over note, and retry/timeout/fallback stacked, all apply once."""
    calls = 0

    @circuit_breaker(failure_threshold=2, recovery_timeout=30.0)
    @note
    async def call_fragile_service(score: MyScore) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    flow = Cadence("cb", MyScore()).then("fragile", call_fragile_service)
    for _ in range(2):
        with pytest.raises(NoteError):
            await flow.run(MyScore())
    from cascadence import CircuitOpenError

    with pytest.raises(CircuitOpenError):
        await flow.run(MyScore())
    assert calls == 2
    # the breaker is readable from the function it guards
    assert str(call_fragile_service.circuit_breaker.state) == "open"  # type: ignore[attr-defined]
    assert call_fragile_service.policy.breaker is call_fragile_service.circuit_breaker  # type: ignore[attr-defined]

    attempts = 0

    @fallback("fell back", field="result")
    @retry(max_attempts=3, delay=0.001)
    @timeout(1.0)
    async def unreliable(score: MyScore) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("flaky")

    result = await Cadence("stack", MyScore()).then("u", unreliable).run()
    assert attempts == 3 and result.result == "fell back"


async def test_combined_resilience_shorthand() -> None:
    """@note(retry=3, timeout=15.0) retries up to three attempts."""
    attempts = 0

    @note(retry=3, timeout=15.0)
    async def call_service(score: MyScore) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("x")
        score.result = "ok"

    assert (await Cadence("c", MyScore()).then("svc", call_service).run()).result == "ok"


async def test_decorated_note_works_when_called_directly() -> None:
    """A decorated note called outside a flow applies its policy the same way."""
    attempts = 0

    @note(retry={"max_attempts": 2, "delay": 0.001})
    async def flaky(score: MyScore) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("x")

    await flaky(MyScore())
    assert attempts == 2


# -- observability, events, errors --------------------------------------------------------------
async def do_work(score: MyScore) -> None:
    score.log.append("work")


async def test_hooks_system() -> None:
    """with_hooks takes a list; TimingHooks records each note."""
    timing = TimingHooks()
    cadence = (
        Cadence("monitored", MyScore()).with_hooks([LoggingHooks(), timing]).then("note1", do_work)
    )
    await cadence.run()
    assert len(timing.timings["note1"]) == 1


async def test_custom_hooks() -> None:
    """A CadenceHooks subclass sees before/after/on_error with the spec's signatures."""
    seen: list[str] = []

    class MyHooks(CadenceHooks):
        async def before_note(self, note_name, score):
            seen.append(f"Starting: {note_name}")

        async def after_note(self, note_name, score, duration, error=None):
            seen.append(f"Completed: {note_name}")

        async def on_error(self, note_name, score, error):
            seen.append(f"Error in {note_name}: {error}")

    async def boom(score: MyScore) -> None:
        raise RuntimeError("bad")

    flow = Cadence("h", MyScore()).with_hooks([MyHooks()]).then("ok", do_work).then("bad", boom)
    with pytest.raises(NoteError):
        await flow.run()
    assert seen[:2] == ["Starting: ok", "Completed: ok"]
    assert seen[2] == "Starting: bad"
    assert seen[3] == "Completed: bad"  # the note ends (with its error), then on_error
    assert seen[4].startswith("Error in bad:")


async def test_event_system() -> None:
    """EventEmitter listeners see note and cadence events; '*' sees all."""
    emitter = EventEmitter()
    done: list[str] = []
    failed: list[str] = []
    audit: list[str] = []
    emitter.on(NOTE_COMPLETED, lambda e: done.append(f"{e.note_name} done in {e.duration:.2f}s"))
    emitter.on(CADENCE_FAILED, lambda e: failed.append(f"{e.cadence_name} failed: {e.error}"))
    emitter.on("*", lambda e: audit.append(e.type))

    async def validate_order(score: OrderScore) -> None:
        score.status = "valid"

    cadence = (
        Cadence("checkout", OrderScore(order_id="ORD-123"))
        .with_hooks(emitter)
        .then("validate", validate_order)
        .then("charge", process_payment)
    )
    await cadence.run()
    assert [d.split(" ")[0] for d in done] == ["validate", "charge"]
    assert failed == []
    assert audit[0] == "cadence.started" and audit[-1] == "cadence.completed"


async def test_checkpointing_resumes_after_a_crash() -> None:
    """A re-run with the same run_id skips finished notes and resumes where it crashed."""
    calls: list[str] = []
    crash = True

    async def validate(score: PaymentScore) -> None:
        calls.append("validate")

    async def charge(score: PaymentScore) -> None:
        calls.append("charge")
        if crash:
            raise RuntimeError("process died")
        score.charged = True

    async def disburse(score: PaymentScore) -> None:
        calls.append("disburse")
        score.disbursed = True

    store = InMemoryCheckpointStore()
    cadence = (
        Cadence("disburse", PaymentScore(order_id="ORD-123"))
        .with_checkpoint(store, run_id="order-123")
        .then("validate", validate)
        .then("charge", charge)  # if it crashes here...
        .then("disburse", disburse)
    )
    with pytest.raises(NoteError):
        await cadence.run()
    crash = False
    result = await cadence.run()  # ...re-run skips validate, resumes from charge
    assert calls == ["validate", "charge", "charge", "disburse"]
    assert result.charged and result.disbursed
    again = await cadence.run()
    assert calls == ["validate", "charge", "charge", "disburse"]
    assert again.disbursed


async def test_diagrams() -> None:
    """to_mermaid and to_dot render a flow."""
    my_cadence = (
        Cadence("order", RouteScore())
        .then("validate", validate_order)
        .split(
            "route",
            condition=is_premium_customer,
            if_true=[priority_processing],
            if_false=[standard_processing],
        )
    )
    mermaid = to_mermaid(my_cadence)
    dot = to_dot(my_cadence)
    assert mermaid.startswith("flowchart TD\n    %% order\n")
    assert "route?" in mermaid and '|"true"|' in mermaid
    assert dot.startswith('digraph "order" {') and "shape=diamond" in dot


async def test_immutable_score() -> None:
    """ImmutableScore.with_field returns a changed copy; notes may return the new score."""

    @dataclass(frozen=True)
    class Config(ImmutableScore):
        api_key: str
        timeout: int = 30

    config = Config(api_key="k")
    new_config = config.with_field("timeout", 60)
    assert new_config.timeout == 60 and config.timeout == 30

    async def bump(score: Config) -> Config:
        return score.with_field("timeout", score.timeout + 1)

    assert (await Cadence("imm", config).then("bump", bump).run()).timeout == 31


async def test_atomic_operations() -> None:
    """AtomicList/AtomicDict fields are shared safely by parallel tasks."""

    @dataclass
    class AggregatorScore(Score):
        results: AtomicList = None  # type: ignore[assignment]
        cache: AtomicDict = None  # type: ignore[assignment]

        def __post_init__(self):
            super().__post_init__()
            self.results = AtomicList()
            self.cache = AtomicDict()

    def make(i: int) -> Any:
        async def task(score: AggregatorScore) -> None:
            await asyncio.sleep(0)
            score.results.append(i)
            score.cache[f"key{i}"] = i

        task.__name__ = f"task{i}"
        return task

    score = await Cadence("agg", AggregatorScore()).sync("all", [make(i) for i in range(5)]).run()
    assert sorted(score.results.to_list()) == [0, 1, 2, 3, 4]
    assert len(score.cache) == 5


async def test_error_handling_continue() -> None:
    """on_error(handler, stop=False) records the NoteError and the flow continues."""

    async def risky_operation(score: MyScore) -> None:
        raise ValueError("risky failed")

    async def cleanup(score: MyScore) -> None:
        score.log.append("cleanup")

    async def handle_error(score, error):
        if isinstance(error, NoteError):
            score.errors.append(str(error))

    cadence = (
        Cadence("handled", MyScore())
        .then("risky", risky_operation)
        .on_error(handle_error, stop=False)  # Continue on error
        .then("cleanup", cleanup)
    )
    result = await cadence.run()
    assert result.log == ["cleanup"]
    assert "risky" in result.errors[0]


async def test_error_handling_stop() -> None:
    """on_error(handler, stop=True), the default: the handler runs once, the flow stops at
    the failed step, and run() returns the score as the handler left it. Listeners see the
    step fail and the run complete; an error the handler raises propagates."""

    async def risky_operation(score: MyScore) -> None:
        score.log.append("risky")
        raise ValueError("risky failed")

    async def cleanup(score: MyScore) -> None:
        score.log.append("cleanup")

    async def handle_error(score, error):
        if isinstance(error, NoteError):
            score.errors.append(f"{error.note_name}: {error.original_error}")

    events: list[str] = []
    emitter = EventEmitter()
    emitter.on("*", lambda e: events.append(e.event_type))
    for stop in ({}, {"stop": True}):
        cadence = (
            Cadence("handled", MyScore())
            .with_hooks(emitter)
            .then("risky", risky_operation)
            .on_error(handle_error, **stop)
            .then("cleanup", cleanup)
        )
        events.clear()
        result = await cadence.run()
        assert result.log == ["risky"]
        assert result.errors == ["risky: risky failed"]
        assert events == [
            "cadence.started",
            "note.started",
            "note.failed",
            "cadence.completed",
        ]

    def broken_handler(score: MyScore, error: BaseException) -> None:
        raise RuntimeError("the handler failed")

    broken = Cadence("h", MyScore()).then("risky", risky_operation).on_error(broken_handler)
    with pytest.raises(RuntimeError, match="the handler failed"):
        await broken.run()
    unhandled = Cadence("u", MyScore()).then("risky", risky_operation).then("cleanup", cleanup)
    with pytest.raises(NoteError):
        await unhandled.run()


async def test_parallel_error_context() -> None:
    """ParallelNoteError names the task, its index, the group and the original error."""

    async def ok_task(score: MyScore) -> None:
        await asyncio.sleep(0.01)

    async def bad_task(score: MyScore) -> None:
        raise KeyError("missing")

    cadence = Cadence("p", MyScore()).sync("fan_out", [ok_task, bad_task])
    with pytest.raises(ParallelNoteError) as info:
        await cadence.run()
    e = info.value
    message = (
        f"Task '{e.note_name}' (index {e.task_index}) "
        f"in group '{e.group_name}' failed: {e.original_error}"
    )
    assert message == "Task 'bad_task' (index 1) in group 'fan_out' failed: 'missing'"
    assert isinstance(e, CadenceError)
