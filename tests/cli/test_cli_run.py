"""`cascadence run`: inputs, output forms, the summary, checkpoints and every exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from cli_helpers import REPO, Cli, cli_env

from cascadence.cli import ExitCode

QUICKSTART = str(REPO / "examples" / "quickstart" / "cascade.yaml")

EVENTS = [
    {"id": "u1", "user_id": "user_1"},
    {"id": "t1", "user_id": "trusted_alice"},
]

FLAKY_YAML = """\
name: flaky
stages:
  CHECK:
    handler: "flaky_handlers:check"
    cost: 2
"""

FLAKY_HANDLERS = """\
import asyncio
import pathlib


async def check(context):
    if context.get("fail"):
        raise ValueError("asked to fail")
    if context.get("hang"):
        pathlib.Path("started").write_text("yes")
        await asyncio.sleep(60)
    return {"result": context.get("answer", "yes"), "confidence": context.get("confidence", 0.9)}
"""


def jsonl(items: Sequence[Mapping[str, object]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


@pytest.fixture
def flaky(tmp_path: Path) -> Path:
    """A one-stage cascade whose handler fails, hangs or answers as its input asks."""
    (tmp_path / "flaky_handlers.py").write_text(FLAKY_HANDLERS)
    path = tmp_path / "flaky.yaml"
    path.write_text(FLAKY_YAML)
    return path


def test_run_prints_a_table_of_decisions_and_a_summary(cli: Cli, tmp_path: Path) -> None:
    """The table shows each decision's path, result and cost; the summary counts them."""
    (tmp_path / "events.jsonl").write_text(jsonl(EVENTS))
    done = cli("run", QUICKSTART, "--input", "events.jsonl")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "#0 u1" in out and "#1 t1" in out
    assert "FAST_CHECK > MEDIUM_CHECK > EXPENSIVE_CHECK" in out
    for title in ["Decisions", "Summary", "Decisions by outcome", "Stages executed"]:
        assert title in out
    assert "Errors: none" in out
    assert "total cost" in out and "62" in out  # two decisions of cost 31


def test_run_summary_counts_condition_warnings(cli: Cli, tmp_path: Path) -> None:
    """A rule that met a value of the wrong type (a quoted number in the input) was false;
    the summary says so, with the field and how often."""
    (tmp_path / "wq_handlers.py").write_text(
        "def a(ctx):\n    return {'result': 1}\n\ndef b(ctx):\n    return {'result': 2}\n"
    )
    (tmp_path / "wq.yaml").write_text(
        "name: wq\nstages:\n  A:\n    handler: 'wq_handlers:a'\n    routing_rules:\n"
        "      - {name: r, condition: 'amount > 5', action: {type: terminate}}\n"
        "  B:\n    handler: 'wq_handlers:b'\n"
    )
    (tmp_path / "events.jsonl").write_text(jsonl([{"amount": "7"}, {"amount": 9}]))
    done = cli("run", "wq.yaml", "--input", "events.jsonl")
    assert done.returncode == 0, done.stderr
    assert "Condition warnings (those tests were false)" in done.stdout
    assert "'>' compares int 5 with a str" in done.stdout


def test_run_json_prints_one_line_per_decision_in_order(cli: Cli, tmp_path: Path) -> None:
    """--json prints the engine's results as JSON lines on stdout; the summary goes to stderr."""
    (tmp_path / "events.jsonl").write_text(jsonl(EVENTS * 10))
    done = cli("run", QUICKSTART, "-i", "events.jsonl", "--json", "--concurrency", "4")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(20))
    assert [r["id"] for r in rows[:2]] == ["u1", "t1"]
    assert rows[0]["path"] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    assert rows[0]["success"] is True and rows[0]["cost"] == 31
    assert "Summary" in done.stderr


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (json.dumps(EVENTS), ["u1", "t1"]),
        (jsonl(EVENTS), ["u1", "t1"]),
        (json.dumps(EVENTS[0], indent=2) + "\n", ["u1"]),
    ],
    ids=["array", "lines", "object"],
)
def test_run_reads_stdin_in_every_input_form(cli: Cli, text: str, ids: list[str]) -> None:
    """`--input -` reads a JSON array, JSON lines or one (pretty-printed) object."""
    done = cli("run", QUICKSTART, "--input", "-", "--json", input=text)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": 1}\n{"id": \n', "events.jsonl:2:8: invalid JSON line"),
        ('{\n  "a": 1,\n  "b": }\n', "events.jsonl:3:8: invalid JSON"),
        ("[1, 2]", "events.jsonl:1:2: item 0 is a JSON number; expected a JSON object"),
        (
            '[\n {"id": "a"},\n {"id": "b"},\n   "oops"\n]\n',
            "events.jsonl:4:4: item 2 is a JSON string; expected a JSON object",
        ),
        ('{"a": 1}\n"text"\n', "events.jsonl:2: a JSON string; expected one JSON object per line"),
        ("  \n", "events.jsonl: the input is empty"),
    ],
    ids=["bad-line", "bad-document", "not-objects", "item-not-object", "line-not-object", "empty"],
)
def test_invalid_input_exits_2_with_its_line(
    cli: Cli, tmp_path: Path, text: str, message: str
) -> None:
    """Input that is not JSON objects exits 2 naming the file, line and column."""
    (tmp_path / "events.jsonl").write_text(text)
    done = cli("run", QUICKSTART, "--input", "events.jsonl")
    assert done.returncode == ExitCode.INVALID
    assert message in done.stderr


def test_missing_input_file_exits_2(cli: Cli) -> None:
    """An input file that does not exist exits 2."""
    done = cli("run", QUICKSTART, "--input", "nope.jsonl")
    assert done.returncode == ExitCode.INVALID
    assert "cannot read input nope.jsonl" in done.stderr


def test_invalid_config_exits_2_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    """An invalid cascade file is reported at file:line on stderr before anything runs."""
    (tmp_path / "bad.yaml").write_text("name: x\nstages:\n  A:\n    cost: -1\n    enabled: maybe\n")
    done = cli("run", "bad.yaml", "--input", "-", input="{}")
    assert done.returncode == ExitCode.INVALID
    assert "bad.yaml:4:" in done.stderr and "bad.yaml:5:" in done.stderr
    assert "is not a valid cascade file" in done.stderr


def test_stage_without_handler_exits_2(cli: Cli, tmp_path: Path) -> None:
    """Running a cascade whose stage has no handler path exits 2 and says what to add."""
    (tmp_path / "c.yaml").write_text("name: x\nstages:\n  A: {}\n")
    done = cli("run", "c.yaml", "--input", "-", input="{}")
    assert done.returncode == ExitCode.INVALID
    assert "no handler for stage(s) A" in done.stderr and "handler:" in done.stderr


def test_unimportable_handler_exits_2_at_its_line(cli: Cli, tmp_path: Path) -> None:
    """A handler path that cannot be imported stops the run with its file:line."""
    (tmp_path / "c.yaml").write_text('name: x\nstages:\n  A:\n    handler: "gone:fn"\n')
    done = cli("run", "c.yaml", "--input", "-", input="{}")
    assert done.returncode == ExitCode.INVALID
    assert "c.yaml:4:5: stages.A.handler:" in done.stderr


def test_failed_decisions_exit_3_and_are_summarised(cli: Cli, flaky: Path) -> None:
    """A decision whose stage raises fails; the others complete; the run exits 3."""
    text = jsonl([{"id": "ok"}, {"id": "bad", "fail": True}, {"id": "no", "answer": "no"}])
    done = cli("run", str(flaky), "--input", "-", input=text)
    assert done.returncode == ExitCode.FAILED_RUN
    assert "1 of 3 decision(s) failed" in done.stderr
    assert "CHECK: ValueError: asked to fail" in done.stdout
    assert "ValueError" in done.stdout.split("Errors")[-1]
    json_run = cli("run", str(flaky), "--input", "-", "--json", input=text)
    assert json_run.returncode == ExitCode.FAILED_RUN
    rows = [json.loads(line) for line in json_run.stdout.splitlines()]
    assert [r["success"] for r in rows] == [True, False, True]
    assert [r["final_result"] for r in rows] == ["yes", None, "no"]


def test_json_output_is_strict_json_when_a_value_is_not_finite(cli: Cli, flaky: Path) -> None:
    """A confidence of NaN fails its stage (it is not a probability) and is written as null:
    every line parses with a strict JSON parser."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    done = cli("run", str(flaky), "--input", "-", "--json", input='{"id": "n", "confidence": NaN}')
    assert done.returncode == 3, done.stderr
    (row,) = [json.loads(line, parse_constant=refuse) for line in done.stdout.splitlines()]
    check = row["stage_results"]["CHECK"]
    assert row["final_confidence"] is None and check["confidence"] is None
    assert check["error"] == (
        "the handler returned confidence nan; expected a number from 0 to 1 (or none)"
    )


def test_details_and_explain_show_stages_and_rules(cli: Cli) -> None:
    """--details prints each decision's stages; --explain adds the routing rules evaluated."""
    done = cli(
        "run", QUICKSTART, "--input", "-", "--details", "--explain", input=json.dumps(EVENTS[0])
    )
    assert done.returncode == 0, done.stderr
    assert "#0 u1: pass (ok, cost 31)" in done.stdout
    assert "routing rules" in done.stdout
    assert "low_confidence_escalate" in done.stdout
    assert "stages.FAST_CHECK.confidence = 0.4 < 0.8" in done.stdout


def test_quiet_and_no_summary(cli: Cli) -> None:
    """--quiet leaves only the summary; --no-summary leaves only the decisions."""
    quiet = cli("run", QUICKSTART, "-q", input=json.dumps(EVENTS))
    assert "Summary" in quiet.stdout and "#0 u1" not in quiet.stdout
    bare = cli("run", QUICKSTART, "--no-summary", "--json", input=json.dumps(EVENTS))
    assert bare.stderr == "" and len(bare.stdout.splitlines()) == 2


def test_progress_bar_never_mixes_into_json_output(cli: Cli) -> None:
    """With a progress bar forced on, stdout still holds exactly one JSON line per decision."""
    done = cli("run", QUICKSTART, "--json", "--progress", input=jsonl(EVENTS * 40))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 80
    assert all(json.loads(line)["success"] for line in lines)


def test_progress_on_a_terminal_leaves_piped_json_intact(tmp_path: Path) -> None:
    """With stderr on a terminal and stdout piped, the automatic bar keeps off stdout."""
    import pty
    import threading

    (tmp_path / "events.jsonl").write_text(jsonl(EVENTS * 40))
    master, slave = pty.openpty()
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cascadence", "run", QUICKSTART, "-i", "events.jsonl", "--json"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            timeout=60,
            env=cli_env(TERM="xterm"),
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert done.returncode == 0
    lines = done.stdout.decode().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(80))
    assert b"Summary" in b"".join(seen)


def test_checkpoint_returns_stored_results_on_rerun(cli: Cli, tmp_path: Path) -> None:
    """With --checkpoint, run ids come from the id field and a re-run returns stored results."""
    (tmp_path / "events.jsonl").write_text(jsonl([*EVENTS, {"user_id": "user_9"}]))
    args = ("run", QUICKSTART, "-i", "events.jsonl", "--json", "--checkpoint", "sqlite:///runs.db")
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "runs.db").is_file()
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["run_id"] for r in rows] == ["u1", "t1", "trust_scoring_cascade-2"]
    again = cli(*args)
    assert again.stdout == first.stdout


def test_unknown_checkpoint_scheme_exits_2(cli: Cli) -> None:
    """A checkpoint URL with an unknown scheme exits 2 with the closest scheme."""
    done = cli("run", QUICKSTART, "--checkpoint", "sqlit:///x.db", input="{}")
    assert done.returncode == ExitCode.INVALID
    assert "did you mean 'sqlite'?" in done.stderr


def test_ctrl_c_exits_130(flaky: Path, tmp_path: Path) -> None:
    """SIGINT during a run stops it with exit code 130."""
    (tmp_path / "hang.json").write_text('{"hang": true}')
    proc = subprocess.Popen(
        [sys.executable, "-m", "cascadence", "run", str(flaky), "--input", "hang.json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        # A parent started in the background may ignore SIGINT; the child must not inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED


def test_closed_output_exits_1(tmp_path: Path) -> None:
    """When the reader of --json output goes away, the run exits 1 without a traceback."""
    (tmp_path / "events.jsonl").write_text(jsonl(EVENTS * 1500))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cascadence", "run", QUICKSTART, "-i", "events.jsonl", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["index"] == 0
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert proc.returncode == ExitCode.BROKEN_PIPE
    assert b"Traceback" not in err


def test_run_module_entry_point_matches_the_console_script(tmp_path: Path) -> None:
    """`python -m cascadence` and the `cascadence` executable give the same result."""
    script = Path(sys.executable).parent / "cascadence"
    outputs = []
    for command in ([str(script)], [sys.executable, "-m", "cascadence"]):
        done = subprocess.run(
            [*command, "run", QUICKSTART, "--json", "--no-summary"],
            input=json.dumps(EVENTS[1]),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout)["final_result"])
    assert outputs == ["pass", "pass"]
    assert os.access(script, os.X_OK)


def test_a_checkpoint_store_that_cannot_be_used_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    """A --checkpoint whose folder does not exist fails before any decision runs (exit 2)."""
    url = f"sqlite:///{tmp_path / 'missing' / 'runs.db'}"
    done = cli("run", QUICKSTART, "--checkpoint", url, input=json.dumps(EVENTS))
    assert done.returncode == ExitCode.INVALID
    assert "the store cannot be used" in done.stderr
    assert done.stdout == ""


def test_inputs_sharing_an_id_share_one_run(cli: Cli, tmp_path: Path) -> None:
    """Two inputs with one id under --checkpoint share one run, also when they are taken up
    at the same time: the second gets the first one's result, not a RunLockedError."""
    (tmp_path / "dups.jsonl").write_text(
        jsonl([{**EVENTS[0], "id": "same"}, {**EVENTS[1], "id": "same"}, EVENTS[1]])
    )
    done = cli("run", QUICKSTART, "-i", "dups.jsonl", "--json", "--checkpoint", "sqlite:///dups.db")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["run_id"] for r in rows][:2] == ["same", "same"]
    assert rows[0]["stage_results"] == rows[1]["stage_results"]
