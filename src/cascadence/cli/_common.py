"""What every command shares: exit codes, the error a command stops with, and message output.

Only the standard library and typer are imported here, so `cascadence --help` stays fast;
commands import the rest of cascadence (and rich) when they run.
"""

from __future__ import annotations

import keyword
import os
import re
import sys
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from cascadence.errors import ConfigIssue

__all__ = [
    "CliError",
    "ExitCode",
    "add_import_folder",
    "camel_case",
    "check_output_file",
    "echo_err",
    "fail",
    "identifier",
    "make_folder",
    "print_issues",
    "rich_console",
    "write_files",
    "write_output",
]


class ExitCode(IntEnum):
    """Exit codes of the `cascadence` command; each kind of failure has its own."""

    OK = 0
    """The command did what it was asked."""
    BROKEN_PIPE = 1
    """The output was closed before the command finished writing (`cascadence run | head`)."""
    INVALID = 2
    """Invalid usage or input: bad options, an invalid cascade file, unreadable input JSON,
    an unknown `module:attribute`, a file that exists already, a missing tool."""
    FAILED_RUN = 3
    """`run` finished, but at least one decision failed (`success: false`)."""
    INTERNAL = 4
    """An unexpected error inside cascadence; re-run with `--debug` for the traceback."""
    INTERRUPTED = 130
    """Interrupted with Ctrl-C."""


class CliError(Exception):
    """Stop a command with a message and an exit code (printed as `error: message`).

    Args:
        message: What went wrong and what to do about it.
        code: The exit code; invalid input unless said otherwise.
    """

    def __init__(self, message: str, code: ExitCode = ExitCode.INVALID) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: ExitCode = ExitCode.INVALID) -> NoReturn:
    """Raise `CliError(message, code)`."""
    raise CliError(message, code)


def echo_err(message: str, *, fg: str | None = None, bold: bool = False) -> None:
    """Print a plain line to stderr (colored only on a terminal; never wrapped)."""
    typer.secho(message, err=True, fg=fg, bold=bold)


def print_issues(issues: list[ConfigIssue], *, err: bool = False) -> None:
    """Print config issues as `file:line:col: path: message` blocks."""
    for issue in issues:
        text = issue.format()
        head, _, rest = text.partition("\n")
        typer.secho(head, err=err, fg="red")
        if rest:
            typer.echo(rest, err=err)


def rich_console(*, stderr: bool = False) -> Console:
    """A rich console that stays readable when the output is a file or a pipe."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, highlight=False, width=160)
    return console


def add_import_folder(folder: str | os.PathLike[str]) -> None:
    """Put `folder` first on `sys.path`, so modules kept there import by name."""
    path = str(Path(folder).resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^0-9a-zA-Z]+")


def _quoted(chars: list[str]) -> str:
    shown = [repr(c) for c in chars]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def identifier(name: str, *, what: str = "name", separators: str = "-") -> str:
    """`name` as a snake_case Python identifier: `process-payment` -> `process_payment`.

    `name` must already be an identifier once each of `separators` reads as `_`; CamelCase
    becomes snake_case. Anything else is refused rather than rewritten, with the closest
    valid name in the message.

    Args:
        name: The name as typed.
        what: What the name is for, as the error message says it (`"flow name"`).
        separators: Characters allowed in `name` that stand for `_`.

    Raises:
        CliError: `name` has other characters, starts with a digit, has no letter or is a
            keyword.
    """
    snake = _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", name)).strip("_").lower()
    kind = what.split()[0]
    normal = name.translate({ord(c): "_" for c in separators})
    if not name.strip():
        problem = "it is empty"
    elif not (normal.isascii() and normal.isidentifier()):
        bad = sorted({c for c in normal if not (c.isascii() and (c.isalnum() or c == "_"))})
        if bad:
            problem = f"{_quoted(bad)} {'is' if len(bad) == 1 else 'are'} not allowed"
        else:
            problem = "it starts with a digit"
    elif not snake:
        problem = "it has no letter or digit"
    elif snake[0].isdigit():
        problem = "it starts with a digit"
    elif keyword.iskeyword(snake):
        problem = f"{snake!r} is a Python keyword"
    else:
        return snake
    if not snake:
        suggestion = None
    elif snake[0].isdigit():
        suggestion = f"{kind}_{snake}"
    elif keyword.iskeyword(snake):
        suggestion = f"{snake}_{kind}"
    else:
        suggestion = snake
    allowed = ", ".join(repr(c) for c in separators)
    fail(
        f"{what} {name!r} cannot become a Python identifier: {problem}; expected letters, "
        f"digits, {allowed} or '_', starting with a letter, like 'checkout'"
        + (f"; did you mean {suggestion!r}?" if suggestion else "")
    )


def camel_case(snake: str) -> str:
    """`process_payment` -> `ProcessPayment`."""
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def _reason(exc: OSError) -> str:
    """What the operating system said, without the errno and path (`Permission denied`)."""
    return exc.strerror or str(exc)


def check_output_file(path: Path) -> None:
    """Refuse a path a command cannot write a file to, before writing anything.

    The folder the file goes into must exist: it is not created, so a mistyped path stops with
    an error instead of leaving new folders behind (`init` and `--dir` create their folder).

    Raises:
        CliError: `path` is a folder, or its folder does not exist or is a file.
    """
    if path.is_dir():
        fail(f"cannot write {path}: it is a folder; expected the name of a file")
    folder = path.parent
    if not folder.is_dir():
        if folder.exists():
            fail(f"cannot write {path}: {folder} is a file, not a folder")
        fail(f"cannot write {path}: the folder {folder} does not exist; create it first")


def make_folder(folder: Path) -> None:
    """Create `folder` and its missing parents.

    Raises:
        CliError: It cannot be created (a parent is a file, no permission, a read-only file
            system...).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next(
            (p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None
        )
        reason = f"{blocker} is a file, not a folder" if blocker is not None else _reason(exc)
        fail(f"cannot create folder {folder}: {reason}")


def write_output(path: Path, data: bytes) -> None:
    """Write a command's document to `path`, in a folder that exists (see `check_output_file`).

    Raises:
        CliError: The file cannot be written; the message names it and gives the reason.
    """
    check_output_file(path)
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {path}: {_reason(exc)}")


def write_files(files: dict[Path, str], *, force: bool, make_folders: bool = True) -> None:
    """Write each file, refusing (before writing any) to replace existing ones unless `force`.

    Args:
        files: The text of each file to write.
        force: Replace files that exist.
        make_folders: Create the folders the files go into (a project, a `--dir`); when false,
            each file's folder must exist already (an output file named by the user).

    Raises:
        CliError: A path is a folder, a file exists and `force` is false, a folder does not
            exist (without `make_folders`) or cannot be created, or a file cannot be written.
    """
    for path in files:
        if path.is_dir():
            fail(f"cannot write {path}: it is a folder; expected the name of a file")
        if not make_folders:
            check_output_file(path)
    if not force:
        taken = [str(p) for p in files if p.exists()]
        if taken:
            fail(
                f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; "
                "pass --force to overwrite"
            )
    if make_folders:
        for folder in dict.fromkeys(path.parent for path in files):
            make_folder(folder)
    for path, text in files.items():
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {path}: {_reason(exc)}")
