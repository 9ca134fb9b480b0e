"""Arguments of the wrong type to the engine, the execution context and the event model are
refused at the call with a `TypeError` (or the module's own error) naming the argument, what
was expected and the likely fix; never a raw error from deep inside."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from typing import Any

import pytest
from engine_helpers import config, returning

from cascadence import CascadeEngine, ExecutionContext
from cascadence.cascade.event_model import (
    EventContext,
    EventWithContext,
    InvalidEventError,
    SessionContext,
    UniversalEvent,
)
from cascadence.checkpoint import InMemoryCheckpointStore
from cascadence.events import EventEmitter
from cascadence.hooks import CadenceHooks


def engine() -> CascadeEngine:
    built = CascadeEngine(config({"FAST_CHECK": {}, "SLOW_CHECK": {}}))
    built.register_stages({"FAST_CHECK": returning("pass"), "SLOW_CHECK": returning("pass")})
    return built


def raised_here(info: pytest.ExceptionInfo[BaseException], function: str) -> None:
    """The error comes from the public method itself (or a helper it calls to check), not
    from deep inside."""
    frames = [frame.name for frame in traceback.extract_tb(info.tb)]
    assert function in frames, frames
    assert len(frames) - frames.index(function) <= 3, frames


# -- register_stage, stage, register_stages ------------------------------------------------------


@pytest.mark.parametrize("name", [5, None, ["FAST_CHECK"], b"FAST_CHECK"])
def test_register_stage_refuses_a_name_that_is_not_a_str(name: Any) -> None:
    """`register_stage(5, fn)` names the argument, the type given and the stages."""
    with pytest.raises(TypeError) as info:
        engine().register_stage(name, returning("x"))
    message = str(info.value)
    assert message.startswith("register_stage() takes the stage name as a str, got ")
    assert type(name).__name__ in message or name is None
    assert "(stages: FAST_CHECK, SLOW_CHECK)" in message
    raised_here(info, "register_stage")


def test_register_stage_with_swapped_arguments_says_so() -> None:
    """`register_stage(fn, "NAME")` points at the swap."""
    with pytest.raises(TypeError, match=r"arguments look swapped: register_stage\('FAST_CHECK'"):
        engine().register_stage(returning("x"), "FAST_CHECK")  # type: ignore[arg-type]


def test_register_stage_given_a_stage_config_suggests_its_name() -> None:
    """An object with the stage's name (a StageConfig) gets a did-you-mean."""
    built = engine()
    with pytest.raises(TypeError, match="did you mean 'FAST_CHECK'"):
        built.register_stage(built.config.stages["FAST_CHECK"], returning("x"))  # type: ignore[arg-type]


def test_register_stage_refuses_an_in_thread_that_is_not_a_bool() -> None:
    with pytest.raises(
        TypeError, match=r"register_stage\(in_thread=\.\.\.\) must be True or False"
    ):
        engine().register_stage("FAST_CHECK", returning("x"), in_thread="yes")  # type: ignore[arg-type]


def test_stage_decorator_checks_its_name_when_called() -> None:
    """`engine.stage(5)` fails at once; `@engine.stage` without a name says how to write it,
    with the stage the function's name suggests."""
    built = engine()
    with pytest.raises(TypeError, match=r"stage\(\) takes the stage name as a str, got int 5"):
        built.stage(5)  # type: ignore[arg-type]

    def fast_check(_ctx: Any) -> str:
        return "pass"

    with pytest.raises(TypeError, match=r"write @engine\.stage\('FAST_CHECK'\) above the handler"):
        built.stage(fast_check)  # type: ignore[arg-type]


@pytest.mark.parametrize("handlers", [[("FAST_CHECK", returning("x"))], None, "FAST_CHECK"])
def test_register_stages_needs_a_mapping(handlers: Any) -> None:
    with pytest.raises(TypeError, match=r"register_stages\(\) takes a mapping of stage name"):
        engine().register_stages(handlers)


def test_update_config_handlers_must_be_a_mapping() -> None:
    built = engine()
    with pytest.raises(TypeError, match=r"update_config\(handlers=\.\.\.\) takes a mapping"):
        built.update_config(built.config, handlers=[returning("x")])  # type: ignore[arg-type]
    assert built.executions == 0 and built.config.name == "test"  # nothing changed


# -- execute and its relatives ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"explain": "yes"}, r"execute\(explain=\.\.\.\) must be True or False or None"),
        ({"run_id": 5.5}, r"execute\(run_id=\.\.\.\) must be a str .* or None, got float 5.5"),
        ({"raise_on_timeout": 1}, r"execute\(raise_on_timeout=\.\.\.\) must be True or False"),
    ],
)
async def test_execute_refuses_options_of_the_wrong_type(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        await engine().execute({"amount": 1}, **options)


async def test_execute_with_a_checkpoint_checks_lease_seconds() -> None:
    store = InMemoryCheckpointStore()
    with pytest.raises(TypeError, match=r"lease_seconds=\.\.\.\) must be a number of seconds, "):
        await engine().execute({}, run_id="r1", checkpoint=store, lease_seconds="60")  # type: ignore[arg-type]
    for bad in (0, -1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"lease_seconds=\.\.\.\) must be .* above 0, got "):
            await engine().execute({}, run_id="r1", checkpoint=store, lease_seconds=bad)
    done = await engine().execute({}, run_id="r1", checkpoint=store, lease_seconds=30)
    assert done["success"]


async def test_valid_options_still_run() -> None:
    """Every option of the right type runs as before, on the fast path and off it."""
    built = engine()
    plain = await built.execute({"amount": 1})
    explained = await built.execute({}, explain=True, run_id="r-1", raise_on_timeout=False)
    assert plain["success"] and explained["success"]
    assert explained["run_id"] == "r-1" and "explanation" in explained
    assert (await built.execute({}, explain=None, run_id=None))["success"]


async def test_a_uuid_or_int_run_id_is_used_as_its_text() -> None:
    """`run_id=uuid4()` (or an int) is the run id's text, with or without a checkpoint."""
    key = uuid.uuid4()
    built = engine()
    assert (await built.execute({}, run_id=key))["run_id"] == str(key)
    assert (await built.execute({}, run_id=7))["run_id"] == "7"
    store = InMemoryCheckpointStore()
    done = await built.execute({}, run_id=key, checkpoint=store)
    assert done["success"]
    record = await store.load(str(key))
    assert record is not None and record.completed


def test_execute_sync_names_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="unknown option 'explian'; did you mean 'explain'"):
        engine().execute_sync({}, explian=True)


async def test_execute_many_checks_its_arguments() -> None:
    """One input given where an iterable of inputs belongs, a bad concurrency and a
    misspelt option are each named."""
    built = engine()
    with pytest.raises(TypeError, match="for one input call execute"):
        await built.execute_many({"amount": 1})
    with pytest.raises(TypeError, match=r"takes an iterable of inputs, got int 5"):
        await built.execute_many(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"concurrency=\.\.\.\) must be an int, got str 'a'"):
        await built.execute_many([{}], concurrency="a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1, got 0"):
        await built.execute_many([{}], concurrency=0)
    with pytest.raises(TypeError, match="did you mean 'run_id'"):
        await built.execute_many([{}], runid="x")
    assert len(await built.execute_many([{}, {}], concurrency=2)) == 2


# -- construction, hooks, reporters and the rest ----------------------------------------------


def test_constructor_checks_clock_flags_hooks_and_reporters() -> None:
    cascade = config({"A": {}})
    with pytest.raises(TypeError, match=r"clock must be a Clock .* got int 5"):
        CascadeEngine(cascade, clock=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"CascadeEngine\(explain=\.\.\.\) must be True or False"):
        CascadeEngine(cascade, explain="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sync_in_thread=\.\.\.\) must be True or False"):
        CascadeEngine(cascade, sync_in_thread=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes a CadenceHooks object or EventEmitter, or a list"):
        CascadeEngine(cascade, hooks=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a function receiving every event is a reporter"):
        CascadeEngine(cascade, hooks=[print])
    with pytest.raises(TypeError, match="a reporter is a callable taking each CadenceEvent"):
        CascadeEngine(cascade, reporters=["report"])
    with pytest.raises(TypeError, match=r"takes a reporter callable, or a list of them"):
        CascadeEngine(cascade, reporters=5)  # type: ignore[arg-type]
    events: list[Any] = []
    CascadeEngine(cascade, hooks=[CadenceHooks()], reporters=[events.append])  # accepted
    # one hooks object or one reporter, as a flow's with_hooks/with_reporter take them
    CascadeEngine(cascade, hooks=CadenceHooks(), reporters=events.append)


def test_add_hooks_and_add_reporter_check_what_they_attach() -> None:
    built = engine()
    with pytest.raises(TypeError, match=r"add_hooks\(\) takes a CadenceHooks object or Event"):
        built.add_hooks(5)
    with pytest.raises(TypeError, match=r"add_hooks\(\) needs CadenceHooks objects"):
        built.add_hooks([5])
    seen: list[str] = []
    emitter = EventEmitter()
    emitter.on("*", lambda event: seen.append(event.type))
    built.add_hooks([emitter])  # a list, as hooks= and with_hooks take it
    asyncio.run(built.execute({}))
    assert seen and seen[0] == "cadence.started"
    with pytest.raises(TypeError, match=r"add_reporter\(\): a reporter is a callable"):
        built.add_reporter(5)
    assert built.add_hooks(CadenceHooks()).add_reporter(lambda _event: None) is built


def test_breaker_and_as_step_check_their_argument() -> None:
    built = engine()
    with pytest.raises(TypeError, match=r"breaker\(\) takes the stage name as a str"):
        built.breaker(5)  # type: ignore[arg-type]
    assert built.breaker("FAST_CHECK") is None
    with pytest.raises(TypeError, match=r"as_step\(input=\.\.\.\) takes a function"):
        built.as_step(input={"amount": 1})  # type: ignore[arg-type]


# -- the execution context ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [5, None, ["user", "name"], b"user.name", ("user",)])
def test_context_paths_must_be_text(path: Any) -> None:
    """`ctx.get(5)` (and `has`, `set`) name the path argument and what a path looks like."""
    ctx = ExecutionContext({"user": {"name": "Ada"}})
    for call in (lambda: ctx.get(path), lambda: ctx.has(path), lambda: ctx.set(path, 1)):
        with pytest.raises(TypeError) as info:
            call()
        message = str(info.value)
        assert message.startswith("path must be a str of dot-separated names, like 'user.profile")
        assert f"got {type(path).__name__}" in message
    assert ctx.get("user.name") == "Ada"  # text paths work as before


def test_context_empty_path_is_still_a_value_error() -> None:
    with pytest.raises(ValueError, match="an empty path names no field"):
        ExecutionContext({}).get("")


def test_get_stage_result_needs_a_name() -> None:
    ctx = ExecutionContext({})
    with pytest.raises(TypeError, match=r"get_stage_result\(\) takes the stage name as a str"):
        ctx.get_stage_result(5)  # type: ignore[arg-type]
    assert ctx.get_stage_result("FAST_CHECK") is None


async def test_a_handler_reading_a_bad_path_fails_its_stage_with_the_message() -> None:
    """In a run, the clear message is what the stage's error says."""
    cascade = CascadeEngine(config({"A": {}}))

    async def reads(ctx: ExecutionContext) -> Any:
        return ctx.get(5)  # type: ignore[arg-type]

    cascade.register_stage("A", reads)
    result = await cascade.execute({})
    assert result["stage_results"]["A"]["error"].startswith("path must be a str")


# -- the event model ---------------------------------------------------------------------------


def event() -> UniversalEvent:
    return UniversalEvent(
        id="e1",
        domain="finance",
        event_type="payment",
        timestamp="2024-05-01T12:00:00Z",
        primary_entity="u1",
    )


def test_event_with_context_checks_its_parts_when_built() -> None:
    """A mapping where an event, context or section belongs is read into its type (its keys
    checked); anything else is refused when built, not when flattened."""
    with pytest.raises(InvalidEventError, match=r"event: .*missing 4 required positional"):
        EventWithContext(event={"id": "e1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"event: expected a UniversalEvent or a mapping"):
        EventWithContext(event=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"context: expected an EventContext or a mapping"):
        EventWithContext(event=event(), context=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"did you mean 'session_id'"):
        EventContext(session={"sesion_id": "s"})  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"session: expected a SessionContext, a mapping"):
        EventContext(session=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"EventContext\.custom: expected a dict, got list"):
        EventContext(custom=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match=r"context\.custom: expected a mapping, got int"):
        EventContext.from_dict({"custom": 5})
    flat = EventWithContext(event(), EventContext(session=SessionContext(session_id="s")))
    assert flat.to_flat_dict()["session_id"] == "s"
    as_dicts = EventWithContext(
        event().to_dict(),  # type: ignore[arg-type]
        {"session": {"session_id": "s"}, "historical": {"trust_score": 0.9}},  # type: ignore[arg-type]
    )
    flat_dicts = as_dicts.to_flat_dict()
    assert (flat_dicts["session_id"], flat_dicts["trust_score"], flat_dicts["id"]) == (
        "s",
        0.9,
        "e1",
    )
    section = EventContext(session={"session_id": "s"})  # type: ignore[arg-type]
    assert section.session == SessionContext(session_id="s")


def test_execute_runs_on_an_event_with_context() -> None:
    built = engine()
    result = asyncio.run(built.execute(EventWithContext(event())))
    assert result["success"] and result["input"]["id"] == "e1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": True}, r"UniversalEvent\.id: expected a str or an int, got bool True"),
        ({"value": "100"}, r"value: expected a number or None, got str '100'; write the number"),
        ({"value": True}, r"value: expected a number or None, got bool"),
        ({"event_type": None}, r"event_type: expected a str, got NoneType"),
        ({"unit": 3}, r"unit: expected a str or None, got int 3"),
    ],
)
def test_event_fields_of_the_wrong_type_are_refused_when_built(
    fields: dict[str, Any], message: str
) -> None:
    """A text `value` would make every numeric rule on it false: refused when the event is
    built, naming the field."""
    given = {**event().to_dict(), **fields}
    with pytest.raises(InvalidEventError, match=message):
        UniversalEvent(**given)


def test_numeric_ids_and_decimal_values_are_kept() -> None:
    from decimal import Decimal

    made = UniversalEvent(**{**event().to_dict(), "id": 5, "value": Decimal("1.5")})
    flat = EventWithContext(made).to_flat_dict()
    assert (flat["id"], flat["value"]) == (5, Decimal("1.5"))
