"""The in-memory store: any copyable score by default, production serialization on request."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cascadence import Cadence, Score
from cascadence.checkpoint import InMemoryCheckpointStore, SerializationError


class Client:
    """An application object a score may hold (not something the durable stores can write)."""

    def __init__(self) -> None:
        self.calls = 0


async def test_a_local_score_class_holding_an_object_checkpoints_and_resumes() -> None:
    """A score class defined in a function, with a plain object in a field, resumes after a
    crash; loaded values are copies, never the caller's objects."""

    @dataclass
    class Local(Score):
        client: Client = field(default_factory=Client)
        done: list[str] = field(default_factory=list)

    crash = [True]

    async def first(s: Local) -> None:
        s.done.append("first")

    async def second(s: Local) -> None:
        if crash[0]:
            raise RuntimeError("crash")
        s.done.append("second")

    store = InMemoryCheckpointStore()

    def flow(score: Local) -> Cadence[Local]:
        return Cadence("local", score).with_checkpoint(store, run_id="r").then("first", first)

    with pytest.raises(Exception, match="crash"):
        await flow(Local()).then("second", second).run()
    crash[0] = False
    resumed = await flow(Local()).then("second", second).run()
    assert resumed.done == ["first", "second"]
    record = await store.load("r")
    assert record is not None and record.result.done == ["first", "second"]
    assert record.result.client is not resumed.client


async def test_serialize_true_refuses_what_durable_stores_refuse() -> None:
    """With `serialize=True` a value the durable stores cannot write is refused, by path."""
    store = InMemoryCheckpointStore(serialize=True)
    await store.acquire("r", owner="o", lease_seconds=5, kind="cadence", name="x")
    with pytest.raises(SerializationError, match=r"\$\.client"):
        await store.save_step("r", "0:a", {"client": Client()}, owner="o")


async def test_a_value_that_can_be_neither_copied_nor_serialized_is_named() -> None:
    """A lock deep inside the score is what the error names, not a plain object elsewhere
    that copies fine but the serializer cannot write."""
    import threading

    @dataclass
    class Held(Score):
        items: list[Client] = field(default_factory=list)
        client: dict[str, object] = field(default_factory=dict)

    async def fill(score: Held) -> None:
        score.items = [Client()]

    flow = Cadence("held", Held()).then("fill", fill)
    store = InMemoryCheckpointStore()
    with pytest.raises(SerializationError) as info:
        await flow.with_checkpoint(store, run_id="r").run(Held(client={"conn": threading.Lock()}))
    assert info.value.path == "$.score.client.conn"
    assert str(info.value).startswith("$.score.client.conn: cannot checkpoint a value of type lock")
    assert "neither copied" in str(info.value)


async def test_a_value_that_cannot_be_kept_is_found_through_back_references() -> None:
    """The search for what cannot be copied does not loop on an object that refers back to
    the score."""
    import threading

    class Session:
        def __init__(self, owner: object) -> None:
            self.owner = owner
            self.lock = threading.Lock()

    @dataclass
    class Owned(Score):
        session: object = None

    async def noop(score: Owned) -> None:
        return None

    score = Owned()
    score.session = Session(score)
    flow = Cadence("owned", Owned()).then("noop", noop)
    with pytest.raises(SerializationError) as info:
        await flow.with_checkpoint(InMemoryCheckpointStore(), run_id="r").run(score)
    assert info.value.path == "$.score.session.lock"
