"""`cascadence init` and `cascadence new cascade|cadence|note`: files that run as generated."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadence.cli import templates
from cascadence.cli._common import camel_case, fail, identifier, write_files

__all__ = ["init", "new_app", "new_cadence", "new_cascade", "new_note", "note_source"]

new_app = typer.Typer(
    name="new",
    help="Generate a cascade, a flow or a note in the current folder.",
    no_args_is_help=True,
)

_FORCE = typer.Option("--force", help="Overwrite files that exist already.")
_DIR = typer.Option("--dir", help="Folder to write into (created if missing).", file_okay=False)


_PROJECT_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
"""A distribution name as `pyproject.toml` accepts it (PEP 508)."""


def _module_name(name: str, *, what: str, separators: str = "-") -> str:
    """A module name that does not shadow the standard library or cascadence itself."""
    module = identifier(name, what=what, separators=separators)
    if module in sys.stdlib_module_names or module == "cascadence":
        fail(
            f"{what} {name!r} would create a module {module!r} that shadows "
            f"{'cascadence' if module == 'cascadence' else 'the standard library'}; "
            "choose another name"
        )
    return module


def _written(paths: list[Path]) -> None:
    for path in paths:
        typer.secho(f"created {path}", fg="green")


def init(
    name: Annotated[
        str,
        typer.Argument(help="Project folder to create, e.g. my-project.", show_default=False),
    ],
    force: Annotated[bool, _FORCE] = False,
) -> None:
    """Create a project: a cascade with handlers, a flow, tests, sample events and a README.

    `my-project` becomes the folder `my-project/` holding the package `my_project`. The
    generated tests pass as generated: `cd my-project && python -m pytest`.
    """
    from cascadence._version import __version__

    root = Path(name)
    project = root.name
    if not project:
        fail(
            f"init needs the name of the project folder to create, like 'my-project', got {name!r}"
        )
    package = _module_name(project, what="project name", separators="-.")
    if not _PROJECT_NAME.fullmatch(project):  # the name goes into pyproject.toml as it is
        fail(
            f"project name {project!r} must start and end with a letter or digit (it is the "
            f"distribution name in pyproject.toml); did you mean {project.strip('-_.')!r}?"
        )
    if root.exists() and not root.is_dir():
        fail(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        fail(f"{root} exists and is not empty; pass --force to write into it")
    handlers = f"{package}.handlers"
    files = {
        root / "pyproject.toml": templates.PYPROJECT.substitute(
            project=project, package=package, version=__version__
        ),
        root / "README.md": templates.README.substitute(project=project, package=package),
        root / ".gitignore": templates.GITIGNORE,
        root / "cascade.yaml": templates.CASCADE_YAML.substitute(
            name=package, module=handlers, file="cascade.yaml", events="events.jsonl"
        ),
        root / "events.jsonl": templates.EVENTS_JSONL,
        root / package / "__init__.py": templates.PACKAGE_INIT.substitute(project=project),
        root / package / "handlers.py": templates.HANDLERS_MODULE.substitute(
            name=package, file="cascade.yaml"
        ),
        root / package / "flows.py": templates.FLOW_MODULE.substitute(
            name="checkout",
            module=f"{package}.flows",
            var="checkout_cadence",
            score="CheckoutScore",
        ),
        root / "tests" / "test_cascade.py": templates.TEST_CASCADE.substitute(),
        root / "tests" / "test_flows.py": templates.TEST_FLOWS.substitute(package=package),
    }
    write_files(files, force=force)
    _written(list(files))
    typer.echo(
        f"\nnext:\n  cd {root}\n  python -m pytest\n  "
        "cascadence run cascade.yaml --input events.jsonl"
    )


@new_app.command("cascade")
def new_cascade(
    name: Annotated[
        str, typer.Argument(help="Cascade name, e.g. fraud-check.", show_default=False)
    ],
    directory: Annotated[Path, _DIR] = Path("."),
    force: Annotated[bool, _FORCE] = False,
) -> None:
    """Write NAME.yaml, NAME_handlers.py and NAME_events.jsonl: a two-stage cascade that
    runs as generated on its sample events (`cascadence run NAME.yaml --input
    NAME_events.jsonl`, in that folder)."""
    cascade = _module_name(name, what="cascade name")
    yaml_path = directory / f"{cascade}.yaml"
    handlers_path = directory / f"{cascade}_handlers.py"
    events_path = directory / f"{cascade}_events.jsonl"
    files = {
        yaml_path: templates.CASCADE_YAML.substitute(
            name=cascade,
            module=f"{cascade}_handlers",
            file=yaml_path.name,
            events=events_path.name,
        ),
        handlers_path: templates.HANDLERS_MODULE.substitute(name=cascade, file=yaml_path.name),
        events_path: templates.EVENTS_JSONL,
    }
    write_files(files, force=force)
    _written(list(files))


@new_app.command("cadence")
def new_cadence(
    name: Annotated[str, typer.Argument(help="Flow name, e.g. checkout.", show_default=False)],
    directory: Annotated[Path, _DIR] = Path("."),
    force: Annotated[bool, _FORCE] = False,
) -> None:
    """Write NAME.py: a Score dataclass, notes and the NAME_cadence flow that runs them."""
    module = _module_name(name, what="flow name")
    path = directory / f"{module}.py"
    text = templates.FLOW_MODULE.substitute(
        name=module, module=module, var=f"{module}_cadence", score=f"{camel_case(module)}Score"
    )
    write_files({path: text}, force=force)
    _written([path])


def note_source(name: str, *, retry: int | None = None, timeout: float | None = None) -> str:
    """The source of a module holding one note function, decorated with its resilience."""
    function = identifier(name, what="note name")
    args = []
    said = []
    if retry is not None:
        args.append(f"retry={retry}")
        said.append(f"up to {retry} attempts")
    if timeout is not None:
        args.append(f"timeout={float(timeout)!r}")
        said.append(f"each attempt cancelled after {timeout:g} s")
    decorator = f"@note({', '.join(args)})" if args else "@note"
    summary = function.replace("_", " ").capitalize()
    summary += f": {'; '.join(said)}." if said else "."
    return templates.NOTE_FUNCTION.substitute(name=function, decorator=decorator, summary=summary)


@new_app.command("note")
def new_note(
    name: Annotated[
        str, typer.Argument(help="Note name, e.g. process-payment.", show_default=False)
    ],
    retry: Annotated[
        int | None,
        typer.Option(
            min=1, help="Attempts before giving up (retry with backoff).", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds before an attempt is cancelled.", show_default=False),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write, in a folder that exists (default: NAME.py in --dir); "
            "'-' only prints.",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[Path, _DIR] = Path("."),
    force: Annotated[bool, _FORCE] = False,
) -> None:
    """Write NAME.py holding a note function with @note(retry=..., timeout=...), and print it."""
    text = note_source(name, retry=retry, timeout=timeout)
    if output == "-":
        typer.echo(text, nl=False)
        return
    path = (
        Path(output)
        if output is not None
        else directory / f"{_module_name(name, what='note name')}.py"
    )
    # --output names a file: its folder must exist (a mistyped path creates no folders)
    write_files({path: text}, force=force, make_folders=output is None)
    typer.echo(text, nl=False)  # the source on stdout, what was written on stderr
    typer.secho(f"created {path}", fg="green", err=True)
