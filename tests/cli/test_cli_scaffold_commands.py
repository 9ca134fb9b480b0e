"""Every command that `init` and `new` print, or write into the files they generate, runs as
printed: the `next:` lines, the README's shell blocks, the cascade file's header and the flow
module's docstring."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from cli_helpers import Cli, python_in

_COMMENT = re.compile(r"\s+#.*$")


def _clean(command: str) -> str:
    return _COMMENT.sub("", command.strip())


def shell_blocks(markdown: str) -> list[str]:
    """The command lines of a markdown file's ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", markdown, re.S)
    return [_clean(line) for block in blocks for line in block.splitlines() if line.strip()]


def yaml_header(text: str) -> list[str]:
    """The commands in a cascade file's leading comment (`#   cascadence validate x.yaml`)."""
    return [_clean(m) for m in re.findall(r"^#\s+(cascadence .+)$", text, re.M)]


def docstring_commands(text: str) -> list[str]:
    """The commands a module's docstring offers (`Run it once:  python -m checkout`)."""
    found = re.findall(r"^[A-Z][\w ]*:\s+((?:python -m|cascadence) .+)$", text, re.M)
    return [_clean(m) for m in found]


def after_next(stdout: str) -> list[str]:
    """The commands printed after `next:`."""
    _, _, rest = stdout.partition("\nnext:\n")
    return [_clean(line) for line in rest.splitlines() if line.strip()]


def run_as_printed(cli: Cli, commands: list[str], cwd: Path) -> list[str]:
    """Run each command in `cwd` (following `cd`), asserting it succeeds; the ones run."""
    ran = []
    for command in commands:
        args = shlex.split(command)
        if args[0] == "cd":
            cwd = cwd / args[1]
            assert cwd.is_dir(), command
            continue
        if args[0] == "pip":  # installs into the environment: not run by a test
            assert args[:3] == ["pip", "install", "-e"], command
            continue
        if args[0] == "cascadence":
            done = cli(*args[1:], cwd=cwd)
        else:
            assert args[:2] == ["python", "-m"], f"unexpected command {command!r}"
            done = python_in(cwd, *args[1:], timeout=120)
        assert done.returncode == 0, f"{command!r} in {cwd}:\n{done.stdout}\n{done.stderr}"
        ran.append(command)
    return ran


def test_every_command_init_prints_or_writes_runs(cli: Cli, tmp_path: Path) -> None:
    """`init`'s next steps, its README's commands, the cascade header's and the flow
    docstring's commands all run as printed."""
    done = cli("init", "demo-app")
    assert done.returncode == 0, done.stderr
    root = tmp_path / "demo-app"
    ran = run_as_printed(cli, after_next(done.stdout), tmp_path)
    assert "cascadence run cascade.yaml --input events.jsonl" in ran
    written = (
        shell_blocks((root / "README.md").read_text())
        + yaml_header((root / "cascade.yaml").read_text())
        + docstring_commands((root / "demo_app" / "flows.py").read_text())
    )
    unique = [c for i, c in enumerate(written) if c not in written[:i] and c not in ran]
    ran += run_as_printed(cli, unique, root)
    assert "python -m demo_app.flows" in ran
    assert "cascadence diagram demo_app.flows:checkout_cadence" in ran
    assert "cascadence validate cascade.yaml" in ran


def test_every_command_new_cascade_writes_runs(cli: Cli, tmp_path: Path) -> None:
    """The header of `new cascade fraud-check`'s YAML names files that exist: its commands,
    the run on the sample events included, work in the folder it was written to."""
    done = cli("new", "cascade", "fraud-check", "--dir", "rules")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "rules"
    assert (folder / "fraud_check_events.jsonl").is_file()
    commands = yaml_header((folder / "fraud_check.yaml").read_text())
    ran = run_as_printed(cli, commands, folder)
    assert "cascadence run fraud_check.yaml --input fraud_check_events.jsonl" in ran
    assert len(ran) == 3
    decided = cli("run", "fraud_check.yaml", "--input", "fraud_check_events.jsonl", cwd=folder)
    assert "approve" in decided.stdout and "reject" in decided.stdout


def test_every_command_new_cadence_and_new_note_write_runs(cli: Cli, tmp_path: Path) -> None:
    """The flow module's docstring commands run next to it; a note's file offers none."""
    assert cli("new", "cadence", "checkout", "--dir", "flows").returncode == 0
    folder = tmp_path / "flows"
    ran = run_as_printed(cli, docstring_commands((folder / "checkout.py").read_text()), folder)
    assert ran == [
        "python -m checkout",
        "cascadence diagram checkout:checkout_cadence",
        "cascadence validate checkout",
    ]
    note = cli("new", "note", "charge", "--retry", "2")
    assert note.returncode == 0, note.stderr
    assert docstring_commands(note.stdout) == yaml_header(note.stdout) == []
