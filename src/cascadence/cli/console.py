"""`cascadence console`: serve the web console (cascades, flows, runs, APLS proposals)."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from cascadence.cli._common import ExitCode, add_import_folder, echo_err, fail, print_issues

__all__ = ["build_console", "console", "listen"]


def _targets(targets: list[str]) -> list[Any]:
    from cascadence.cli.targets import is_cascade_file, load_objects

    found: list[Any] = []
    for target in targets:
        if is_cascade_file(target):
            from cascadence.cascade.config import CascadeConfig
            from cascadence.errors import ConfigError

            try:
                found.append(CascadeConfig.from_file(target))
            except ConfigError as exc:
                print_issues(exc.issues, err=True)
                fail(f"{target} is not a valid cascade file ({len(exc.issues)} problem(s))")
            except OSError as exc:
                fail(f"{target}: cannot read it: {exc.strerror or exc}")
        else:
            found.extend(obj.value for obj in load_objects(target))
    return found


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` and listening, for the server to accept on.

    Binding here, before anything is announced, turns an address in use (or one this machine
    does not have) into a usage error that names it, rather than a server log line.

    Raises:
        CliError: The address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":  # as uvicorn does: restart at once after a stop
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = (
            "; is another console or server running there? Choose another port with --port"
            if exc.errno == errno.EADDRINUSE
            else "; check --host, or choose another port with --port"
        )
        fail(f"cannot listen on {host}:{port}: {reason}{hint}")
    sock.set_inheritable(True)
    return sock


def build_console(
    targets: list[str],
    runs: str | None = None,
    proposals: str | None = None,
    mermaid: bool = True,
) -> Any:
    """The console app for the command's arguments.

    Raises:
        CliError: A target does not load, two share a name, a store URL is not understood, or
            the `console` extra is not installed.
    """
    try:
        from cascadence.console import MERMAID_URL, create_console
    except ImportError as exc:
        fail(f"the console needs the console extra: pip install 'cascadence[console]' ({exc})")
    add_import_folder(Path.cwd())
    objects = _targets(targets)
    try:
        return create_console(
            objects,
            runs=runs,
            proposals=proposals,
            mermaid_url=MERMAID_URL if mermaid else None,
        )
    except ValueError as exc:
        fail(str(exc))


def console(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Cascade files (.yaml/.yml/.json) and Python targets (package.module:attribute, "
            "or a module for every flow and cascade it defines) to show.",
            show_default=False,
        ),
    ] = None,
    runs: Annotated[
        str | None,
        typer.Option(
            "--runs",
            help="Checkpoint store whose runs to show, e.g. sqlite:///runs.db or "
            "redis://127.0.0.1:6379/0.",
        ),
    ] = None,
    proposals: Annotated[
        str | None,
        typer.Option(
            "--proposals",
            help="APLS proposal store to review, e.g. sqlite:///proposals.db or postgresql://...",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (only this machine by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8400,
    mermaid: Annotated[
        bool,
        typer.Option(
            "--mermaid/--no-mermaid",
            help="Draw diagrams with Mermaid loaded from its CDN; --no-mermaid shows their source.",
        ),
    ] = True,
) -> None:
    """Serve the web console: cascades and flows, runs in a checkpoint store, and APLS
    proposals to approve or reject."""
    app = build_console(list(targets or []), runs, proposals, mermaid)
    import uvicorn

    sock = listen(host, port)  # before anything is announced: a busy port is a usage error
    if host not in ("127.0.0.1", "localhost", "::1"):
        echo_err(
            f"warning: listening on {host}: anyone who can reach it can review proposals; put "
            "the console behind a login (see docs/console.md)",
            fg="yellow",
        )
    bound = sock.getsockname()[1]  # the port the system chose for --port 0
    shown = f"[{host}]" if ":" in host else host
    echo_err(f"cascadence console on http://{shown}:{bound}/ (Ctrl+C to stop)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C is how the console stops
        pass
    finally:
        sock.close()
    if not server.started:  # the app failed to start; uvicorn logged why
        fail("the console did not start (see the error above)", ExitCode.INTERNAL)
