"""OpenTelemetryReporter: span names, parent links and attributes, via the in-memory exporter."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from otel_spans import Spans

from cascadence import Cadence, CascadeConfig, CascadeEngine, Score, note
from cascadence.reporters import OpenTelemetryReporter
from cascadence.testing import FakeClock


@dataclass
class Doc(Score):
    text: str = ""
    a: int = 0
    b: int = 0
    c: int = 0


def reporter_for(spans: Spans, **kwargs: Any) -> OpenTelemetryReporter:
    return OpenTelemetryReporter(service_name="svc", tracer_provider=spans.provider, **kwargs)


async def test_flow_run_and_note_spans(spans: Spans) -> None:
    """A flow run is one span; each note a child span with kind, name and step attributes."""
    rep = reporter_for(spans)
    tracer = spans.provider.get_tracer("handlers")

    async def parse(score: Doc) -> None:
        with tracer.start_as_current_span("parse-inner"):
            score.a = 1

    async def index(score: Doc) -> None:
        score.b = 2

    flow = Cadence("ingest", Doc()).with_reporter(rep.report)
    flow.then("parse", parse).then("index", index)
    await flow.run(Doc(), run_id="r-1")
    run = spans.one("flow ingest")
    assert spans.parent_of(run) is None
    attrs = spans.attrs(run)
    assert attrs["cascadence.kind"] == "cadence"
    assert attrs["cascadence.name"] == "ingest"
    assert attrs["cascadence.run_id"] == "r-1"
    assert attrs["cascadence.service"] == "svc"
    assert attrs["cascadence.final_stage"] == "index"
    assert [s.name for s in spans.children(run)] == ["note parse", "note index"]
    step = spans.one("note parse")
    assert spans.attrs(step)["cascadence.step"] == "parse"
    assert spans.parent_of(spans.one("parse-inner")) is step
    assert run.status.status_code is StatusCode.UNSET


async def test_parallel_notes_are_siblings(spans: Spans) -> None:
    """Notes of a .sync group are sibling spans under the run, suspending or not."""
    rep = reporter_for(spans)

    async def a(score: Doc) -> None:
        await asyncio.sleep(0.002)
        score.a = 1

    async def b(score: Doc) -> None:
        await asyncio.sleep(0)
        score.b = 1

    def c(score: Doc) -> None:
        score.c = 1

    async def after(score: Doc) -> None:
        score.text = "done"

    flow = Cadence("fan", Doc()).with_reporter(rep.report)
    flow.sync("gather", [a, b, c]).then("after", after)
    await flow.run(Doc())
    run = spans.one("flow fan")
    names = sorted(s.name for s in spans.children(run))
    assert names == ["note a", "note after", "note b", "note c"]
    assert all(spans.children(spans.one(n)) == [] for n in names)


async def test_concurrent_runs_never_mix(spans: Spans) -> None:
    """Concurrent runs of one flow get a trace each; every note span is under its own run."""
    rep = reporter_for(spans)

    async def work(score: Doc) -> None:
        await asyncio.sleep(0.001)
        score.a += 1

    flow = Cadence("busy", Doc()).with_reporter(rep.report).then("w1", work).then("w2", work)
    await asyncio.gather(*(flow.run(Doc(text=str(i))) for i in range(20)))
    runs = spans.named("flow busy")
    assert len(runs) == 20
    for run in runs:
        kids = spans.children(run)
        assert [k.name for k in kids] == ["note w1", "note w2"]
        assert {k.context.trace_id for k in kids} == {run.context.trace_id}
    assert len({r.context.trace_id for r in runs}) == 20


async def test_failure_recorded_on_note_and_run(spans: Spans) -> None:
    """A failing note's span has status ERROR, the exception event and the error type."""
    rep = reporter_for(spans)

    async def boom(score: Doc) -> None:
        raise KeyError("missing")

    flow = Cadence("bad", Doc()).with_reporter(rep.report).then("boom", boom)
    with pytest.raises(Exception, match="missing"):
        await flow.run(Doc())
    step = spans.one("note boom")
    assert step.status.status_code is StatusCode.ERROR
    assert spans.attrs(step)["cascadence.error_type"] == "KeyError"
    assert spans.attrs(step)["cascadence.outcome"] == "failed"
    assert any(e.name == "exception" for e in step.events)
    assert spans.one("flow bad").status.status_code is StatusCode.ERROR


async def test_retry_attempts_are_span_events(spans: Spans) -> None:
    """Each retry is a `retry` event on the note span; the count is an attribute."""
    rep = reporter_for(spans)
    clock = FakeClock()
    calls = {"n": 0}

    @note(retry={"max_attempts": 3, "delay": 0.5}, clock=clock)
    async def flaky(score: Doc) -> None:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError(f"try {calls['n']}")

    flow = Cadence("r", Doc()).with_reporter(rep.report).then("flaky", flaky)
    await flow.run(Doc())
    step = spans.one("note flaky")
    retries = [e for e in step.events if e.name == "retry"]
    assert [dict(e.attributes or {})["cascadence.retry.attempt"] for e in retries] == [1, 2]
    assert dict(retries[0].attributes or {})["exception.type"] == "ConnectionError"
    assert spans.attrs(step)["cascadence.retries"] == 2


def quick_config() -> CascadeConfig:
    rule = {
        "name": "escalate",
        "type": "routing",
        "condition": {"field": "stages.FAST.confidence", "operator": "<", "value": 0.8},
        "action": {"type": "enable_stages", "stages": ["DEEP"]},
    }
    return CascadeConfig.from_dict(
        {
            "name": "trust",
            "stages": {
                "FAST": {"cost": 1, "routing_rules": [rule]},
                "DEEP": {"enabled": False, "cost": 25},
            },
            "execution_order": ["FAST", "DEEP"],
        }
    )


async def test_cascade_stages_routing_and_results(spans: Spans) -> None:
    """Cascade spans carry confidence, cost, result and the routing rule taken on the run."""
    rep = reporter_for(spans)
    tracer = spans.provider.get_tracer("handlers")

    async def fast(ctx: Any) -> dict[str, Any]:
        return {"result": "review", "confidence": 0.4}

    def deep(ctx: Any) -> dict[str, Any]:  # runs in a worker thread: context still flows
        with tracer.start_as_current_span("model-call"):
            return {"result": "pass", "confidence": 0.97}

    engine = CascadeEngine(quick_config(), reporters=[rep])  # the object: results recorded
    engine.register_stage("FAST", fast)
    engine.register_stage("DEEP", deep)
    result = await engine.execute({"user_id": "u1"}, run_id="run-9")
    assert result["path"] == ["FAST", "DEEP"]
    run = spans.one("cascade trust")
    attrs = spans.attrs(run)
    assert attrs["cascadence.routing.rule"] == "escalate"
    assert attrs["cascadence.routing.action"] == "enable_stages"
    assert list(attrs["cascadence.routing.rules"]) == ["escalate"]
    assert attrs["cascadence.final_stage"] == "DEEP"
    assert attrs["cascadence.result"] == "pass"
    assert attrs["cascadence.confidence"] == 0.97
    assert attrs["cascadence.run_id"] == "run-9"
    routing = [e for e in run.events if e.name == "routing"]
    assert dict(routing[0].attributes or {})["cascadence.stage"] == "FAST"
    fast_span = spans.one("stage FAST")
    assert spans.attrs(fast_span)["cascadence.confidence"] == 0.4
    assert spans.attrs(fast_span)["cascadence.cost"] == 1.0
    assert spans.attrs(fast_span)["cascadence.result"] == "review"
    assert spans.parent_of(spans.one("model-call")) is spans.one("stage DEEP")


async def test_a_failed_cascade_run_span_names_the_stage_error(spans: Spans) -> None:
    """The run span of a cascade whose stage raised carries that exception's class; one cut
    by the global timeout is a timeout."""
    rep = reporter_for(spans)

    async def down(ctx: Any) -> dict[str, Any]:
        raise ConnectionError("review service down")

    engine = CascadeEngine(
        CascadeConfig.from_dict({"name": "pay", "stages": {"A": {}}}), reporters=[rep]
    )
    engine.register_stage("A", down)
    assert not (await engine.execute({}))["success"]
    run = spans.one("cascade pay")
    assert run.status.status_code is StatusCode.ERROR
    assert spans.attrs(run)["cascadence.error_type"] == "ConnectionError"

    async def slow(ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(1)
        return {"result": 1}

    late = CascadeEngine(
        CascadeConfig.from_dict({"name": "late", "global_timeout_ms": 10, "stages": {"A": {}}}),
        reporters=[rep],
    )
    late.register_stage("A", slow)
    assert (await late.execute({}))["timed_out"]
    assert spans.attrs(spans.one("cascade late"))["cascadence.outcome"] == "timeout"


async def test_report_only_skips_results(spans: Spans) -> None:
    """Attached as `reporter.report`, spans still get confidence and cost but no result."""
    rep = reporter_for(spans)

    async def fast(ctx: Any) -> dict[str, Any]:
        return {"result": "secret", "confidence": 0.99}

    engine = CascadeEngine(quick_config(), reporters=[rep.report])
    engine.register_stage("FAST", fast)
    engine.register_stage("DEEP", fast)
    await engine.execute({})
    attrs = spans.attrs(spans.one("stage FAST"))
    assert attrs["cascadence.confidence"] == 0.99
    assert "cascadence.result" not in attrs


async def test_cascade_parallel_group_siblings_with_nested_handler_spans(spans: Spans) -> None:
    """Parallel stages are siblings; spans a handler opens across awaits nest under its stage."""
    rep = reporter_for(spans)
    tracer = spans.provider.get_tracer("handlers")

    def make(name: str) -> Any:
        async def handler(ctx: Any) -> dict[str, Any]:
            with tracer.start_as_current_span(f"call-{name}"):
                await asyncio.sleep(0.001)
            return {"result": name, "confidence": 0.5}

        return handler

    names = ["P1", "P2", "P3"]
    config = CascadeConfig.from_dict(
        {
            "name": "par",
            "stages": {n: {"can_run_parallel": True, "parallel_group": "g"} for n in names},
        }
    )
    engine = CascadeEngine(config, reporters=[rep.report])
    for n in names:
        engine.register_stage(n, make(n))
    await engine.execute({})
    run = spans.one("cascade par")
    assert sorted(s.name for s in spans.children(run)) == [f"stage {n}" for n in names]
    for n in names:
        assert spans.parent_of(spans.one(f"call-{n}")) is spans.one(f"stage {n}")


async def test_runs_nest_under_the_current_span_and_across_front_ends(spans: Spans) -> None:
    """A run started inside a span nests under it; a cascade step of a flow nests under it."""
    rep = reporter_for(spans)
    tracer = spans.provider.get_tracer("app")

    async def fast(ctx: Any) -> dict[str, Any]:
        return {"result": "ok", "confidence": 0.9}

    engine = CascadeEngine(quick_config(), reporters=[rep.report])
    engine.register_stage("FAST", fast)
    engine.register_stage("DEEP", fast)
    flow = Cadence("outer", Doc()).with_reporter(rep.report).cascade("decide", engine)
    with tracer.start_as_current_span("request"):
        await flow.run(Doc())
    request = spans.one("request")
    outer = spans.one("flow outer")
    assert spans.parent_of(outer) is request
    step = spans.one("note decide")
    assert spans.parent_of(step) is outer
    inner = spans.one("cascade trust")
    assert spans.parent_of(inner) is step
    assert spans.parent_of(spans.one("stage FAST")) is inner


async def test_cancelled_parallel_sibling_span_is_closed(spans: Spans) -> None:
    """A sibling cancelled by a failing task still ends, marked as an error (cancelled)."""
    rep = reporter_for(spans)

    async def slow(score: Doc) -> None:
        await asyncio.sleep(5)

    async def fails(score: Doc) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("nope")

    flow = Cadence("ff", Doc()).with_reporter(rep.report).sync("g", [slow, fails])
    with pytest.raises(Exception, match="nope"):
        await flow.run(Doc())
    slow_span = spans.one("note slow")
    assert slow_span.status.status_code is StatusCode.ERROR
    assert slow_span.status.description == "cancelled"
    assert spans.parent_of(slow_span) is spans.one("flow ff")


@pytest.mark.parametrize("order", ["failing_first", "failing_last"])
async def test_a_failed_run_names_the_failing_step_not_a_cancelled_sibling(
    spans: Spans, order: str
) -> None:
    """`final_stage` of a run failed in a `.sync` group is the step that failed, whatever the
    order of the group; siblings cancelled because of it do not replace it."""
    rep = reporter_for(spans)

    async def first(score: Doc) -> None:
        score.a = 1

    async def bad(score: Doc) -> None:
        raise ValueError("boom")

    async def slowish(score: Doc) -> None:
        await asyncio.sleep(5)

    group = [bad, slowish] if order == "failing_first" else [slowish, bad]
    flow = Cadence("f", Doc()).with_reporter(rep.report).then("first", first).sync("g", group)
    with pytest.raises(Exception, match="boom"):
        await flow.run(Doc())
    run = spans.one("flow f")
    assert run.attributes is not None
    assert run.attributes["cascadence.final_stage"] == "bad"
    assert run.attributes["cascadence.error_type"] == "ValueError"
    assert spans.one("note slowish").attributes["cascadence.outcome"] == "cancelled"  # type: ignore[index]


async def test_steps_after_a_handled_failure_are_the_final_stage(spans: Spans) -> None:
    """With `on_error(..., stop=False)` the run goes on, and the last step it ran is final."""
    rep = reporter_for(spans)

    async def bad(score: Doc) -> None:
        raise ValueError("boom")

    async def after(score: Doc) -> None:
        score.b = 2

    flow = (
        Cadence("f", Doc())
        .with_reporter(rep.report)
        .then("bad", bad)
        .then("after", after)
        .on_error(lambda score, error: None, stop=False)
    )
    await flow.run(Doc())
    run = spans.one("flow f")
    assert run.attributes is not None
    assert run.attributes["cascadence.final_stage"] == "after"


async def test_with_hooks_and_instrument(spans: Spans) -> None:
    """The reporter works as a hook object too, and instrument() attaches it once."""
    rep = reporter_for(spans)

    async def step(score: Doc) -> None:
        score.a = 1

    flow = Cadence("hooked", Doc()).then("s", step)
    assert rep.instrument(flow) is flow
    rep.instrument(flow)
    await flow.run(Doc())
    assert len(spans.named("note s")) == 1
    with pytest.raises(TypeError, match="CascadeEngine or a Cadence"):
        rep.instrument(object())


def test_long_results_are_cut(spans: Spans) -> None:
    """Results longer than 256 characters are cut, structured ones rendered as text."""
    rep = reporter_for(spans)

    async def big(ctx: Any) -> dict[str, Any]:
        return {"result": {"items": list(range(500))}, "confidence": 0.5}

    engine = CascadeEngine(quick_config(), reporters=[rep])
    engine.register_stage("FAST", big)
    engine.register_stage("DEEP", big)
    engine.execute_sync({})
    text = spans.attrs(spans.one("stage FAST"))["cascadence.result"]
    assert isinstance(text, str) and len(text) == 256 and text.endswith("...")


async def test_handler_context_manager_across_await_in_flow_parallel(
    spans: Spans, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler's own current span opened across an await in a .sync group detaches cleanly."""
    rep = reporter_for(spans)
    tracer = spans.provider.get_tracer("handlers")

    async def a(score: Doc) -> None:
        with tracer.start_as_current_span("inner-a"):
            await asyncio.sleep(0.001)

    async def b(score: Doc) -> None:
        score.b = 1

    flow = Cadence("ctx", Doc()).with_reporter(rep.report).sync("g", [a, b])
    with caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
        await flow.run(Doc())
    assert spans.parent_of(spans.one("inner-a")) is spans.one("note a")
    assert "Failed to detach context" not in caplog.text


async def test_a_cancelled_cascade_execution_ends_its_spans(spans: Spans) -> None:
    """An execution cancelled by its caller (a request deadline) ends its run and stage spans,
    so the next execution's trace is not nested under a span that never ends."""
    from cascadence import CascadeEngine

    rep = reporter_for(spans)
    engine = CascadeEngine({"name": "slowpoke", "stages": {"A": {}}})

    async def slow(_ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"result": "late"}

    engine.register_stage("A", slow)
    rep.instrument(engine)
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(engine.execute({}), 0.02)
    runs = spans.named("cascade slowpoke")
    stages = spans.named("stage A")
    assert len(runs) == 2 and len(stages) == 2  # all ended
    assert {span.status.description for span in runs + stages} == {"cancelled"}
    assert runs[0].context.trace_id != runs[1].context.trace_id


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
async def test_executions_after_a_timed_out_one_in_the_same_task_start_new_traces(
    spans: Spans,
) -> None:
    """A worker loop timing out an execution with asyncio.timeout, then running more in the
    same task: the later executions are not nested under the cancelled one's spans."""
    from cascadence import CascadeEngine

    rep = reporter_for(spans)
    engine = CascadeEngine({"name": "worker", "stages": {"A": {}}})

    async def handler(ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(ctx.get("delay"))
        return {"result": "ok"}

    engine.register_stage("A", handler)
    rep.instrument(engine)
    for delay in (0.5, 0, 0):
        try:  # in this task, as a worker loop with a per-request deadline does
            async with asyncio.timeout(0.05):  # type: ignore[attr-defined,unused-ignore]
                await engine.execute({"delay": delay})
        except TimeoutError:
            continue
    runs = spans.named("cascade worker")
    assert len(runs) == 3
    assert all(spans.parent_of(run) is None for run in runs)
    assert len({run.context.trace_id for run in runs}) == 3


async def test_a_reporter_attached_twice_traces_each_run_once(spans: Spans) -> None:
    """Attached as a reporter and again as hooks (`instrument`), or given twice, the
    reporter is one observer: one span per run and per step, none cancelled."""
    rep = reporter_for(spans)
    config = CascadeConfig.from_dict({"name": "c", "stages": {"A": {}, "B": {}}})
    engine = CascadeEngine(config, reporters=[rep.report, rep])
    engine.register_stages({"A": lambda ctx: {"result": "a"}, "B": lambda ctx: {"result": "b"}})
    rep.instrument(engine)
    await engine.execute({})
    assert [s.name for s in spans.all] == ["stage A", "stage B", "cascade c"]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.all)
    assert spans.attrs(spans.one("stage A"))["cascadence.result"] == "a"  # the hooks form

    spans.exporter.clear()

    async def a(score: Doc) -> None:
        score.a = 1

    child = Cadence("child", Doc()).with_reporter(rep.report).then("a", a)
    flow = (
        Cadence("f", Doc())
        .with_hooks(rep)
        .with_reporter(rep.report)
        .with_reporter(rep.report)
        .then("a", a)
        .child("kid", child, lambda parent, kid: parent)
    )
    await flow.run(Doc())
    names = sorted(s.name for s in spans.all)
    assert names == ["flow child", "flow f", "note a", "note a"]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.all)


async def test_hooks_with_a_report_method_of_their_own_get_both(spans: Spans) -> None:
    """A hooks object whose `report` is not how it receives events (it has no `handle_event`)
    is two observers when given as hooks and its `report` as a reporter."""
    from cascadence import CadenceHooks

    class Both(CadenceHooks):
        def __init__(self) -> None:
            self.started: list[str] = []
            self.reported: list[str] = []

        async def before_note(self, note_name: str, score: Any) -> None:
            self.started.append(note_name)

        def report(self, event: Any) -> None:
            self.reported.append(event.type)

    both = Both()

    async def a(score: Doc) -> None:
        score.a = 1

    await Cadence("f", Doc()).with_hooks(both).with_reporter(both.report).then("a", a).run()
    assert both.started == ["a"]
    assert both.reported == [
        "cadence.started",
        "note.started",
        "note.completed",
        "cadence.completed",
    ]
