"""`cascadence validate` and `cascadence diagram` on cascade files and Python targets."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from cli_helpers import REPO, Cli, cli_env

from cascadence.cli import ExitCode

QUICKSTART = str(REPO / "examples" / "quickstart" / "cascade.yaml")

BAD_OPERATOR = """\
name: bad
stages:
  A:
    handler: "handlers:a"
    routing_rules:
      - name: r
        condition:
          field: stages.A.confidence
          operator: "<<"
          value: 1
        action:
          type: enable_stages
          stages: ["Q"]
"""

FLOWS = """\
from cascadence import Cadence, CascadeConfig


async def step(score):
    score["done"] = True


first = Cadence("first", {}).then("step", step)
second = Cadence("second", {}).then("a", step).then("b", step)
config = CascadeConfig.from_dict({"name": "inline", "stages": {"ONLY": {}}})
not_a_flow = 42
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_cascade_file_is_ok(cli: Cli) -> None:
    """A valid cascade file whose handlers import prints `ok` and exits 0."""
    done = cli("validate", QUICKSTART)
    assert done.returncode == 0, done.stdout
    assert "ok " in done.stdout and "'trust_scoring_cascade'" in done.stdout


def test_invalid_cascade_file_gives_file_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    """Every load error is printed as file:line:col: path: message, with a did-you-mean."""
    write(tmp_path, "bad.yaml", BAD_OPERATOR)
    done = cli("validate", "bad.yaml")
    assert done.returncode == ExitCode.INVALID
    lines = done.stdout.splitlines()
    assert "bad.yaml:9:11: stages.A.routing_rules[0].condition.operator: unknown operator '<<'" in (
        lines
    )
    assert "    did you mean '<'?" in lines
    assert any(line.startswith("bad.yaml:13:") and "unknown stage 'Q'" in line for line in lines)
    assert "1 invalid target, 2 problems" in done.stdout


def test_yaml_syntax_error_is_placed_in_its_file(cli: Cli, tmp_path: Path) -> None:
    """A YAML syntax error names the file and line and exits 2."""
    write(tmp_path, "broken.yaml", "name: x\nstages:\n  A: [unclosed\n")
    done = cli("validate", "broken.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "broken.yaml:" in done.stdout


def test_missing_file_and_wrong_extension_exit_2(cli: Cli, tmp_path: Path) -> None:
    """A file that does not exist is invalid input, reported with its name."""
    done = cli("validate", "nope.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "nope.yaml" in done.stdout


def test_unimportable_handlers_are_reported_at_their_lines(cli: Cli, tmp_path: Path) -> None:
    """Each handler path that fails to import is reported at its `handler:` line."""
    write(tmp_path, "handlers.py", "def screen(context):\n    return 'ok'\n")
    write(tmp_path, "boom.py", "raise RuntimeError('no config')\n")
    write(
        tmp_path,
        "cascade.yaml",
        """\
        name: h
        stages:
          A:
            handler: "nope.mod:fn"
          B:
            handler: "handlers:screan"
          C:
            handler: "boom:fn"
          D:
            handler: "handlers:screen"
        """,
    )
    done = cli("validate", "cascade.yaml")
    assert done.returncode == ExitCode.INVALID
    out = done.stdout
    assert "cascade.yaml:4:5: stages.A.handler: cannot import handler of A 'nope.mod:fn'" in out
    assert "cascade.yaml:6:5: stages.B.handler:" in out and "did you mean 'screen'?" in out
    assert "cascade.yaml:8:5: stages.C.handler:" in out and "RuntimeError: no config" in out
    assert "stages.D" not in out


def test_a_module_that_exits_while_importing_is_a_problem_not_an_exit(
    cli: Cli, tmp_path: Path
) -> None:
    """`sys.exit()` in an imported module (a handler module, or a module given to validate or
    diagram) is reported like any import failure, with exit code 2, not the module's code."""
    write(tmp_path, "quits.py", "import sys\nsys.exit(3)\n")
    write(tmp_path, "c.yaml", 'name: c\nstages:\n  A:\n    handler: "quits:fn"\n')
    done = cli("validate", "c.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "c.yaml:4:5: stages.A.handler:" in done.stdout
    assert "importing 'quits' raised SystemExit: 3" in done.stdout
    for args in (("validate", "quits"), ("diagram", "quits.py")):
        done = cli(*args)
        assert done.returncode == ExitCode.INVALID, args
        assert "raised SystemExit: 3" in done.stdout + done.stderr, args


def test_a_flow_named_as_a_handler_is_valid(cli: Cli, tmp_path: Path) -> None:
    """A `Cadence` flow is a stage handler (the engine runs it): validate accepts it too."""
    write(
        tmp_path,
        "flows.py",
        """\
        from dataclasses import dataclass

        from cascadence import Cadence, Score


        @dataclass
        class S(Score):
            result: str = ""


        async def decide(score):
            score.result = "ok"


        flow = Cadence("f", S()).then("decide", decide)
        NOT_A_HANDLER = 3
        """,
    )
    write(tmp_path, "c.yaml", 'name: c\nstages:\n  A:\n    handler: "flows:flow"\n')
    done = cli("validate", "c.yaml")
    assert done.returncode == 0, done.stdout
    write(tmp_path, "d.yaml", 'name: d\nstages:\n  A:\n    handler: "flows:NOT_A_HANDLER"\n')
    done = cli("validate", "d.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "'flows:NOT_A_HANDLER' is not callable" in done.stdout


def test_conditions_that_load_but_cannot_work_are_warnings_that_strict_fails(
    cli: Cli, tmp_path: Path
) -> None:
    """A stage-result key one letter off and a confidence against a quoted number load, are
    shown as warnings at their lines, and fail --strict."""
    write(tmp_path, "h.py", "def screen(context):\n    return {'result': 'ok'}\n")
    write(
        tmp_path,
        "c.yaml",
        """\
        name: c
        stages:
          A:
            handler: "h:screen"
            routing_rules:
              - name: typo
                condition: "stages.A.confidense < 0.8"
                action: {type: terminate}
              - name: quoted
                condition: {field: stages.A.confidence, operator: "<", value: "0.8"}
                action: {type: terminate}
        """,
    )
    done = cli("validate", "c.yaml")
    assert done.returncode == 0, done.stdout
    assert "c.yaml:7:9: warning: stages.A.routing_rules[0].condition:" in done.stdout
    assert "did you mean 'confidence'?" in done.stdout
    assert "c.yaml:10:9: warning: stages.A.routing_rules[1].condition:" in done.stdout
    assert "write 0.8 unquoted" in done.stdout
    done = cli("validate", "--strict", "c.yaml")
    assert done.returncode == ExitCode.INVALID


def test_validate_reports_the_lints_a_loading_program_does_not(cli: Cli, tmp_path: Path) -> None:
    """A disabled stage no rule enables and a parallel_group without can_run_parallel load
    silently in a program; validate shows them as warnings at their lines, failing --strict."""
    write(tmp_path, "h.py", "def screen(context):\n    return {'result': 'ok'}\n")
    write(
        tmp_path,
        "c.yaml",
        """\
        name: c
        stages:
          A:
            handler: "h:screen"
            parallel_group: g
          B:
            handler: "h:screen"
            enabled: false
        """,
    )
    done = cli("validate", "c.yaml")
    assert done.returncode == 0, done.stdout
    assert "c.yaml:5:5: warning: stages.A.parallel_group:" in done.stdout
    assert "c.yaml:8:5: warning: stages.B.enabled: stage 'B' never runs" in done.stdout
    done = cli("validate", "--strict", "c.yaml")
    assert done.returncode == ExitCode.INVALID


def test_list_form_stages_place_handler_errors_too(cli: Cli, tmp_path: Path) -> None:
    """Stages written as a list still get the line of their handler."""
    write(
        tmp_path,
        "list.yaml",
        """\
        name: l
        stages:
          - name: A
            handler: "missing_module:fn"
        """,
    )
    done = cli("validate", "list.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "list.yaml:4:5: stages.A.handler:" in done.stdout


def test_stage_without_handler_warns_and_fails_with_strict(cli: Cli, tmp_path: Path) -> None:
    """A stage without a handler is a warning; --strict turns it into a failure."""
    write(tmp_path, "nohandler.json", '{"name": "n", "stages": {"A": {}}}')
    done = cli("validate", "nohandler.json")
    assert done.returncode == 0
    assert "warning: no handler for stage(s) A" in done.stdout
    assert cli("validate", "--strict", "nohandler.json").returncode == ExitCode.INVALID


def test_module_targets_validate_every_flow_and_config(cli: Cli, tmp_path: Path) -> None:
    """A module validates each Cadence and CascadeConfig it defines; module:attribute one."""
    write(tmp_path, "myflows.py", FLOWS)
    done = cli("validate", "myflows")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok myflows:first: flow 'first', 1 step" in done.stdout
    assert "ok myflows:second: flow 'second', 2 steps" in done.stdout
    assert "ok myflows:config: cascade config 'inline'" in done.stdout
    done = cli("validate", "myflows:second")
    assert done.returncode == 0
    assert "myflows:first" not in done.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("myflows:secnd", "'myflows' has no attribute 'secnd'; did you mean 'second'?"),
        ("myflows:not_a_flow", "myflows:not_a_flow is a int; expected a Cadence"),
        ("no_such_module:x", "no module named 'no_such_module'"),
        ("handlers_only", "defines no Cadence, CascadeEngine or CascadeConfig"),
        ("syntax_error:x", "syntax_error.py:1: SyntaxError"),
    ],
)
def test_bad_python_targets_exit_2(cli: Cli, tmp_path: Path, target: str, message: str) -> None:
    """Unknown modules and attributes, and objects of the wrong kind, exit 2 with a reason."""
    write(tmp_path, "myflows.py", FLOWS)
    write(tmp_path, "handlers_only.py", "def f():\n    pass\n")
    write(tmp_path, "syntax_error.py", "def (:\n")
    done = cli("validate", target)
    assert done.returncode == ExitCode.INVALID
    assert message in done.stdout


CHECKOUT = """\
from cascadence import Cadence, note


@note
async def pay(score):
    score["paid"] = True


checkout_cadence = Cadence("checkout", {}).then("pay", pay)
"""


@pytest.mark.parametrize("command", ["validate", "diagram"])
@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "checkout.py:nope",
            "'checkout.py' has no attribute 'nope'; expected the name of a Cadence, a "
            "CascadeEngine or a CascadeConfig; it defines 'checkout_cadence'",
        ),
        ("checkout:checkout_cadense", "did you mean 'checkout_cadence'?"),
        (
            "notes_only.py:nope",
            "'notes_only.py' has no attribute 'nope'; expected the name of a Cadence, a "
            "CascadeEngine or a CascadeConfig, and it defines none",
        ),
    ],
)
def test_a_missing_attribute_is_matched_only_against_targets(
    cli: Cli, tmp_path: Path, command: str, target: str, message: str
) -> None:
    """A misspelt flow is matched against the module's flows, engines and configs, never the
    decorator it imports (`nope` is not "did you mean 'note'?"); with none close, the message
    says what a target names and lists what the module has."""
    write(tmp_path, "checkout.py", CHECKOUT)
    write(tmp_path, "notes_only.py", "from cascadence import note\n")
    done = cli(command, target)
    assert done.returncode == ExitCode.INVALID
    assert message in done.stdout + done.stderr
    assert "'note'" not in done.stdout + done.stderr


def test_unexpected_error_exits_4_with_a_debug_hint(cli: Cli, tmp_path: Path) -> None:
    """An unexpected exception exits 4 with one line and a hint; --debug shows the traceback."""
    write(
        tmp_path,
        "weird.py",
        """\
        from cascadence import Cadence


        class Weird(Cadence):
            @property
            def plan(self):
                raise RuntimeError("plan exploded")


        flow = Weird("weird")
        """,
    )
    done = cli("validate", "weird:flow")
    assert done.returncode == ExitCode.INTERNAL
    assert "internal error: RuntimeError: plan exploded" in done.stderr
    assert "--debug" in done.stderr and "Traceback" not in done.stderr
    done = cli("--debug", "validate", "weird:flow")
    assert done.returncode == ExitCode.INTERNAL
    assert "Traceback" in done.stderr
    done = cli("validate", "weird:flow", env=cli_env(CASCADENCE_DEBUG="1"))
    assert "Traceback" in done.stderr


def test_diagram_of_a_cascade_file_in_mermaid_and_dot(cli: Cli) -> None:
    """A cascade file is drawn as Mermaid by default and as DOT with --format dot."""
    mermaid = cli("diagram", QUICKSTART)
    assert mermaid.returncode == 0
    assert "flowchart TD" in mermaid.stdout and "FAST_CHECK" in mermaid.stdout
    dot = cli("diagram", QUICKSTART, "--format", "dot")
    assert dot.stdout.startswith('digraph "trust_scoring_cascade"')


def test_diagram_of_a_module_needs_one_flow_or_an_attribute(cli: Cli, tmp_path: Path) -> None:
    """A module with several flows must be narrowed to module:attribute."""
    write(tmp_path, "myflows.py", FLOWS)
    done = cli("diagram", "myflows")
    assert done.returncode == ExitCode.INVALID
    assert "name one as module:attribute" in done.stderr
    (tmp_path / "out").mkdir()  # an output file's folder must exist
    done = cli("diagram", "myflows:second", "-f", "dot", "-o", "out/second.dot")
    assert done.returncode == 0
    assert (tmp_path / "out" / "second.dot").read_text().startswith('digraph "second"')


def test_diagram_of_an_invalid_file_exits_2(cli: Cli, tmp_path: Path) -> None:
    """Drawing an invalid cascade file prints its problems and exits 2."""
    write(tmp_path, "bad.yaml", BAD_OPERATOR)
    done = cli("diagram", "bad.yaml")
    assert done.returncode == ExitCode.INVALID
    assert "bad.yaml:9:11:" in done.stderr


def test_svg_without_graphviz_says_how_to_get_it(cli: Cli, tmp_path: Path) -> None:
    """With no `dot` on PATH, --format svg exits 2 and suggests installing graphviz."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = cli("diagram", QUICKSTART, "--format", "svg", env=cli_env(PATH=str(empty)))
    assert done.returncode == ExitCode.INVALID
    assert "install graphviz" in done.stderr and "--format dot" in done.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_with_graphviz(cli: Cli, tmp_path: Path) -> None:
    """With Graphviz installed, --format svg writes an SVG document."""
    done = cli("diagram", QUICKSTART, "--format", "svg", "--output", "q.svg")
    assert done.returncode == 0, done.stderr
    assert "<svg" in (tmp_path / "q.svg").read_text()
