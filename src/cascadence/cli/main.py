"""The `cascadence` command: the typer application and the `main()` entry point.

Commands live in their own modules and import the rest of cascadence only when they run, so
`cascadence --help` and shell completion answer quickly.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from cascadence.cli._common import CliError, ExitCode, echo_err
from cascadence.cli.console import console
from cascadence.cli.diagram import diagram, schema
from cascadence.cli.replay import replay
from cascadence.cli.run import run
from cascadence.cli.scaffold import init, new_app
from cascadence.cli.validate import validate

__all__ = ["EPILOG", "app", "main"]

EPILOG = (
    "Exit codes: 0 success; 2 invalid usage or input (bad options, invalid cascade file, "
    "bad input JSON, unknown module:attribute, existing file, missing Graphviz); "
    "3 a run finished with failed decisions; 4 internal error (re-run with --debug for the "
    "traceback); 130 interrupted; 1 output closed early (broken pipe)."
)

app = typer.Typer(
    name="cascadence",
    help="Cost-aware decision cascades and resilient flows: scaffold, validate, draw and run them.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    debug = bool(os.environ.get("CASCADENCE_DEBUG"))


def _version(value: bool) -> None:
    if value:
        from cascadence._version import __version__

        typer.echo(f"cascadence {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback of an internal error (also: CASCADENCE_DEBUG=1).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cost-aware decision cascades and resilient flows: scaffold, validate, draw and run them."""
    if debug:
        _State.debug = True


app.command()(init)
app.add_typer(new_app)
app.command()(validate)
app.command()(diagram)
app.command()(run)
app.command()(replay)
app.command()(schema)
app.command()(console)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (see `ExitCode`).

    Args:
        argv: Arguments without the program name; default `sys.argv[1:]`.
    """
    try:
        app(args=list(argv) if argv is not None else None, prog_name="cascadence")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return ExitCode.OK
        if isinstance(code, int):
            return code
        echo_err(str(code))
        return ExitCode.INVALID
    except CliError as exc:
        echo_err(f"error: {exc.message}", fg="red")
        return exc.code
    except KeyboardInterrupt:
        echo_err("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if _State.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        echo_err(f"internal error: {type(exc).__name__}: {exc}", fg="red")
        if not _State.debug:
            echo_err("re-run with --debug (or CASCADENCE_DEBUG=1) to see the traceback")
        return ExitCode.INTERNAL
    return ExitCode.OK
