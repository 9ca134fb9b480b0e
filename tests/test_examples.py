"""The README's first command runs the quick-start example; it must keep working as shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_quickstart_example_runs() -> None:
    """examples/quickstart/main.py prints its decisions and a durable SQLite run."""
    env = dict(os.environ, QUICKSTART_FAST="1")
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart" / "main.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    ).stdout
    assert "Stages executed: 3 (FAST_CHECK -> MEDIUM_CHECK -> EXPENSIVE_CHECK)" in out
    assert "re-running the run id returned the stored result: True" in out
