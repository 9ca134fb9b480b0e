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
