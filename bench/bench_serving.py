"""Serving the quick-start cascade over HTTP: requests per second and latency, with and without
Prometheus and OpenTelemetry.

Run: `python bench/bench_serving.py` (add `--quick` for a shorter run, `--client httpx` to
drive the server with httpx instead of the minimal keep-alive client).

For each setup (plain, +Prometheus, +OpenTelemetry, +both) the script starts the app of
`cascadence.integrations.fastapi.create_app` on the quick-start YAML in a uvicorn subprocess on
127.0.0.1 (with `QUICKSTART_FAST=1`, so stages return at once and the figure is the serving
overhead), then drives it from a second process: a fixed number of requests at a fixed
concurrency over keep-alive connections, stopped early at a time limit. Setups are measured
in interleaved rounds (3 by default) so that load from elsewhere on the machine hits them
alike; it prints the median requests/s, p50 and p99 latency per setup, and each setup's ratio
to plain.

OpenTelemetry uses the SDK with a batch span processor and an exporter that drops spans, as a
production setup would minus the network. Prometheus counts every run, stage and request.

The minimal client (default) writes a pre-built request and reads the response by its
Content-Length; with one event loop it costs a fraction of what httpx costs per request, so
on a small machine the numbers describe the server rather than the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart" / "cascade.yaml"
SETUPS = ("plain", "prometheus", "otel", "both")
BODIES = [
    json.dumps({"user_id": f"{'trusted_' if i % 2 else 'user_'}{i}", "amount": i}).encode()
    for i in range(64)
]


# -- the server --------------------------------------------------------------------------------
def build_app(setup: str) -> Any:
    """The decision app for one setup."""
    from prometheus_client import CollectorRegistry

    from cascadence.integrations.fastapi import create_app
    from cascadence.reporters import OpenTelemetryReporter, PrometheusReporter

    metrics: Any = False
    tracing: Any = False
    if setup in ("prometheus", "both"):
        metrics = PrometheusReporter(registry=CollectorRegistry())
    if setup in ("otel", "both"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class DropExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DropExporter()))
        tracing = OpenTelemetryReporter(service_name="bench", tracer_provider=provider)
    return create_app(str(QUICKSTART), metrics=metrics, tracing=tracing)


def serve(setup: str, port: int) -> None:
    """Run the app with uvicorn until terminated."""
    import uvicorn

    uvicorn.run(
        build_app(setup),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
    )


# -- the load generator ------------------------------------------------------------------------
def _request(body: bytes) -> bytes:
    return (
        b"POST /decide HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def _raw_worker(
    port: int, todo: list[int], latencies: list[float], deadline: float, errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [_request(b) for b in BODIES]
    perf = time.perf_counter
    try:
        while todo and perf() < deadline:
            i = todo.pop()
            started = perf()
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(perf() - started)
            if status != b"200":
                errors.append(status.decode())
    finally:
        writer.close()


async def _httpx_worker(
    client: Any, todo: list[int], latencies: list[float], deadline: float, errors: list[str]
) -> None:
    perf = time.perf_counter
    headers = {"content-type": "application/json"}
    while todo and perf() < deadline:
        i = todo.pop()
        started = perf()
        response = await client.post("/decide", content=BODIES[i % len(BODIES)], headers=headers)
        latencies.append(perf() - started)
        if response.status_code != 200:
            errors.append(str(response.status_code))


async def _drive(
    port: int, requests: int, concurrency: int, time_limit: float, client_kind: str
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    todo = list(range(requests))
    started = time.perf_counter()
    deadline = started + time_limit
    if client_kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:
            await asyncio.gather(
                *(
                    _httpx_worker(client, todo, latencies, deadline, errors)
                    for _ in range(concurrency)
                )
            )
    else:
        await asyncio.gather(
            *(_raw_worker(port, todo, latencies, deadline, errors) for _ in range(concurrency))
        )
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": len(errors),
        "seconds": elapsed,
        "rps": n / elapsed if elapsed else 0.0,
        "p50_ms": latencies[n // 2] * 1000.0 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000.0 if n else 0.0,
    }


def load(args: argparse.Namespace) -> None:
    """Warm up, then measure; print one JSON line."""
    asyncio.run(_drive(args.port, args.warmup, args.concurrency, 30.0, args.client))
    result = asyncio.run(
        _drive(args.port, args.requests, args.concurrency, args.time_limit, args.client)
    )
    print(json.dumps(result))


# -- the orchestration -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def measure(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    """One setup: start its server, drive it from another process, stop it."""
    port = _free_port()
    env = {**os.environ, "QUICKSTART_FAST": "1", "PYTHONPATH": str(ROOT / "src")}
    me = str(Path(__file__).resolve())
    server = subprocess.Popen(
        [sys.executable, me, "serve", "--setup", setup, "--port", str(port)], env=env
    )
    try:
        _wait_ready(port, server)
        out = subprocess.run(
            [
                sys.executable,
                me,
                "load",
                "--port",
                str(port),
                "--requests",
                str(args.requests),
                "--warmup",
                str(args.warmup),
                "--concurrency",
                str(args.concurrency),
                "--time-limit",
                str(args.time_limit),
                "--client",
                args.client,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=args.time_limit + 60,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    srv = sub.add_parser("serve")
    srv.add_argument("--setup", choices=SETUPS, required=True)
    srv.add_argument("--port", type=int, required=True)
    for p in (parser, sub.add_parser("load")):
        p.add_argument("--port", type=int, default=0)
        p.add_argument("--requests", type=int, default=10_000)
        p.add_argument("--warmup", type=int, default=1_000)
        p.add_argument("--concurrency", type=int, default=32)
        p.add_argument("--time-limit", type=float, default=20.0)
        p.add_argument("--client", choices=("raw", "httpx"), default="raw")
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.setup, args.port)
        return
    if args.quick:
        args.requests, args.warmup, args.time_limit, args.rounds = 3_000, 300, 8.0, 1
    if args.command == "load":
        load(args)
        return
    print(
        f"quick-start cascade over HTTP on 127.0.0.1: {args.requests} requests at concurrency "
        f"{args.concurrency} (limit {args.time_limit:g}s), {args.client} client, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    runs: dict[str, list[dict[str, Any]]] = {setup: [] for setup in SETUPS}
    for round_no in range(args.rounds):  # interleaved, so drift on a shared machine hits all
        for setup in SETUPS:
            runs[setup].append(measure(setup, args))
        print(
            f"round {round_no + 1}/{args.rounds}: "
            + ", ".join(f"{s} {runs[s][-1]['rps']:.0f}/s" for s in SETUPS),
            flush=True,
        )
    results = {setup: _median(rs) for setup, rs in runs.items()}
    print(f"\nmedian of {args.rounds} round(s)")
    print(f"{'setup':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for setup in SETUPS:
        r = results[setup]
        print(
            f"{setup:<12}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}"
        )
    plain = results["plain"]
    print("\nratio to plain (throughput; p99 latency)")
    for setup in SETUPS[1:]:
        r = results[setup]
        print(
            f"{setup:<12}{r['rps'] / plain['rps']:>10.2f}x{r['p99_ms'] / plain['p99_ms']:>10.2f}x"
        )


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def mid(key: str) -> float:
        values = sorted(float(r[key]) for r in rounds)
        return values[len(values) // 2]

    return {
        "rps": mid("rps"),
        "p50_ms": mid("p50_ms"),
        "p99_ms": mid("p99_ms"),
        "errors": sum(int(r["errors"]) for r in rounds),
    }


if __name__ == "__main__":
    main()
