"""`init` and `new` refuse names that are not identifiers instead of rewriting them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Cli

from cascadence.cli import ExitCode


@pytest.mark.parametrize("kind", ["cascade", "cadence", "note"])
@pytest.mark.parametrize(
    ("name", "problem", "suggestion"),
    [
        ("bad name!", "' ' and '!' are not allowed", "bad_name"),
        ("pay.ment", "'.' is not allowed", "pay_ment"),
        ("café", "'é' is not allowed", None),
        ("3d-check", "it starts with a digit", "{kind}_3d_check"),
        ("import", "'import' is a Python keyword", "import_{kind}"),
        ("--", "it has no letter or digit", None),
        ("", "it is empty", None),
    ],
    ids=["space-bang", "dot", "non-ascii", "digit", "keyword", "dashes", "empty"],
)
def test_new_refuses_a_name_that_is_not_an_identifier(
    cli: Cli, tmp_path: Path, kind: str, name: str, problem: str, suggestion: str | None
) -> None:
    """Exit 2 with what is wrong, what was expected and the closest valid name; no traceback,
    no file written."""
    done = cli("new", kind, "--", name)
    assert done.returncode == ExitCode.INVALID, done.stdout
    assert done.stderr.startswith("error: ")
    assert f"name {name!r} cannot become a Python identifier: {problem}" in done.stderr
    assert "expected letters, digits, '-' or '_', starting with a letter" in done.stderr
    if suggestion is not None:
        word = {"cascade": "cascade", "cadence": "flow", "note": "note"}[kind]
        assert f"did you mean {suggestion.format(kind=word)!r}?" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "name", "written"),
    [
        ("note", "process-payment", "process_payment.py"),
        ("cadence", "ProcessPayment", "process_payment.py"),
        ("cascade", "fraud-check", "fraud_check.yaml"),
        ("cadence", "check_out", "check_out.py"),
    ],
)
def test_new_still_accepts_dashes_and_camel_case(
    cli: Cli, tmp_path: Path, kind: str, name: str, written: str
) -> None:
    """`-` reads as `_` and CamelCase becomes snake_case, as the docs promise."""
    done = cli("new", kind, name)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / written).is_file()


def test_the_documented_note_command_works(cli: Cli, tmp_path: Path) -> None:
    """`new note process-payment --retry 3 --timeout 30` from the docs writes its module."""
    done = cli("new", "note", "process-payment", "--retry", "3", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    assert "async def process_payment(" in (tmp_path / "process_payment.py").read_text()


def test_new_note_printing_only_checks_the_name_too(cli: Cli, tmp_path: Path) -> None:
    """`--output -` writes nothing, and still refuses a bad name."""
    done = cli("new", "note", "bad name", "--output", "-")
    assert done.returncode == ExitCode.INVALID
    assert "did you mean 'bad_name'?" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my project", "' ' is not allowed; expected letters, digits, '-', '.' or '_'"),
        ("3-tier", "it starts with a digit"),
        ("my-project-", "must start and end with a letter or digit"),
        ("_private", "must start and end with a letter or digit"),
    ],
)
def test_init_refuses_a_project_name_that_is_not_a_package(
    cli: Cli, tmp_path: Path, name: str, message: str
) -> None:
    """`init` refuses names that cannot be a package or a distribution name, writing nothing."""
    done = cli("init", name)
    assert done.returncode == ExitCode.INVALID
    assert message in done.stderr
    assert "did you mean" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "package"), [("my-project", "my_project"), ("acme.checkout", "acme_checkout")]
)
def test_init_accepts_dashes_and_dots_in_the_project_name(
    cli: Cli, tmp_path: Path, name: str, package: str
) -> None:
    """A project name may hold `-` and `.`; its package has `_` instead."""
    done = cli("init", name)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / name / package / "__init__.py").is_file()
    assert f'name = "{name}"' in (tmp_path / name / "pyproject.toml").read_text()


def test_init_of_the_current_folder_asks_for_a_project_name(cli: Cli, tmp_path: Path) -> None:
    """`init .` names no project folder: the message says what is expected."""
    done = cli("init", ".")
    assert done.returncode == ExitCode.INVALID
    assert "init needs the name of the project folder to create" in done.stderr
    assert list(tmp_path.iterdir()) == []
