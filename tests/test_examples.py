"""The README's commands on the examples keep working as shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"


def run(*args: str) -> str:
    """Run `python *args` from the repository root, as the README does; return stdout."""
    env = dict(os.environ, QUICKSTART_FAST="1", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout


def test_quickstart_example_runs() -> None:
    """examples/quickstart/main.py prints its decisions and a durable SQLite run."""
    out = run(str(QUICKSTART / "main.py"))
    assert "Stages executed: 3 (FAST_CHECK -> MEDIUM_CHECK -> EXPENSIVE_CHECK)" in out
    assert "re-running the run id returned the stored result: True" in out


def test_readme_replay_command_prints_the_comparison_shown() -> None:
    """The README's replay of the quick-start against its v2 prints the line it quotes."""
    out = run(
        *("-m", "cascadence", "replay", str(QUICKSTART / "cascade.yaml")),
        *("--input", str(QUICKSTART / "events.jsonl")),
        *("--candidate", str(QUICKSTART / "cascade.v2.yaml")),
    )
    assert "agreement: 100.00%   cost change: -32.3%   disagreements: 0" in out
