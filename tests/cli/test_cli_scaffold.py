"""The command itself (help, version, completion, exit codes) and what init/new/schema write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import Cli, cli_env, python_in

from cascadence.cli import ExitCode

COMMANDS = ["init", "new", "validate", "diagram", "run", "schema"]


def test_console_script_lists_every_command_and_the_exit_codes(tmp_path: Path) -> None:
    """The installed `cascadence` executable answers --help with every command and exit code."""
    script = Path(sys.executable).parent / "cascadence"
    assert script.exists()
    done = subprocess.run(
        [str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout
    assert "Exit codes" in done.stdout and "130" in done.stdout


@pytest.mark.parametrize(
    "command",
    [[], ["init"], ["new"], ["new", "cascade"], ["new", "cadence"], ["new", "note"]]
    + [[c] for c in COMMANDS[2:]],
    ids=lambda c: " ".join(c) or "root",
)
def test_every_command_has_help(cli: Cli, command: list[str]) -> None:
    """`--help` works on every command and subcommand and names the program `cascadence`."""
    done = cli(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"Usage: cascadence {' '.join(command)}".rstrip() in done.stdout


def test_command_line_imports_lazily() -> None:
    """Loading the command line pulls in neither pydantic, yaml, rich nor asyncio."""
    code = (
        "import sys, cascadence.cli.main\n"
        "print([m for m in ('pydantic', 'yaml', 'rich', 'asyncio') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert done.stdout.strip() == "[]"


def test_version_prints_the_package_version(cli: Cli) -> None:
    """`--version` prints the version of the package."""
    from cascadence._version import __version__

    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"cascadence {__version__}"


def test_shell_completion_completes_commands_and_choices(cli: Cli) -> None:
    """The completion protocol the installed shell scripts call completes commands and formats."""
    done = cli(
        env=cli_env(
            _CASCADENCE_COMPLETE="complete_bash", COMP_WORDS="cascadence va", COMP_CWORD="1"
        )
    )
    assert done.stdout.split() == ["validate"]
    done = cli(
        env=cli_env(
            _CASCADENCE_COMPLETE="complete_bash",
            COMP_WORDS="cascadence diagram x --format ",
            COMP_CWORD="4",
        )
    )
    assert done.stdout.split() == ["mermaid", "dot", "svg"]


def test_unknown_command_and_option_are_usage_errors(cli: Cli) -> None:
    """A misspelt command or option exits 2 (usage)."""
    assert cli("valdate").returncode == ExitCode.INVALID
    assert cli("schema", "--nope").returncode == ExitCode.INVALID


def test_init_project_passes_its_own_tests_and_runs(cli: Cli, tmp_path: Path) -> None:
    """`init` writes a project whose tests pass and whose cascade, flow and CLI commands work."""
    done = cli("init", "demo-app")
    assert done.returncode == 0, done.stderr
    root = tmp_path / "demo-app"
    for name in [
        "pyproject.toml",
        "README.md",
        "cascade.yaml",
        "events.jsonl",
        "demo_app/__init__.py",
        "demo_app/handlers.py",
        "demo_app/flows.py",
        "tests/test_cascade.py",
        "tests/test_flows.py",
    ]:
        assert (root / name).is_file(), name

    tests = python_in(
        root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", timeout=120
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout

    done = cli("run", "cascade.yaml", "--input", "events.jsonl", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["id"], r["final_result"], r["path"]) for r in rows] == [
        ("evt-1", "approve", ["SCREEN"]),
        ("evt-2", "approve", ["SCREEN", "REVIEW"]),
        ("evt-3", "reject", ["SCREEN", "REVIEW"]),
        ("evt-4", "reject", ["SCREEN"]),
    ]

    done = cli("validate", "cascade.yaml", "demo_app.flows", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok demo_app.flows:checkout_cadence" in done.stdout

    flow = python_in(root, "-m", "demo_app.flows")
    assert flow.stdout.strip() == "ORD-1: confirmed, total 29.5"


def test_init_refuses_a_folder_that_is_not_empty(cli: Cli, tmp_path: Path) -> None:
    """`init` into a non-empty folder exits 2 and writes nothing, unless --force."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("keep")
    done = cli("init", "proj")
    assert done.returncode == ExitCode.INVALID
    assert "--force" in done.stderr
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["notes.txt"]
    assert cli("init", "proj", "--force").returncode == 0
    assert (tmp_path / "proj" / "cascade.yaml").is_file()


@pytest.mark.parametrize("name", ["123", "class", "json", "cascadence", "--"])
def test_names_that_cannot_be_modules_are_refused(cli: Cli, name: str) -> None:
    """Names that are not identifiers, are keywords or shadow a module are refused with exit 2."""
    done = cli("new", "cadence", "--", name)
    assert done.returncode == ExitCode.INVALID
    assert "error:" in done.stderr


def test_new_cascade_validates_and_runs_as_generated(cli: Cli, tmp_path: Path) -> None:
    """`new cascade` writes a YAML file and its handlers, which validate and run at once."""
    done = cli("new", "cascade", "fraud-check")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fraud_check.yaml").is_file()
    assert (tmp_path / "fraud_check_handlers.py").is_file()
    assert cli("validate", "fraud_check.yaml").returncode == 0
    done = cli("run", "fraud_check.yaml", "--input", "-", input='{"amount": 10}')
    assert done.returncode == 0, done.stderr
    assert "approve" in done.stdout


def test_new_refuses_to_overwrite_without_force(cli: Cli, tmp_path: Path) -> None:
    """An existing file is kept (exit 2, nothing written) unless --force is given."""
    (tmp_path / "fraud_check_handlers.py").write_text("# mine\n")
    done = cli("new", "cascade", "fraud_check")
    assert done.returncode == ExitCode.INVALID
    assert "fraud_check_handlers.py" in done.stderr
    assert not (tmp_path / "fraud_check.yaml").exists()
    assert (tmp_path / "fraud_check_handlers.py").read_text() == "# mine\n"
    assert cli("new", "cascade", "fraud_check", "--force").returncode == 0
    assert "async def screen" in (tmp_path / "fraud_check_handlers.py").read_text()


def test_new_cadence_writes_a_flow_that_runs_draws_and_validates(cli: Cli, tmp_path: Path) -> None:
    """`new cadence Checkout` writes checkout.py with a Score, notes and checkout_cadence."""
    assert cli("new", "cadence", "Checkout", "--dir", "flows").returncode == 0
    module = tmp_path / "flows" / "checkout.py"
    assert "class CheckoutScore(Score):" in module.read_text()
    ran = python_in(module.parent, "-m", "checkout")
    assert ran.stdout.strip() == "ORD-1: confirmed, total 29.5"
    run_code = (
        "import asyncio, checkout; print(asyncio.run(checkout.checkout_cadence.run()).status)"
    )
    as_documented = python_in(module.parent, "-c", run_code)  # on the flow's own score
    assert as_documented.stdout.strip() == "confirmed", as_documented.stderr
    done = cli("diagram", "checkout:checkout_cadence", "--format", "mermaid", cwd=module.parent)
    assert done.returncode == 0, done.stderr
    assert "flowchart TD" in done.stdout and "calculate_total" in done.stdout
    done = cli("validate", "flows/checkout.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_new_note_writes_and_prints_a_decorated_note(cli: Cli, tmp_path: Path) -> None:
    """`new note process-payment --retry 3 --timeout 30` writes process_payment.py holding
    @note(retry=3, timeout=30.0), as `new cadence` writes its file, and prints the source;
    `-o -` only prints."""
    done = cli("new", "note", "process-payment", "--retry", "3", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "process_payment.py").read_text()
    assert "@note(retry=3, timeout=30.0)\nasync def process_payment(score: Score) -> None:" in (
        written
    )
    assert done.stdout == written
    assert "created" in done.stderr
    compile(done.stdout, "note.py", "exec")
    plain = cli("new", "note", "audit", "-o", "-")
    assert "@note\nasync def audit(" in plain.stdout
    assert not (tmp_path / "audit.py").exists()
    again = cli("new", "note", "process-payment")
    assert again.returncode == ExitCode.INVALID  # an existing file needs --force


def test_new_note_writes_an_importable_module(cli: Cli, tmp_path: Path) -> None:
    """`new note --output` writes a module whose note carries its retry policy."""
    assert cli("new", "note", "charge", "--retry", "2", "-o", "charge.py").returncode == 0
    probe = python_in(
        tmp_path, "-c", "import charge; print(charge.charge.__cascadence_policy__.retry)"
    )
    assert "max_attempts=2" in probe.stdout, probe.stderr
    assert cli("new", "note", "charge", "-o", "charge.py").returncode == ExitCode.INVALID


def test_new_note_rejects_a_retry_below_one(cli: Cli) -> None:
    """`--retry 0` is a usage error."""
    assert cli("new", "note", "x", "--retry", "0").returncode == ExitCode.INVALID


def test_schema_prints_the_cascade_json_schema(cli: Cli, tmp_path: Path) -> None:
    """`schema` prints CascadeConfig.json_schema(); --output writes the same text."""
    from cascadence.cascade.config import CascadeConfig

    done = cli("schema")
    assert done.returncode == 0
    assert json.loads(done.stdout) == CascadeConfig.json_schema()
    assert cli("schema", "-o", "s.json").returncode == 0
    assert (tmp_path / "s.json").read_text() == done.stdout


def test_the_spec_cli_block_works_as_written(cli: Cli, tmp_path: Path) -> None:
    """The code document's CLI commands work with `cadence` replaced by `cascadence`."""
    assert cli("init", "my-project").returncode == 0
    assert cli("new", "cadence", "checkout").returncode == 0
    note = cli("new", "note", "process-payment", "--retry", "3", "--timeout", "30")
    assert "@note(retry=3, timeout=30.0)" in note.stdout
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "checkout.py").rename(tmp_path / "myapp" / "cadences.py")
    drawn = cli("diagram", "myapp.cadences:checkout_cadence", "--format", "mermaid")
    assert drawn.returncode == 0, drawn.stderr
    assert "flowchart TD" in drawn.stdout
    checked = cli("validate", "myapp.cadences")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok myapp.cadences:checkout_cadence: flow 'checkout', 3 steps" in checked.stdout
