"""Listeners and hooks are checked when they are registered or defined, not on every event."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from cascadence import Cadence, CadenceHooks, CascadeConfig, CascadeEngine, Score
from cascadence.events import (
    ALL_EVENTS,
    CADENCE_FAILED,
    NOTE_COMPLETED,
    NOTE_STARTED,
    CadenceEvent,
    EventEmitter,
)
from cascadence.runtime.observe import HOOK_METHODS


@dataclass
class S(Score):
    n: int = 0


async def bump(score: S) -> None:
    score.n += 1


# -- EventEmitter: listeners --------------------------------------------------------------


@pytest.mark.parametrize("listener", ["print", None, 42, [print]])
def test_on_refuses_a_listener_that_is_not_callable(listener: Any) -> None:
    """on() raises TypeError naming the event and the type given, and registers nothing."""
    emitter = EventEmitter()
    with pytest.raises(TypeError) as info:
        emitter.on(NOTE_COMPLETED, listener)
    message = str(info.value)
    assert "'note.completed'" in message
    assert type(listener).__name__ in message
    assert "callable" in message
    assert emitter.listener_count() == 0


def test_a_listener_given_by_name_is_told_to_pass_the_function() -> None:
    """A listener given as its name (a string) gets a hint to pass the function itself."""
    with pytest.raises(TypeError, match="pass the function itself, not its name"):
        EventEmitter().on(NOTE_COMPLETED, "print")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "listener",
    [lambda: None, lambda event, extra: None],
    ids=["no-argument", "two-arguments"],
)
def test_on_refuses_a_listener_that_cannot_take_the_event(listener: Any) -> None:
    """A callable that cannot be called with the one event is refused at on()."""
    with pytest.raises(TypeError, match=r"needs a listener taking one CadenceEvent"):
        EventEmitter().on(NOTE_STARTED, listener)


async def test_listeners_of_every_accepted_shape_receive_events() -> None:
    """Functions, bound builtins, *args callables and callable objects are accepted and called."""
    emitter = EventEmitter()
    seen: list[str] = []

    class Collector:
        def __call__(self, event: CadenceEvent, *, extra: int = 0) -> None:
            seen.append(f"object:{event.type}")

    async def coroutine(event: CadenceEvent) -> None:
        seen.append(f"async:{event.type}")

    types: list[CadenceEvent] = []
    emitter.on(NOTE_COMPLETED, types.append)
    emitter.on(NOTE_COMPLETED, lambda *args: seen.append(f"varargs:{args[0].type}"))
    emitter.on(NOTE_COMPLETED, Collector())
    emitter.on(NOTE_COMPLETED, coroutine)
    await Cadence("flow", S()).with_hooks(emitter).then("bump", bump).run()
    assert [e.note_name for e in types] == ["bump"]
    assert seen == ["varargs:note.completed", "object:note.completed", "async:note.completed"]


def test_off_checks_its_arguments_too() -> None:
    """off() refuses an unknown event type and a listener that is not callable."""
    emitter = EventEmitter()
    with pytest.raises(ValueError, match=r"did you mean NOTE_COMPLETED = 'note.completed'\?"):
        emitter.off("NOTE_COMPLETED", print)
    with pytest.raises(TypeError, match=r"off\('note.completed', \.\.\.\).*got str"):
        emitter.off(NOTE_COMPLETED, "print")  # type: ignore[arg-type]
    emitter.on(NOTE_COMPLETED, print)
    emitter.off(NOTE_COMPLETED, print)
    assert emitter.listener_count(NOTE_COMPLETED) == 0


# -- EventEmitter: event types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "constant", "value"),
    [
        ("NOTE_COMPLETED", "NOTE_COMPLETED", "note.completed"),
        ("note_completed", "NOTE_COMPLETED", "note.completed"),
        ("Cadence_Failed", "CADENCE_FAILED", "cadence.failed"),
        ("ROUTING-DECISION", "ROUTING_DECISION", "routing.decision"),
        ("note.complete", "NOTE_COMPLETED", "note.completed"),
        ("NOTE_RETRY", "NOTE_RETRYING", "note.retrying"),
    ],
)
def test_unknown_event_types_name_the_constant_and_its_value(
    given: str, constant: str, value: str
) -> None:
    """A constant's Python name, in any case, or a near miss suggests `NAME = 'value'`."""
    emitter = EventEmitter()
    with pytest.raises(ValueError) as info:
        emitter.on(given, print)
    message = str(info.value)
    assert f"unknown event type {given!r}" in message
    assert f"did you mean {constant} = {value!r}?" in message
    assert "'*'" in message  # what was expected
    assert emitter.listener_count() == 0


@pytest.mark.parametrize(
    "given", ["note.finished", "cadence.done", "Routing.Decided", "CADENCE_START", "note"]
)
def test_names_in_lifecycle_namespaces_are_refused(given: str) -> None:
    """A name in a lifecycle namespace that is not a lifecycle event is a mistake, not a
    domain event: refused with the list of lifecycle events."""
    with pytest.raises(ValueError) as info:
        EventEmitter().on(given, print)
    assert all(repr(t) in str(info.value) for t in ALL_EVENTS)


@pytest.mark.parametrize(
    ("given", "constant"),
    [
        ("nte.started", "NOTE_STARTED"),
        ("notes.started", "NOTE_STARTED"),
        ("ntoe.failed", "NOTE_FAILED"),
        ("cadense.completed", "CADENCE_COMPLETED"),
        ("Caddence.Failed", "CADENCE_FAILED"),
        ("routng.decision", "ROUTING_DECISION"),
        ("nte.strted", "NOTE_STARTED"),
    ],
)
def test_a_lifecycle_event_with_its_namespace_misspelt_is_refused(
    given: str, constant: str
) -> None:
    """A lifecycle event whose namespace is a letter or two off would never be delivered: it
    is refused with the event it means, not taken as the application's own."""
    emitter = EventEmitter()
    with pytest.raises(ValueError, match=f"did you mean {constant} = ") as info:
        emitter.on(given, print)
    assert "outside the note., cadence. and routing. namespaces" in str(info.value)
    assert emitter.listener_count() == 0


@pytest.mark.parametrize(
    "given",
    [
        "node.failed",
        "quote.completed",
        "vote.started",
        "nodes.started",
        "notes.updated",
        "cadences.xyz",
        "job_failed",
    ],
)
def test_domain_event_names_near_lifecycle_ones_are_the_applications(given: str) -> None:
    """Outside the lifecycle namespaces and their misspellings, every name is the
    application's own, however close it reads to a lifecycle event: a word a letter apart
    from `note` (`node`, `vote`), or a lifecycle namespace with an event of its own."""
    emitter = EventEmitter()
    emitter.on(given, print)
    assert emitter.listener_count(given) == 1


@pytest.mark.parametrize("given", ["", "   "])
def test_an_empty_event_type_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        EventEmitter().on(given, print)


async def test_domain_events_of_the_application_are_listened_to_and_emitted() -> None:
    """Any other event type is the application's own: listeners registered for it get the
    events emitted with it (by event or by type and fields), with a timestamp; the wildcard
    gets them too; lifecycle listeners do not."""
    emitter = EventEmitter()
    placed: list[CadenceEvent] = []
    every: list[str] = []
    lifecycle: list[str] = []
    emitter.on("order.placed", placed.append)
    emitter.on("xyzzy", placed.append)
    emitter.on("*", lambda e: every.append(e.type))
    emitter.on(NOTE_COMPLETED, lambda e: lifecycle.append(e.type))
    before = time.time()
    sent = await emitter.emit("order.placed", cadence_name="checkout", data={"id": 7})
    await emitter.emit(CadenceEvent("ORDER_COMPLETED", "checkout"))
    await emitter.emit(CadenceEvent("xyzzy", "c", timestamp=12.5))
    assert [e.type for e in placed] == ["order.placed", "xyzzy"]
    assert placed[0] is sent and sent.metadata == {"id": 7} and sent.cadence_name == "checkout"
    assert before <= sent.timestamp <= time.time()
    assert placed[1].timestamp == 12.5  # kept as given
    assert every == ["order.placed", "ORDER_COMPLETED", "xyzzy"]
    assert lifecycle == []
    assert emitter.listener_count("order.placed") == 1
    with pytest.raises(ValueError, match="did you mean NOTE_COMPLETED"):
        await emitter.emit("note.complete")
    with pytest.raises(TypeError, match="only with an event type string"):
        await emitter.emit(sent, data={})
    with pytest.raises(TypeError, match=r"unknown event field 'order_id'.*data=\{\.\.\.\}"):
        await emitter.emit("order.placed", order_id=7)


def test_swapped_arguments_and_non_string_types_are_type_errors() -> None:
    """on(listener, type) and on(ALL_EVENTS, ...) say an event type string comes first."""
    emitter = EventEmitter()
    with pytest.raises(TypeError, match=r"the event type comes first"):
        emitter.on(print, NOTE_COMPLETED)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs an event type string, got tuple"):
        emitter.on(ALL_EVENTS, print)  # type: ignore[arg-type]


def test_listener_count_refuses_an_unknown_event_type() -> None:
    """listener_count('NOTE_FAILED') is an error, not a silent 0."""
    emitter = EventEmitter()
    emitter.on(CADENCE_FAILED, print)
    assert emitter.listener_count(CADENCE_FAILED) == 1
    with pytest.raises(ValueError, match=r"did you mean NOTE_FAILED = 'note.failed'\?"):
        emitter.listener_count("NOTE_FAILED")


# -- CadenceHooks subclasses ------------------------------------------------------------


def test_the_hook_names_checked_are_the_ones_the_runtime_calls() -> None:
    """The names a subclass is checked against are exactly the runtime's hook methods."""
    from cascadence.hooks import _HOOK_PARAMETERS

    assert set(_HOOK_PARAMETERS) == set(HOOK_METHODS)


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("before_notes", "before_note"),
        ("after_nte", "after_note"),
        ("on_eror", "on_error"),
        ("handle_events", "handle_event"),
        ("before_cadance", "before_cadence"),
        ("on_cadence_start", "before_cadence"),
        ("on_flow_end", "after_cadence"),
        ("post_run", "after_cadence"),
        ("on_note_complete", "after_note"),
        ("after_step", "after_note"),
        ("on_step_failed", "on_error"),
        ("on_retrying", "on_retry"),
    ],
)
def test_a_misspelt_hook_method_is_pointed_out_when_the_class_is_defined(
    wrong: str, right: str
) -> None:
    """A public method named like a hook but not one gets a warning naming both names."""

    async def method(self: Any, *args: Any) -> None:
        pass

    with pytest.warns(UserWarning, match="is not a hook method") as info:
        type("MyHooks", (CadenceHooks,), {wrong: method})
    message = str(info[0].message)
    assert f"MyHooks.{wrong} is not a hook method" in message
    assert f"did you mean {right!r}?" in message


def test_methods_that_do_not_look_like_hooks_are_left_alone() -> None:
    """Helpers of the user's own get no warning: only near-misses and lifecycle-looking names."""

    async def method(self: Any, *args: Any) -> None:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        type("MyHooks", (CadenceHooks,), {"on_thing": method, "helper": method, "start": method})


def test_a_misspelt_staticmethod_or_a_subclass_of_a_builtin_hook_is_caught_too() -> None:
    """The check covers static and class methods, and subclasses of the shipped hooks."""
    from cascadence import TimingHooks

    with pytest.warns(UserWarning, match="did you mean 'on_retry'"):

        class Static(CadenceHooks):
            @staticmethod
            def on_retyr(note_name: str, score: Any, attempt: int) -> None:
                pass

    with pytest.warns(UserWarning, match="did you mean 'after_note'"):

        class Timing(TimingHooks):
            async def after_notes(self, *args: Any) -> None:
                pass

    with pytest.warns(UserWarning, match="did you mean 'handle_event'"):

        class Emitter(EventEmitter):
            async def handle_evnt(self, event: CadenceEvent) -> None:
                pass


async def test_helpers_far_from_hook_names_and_private_names_are_allowed() -> None:
    """A hooks class may keep its own helpers, data and private near-miss names."""
    calls: list[str] = []

    class Audit(CadenceHooks):
        notes = ("kept",)
        before_notes_seen = 0  # data, not a method

        def report(self) -> list[str]:
            return calls

        def _before_notes(self) -> None:
            calls.append("private")

        async def before_note(self, note_name: str, score: Any) -> None:
            self._before_notes()
            calls.append(note_name)

    hooks = Audit()
    await Cadence("flow", S()).with_hooks(hooks).then("bump", bump).run()
    assert hooks.report() == ["private", "bump"]


@pytest.mark.parametrize(
    "source",
    [
        "async def after_note(self, note_name, score, duration): pass",
        "async def before_note(self, note_name): pass",
        "def on_error(self, note_name, score, error, extra): pass",
        "async def handle_event(self, event, *, verbose): pass",
        "async def on_retry(self): pass",
    ],
    ids=["after_note", "before_note", "on_error", "handle_event", "on_retry"],
)
def test_a_hook_the_runtime_cannot_call_fails_when_the_class_is_defined(source: str) -> None:
    """A hook whose parameters cannot take the runtime's arguments raises TypeError at once."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    name = next(k for k in namespace if not k.startswith("__"))
    with pytest.raises(TypeError) as info:
        type("Narrow", (CadenceHooks,), {name: namespace[name]})
    message = str(info.value)
    assert f"Narrow.{name}(" in message
    assert "cannot accept the arguments the runtime passes" in message
    assert f"expected {name}(self, " in message


async def test_hooks_with_extra_defaults_varargs_and_static_methods_run_on_flows_and_cascades() -> (
    None
):
    """Hooks that can take the runtime's arguments are accepted and called by both runtimes."""
    calls: list[str] = []

    class Wide(CadenceHooks):
        async def before_note(self, note_name: str, score: Any, *extra: Any) -> None:
            calls.append(f"before:{note_name}")

        def after_note(
            self,
            note_name: str,
            score: Any,
            duration: float,
            error: BaseException | None = None,
            verbose: bool = False,
            **future: Any,
        ) -> None:
            calls.append(f"after:{note_name}")

        @staticmethod
        def before_cadence(*args: Any) -> None:
            calls.append(f"run:{args[0]}")

        @classmethod
        def after_cadence(cls, name: str, score: Any, duration: float, error: Any) -> None:
            calls.append(f"end:{name}")

    hooks = Wide()
    await Cadence("flow", S()).with_hooks(hooks).then("bump", bump).run()
    assert calls == ["run:flow", "before:bump", "after:bump", "end:flow"]

    calls.clear()

    async def stage(_ctx: Any) -> dict[str, Any]:
        return {"result": "ok"}

    engine = CascadeEngine(
        CascadeConfig.from_dict({"name": "cascade", "stages": {"A": {}}}), hooks=[hooks]
    )
    engine.register_stages({"A": stage})
    await engine.execute({})
    assert "before:A" in calls and "after:A" in calls
