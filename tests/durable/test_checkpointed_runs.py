"""Checkpointed executions in one process: isolation, one owner per run id, stored results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cascadence import Cadence, CascadeConfig, CascadeEngine, RunLockedError, Score
from cascadence.checkpoint import (
    CheckpointError,
    InMemoryCheckpointStore,
    RunStatus,
    SQLiteCheckpointStore,
)


def _engine(calls: list[str]) -> CascadeEngine:
    config = CascadeConfig.from_dict({"name": "ck", "stages": {"A": {}, "B": {}}})
    engine = CascadeEngine(config)

    def stage(name: str) -> Any:
        async def handler(ctx: Any) -> dict[str, Any]:
            calls.append(f"{name}:{ctx.get('n')}")
            await asyncio.sleep(0.005)
            return {"result": ctx.get("n") * (2 if name == "A" else 3)}

        return handler

    engine.register_stages({"A": stage("A"), "B": stage("B")})
    return engine


async def test_completed_run_returns_stored_result_without_handlers(tmp_path: Path) -> None:
    """Executing a completed run id again returns the stored result; no handler runs."""
    calls: list[str] = []
    engine = _engine(calls)
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        first = await engine.execute({"n": 2}, run_id="r1", checkpoint=store)
        second = await engine.execute({"n": 99}, run_id="r1", checkpoint=store)
        record = await store.load("r1")
        history = await store.history("r1")
    assert calls == ["A:2", "B:2"]
    assert second["stage_results"]["B"]["result"] == 6 == first["stage_results"]["B"]["result"]
    assert record is not None and record.status is RunStatus.COMPLETED
    assert [s.key for s in history] == ["1:A", "2:B"]


async def test_concurrent_runs_with_different_ids_do_not_interfere(tmp_path: Path) -> None:
    """Twenty concurrent checkpointed executions each get their own result and history."""
    calls: list[str] = []
    engine = _engine(calls)
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        results = await asyncio.gather(
            *(engine.execute({"n": n}, run_id=f"run-{n}", checkpoint=store) for n in range(20))
        )
        runs = await store.list_runs(limit=100)
    assert [r["stage_results"]["B"]["result"] for r in results] == [3 * n for n in range(20)]
    assert len(runs) == 20 and all(r.status is RunStatus.COMPLETED for r in runs)


async def test_same_run_id_twice_at_once_runs_once() -> None:
    """Two executions of one run id started together: one runs, the other is refused."""
    calls: list[str] = []
    store = InMemoryCheckpointStore()
    a, b = _engine(calls), _engine(calls)
    outcomes = await asyncio.gather(
        a.execute({"n": 1}, run_id="same", checkpoint=store),
        b.execute({"n": 1}, run_id="same", checkpoint=store),
        return_exceptions=True,
    )
    assert sum(isinstance(o, RunLockedError) for o in outcomes) == 1
    assert calls == ["A:1", "B:1"]


@dataclass
class Counter(Score):
    value: int = 0


@dataclass
class Order(Score):
    order_id: str = ""
    charged: str = ""


async def test_flow_same_run_id_twice_at_once_runs_once() -> None:
    """The same holds for flows: one run of a run id at a time."""
    store = InMemoryCheckpointStore()
    ran = 0

    async def bump(score: Counter) -> None:
        nonlocal ran
        ran += 1
        await asyncio.sleep(0.01)
        score.value += 1

    def flow() -> Cadence[Counter]:
        return Cadence("count", Counter()).with_checkpoint(store, run_id="one").then("bump", bump)

    outcomes = await asyncio.gather(flow().run(), flow().run(), return_exceptions=True)
    assert ran == 1
    assert sum(isinstance(o, RunLockedError) for o in outcomes) == 1


async def test_checkpointed_run_needs_a_run_id() -> None:
    """A checkpoint without a run id is refused with a clear message."""
    with pytest.raises(ValueError, match="needs a run_id"):
        await _engine([]).execute({"n": 1}, checkpoint=InMemoryCheckpointStore())


async def test_unserializable_value_names_the_field() -> None:
    """A stage result that cannot be checkpointed fails with the path and type."""
    import threading

    config = CascadeConfig.from_dict({"name": "bad", "stages": {"A": {}}})
    engine = CascadeEngine(config)

    async def handler(_ctx: Any) -> dict[str, Any]:
        return {"result": 1, "data": {"lock": threading.Lock()}}

    engine.register_stage("A", handler)
    with pytest.raises(Exception, match=r"stage_results\.A\.data\.lock.*lock"):
        await engine.execute({}, run_id="x", checkpoint=InMemoryCheckpointStore())


@dataclass
class Disbursal(Score):
    order_id: str = ""
    validated: bool = False
    disbursed: bool = False

    def __post_init__(self) -> None:
        self.client = object()  # not a field: never checkpointed


def _disbursal_flow(store: Any, score: Disbursal, crash: list[bool]) -> Cadence[Disbursal]:
    async def validate(s: Disbursal) -> None:
        s.validated = True

    async def disburse(s: Disbursal) -> None:
        if crash[0]:
            raise RuntimeError("process died")
        s.disbursed = True

    return (
        Cadence("disburse", score)
        .with_checkpoint(store, run_id="order-1")
        .then("validate", validate)
        .then("disburse", disburse)
    )


async def test_resumed_and_finished_runs_update_the_score_passed_in(tmp_path: Path) -> None:
    """After a crash, a new flow on a new score resumes into that very score (its non-field
    attributes kept); re-running the finished run id fills a new score with the outcome too."""
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        with pytest.raises(Exception, match="process died"):
            await _disbursal_flow(store, Disbursal("ORD-1"), [True]).run()
        resumed = Disbursal("ORD-1")
        client = resumed.client
        result = await _disbursal_flow(store, resumed, [False]).run()
        assert result is resumed
        assert (resumed.validated, resumed.disbursed, resumed.client) == (True, True, client)
        again = Disbursal("ORD-1")
        assert await _disbursal_flow(store, again, [False]).run() is again
        assert again.validated and again.disbursed and again.client is not None


async def test_a_resumed_run_keeps_a_skip_to_taken_before_the_crash() -> None:
    """A stage with a policy (retries) jumps to C; the run dies in C; the resumed run goes on
    from C, never calling the jumped-over B, as the uninterrupted run would."""
    calls: list[str] = []
    hang = asyncio.Event()
    entered = asyncio.Event()

    def stage(name: str) -> Any:
        async def handler(_ctx: Any) -> dict[str, Any]:
            calls.append(name)
            if name == "C" and not hang.is_set():
                entered.set()
                await asyncio.Event().wait()  # the process dies here
            return {"result": name, "confidence": 0.5}

        return handler

    jump = {
        "name": "to_C",
        "condition": {"field": "stages.A.confidence", "operator": ">=", "value": 0},
        "action": {"type": "skip_to", "target": "C"},
    }
    engine = CascadeEngine(
        CascadeConfig.from_dict(
            {
                "name": "jumpy",
                "stages": {
                    "A": {"max_retries": 1, "routing_rules": [jump]},
                    "B": {},
                    "C": {},
                    "D": {},
                },
            }
        )
    )
    engine.register_stages({n: stage(n) for n in "ABCD"})
    store = InMemoryCheckpointStore()
    first = asyncio.ensure_future(engine.execute({}, run_id="r", checkpoint=store))
    await entered.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    hang.set()
    result = await engine.execute({}, run_id="r", checkpoint=store, lease_seconds=0.01)
    assert result["path"] == ["A", "C", "D"]
    assert calls == ["A", "C", "C", "D"]


async def test_a_flow_resumes_after_the_named_step_when_steps_were_added_before_it() -> None:
    """A run checkpointed after 'reserve' resumes after 'reserve' in a new version of the flow
    that added a step in front; a version without that step refuses to guess."""
    from cascadence.errors import CheckpointError

    log: list[str] = []
    crash = [True]

    def step(name: str) -> Any:
        async def run(score: Disbursal) -> None:
            log.append(name)
            if name == "charge" and crash[0]:
                raise RuntimeError("process died")

        return run

    store = InMemoryCheckpointStore()

    def flow(*names: str) -> Cadence[Disbursal]:
        built = Cadence("pay", Disbursal("ORD-1")).with_checkpoint(store, run_id="r")
        for name in names:
            built = built.then(name, step(name))
        return built

    with pytest.raises(Exception, match="process died"):
        await flow("reserve", "charge").run()
    crash[0] = False
    with pytest.raises(CheckpointError, match="no longer has"):
        await flow("fraud_check", "charge").run()
    await flow("fraud_check", "reserve", "charge").run()
    assert log == ["reserve", "charge", "charge"]


async def test_cancelling_while_the_lease_is_taken_gives_it_back() -> None:
    """A run cancelled after its lease was written but before the write returned (a client
    gone at that moment) frees the run id: a retry works at once instead of being locked out
    for the lease's duration."""

    class SlowAcquire(InMemoryCheckpointStore):
        async def acquire(self, *args: Any, **kwargs: Any) -> Any:
            record = await super().acquire(*args, **kwargs)
            await asyncio.sleep(0.05)  # the round trip back from a database
            return record

    engine = CascadeEngine({"name": "c", "stages": {"A": {}}})
    engine.register_stage("A", lambda ctx: {"result": "done"})
    store = SlowAcquire()
    task = asyncio.ensure_future(engine.execute({}, run_id="r", checkpoint=store))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await engine.execute({}, run_id="r", checkpoint=store)
    assert result["final_result"] == "done"


async def test_checkpointed_executions_respect_max_in_flight() -> None:
    """Back-pressure applies to checkpointed executions too."""
    engine = CascadeEngine({"name": "c", "stages": {"A": {}}}, max_in_flight=3)
    running = [0]
    peak = [0]

    async def slow(_ctx: Any) -> dict[str, Any]:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.005)
        running[0] -= 1
        return {"result": "ok"}

    engine.register_stage("A", slow)
    store = InMemoryCheckpointStore()
    results = await asyncio.gather(
        *(engine.execute({}, run_id=f"r{i}", checkpoint=store) for i in range(20))
    )
    assert all(r["success"] for r in results)
    assert peak[0] == 3


async def test_a_failed_cascade_run_resumes_from_before_its_failure(tmp_path: Path) -> None:
    """A checkpointed cascade whose stage failed (or whose time ran out) is not stored as
    finished: running its id again resumes after the last stage that succeeded, so the
    failed stage runs again and the ones before it do not."""
    calls: list[str] = []
    broken = [True]

    async def a(_ctx: Any) -> dict[str, Any]:
        calls.append("A")
        return {"result": "a"}

    async def b(_ctx: Any) -> dict[str, Any]:
        calls.append("B")
        if broken[0]:
            raise ConnectionError("model down")
        return {"result": "b"}

    engine = CascadeEngine({"name": "r", "stages": {"A": {}, "B": {"depends_on": ["A"]}}})
    engine.register_stages({"A": a, "B": b})
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        first = await engine.execute({}, run_id="r1", checkpoint=store)
        assert first["success"] is False
        assert (await store.load("r1")).status is RunStatus.FAILED  # type: ignore[union-attr]
        broken[0] = False
        again = await engine.execute({}, run_id="r1", checkpoint=store)
        assert again["success"] is True and again["final_result"] == "b"
        assert calls == ["A", "B", "B"]
        stored = await engine.execute({}, run_id="r1", checkpoint=store)
        assert stored["final_result"] == "b" and calls == ["A", "B", "B"]


async def test_a_resumed_run_reports_its_input_and_the_fields_set_before_the_failure(
    tmp_path: Path,
) -> None:
    """A run that failed after a rule set a field resumes with that field, and its result
    says the same as an uninterrupted run: `input` as given, `data` with the field."""
    from cascadence.learning import decision_of

    config = CascadeConfig.from_dict(
        {
            "name": "c",
            "stages": {
                "A": {
                    "routing_rules": [
                        {
                            "name": "mark",
                            "condition": "stages.A.confidence > 0.1",
                            "action": {"type": "set_field", "field": "decision", "value": "no"},
                        }
                    ]
                },
                "B": {"depends_on": ["A"]},
            },
        }
    )
    down = [True]

    def stage_b(ctx: Any) -> dict[str, Any]:
        if down[0]:
            raise ConnectionError("B down")
        return {"result": "logged", "confidence": 1.0}

    engine = CascadeEngine(config)
    engine.register_stages({"A": lambda ctx: {"result": "r", "confidence": 0.5}, "B": stage_b})
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        first = await engine.execute({"user": "u"}, run_id="r1", checkpoint=store)
        assert not first["success"]
        down[0] = False
        data = {"user": "u"}
        resumed = await engine.execute(data, run_id="r1", checkpoint=store)
    assert resumed["success"] and resumed["path"] == ["A", "B"]
    assert resumed["input"] is data and data == {"user": "u"}
    assert resumed["data"] == {"user": "u", "decision": "no"}
    assert decision_of(resumed) == "no"


async def test_a_resumed_run_shows_the_stages_of_its_checkpoint_in_the_timeline() -> None:
    """Restored stages keep their duration in the timeline: from a checkpoint as written now,
    and from one written when the timeline kept end times instead of durations."""
    from cascadence.runtime.cascade_runner import run_cascade

    engine = CascadeEngine({"name": "t", "stages": {"A": {}, "B": {"depends_on": ["A"]}}})

    async def a(_ctx: Any) -> dict[str, Any]:
        return {"result": "a"}

    engine.register_stages({"A": a, "B": a})
    results = {"A": {"result": "a", "confidence": None, "data": {}, "time_ms": 2.5, "cost": 1.0}}
    for state in (
        {"timeline": [["A", 100.0, 2.5, False]], "timeline_format": 2},
        {"timeline": [["A", 100.0, 100.0025, False]]},  # (stage, started, ended, failed)
    ):
        restore = {"index": 1, "stage_results": results, "enabled": ["A", "B"], **state}
        result = await run_cascade(engine._plan, {}, restore=restore)
        assert result["path"] == ["A", "B"]
        first = result["timeline"][0]
        assert first["stage"] == "A" and first["status"] == "ok"
        assert first["end_ms"] - first["start_ms"] == pytest.approx(2.5)


async def test_with_checkpoint_then_run_binds_each_call_to_its_own_run_id(tmp_path: Path) -> None:
    """`flow.with_checkpoint(store, run_id=key).run(score)` started for several keys at once
    runs and stores each under its own key: `run` takes the settings as they are when it is
    called, not when the coroutine starts."""

    async def charge(score: Order) -> None:
        await asyncio.sleep(0.005)
        score.charged = f"charged {score.order_id}"

    flow = Cadence("pay", Order()).then("charge", charge)
    assert asyncio.iscoroutinefunction(flow.run)  # an async method in all but name
    async with SQLiteCheckpointStore(tmp_path / "runs.db") as store:
        orders = [Order(order_id=f"o{i}") for i in range(5)]
        done = await asyncio.gather(
            *(flow.with_checkpoint(store, run_id=o.order_id).run(o) for o in orders)
        )
        assert [o.charged for o in done] == [f"charged o{i}" for i in range(5)]
        for i in range(5):
            record = await store.load(f"o{i}")
            assert record is not None and record.status is RunStatus.COMPLETED
        again = await flow.with_checkpoint(store, run_id="o3").run(Order(order_id="o3"))
        assert again.charged == "charged o3"


async def test_a_run_resumes_only_on_the_config_it_started_on(tmp_path: Path) -> None:
    """A failed run resumed by an engine on another version of the config, or one without a
    stage the run recorded, is refused with what to do; the same config resumes it."""
    store = InMemoryCheckpointStore()
    failing = True

    async def b(ctx: Any) -> dict[str, Any]:
        if failing:
            raise ConnectionError("down")
        return {"result": "b"}

    def engine(version: str, second: str = "B") -> CascadeEngine:
        config = CascadeConfig.from_dict(
            {"name": "v", "version": version, "stages": {"A": {}, second: {}}}
        )
        built = CascadeEngine(config)
        built.register_stages({"A": lambda ctx: {"result": "a"}, second: b})
        return built

    first = await engine("1").execute({}, run_id="r", checkpoint=store)
    assert not first["success"]
    failing = False
    with pytest.raises(CheckpointError, match=r"started on version '1'.*runs version '2'"):
        await engine("2").execute({}, run_id="r", checkpoint=store)
    with pytest.raises(CheckpointError, match="stage\\(s\\) 'B', which cascade 'v' no longer"):
        await engine("1", second="BB").execute({}, run_id="r", checkpoint=store)
    resumed = await engine("1").execute({}, run_id="r", checkpoint=store)
    assert resumed["success"] and resumed["final_result"] == "b"


async def test_execute_names_the_fix_for_a_store_url() -> None:
    """A URL given as the checkpoint is refused with how to make the store from it."""
    with pytest.raises(TypeError, match=r"store_from_url\('sqlite:///x.db'\)"):
        await _engine([]).execute({"n": 1}, run_id="u", checkpoint="sqlite:///x.db")  # type: ignore[arg-type]


@dataclass
class Job(Score):
    log: list[str] | None = None
    alerts: int = 0


async def test_a_run_its_error_handler_stopped_resumes_at_the_failed_step(tmp_path: Path) -> None:
    """`on_error(handler)` (stop=True) returns the score, but the run is not complete: it is
    recorded failed, and a re-run with the same id resumes at the failed step."""
    attempts = [0]

    async def fetch(score: Job) -> None:
        score.log = [*(score.log or []), "fetch"]

    async def flaky(score: Job) -> None:
        attempts[0] += 1
        score.log = [*(score.log or []), f"flaky{attempts[0]}"]
        if attempts[0] == 1:
            raise ConnectionError("down")

    async def save(score: Job) -> None:
        score.log = [*(score.log or []), "save"]

    def alert(score: Job, error: BaseException) -> None:
        score.alerts += 1

    flow = (
        Cadence("job", Job())
        .then("fetch", fetch)
        .then("flaky", flaky)
        .then("save", save)
        .on_error(alert)
    )
    async with SQLiteCheckpointStore(str(tmp_path / "runs.db")) as store:
        first = await flow.with_checkpoint(store, run_id="job-1").run(Job())
        assert first.log == ["fetch", "flaky1"] and first.alerts == 1
        record = await store.load("job-1")
        assert record is not None and record.status is RunStatus.FAILED
        assert record.error is not None and "handled by on_error" in record.error
        again = await flow.with_checkpoint(store, run_id="job-1").run(Job())
        assert again.log == ["fetch", "flaky2", "save"] and again.alerts == 0
        record = await store.load("job-1")
        assert record is not None and record.status is RunStatus.COMPLETED
