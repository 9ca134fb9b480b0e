"""Crash and resume: a process SIGKILLed in the middle of a step loses nothing and repeats
nothing that finished, for every durable store and both front ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("crash_worker.py")


def _store(kind: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    tag = uuid.uuid4().hex[:10]
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}", {}
    if kind == "redis":
        return "redis://127.0.0.1:6379/0", {"prefix": f"crash-{tag}:"}
    return "postgresql://127.0.0.1:5432/test", {"table_prefix": f"crash_{tag}_"}


def _spawn(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: Path, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not (path.exists() and path.read_text().strip()):
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.communicate()[1].decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError("worker never reached the step to kill")
        time.sleep(0.02)


def _kill_in_s3(spec: dict[str, Any]) -> None:
    """Start a run that hangs in step s3, wait until s3 began, and SIGKILL its process."""
    proc = _spawn(spec)
    _wait_for(Path(spec["started"]), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    proc = _spawn(spec)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return json.loads(Path(spec["out"]).read_text())  # type: ignore[no-any-return]


@pytest.mark.servers
@pytest.mark.parametrize("front", ["flow", "cascade"])
@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_sigkill_mid_step_then_resume(tmp_path: Path, front: str, store: str) -> None:
    """Kill the owner during step s3; a new process resumes: s1 and s2 ran exactly once, and
    the final result equals an uninterrupted run's."""
    url, options = _store(store, tmp_path)
    base = {"front": front, "url": url, "store": options}

    clean = dict(
        base,
        run_id=f"clean-{uuid.uuid4().hex}",
        effects=str(tmp_path / "clean.txt"),
        started=str(tmp_path / "clean-started.txt"),
        hang_in=None,
        out=str(tmp_path / "clean.json"),
    )
    expected = _run(clean)

    run_id = f"crash-{uuid.uuid4().hex}"
    effects = tmp_path / "effects.txt"
    started = tmp_path / "started.txt"
    crash = dict(
        base,
        run_id=run_id,
        effects=str(effects),
        started=str(started),
        hang_in="s3",
        out=str(tmp_path / "crashed.json"),
    )
    _kill_in_s3(crash)
    assert effects.read_text().split() == ["s1", "s2"]

    resumed = _run(dict(crash, hang_in=None, out=str(tmp_path / "resumed.json")))
    assert effects.read_text().split() == ["s1", "s2", "s3", "s4"]
    assert resumed == expected

    # A third start of the completed run id returns the stored result and runs nothing.
    again = _run(dict(crash, hang_in=None, out=str(tmp_path / "again.json")))
    assert again == expected
    assert effects.read_text().split() == ["s1", "s2", "s3", "s4"]


@pytest.mark.servers
@pytest.mark.parametrize("front", ["flow", "cascade"])
@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_sigkill_then_immediate_rerun_takes_over(tmp_path: Path, front: str, store: str) -> None:
    """With the default 60 s lease, a re-run started right after the owner was killed takes
    the run over at once (the dead owner is on this host) and resumes after s2."""
    url, options = _store(store, tmp_path)
    run_id = f"takeover-{uuid.uuid4().hex}"
    effects = tmp_path / "effects.txt"
    started = tmp_path / "started.txt"
    crash = {
        "front": front,
        "url": url,
        "store": options,
        "run_id": run_id,
        "effects": str(effects),
        "started": str(started),
        "hang_in": "s3",
        "out": str(tmp_path / "crashed.json"),
        "lease_seconds": None,  # the library default, far longer than this test
        "retry_locked": False,  # a RunLockedError fails the re-run instead of waiting
    }
    _kill_in_s3(crash)
    assert effects.read_text().split() == ["s1", "s2"]

    resumed = _run(dict(crash, hang_in=None, out=str(tmp_path / "resumed.json")))
    assert effects.read_text().split() == ["s1", "s2", "s3", "s4"]
    if front == "flow":
        assert resumed == {"total": 1111, "seen": ["s1", "s2", "s3", "s4"]}
    else:
        assert resumed["path"] == ["s1", "s2", "s3", "s4"]
        assert resumed["final"] == {"running_total": 1111}
