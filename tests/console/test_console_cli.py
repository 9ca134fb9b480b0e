"""`cascadence console`: a real uvicorn on 127.0.0.1 serving the console of a cascade file and a
flow module, and clear refusals of what it cannot show."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cli.cli_helpers import cli_env

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"

FLOW_MODULE = """
from dataclasses import dataclass
from cascadence import Cadence, Score

@dataclass
class Order(Score):
    total: float = 0.0

async def price(score):
    score.total = 1.0

checkout = Cadence("checkout", Order()).then("price", price)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_command_serves_the_console(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(FLOW_MODULE, encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cascadence",
            "console",
            str(QUICKSTART / "cascade.yaml"),
            str(QUICKSTART / "cascade.v2.yaml"),
            "shop:checkout",
            "--runs",
            f"sqlite:///{tmp_path / 'runs.db'}",
            "--proposals",
            f"sqlite:///{tmp_path / 'proposals.db'}",
            "--port",
            str(port),
            "--no-mermaid",
        ],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            cascades = client.get("/api/cascades").json()
            flows = client.get("/api/flows").json()
            overview = client.get("/")
            runs = client.get("/api/runs").json()
            proposals = client.get("/api/proposals").json()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert [c["name"] for c in cascades] == ["trust_scoring_cascade", "trust_scoring_cascade@2.0"]
    assert [f["name"] for f in flows] == ["checkout"]
    assert overview.status_code == 200 and "<script" not in overview.text
    assert runs == [] and proposals == []
    assert f"cascadence console on http://127.0.0.1:{port}/" in err


def test_a_bad_target_or_store_is_refused_before_serving(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: x\nstages: {}\n", encoding="utf-8")

    def console(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cascadence", "console", *args, "--port", "1"],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    broken = console("broken.yaml")
    missing = console("nowhere.yaml")
    store = console("--runs", "sqllite:///runs.db")
    assert broken.returncode == 2
    assert "broken.yaml is not a valid cascade file" in broken.stderr
    assert missing.returncode == 2 and "nowhere.yaml" in missing.stderr
    assert store.returncode == 2 and "did you mean 'sqlite'?" in store.stderr
    assert "Traceback" not in broken.stderr + missing.stderr + store.stderr


def test_a_port_in_use_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    """A busy port exits 2 naming the address and `--port`, before announcing any URL."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "cascadence", "console", "--port", str(port)],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
    assert "cascadence console on" not in done.stderr
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr


def test_port_zero_announces_the_port_it_listens_on(tmp_path: Path) -> None:
    """With `--port 0` the announced URL carries the port the system chose, and it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "cascadence", "console", "--port", "0", "--no-mermaid"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        match = re.search(r"cascadence console on http://127\.0\.0\.1:(\d+)/", line)
        assert match is not None, line
        port = int(match.group(1))
        assert port != 0
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.1)
    finally:
        server.terminate()
        server.communicate(timeout=30)
