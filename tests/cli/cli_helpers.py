"""Helpers of the command-line tests: the environment a `cascadence` subprocess runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cascadence

SRC = str(Path(cascadence.__file__).resolve().parent.parent)
REPO = Path(__file__).resolve().parents[2]

Cli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a command run: cascadence importable, no colors, no debug."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FORCE_COLOR", "CASCADENCE_DEBUG", "COLUMNS", "PYTEST_ADDOPTS"}
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env["NO_COLOR"] = "1"
    env["QUICKSTART_FAST"] = "1"
    env.update(extra)
    return env


def python_in(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python ARGS` in `cwd` with the command-line tests' environment; never raises on
    a failing exit code (the test asserts on it)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        check=False,
    )
