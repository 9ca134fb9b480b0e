"""Hot reload from a watched file: valid versions swap in; invalid ones are reported, kept out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cascadence import CascadeConfig, CascadeEngine, ConfigError
from cascadence.cascade.reload import ConfigWatcher

V1 = """
name: watched
version: "1"
stages:
  A: {}
"""
V2 = V1.replace('version: "1"', 'version: "2"')
BROKEN = """
name: watched
version: "3"
stages:
  A: {}
execution_order: [A, B]
"""


async def _a(_ctx: Any) -> dict[str, Any]:
    return {"result": "a"}


def _engine(path: Path) -> CascadeEngine:
    engine = CascadeEngine(CascadeConfig.from_file(path))
    engine.register_stage("A", _a)
    return engine


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    # make sure the (mtime, size) signature changes even on a coarse clock
    stat = path.stat()
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_check_applies_valid_and_rejects_invalid_versions(tmp_path: Path) -> None:
    """A valid edit swaps in; a broken one keeps the running version and reports why."""
    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)
    errors: list[BaseException] = []
    watcher = ConfigWatcher(engine, path, on_error=errors.append, use_watchfiles=False)
    assert watcher.check() is False  # unchanged
    _write(path, V2)
    assert watcher.check() is True
    assert engine.config.version == "2"
    _write(path, BROKEN)
    assert watcher.check() is False
    assert engine.config.version == "2"
    assert isinstance(errors[0], ConfigError)
    assert "execution_order" in str(errors[0]) and "cascade.yaml:6" in str(errors[0])
    assert watcher.last_error is errors[0]


@pytest.mark.parametrize("use_watchfiles", [False, True])
async def test_background_watcher_reloads(tmp_path: Path, use_watchfiles: bool) -> None:
    """Started in the background (polling or watchfiles), the watcher picks up an edit."""
    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)
    async with ConfigWatcher(engine, path, poll_interval=0.01, use_watchfiles=use_watchfiles):
        await asyncio.sleep(0.1)
        _write(path, V2)
        for _ in range(300):
            if engine.config.version == "2":
                break
            await asyncio.sleep(0.02)
    assert engine.config.version == "2"
    assert (await engine.execute({}))["version"] == "2"


async def test_engine_and_update_config_take_a_path_object(tmp_path: Path) -> None:
    """`CascadeEngine(Path)` and `update_config(Path)` read the file, as a str path does."""
    path = tmp_path / "c.yaml"
    _write(path, V1)
    engine = CascadeEngine(path)
    engine.register_stage("A", _a)
    assert (await engine.execute({}))["version"] == "1"
    _write(path, V2)
    engine.update_config(path)
    assert (await engine.execute({}))["version"] == "2"


async def test_update_config_with_an_unimportable_handler_keeps_the_running_version() -> None:
    """A new version naming a handler that cannot be imported is refused as a whole: the old
    version keeps running, with its handlers."""
    from cascadence import PlanError

    engine = CascadeEngine({"name": "c", "version": "1", "stages": {"A": {}}})
    engine.register_stage("A", _a)
    new = {
        "name": "c",
        "version": "2",
        "stages": {"A": {}, "D": {"handler": "no_such_module_xyz:fn"}},
    }
    with pytest.raises(PlanError, match="no_such_module_xyz"):
        engine.update_config(new)
    assert engine.config.version == "1"
    result = await engine.execute({})
    assert result["success"] and result["version"] == "1" and result["path"] == ["A"]


async def test_update_config_registers_the_new_stages_handlers_in_the_same_step() -> None:
    """A version adding stage B can bring B's handler along; a wrong name in `handlers`
    refuses the whole version."""
    from cascadence import PlanError

    async def b(_ctx: Any) -> dict[str, Any]:
        return {"result": "b"}

    engine = CascadeEngine({"name": "c", "version": "1", "stages": {"A": {}}})
    engine.register_stage("A", _a)
    two = {"name": "c", "version": "2", "stages": {"A": {}, "B": {}}}
    with pytest.raises(PlanError, match="'C'"):
        engine.update_config(two, handlers={"C": b})
    assert engine.config.version == "1"
    engine.update_config(two, handlers={"B": b})
    result = await engine.execute({})
    assert result["version"] == "2" and result["path"] == ["A", "B"]


@pytest.mark.parametrize("use_watchfiles", [False, True])
async def test_saves_by_rename_are_seen_every_time(tmp_path: Path, use_watchfiles: bool) -> None:
    """Editors and deploy tools save by writing a temporary file and renaming it over the
    old one: every such save is picked up, and so is a plain write after them."""
    import os

    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)

    async def until(version: str) -> None:
        for _ in range(400):
            if engine.config.version == version:
                return
            await asyncio.sleep(0.02)

    async with ConfigWatcher(engine, path, poll_interval=0.05, use_watchfiles=use_watchfiles):
        await asyncio.sleep(0.2)
        for version in ("2", "3", "4"):
            temporary = tmp_path / "cascade.yaml.tmp"
            temporary.write_text(V1.replace('version: "1"', f'version: "{version}"'))
            os.replace(temporary, path)
            await until(version)
            assert engine.config.version == version
        _write(path, V1.replace('version: "1"', 'version: "5"'))
        await until("5")
    assert engine.config.version == "5"


def test_a_version_with_a_stage_lacking_a_handler_is_kept_out(tmp_path: Path) -> None:
    """The watcher refuses a file adding a stage nobody can run: executions would all fail."""
    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)
    errors: list[BaseException] = []
    watcher = ConfigWatcher(engine, path, on_error=errors.append, use_watchfiles=False)
    _write(path, V2 + "  B: {}\n")
    assert watcher.check() is False
    assert engine.config.version == "1"
    assert "no handler for stage(s) B" in str(errors[0])
    assert list(engine.config.stages) == ["A"]


def _handler_module(tmp_path: Path) -> None:
    (tmp_path / "reload_handlers_mod.py").write_text(
        "def v1(ctx):\n    return {'result': 'v1'}\n\ndef v2(ctx):\n    return {'result': 'v2'}\n"
    )


async def test_a_changed_import_path_takes_the_new_handler(tmp_path: Path) -> None:
    """A reload that points a stage at another function runs that function; a handler
    registered in code is kept whatever the file says."""
    _handler_module(tmp_path)
    one = tmp_path / "one.yaml"
    two = tmp_path / "two.yaml"
    text = "name: h\nversion: '{v}'\nstages:\n  A:\n    handler: reload_handlers_mod:{fn}\n"
    one.write_text(text.format(v=1, fn="v1"))
    two.write_text(text.format(v=2, fn="v2"))
    engine = CascadeEngine(CascadeConfig.from_file(one))
    assert (await engine.execute({}))["final_result"] == "v1"
    engine.update_config(CascadeConfig.from_file(two))
    assert (await engine.execute({}))["final_result"] == "v2"
    engine.register_stage("A", lambda ctx: {"result": "code"})
    engine.update_config(CascadeConfig.from_file(one))
    assert (await engine.execute({}))["final_result"] == "code"


async def test_a_replaced_handler_does_not_serve_the_old_ones_cached_results() -> None:
    """Cached results belong to the handler that made them: replacing it, by registration or
    in a reload, starts from an empty cache; a reload that keeps it keeps the cache."""
    config = {"name": "c", "version": "1", "stages": {"A": {"cache_enabled": True}}}
    engine = CascadeEngine(config)
    calls: list[str] = []

    def make(tag: str) -> Any:
        def handler(_ctx: Any) -> dict[str, Any]:
            calls.append(tag)
            return {"result": tag}

        return handler

    engine.register_stage("A", make("v1"))
    assert (await engine.execute({"u": 1}))["final_result"] == "v1"
    assert (await engine.execute({"u": 1}))["final_result"] == "v1"
    assert calls == ["v1"]
    engine.register_stage("A", make("v2"))
    assert (await engine.execute({"u": 1}))["final_result"] == "v2"
    engine.update_config({**config, "version": "2"})  # same handler: cache kept
    assert (await engine.execute({"u": 1}))["final_result"] == "v2"
    assert calls == ["v1", "v2"]
    engine.update_config({**config, "version": "3"}, handlers={"A": make("v3")})
    assert (await engine.execute({"u": 1}))["final_result"] == "v3"


async def test_breaker_lookup_follows_the_running_version() -> None:
    """After a reload that changes a stage's breaker settings, `breaker(stage)` is the one
    new executions use, and the old one is let go."""

    def config(threshold: int) -> dict[str, Any]:
        breaker = {"failure_threshold": threshold, "reset_timeout_seconds": 60}
        return {"name": "b", "stages": {"A": {"circuit_breaker": breaker}}}

    def fail(_ctx: Any) -> None:
        raise RuntimeError("down")

    engine = CascadeEngine(config(2))
    engine.register_stage("A", fail)
    for _ in range(2):
        await engine.execute({})
    assert engine.breaker("A").state.value == "open"
    engine.update_config(config(5))
    fresh = engine.breaker("A")
    assert fresh.state.value == "closed" and fresh.failure_threshold == 5
    assert len([slot for slot in engine._state if slot[1].startswith("breaker:")]) == 1


def test_an_engine_with_max_in_flight_serves_one_event_loop_after_another() -> None:
    """A bounded engine works under `asyncio.run` twice (a semaphore per loop)."""
    engine = CascadeEngine({"name": "m", "stages": {"A": {}}}, max_in_flight=1)

    async def slow(_ctx: Any) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"result": "ok"}

    engine.register_stage("A", slow)

    async def burst() -> list[bool]:
        results = await asyncio.gather(*(engine.execute({"i": i}) for i in range(3)))
        return [r["success"] for r in results]

    assert asyncio.run(burst()) == [True, True, True]
    assert asyncio.run(burst()) == [True, True, True]
    with pytest.raises(ValueError, match="at least 1"):
        CascadeEngine({"name": "m", "stages": {"A": {}}}, max_in_flight=0)


def test_a_version_whose_handler_module_fails_to_import_is_reported_and_kept_out(
    tmp_path: Path,
) -> None:
    """A handler module raising at import (or with a syntax error) is reported through
    on_error like any bad version; the watcher goes on and applies the next good one."""
    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('no config')\n")
    (tmp_path / "bad_syntax.py").write_text("def f(:\n")
    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)
    errors: list[BaseException] = []
    watcher = ConfigWatcher(engine, path, on_error=errors.append, use_watchfiles=False)
    for module in ("broken_at_import", "bad_syntax"):
        _write(path, V2 + f"  B:\n    handler: {module}:f\n")
        assert watcher.check() is False
        assert engine.config.version == "1"
    assert "RuntimeError: no config" in str(errors[0])
    assert "SyntaxError" in str(errors[1]) and "bad_syntax.py:1" in str(errors[1])
    _write(path, V2)
    assert watcher.check() is True and engine.config.version == "2"


async def test_callbacks_that_fail_are_logged_and_async_ones_are_awaited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_error that raises does not stop the watching (the next good version applies);
    async on_reload / on_error callbacks run."""
    path = tmp_path / "cascade.yaml"
    path.write_text(V1)
    engine = _engine(path)
    seen: list[str] = []

    def broken(_exc: BaseException) -> None:
        raise RuntimeError("the callback itself fails")

    async def reloaded(config: CascadeConfig) -> None:
        await asyncio.sleep(0)
        seen.append(config.version)

    watcher = ConfigWatcher(engine, path, on_error=broken, on_reload=reloaded, use_watchfiles=False)
    _write(path, BROKEN)
    assert watcher.check() is False
    assert "the watcher's broken callback failed" in caplog.text
    _write(path, V2)
    assert watcher.check() is True
    await asyncio.sleep(0.01)
    assert seen == ["2"] and engine.config.version == "2"

    errors: list[str] = []

    async def async_error(exc: BaseException) -> None:
        errors.append(type(exc).__name__)

    watcher.on_error = async_error
    _write(path, BROKEN)
    assert watcher.check() is False
    await asyncio.sleep(0.01)
    assert errors == ["ConfigError"]
