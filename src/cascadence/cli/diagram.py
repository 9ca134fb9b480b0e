"""`cascadence diagram` and `cascadence schema`: render a cascade or flow, print the schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from cascadence.cli._common import CliError, ExitCode, fail, print_issues, write_output

__all__ = ["DiagramFormat", "GRAPHVIZ_HINT", "diagram", "load_drawable", "render", "schema"]

GRAPHVIZ_HINT = (
    "install graphviz (apt-get install graphviz, brew install graphviz) or use --format dot"
)


class DiagramFormat(str, Enum):
    """Output formats of `cascadence diagram`."""

    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


def load_drawable(target: str) -> Any:
    """The cascade config, engine or flow a target names (a module must define exactly one).

    Raises:
        CliError: The target is invalid, or a module defines several drawable objects.
    """
    from cascadence.cli.targets import is_cascade_file, load_objects

    if is_cascade_file(target):
        from cascadence.cascade.config import CascadeConfig
        from cascadence.errors import ConfigError

        try:
            return CascadeConfig.from_file(target)
        except ConfigError as exc:
            print_issues(exc.issues, err=True)
            fail(f"{target} is not a valid cascade file ({len(exc.issues)} problem(s))")
    found = load_objects(target)
    if len(found) > 1:
        names = ", ".join(f.label for f in found)
        fail(f"{target} defines several flows or cascades ({names}); name one as module:attribute")
    return found[0].value


def render(obj: Any, fmt: DiagramFormat) -> bytes:
    """The diagram of `obj` in `fmt` (SVG through the Graphviz `dot` program).

    Raises:
        CliError: SVG was asked for and `dot` is not installed (invalid input), or `dot` failed
            (internal error).
    """
    from cascadence.diagrams import to_dot, to_mermaid

    if fmt is DiagramFormat.mermaid:
        return to_mermaid(obj).encode()
    dot_text = to_dot(obj)
    if fmt is DiagramFormat.dot:
        return dot_text.encode()
    program = shutil.which("dot")
    if program is None:
        fail(
            f"--format svg needs the Graphviz 'dot' program, which is not on PATH: {GRAPHVIZ_HINT}"
        )
    done = subprocess.run(
        [program, "-Tsvg"], input=dot_text.encode(), capture_output=True, check=False
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise CliError(f"Graphviz 'dot' failed: {message}", ExitCode.INTERNAL)
    return done.stdout


def _emit(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_output(output, data)
        typer.secho(f"wrote {output}", err=True, fg="green")


OutputFile = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write to this file instead of stdout (in a folder that exists).",
        dir_okay=False,
    ),
]
"""The `--output/-o FILE` option of the commands that print a document."""


def diagram(
    target: Annotated[
        str,
        typer.Argument(
            help="A cascade file, or a flow or cascade as 'pkg.module:attribute'.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        DiagramFormat,
        typer.Option("--format", "-f", help="mermaid, dot, or svg (needs Graphviz)."),
    ] = DiagramFormat.mermaid,
    output: OutputFile = None,
) -> None:
    """Draw a cascade or a flow as a Mermaid flowchart, Graphviz DOT or SVG."""
    _emit(render(load_drawable(target), fmt), output)


def schema(
    output: OutputFile = None,
) -> None:
    """Print the JSON Schema of cascade files (for editor validation and completion)."""
    import json

    from cascadence.cascade.config import CascadeConfig

    text = json.dumps(CascadeConfig.json_schema(), indent=2) + "\n"
    _emit(text.encode(), output)
