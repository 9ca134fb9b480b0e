"""Run the real `cascadence` command as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import Cli, cli_env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """`cli(*args, cwd=tmp_path, input=None, env=None)` runs `python -m cascadence *args`."""

    def run(
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cascadence", *args],
            cwd=cwd or tmp_path,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            env=env or cli_env(),
            check=False,
        )

    return run
