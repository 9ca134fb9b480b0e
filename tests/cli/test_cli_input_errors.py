"""Bad input to the `cascadence` command: each gets a clear error naming the file, the line or
the path, what was expected and the closest valid name; never an internal error.

- output paths that cannot be written (exit 2, `cannot write FILE: reason`), and output files in
  folders that do not exist (refused; `init` and `--dir` create their folder);
- targets that are files with a wrong or misspelt extension (the extension is reported, as by
  `run`, instead of an import of a module named like the file);
- handlers with the wrong signature (placed at the line of their `handler:` key, once);
- warnings, placed as `file:line:col: warning: ...` as errors are.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_helpers import REPO, Cli

from cascadence.cli import ExitCode

QUICKSTART = str(REPO / "examples" / "quickstart" / "cascade.yaml")

HANDLERS = """\
def two_args(a, b):
    return {"result": "ok"}


def no_args():
    return {"result": "ok"}


def screen(context):
    return {"result": "ok", "confidence": 0.9}
"""

SIG_TWO_ARGS = """\
name: sig
stages:
  A:
    handler: "hmod:two_args"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def lines_of(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


# -- 1. output paths ---------------------------------------------------------------------------

# Each command that writes one file the user names, with that file's path as the last argument.
OUTPUT_COMMANDS = [
    pytest.param(["diagram", QUICKSTART, "-o"], id="diagram"),
    pytest.param(["schema", "--output"], id="schema"),
    pytest.param(["new", "note", "process-payment", "--output"], id="new-note"),
]


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_output_file_in_a_missing_folder_is_refused_and_no_folder_is_created(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    """An output file's folder is not created: a mistyped path exits 2 and leaves nothing."""
    done = cli(*command, "missing/dir/out.txt")
    assert done.returncode == ExitCode.INVALID, done.stderr
    assert (
        "error: cannot write missing/dir/out.txt: the folder missing/dir does not exist; "
        "create it first"
    ) in done.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_output_file_in_an_existing_folder_is_written(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    """The same commands write into a folder that exists."""
    (tmp_path / "out").mkdir()
    done = cli(*command, "out/doc.txt")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "doc.txt").read_text()


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_output_file_below_a_file_says_so(cli: Cli, tmp_path: Path, command: list[str]) -> None:
    """A path through a file (`notes.txt/x`) names the file that is in the way."""
    (tmp_path / "notes.txt").write_text("")
    done = cli(*command, "notes.txt/out.txt")
    assert done.returncode == ExitCode.INVALID, done.stderr
    assert "error: cannot write notes.txt/out.txt: notes.txt is a file, not a folder" in (
        done.stderr
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["init", "blocker/proj"], "cannot create folder blocker/proj"),
        (["new", "cascade", "fraud", "--dir", "blocker/sub"], "cannot create folder blocker/sub"),
        (
            ["new", "cadence", "checkout", "--dir", "blocker/sub"],
            "cannot create folder blocker/sub",
        ),
        (["new", "note", "pay", "--dir", "blocker/sub"], "cannot create folder blocker/sub"),
    ],
)
def test_project_folder_that_cannot_be_created_exits_2(
    cli: Cli, tmp_path: Path, command: list[str], message: str
) -> None:
    """`init` and `--dir` create their folder; when a file is in the way, they exit 2 and say
    which file."""
    (tmp_path / "blocker").write_text("")
    done = cli(*command)
    assert done.returncode == ExitCode.INVALID, done.stderr
    assert "internal error" not in done.stderr
    assert message in done.stderr and "blocker is a file, not a folder" in done.stderr


def test_init_and_dir_still_create_missing_folders(cli: Cli, tmp_path: Path) -> None:
    """Creating a project folder (and its parents) is what `init` and `--dir` are for."""
    assert cli("init", "work/my-project").returncode == 0
    assert (tmp_path / "work" / "my-project" / "cascade.yaml").is_file()
    assert cli("new", "cascade", "fraud-check", "--dir", "a/b").returncode == 0
    assert (tmp_path / "a" / "b" / "fraud_check.yaml").is_file()
    assert cli("new", "note", "pay", "--dir", "c/d").returncode == 0
    assert (tmp_path / "c" / "d" / "pay.py").is_file()


def test_output_that_is_a_folder_is_refused_even_with_force(cli: Cli, tmp_path: Path) -> None:
    """`--output FOLDER` is not a file that "already exists": it cannot be written at all."""
    (tmp_path / "out").mkdir()
    for force in ([], ["--force"]):
        done = cli("new", "note", "pay", "--output", "out", *force)
        assert done.returncode == ExitCode.INVALID, done.stderr
        assert "error: cannot write out: it is a folder; expected the name of a file" in (
            done.stderr
        )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["diagram", QUICKSTART, "-o", "/proc/x.md"], "error: cannot write /proc/x.md: "),
        (["schema", "--output", "/proc/x.json"], "error: cannot write /proc/x.json: "),
        (["new", "note", "pay", "--output", "/proc/x.py"], "error: cannot write /proc/x.py: "),
        (["new", "cascade", "fraud", "--dir", "/proc/x"], "error: cannot create folder /proc/x: "),
        (["init", "/proc/proj"], "error: cannot create folder /proc/proj: "),
    ],
)
def test_path_the_system_refuses_is_invalid_input_not_an_internal_error(
    cli: Cli, command: list[str], message: str
) -> None:
    """A folder nothing can be written to (`/proc`) exits 2 with the reason, not exit 4."""
    done = cli(*command)
    assert done.returncode == ExitCode.INVALID, done.stderr
    assert message in done.stderr
    assert "internal error" not in done.stderr and "Error:" not in done.stderr


# -- 2. targets with a wrong extension ---------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "diagram"])
@pytest.mark.parametrize(
    ("name", "exists", "extension", "hint"),
    [
        ("cascade.ymal", True, "'.ymal'", "did you mean '.yml'?"),
        ("cascade.txt", True, "'.txt'", None),
        ("cascade", True, "'(none)'", None),
        ("missing.ymal", False, "'.ymal'", "did you mean '.yml'?"),
        ("missing.jsn", False, "'.jsn'", "did you mean '.json'?"),
        ("sub/missing.yml~", False, "'.yml~'", "did you mean '.yml'?"),
    ],
)
def test_a_file_with_a_wrong_extension_is_reported_as_run_reports_it(
    cli: Cli,
    tmp_path: Path,
    command: str,
    name: str,
    exists: bool,
    extension: str,
    hint: str | None,
) -> None:
    """An existing file that is neither a cascade file nor `.py`, or a name one letter off a
    cascade extension, is a cascade file with the wrong extension, not a module to import."""
    if exists:
        (tmp_path / name).write_text(Path(QUICKSTART).read_text())
    done = cli(command, name)
    assert done.returncode == ExitCode.INVALID
    out = done.stdout + done.stderr
    assert f"{name}: unsupported file extension {extension}" in out.splitlines()
    assert "    expected: one of .yaml, .yml, .json" in out.splitlines()
    if hint:
        assert f"    {hint}" in out.splitlines()
    assert "no module named" not in out and "cannot import" not in out
    run = cli("run", name, "--input", "-", input="{}")
    assert run.returncode == ExitCode.INVALID
    assert f"{name}: unsupported file extension {extension}" in run.stderr  # the same words


def test_python_targets_are_still_imported(cli: Cli, tmp_path: Path) -> None:
    """Modules, packages and `.py` files (and `file.py:attribute`) are imported as before."""
    flows = "from cascadence import Cadence\n\nflow = Cadence('f', {}).then('s', lambda s: s)\n"
    write(tmp_path, "myflows.py", flows)
    (tmp_path / "pkg").mkdir()
    write(tmp_path / "pkg", "__init__.py", "")
    write(tmp_path / "pkg", "flows.py", flows)
    for target in ("myflows", "myflows:flow", "myflows.py", "myflows.py:flow", "pkg.flows"):
        done = cli("validate", target)
        assert done.returncode == 0, (target, done.stdout, done.stderr)
        assert "flow 'f', 1 step" in done.stdout
    done = cli("validate", "no_such_pkg.models")  # a module path is not a misspelt extension
    assert done.returncode == ExitCode.INVALID
    assert "no module named 'no_such_pkg'" in done.stdout


@pytest.mark.parametrize("command", ["validate", "diagram"])
def test_a_folder_target_says_what_was_expected(cli: Cli, tmp_path: Path, command: str) -> None:
    """A folder (or a path to nothing) is neither a file nor a module; the error says so once."""
    (tmp_path / "project").mkdir()
    done = cli(command, "project/")
    assert done.returncode == ExitCode.INVALID
    out = done.stdout + done.stderr
    assert (
        "project/ is a folder; expected a cascade file (.yaml, .yml, .json), a .py file, "
        "or 'package.module[:attribute]'"
    ) in out
    assert out.count("project/") == 1
    done = cli(command, "nowhere/cascade")
    assert done.returncode == ExitCode.INVALID
    assert "nowhere/cascade: no such file or folder; expected a cascade file" in (
        done.stdout + done.stderr
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("c.yaml", True),
        ("c.YML", True),
        ("c.json", True),
        ("c.ymal", True),
        ("c.yam", True),
        ("c.jsonl", True),
        ("c.josn", True),
        ("flows.py", False),
        ("flows.py:attr", False),
        ("pkg.module:attr", False),
        ("myapp.models", False),
        ("myapp.cli", False),
        ("notes.md", False),  # not one edit away from a cascade extension
        ("myapp", False),
    ],
)
def test_is_cascade_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str, expected: bool
) -> None:
    """Which names (none of which exist here) are read as cascade files."""
    from cascadence.cli.targets import is_cascade_file

    monkeypatch.chdir(tmp_path)
    assert is_cascade_file(target) is expected


def test_an_existing_file_is_a_cascade_file_unless_it_is_python(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An existing file is read as a cascade file, whatever its extension, except `.py`."""
    from cascadence.cli.targets import is_cascade_file

    monkeypatch.chdir(tmp_path)
    for name in ("notes.md", "cascade", "flows.py"):
        (tmp_path / name).write_text("")
    assert is_cascade_file("notes.md") and is_cascade_file("cascade")
    assert not is_cascade_file("flows.py")
    (tmp_path / "folder.md").mkdir()
    assert not is_cascade_file("folder.md")


# -- 3. handlers with the wrong signature ------------------------------------------------------


def test_a_handler_with_the_wrong_signature_is_placed_at_its_line_once(
    cli: Cli, tmp_path: Path
) -> None:
    """The file is named once, with the line of the `handler:` key, and no advice to run the
    command being run."""
    write(tmp_path, "hmod.py", HANDLERS)
    write(tmp_path, "sig_two_args.yaml", SIG_TWO_ARGS)
    done = cli("validate", "sig_two_args.yaml")
    assert done.returncode == ExitCode.INVALID
    [line] = lines_of(done.stdout, "sig_two_args.yaml")
    assert line.startswith(
        "sig_two_args.yaml:4:5: stages.A.handler: handler for stage 'A' cannot be called with "
        "the stage's context: two_args(a, b): missing a required argument: 'b'"
    )
    assert line.count("sig_two_args.yaml") == 1
    assert "shows the line" not in done.stdout
    assert "1 invalid target, 1 problem" in done.stdout


def test_wrong_signatures_are_all_reported_list_form_too(cli: Cli, tmp_path: Path) -> None:
    """Every stage's handler is checked (not only the first), also in list-form stages."""
    write(tmp_path, "hmod.py", HANDLERS)
    write(
        tmp_path,
        "list.yaml",
        """\
        name: l
        stages:
          - name: A
            handler: "hmod:two_args"
          - name: B
            handler: "hmod:no_args"
          - name: C
            handler: "hmod:screen"
        """,
    )
    done = cli("validate", "list.yaml")
    assert done.returncode == ExitCode.INVALID
    assert lines_of(done.stdout, "list.yaml:4:5: stages.A.handler: ")
    [b] = lines_of(done.stdout, "list.yaml:6:5: stages.B.handler: ")
    assert "no_args(): too many positional arguments" in b
    assert not lines_of(done.stdout, "list.yaml:8:5:")
    assert "2 problems" in done.stdout


@pytest.mark.parametrize("command", ["run", "replay"])
def test_run_and_replay_place_a_wrong_signature_too(cli: Cli, tmp_path: Path, command: str) -> None:
    """`run` and `replay` stop (exit 2) with the same placed issue, before running anything."""
    write(tmp_path, "hmod.py", HANDLERS)
    write(tmp_path, "sig_two_args.yaml", SIG_TWO_ARGS)
    done = cli(command, "sig_two_args.yaml", "--input", "-", input=json.dumps({"id": 1}))
    assert done.returncode == ExitCode.INVALID
    [line] = lines_of(done.stderr, "sig_two_args.yaml")
    assert line.startswith("sig_two_args.yaml:4:5: stages.A.handler: handler for stage 'A'")
    assert "shows the line" not in done.stderr
    assert "error: sig_two_args.yaml: 1 handler(s) cannot be used" in done.stderr


def test_plan_issue_places_the_engines_own_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The engine's message for a handler it refuses (which names the file and points to
    `cascadence validate`) becomes an issue at the `handler:` line, without either."""
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.cli.validate import plan_issue
    from cascadence.errors import PlanError

    write(tmp_path, "plan_issue_handlers.py", HANDLERS)
    write(
        tmp_path, "p.yaml", 'name: p\nstages:\n  A:\n    handler: "plan_issue_handlers:no_args"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = CascadeConfig.from_file("p.yaml")
    with pytest.raises(PlanError) as caught:
        CascadeEngine(config)
    issue = plan_issue(caught.value, config, "p.yaml")
    assert (issue.file, issue.line, issue.column, issue.path) == (
        "p.yaml",
        4,
        5,
        "stages.A.handler",
    )
    assert issue.message.startswith("handler for stage 'A' cannot be called")
    assert "p.yaml" not in issue.message and "cascadence validate" not in issue.message
    other = plan_issue(PlanError("something else"), config, "p.yaml")
    assert other.format() == "p.yaml: something else"


# -- 4. warnings are placed like errors --------------------------------------------------------


def test_warnings_use_file_line_column(cli: Cli, tmp_path: Path) -> None:
    """A condition that loads but cannot work is `file:line:col: warning: path: message`, the
    form errors have (and editors link to)."""
    write(tmp_path, "hmod.py", HANDLERS)
    write(
        tmp_path,
        "w.yaml",
        """\
        name: w
        stages:
          A:
            handler: "hmod:screen"
            routing_rules:
              - name: typo
                condition: {field: stages.A.confidense, operator: "<", value: 0.8}
                action: {type: terminate}
          B:
            handler: "hmod:screen"
        """,
    )
    done = cli("validate", "w.yaml")
    assert done.returncode == 0, done.stdout
    [line] = lines_of(done.stdout, "w.yaml:")
    assert line.startswith("w.yaml:7:9: warning: stages.A.routing_rules[0].condition: ")
    assert "did you mean 'confidence'?" in line
    assert "warning: line" not in done.stdout
    strict = cli("validate", "--strict", "w.yaml")
    assert strict.returncode == ExitCode.INVALID
    assert lines_of(strict.stdout, "w.yaml:7:9: warning: ")


def test_a_warning_without_a_line_names_the_target(cli: Cli, tmp_path: Path) -> None:
    """A warning about the whole cascade (stages without a handler) names the file alone."""
    write(tmp_path, "nohandler.json", '{"name": "n", "stages": {"A": {}}}')
    done = cli("validate", "nohandler.json")
    assert done.returncode == 0
    assert lines_of(done.stdout, "nohandler.json: warning: no handler for stage(s) A")
