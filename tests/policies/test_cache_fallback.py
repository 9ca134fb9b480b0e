"""Result cache TTL and keys, and fallbacks."""

from __future__ import annotations

from cascadence.policies import Fallback, ResultCache, StepPolicy, fallback_from
from cascadence.runtime.invoke import call_step
from cascadence.testing import FakeClock


async def test_cache_hits_within_ttl_and_expires_after() -> None:
    """A cached result is reused until its TTL passes on the injected clock."""
    clock = FakeClock()
    calls = []

    async def handler(arg: dict) -> int:
        calls.append(arg)
        return len(calls)

    policy = StepPolicy(cache=ResultCache(ttl=60, clock=clock))
    assert await call_step("s", handler, {"a": 1}, policy) == 1
    assert await call_step("s", handler, {"a": 1}, policy) == 1
    assert await call_step("s", handler, {"a": 2}, policy) == 2
    clock.advance(61)
    assert await call_step("s", handler, {"a": 1}, policy) == 3


async def test_cache_key_fields_ignore_other_fields() -> None:
    """With key_fields, inputs differing only elsewhere share one entry."""
    calls = []

    async def handler(arg: dict) -> int:
        calls.append(arg)
        return len(calls)

    policy = StepPolicy(cache=ResultCache(ttl=60, key_fields=["user.id"], clock=FakeClock()))
    await call_step("s", handler, {"user": {"id": 1}, "n": 1}, policy)
    await call_step("s", handler, {"user": {"id": 1}, "n": 2}, policy)
    assert len(calls) == 1


async def test_fallback_value_and_field() -> None:
    """A failing step yields the fallback default, written to the named field when given."""

    class Target:
        status = "?"

    async def broken(_: object) -> None:
        raise RuntimeError("x")

    target = Target()
    policy = StepPolicy(fallback=Fallback(default="unknown", field="status"))
    value = await call_step("s", broken, target, policy, assign=setattr)
    assert value == "unknown"
    assert target.status == "unknown"


def test_fallback_copies_mutable_defaults() -> None:
    """A list default is copied per use so runs never share it."""
    fb = fallback_from({"default": [], "field": "context"})
    assert fb is not None
    first = fb.value(RuntimeError())
    first.append(1)
    assert fb.value(RuntimeError()) == []
    nested = fallback_from({"default": {"docs": []}, "field": "context"})
    assert nested is not None
    nested.value(RuntimeError())["docs"].append("alice's note")
    assert nested.value(RuntimeError()) == {"docs": []}  # nested containers are not shared


async def test_expired_results_are_freed_without_being_asked_for_again() -> None:
    """Results for keys that never come back are dropped once expired, as traffic goes on,
    instead of filling the cache up to its size bound."""
    clock = FakeClock()
    cache = ResultCache(ttl=1, clock=clock)
    policy = StepPolicy(cache=cache)

    async def handler(arg: dict) -> int:
        return arg["n"]

    for n in range(1000):
        await call_step("s", handler, {"n": n}, policy)
        clock.advance(0.01)  # 100 results per second, each key used once
    assert len(cache.store) <= 110  # about one second's worth, not a thousand


async def test_a_cache_key_stands_for_content_never_an_address() -> None:
    """A plain object keys by identity, and its cache entry keeps it alive, so a later
    object at the same address is never served its result; dataclasses, sets, dates and
    bytes key by content; an input that contains itself is not cached."""
    import datetime
    from dataclasses import dataclass

    from cascadence.policies import NO_KEY, cache_key

    class Obj:
        def __init__(self, n: int) -> None:
            self.n = n

    cache = ResultCache(ttl=60)
    policy = StepPolicy(cache=cache)
    calls: list[int] = []

    async def handler(data: dict[str, Obj]) -> int:
        calls.append(data["o"].n)
        return data["o"].n

    for n in range(50):  # objects come and go: each gets its own answer
        assert await call_step("s", handler, {"o": Obj(n)}, policy) == n
    assert calls == list(range(50))
    same = {"o": Obj(99)}
    assert await call_step("s", handler, same, policy) == 99
    assert await call_step("s", handler, same, policy) == 99
    assert calls.count(99) == 1  # the same object is a hit
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    assert cache.key_for(cyclic) is NO_KEY

    @dataclass
    class Point:
        x: int

    day = datetime.date(2026, 1, 1)
    assert cache_key({"p": Point(1), "s": {2, 1}, "d": day, "b": b"\x01"}, None) == cache_key(
        {"b": b"\x01", "d": day, "s": {1, 2}, "p": Point(1)}, None
    )
    assert cache_key({"p": Point(1)}, None) != cache_key({"p": Point(2)}, None)
