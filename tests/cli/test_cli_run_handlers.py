"""`cascadence run` with handlers that misbehave: one that calls `sys.exit` (or raises
`GeneratorExit`) fails its stage for that input and the batch goes on; Ctrl-C still stops it;
a result that contains itself is written as JSON with `"<cycle>"` where it repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Cli

from cascadence.cli import ExitCode

HANDLERS = """\
import asyncio
import sys


def leave(ctx):
    if ctx.get("exit") is not None:
        sys.exit(ctx.get("exit"))
    if ctx.get("generator_exit"):
        raise GeneratorExit("closing")
    if ctx.get("interrupt"):
        raise KeyboardInterrupt
    return {"result": "pass", "confidence": 0.9}


async def leave_async(ctx):
    await asyncio.sleep(0)
    if ctx.get("exit") is not None:
        raise SystemExit(ctx.get("exit"))
    if ctx.get("generator_exit"):
        raise GeneratorExit
    return {"result": "pass", "confidence": 0.9}


def after(ctx):
    return {"result": "after", "confidence": 0.5}


def itself(ctx):
    result = {"result": "pass", "data": {}}
    if ctx.get("cycle"):
        result["self"] = result
        result["data"]["items"] = [result["data"]]
    return result
"""

LEAVING = """\
name: leaving
stages:
  SYNC:
    handler: "leave_handlers:leave"
  ASYNC:
    handler: "leave_handlers:leave_async"
  AFTER:
    handler: "leave_handlers:after"
"""

CYCLE = """\
name: cycle
stages:
  SELF:
    handler: "leave_handlers:itself"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "leave_handlers.py").write_text(HANDLERS)
    (tmp_path / "leaving.yaml").write_text(LEAVING)
    (tmp_path / "cycle.yaml").write_text(CYCLE)
    return tmp_path


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def write_inputs(folder: Path, items: list[dict[str, object]]) -> None:
    (folder / "in.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))


@pytest.mark.parametrize(
    ("exit_input", "called"),
    [
        ({"exit": 3}, "called sys.exit(3)"),
        ({"exit": 0}, "called sys.exit(0)"),
        ({"exit": "bye"}, "called sys.exit('bye')"),
        ({"generator_exit": True}, "raised GeneratorExit"),
    ],
)
def test_a_handler_leaving_the_process_fails_its_stage_and_the_batch_goes_on(
    cli: Cli, project: Path, exit_input: dict[str, object], called: str
) -> None:
    """The input whose handlers left fails, with an error naming each stage and what its
    handler did (sync in a worker thread, and async); the inputs after it still run."""
    write_inputs(project, [{"id": "a"}, {"id": "b", **exit_input}, {"id": "c"}])
    done = cli("run", "leaving.yaml", "--input", "in.jsonl", "--json")
    assert done.returncode == ExitCode.FAILED_RUN, done.stderr
    rows = lines(done.stdout)
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    assert [row["success"] for row in rows] == [True, False, True]
    failed = rows[1]
    errors = {error["stage"]: error for error in failed["errors"]}  # type: ignore[union-attr]
    assert set(errors) == {"SYNC", "ASYNC"}
    for stage, error in errors.items():
        assert error["type"] == "HandlerExit"
        assert error["error"].startswith(f"the handler of stage {stage!r} ")
        assert "the stage fails for this input and the batch goes on" in error["error"]
    assert called in errors["SYNC"]["error"]
    assert failed["path"] == ["SYNC", "ASYNC", "AFTER"]  # the cascade itself went on too
    assert "1 of 3 decision(s) failed" in done.stderr
    assert "Traceback" not in done.stderr and "never retrieved" not in done.stderr


def test_the_table_names_the_stage_whose_handler_called_sys_exit(cli: Cli, project: Path) -> None:
    write_inputs(project, [{"id": "a", "exit": 2}, {"id": "b"}])
    done = cli("run", "leaving.yaml", "--input", "in.jsonl")
    assert done.returncode == ExitCode.FAILED_RUN, done.stderr
    assert "SYNC: HandlerExit: the handler of stage 'SYNC' called sys.exit(2)" in done.stdout
    assert "#1 b" in done.stdout


def test_a_keyboard_interrupt_still_stops_the_batch(cli: Cli, project: Path) -> None:
    """Ctrl-C is not a handler's mistake: it ends the run with exit code 130."""
    write_inputs(project, [{"id": "a", "interrupt": True}, {"id": "b"}])
    done = cli("run", "leaving.yaml", "--input", "in.jsonl", "--json", "--concurrency", "1")
    assert done.returncode == ExitCode.INTERRUPTED, done.stderr
    assert done.stdout == ""  # the input after it did not run


def test_json_output_writes_a_result_that_contains_itself(cli: Cli, project: Path) -> None:
    """A handler's result that refers to itself is written with "<cycle>" where it repeats;
    the other decisions are untouched and nothing is an internal error."""
    write_inputs(project, [{"id": "a"}, {"id": "b", "cycle": True}, {"id": "c"}])
    done = cli("run", "cycle.yaml", "--input", "in.jsonl", "--json")
    assert done.returncode == ExitCode.OK, done.stderr
    rows = lines(done.stdout)
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    stage = rows[1]["stage_results"]["SELF"]  # type: ignore[index]
    assert stage["result"] == "pass"
    assert stage["self"]["self"] == "<cycle>"  # the stage result is a copy of the handler's
    assert stage["data"] == {"items": ["<cycle>"]}
    assert rows[0]["stage_results"] == {  # type: ignore[comparison-overlap]
        "SELF": {**rows[0]["stage_results"]["SELF"], "data": {}}  # type: ignore[index]
    }
    assert "internal error" not in done.stderr
    table = cli("run", "cycle.yaml", "--input", "in.jsonl", "--details")
    assert table.returncode == ExitCode.OK, table.stderr
