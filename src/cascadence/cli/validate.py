"""`cascadence validate PATH...`: check cascade files and Python flows without running them."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascadence.cli._common import CliError, ExitCode, add_import_folder, print_issues

if TYPE_CHECKING:
    from cascadence.cascade.config import CascadeConfig
    from cascadence.errors import ConfigIssue, PlanError

__all__ = [
    "Report",
    "ReportWarning",
    "check_cascade_file",
    "check_python_target",
    "handler_issues",
    "plan_issue",
    "validate",
]


@dataclass(frozen=True)
class ReportWarning:
    """Something that loads but is likely a mistake, printed as `where: warning: text`."""

    text: str
    where: str | None = None
    """`file:line:column` when known; else the target's label is shown."""


@dataclass
class Report:
    """The outcome of checking one target."""

    label: str
    summary: str = ""
    issues: list[Any] = field(default_factory=list)
    """`ConfigIssue`s."""
    warnings: list[ReportWarning] = field(default_factory=list)


def _marks(path: Path) -> tuple[Any, dict[Any, tuple[int, int]]]:
    """The file's data and the (line, column) of each written location."""
    from cascadence.cascade.loader import parse_json, parse_yaml

    text = path.read_text(encoding="utf-8-sig")
    parse = parse_json if path.suffix.lower() == ".json" else parse_yaml
    data, load = parse(text, str(path))
    return data, load.marks


def _handler_loc(data: Any, stage: str) -> tuple[Any, ...]:
    stages = data.get("stages") if isinstance(data, Mapping) else None
    if isinstance(stages, list):
        for index, item in enumerate(stages):
            if isinstance(item, Mapping) and item.get("name") == stage:
                return ("stages", index, "handler")
    return ("stages", stage, "handler")


def _placer(source: Path) -> Callable[[str], tuple[int | None, int | None]]:
    """`place(stage)`: the (line, column) of the stage's `handler:` key in the file; the file
    is read once, when first asked."""
    cache: list[tuple[Any, dict[Any, tuple[int, int]]]] = []

    def place(stage: str) -> tuple[int | None, int | None]:
        if not cache:
            cache.append(_marks(source))
        data, marks = cache[0]
        return marks.get(_handler_loc(data, stage), (None, None))

    return place


def plan_issue(exc: PlanError, config: CascadeConfig, source: str) -> ConfigIssue:
    """A `PlanError` of `CascadeEngine(config)` for the cascade file `source`, as an issue of
    that file: a handler named by path that cannot be used is placed at its `handler:` line."""
    from cascadence.errors import ConfigIssue, HandlerPathError

    if isinstance(exc, HandlerPathError) and exc.stage in config.stages:
        line, column = _placer(Path(source))(exc.stage)
        return ConfigIssue(
            path=f"stages.{exc.stage}.handler",
            message=exc.detail,
            file=source,
            line=line,
            column=column,
        )
    return ConfigIssue(path="", message=str(exc), file=source)


def handler_issues(config: Any, source: Path) -> list[Any]:
    """Import every `handler:` path of a loaded cascade file, and check each handler as
    `CascadeEngine.register_stage` would (callable with the stage's context); one
    `ConfigIssue` per failure, placed at the line of its `handler:` key.

    The current folder and the file's folder are both searched.
    """
    from cascadence.cascade.engine import handler_problem
    from cascadence.errors import ConfigIssue, PlanError
    from cascadence.runtime.handlers import import_object

    add_import_folder(".")
    issues: list[ConfigIssue] = []
    search = [str(source.resolve().parent)]
    place = _placer(source)
    for name, stage in config.stages.items():
        if not stage.handler:
            continue
        expected: str | None = "an importable callable or flow, as 'package.module:function'"
        try:
            handler = import_object(stage.handler, what=f"handler of {name}", search=search)
            # what `register_stage` takes: a callable, or a flow (`as_stage_handler`)
            usable = callable(handler) or callable(getattr(handler, "as_stage_handler", None))
            problem = None if usable else f"{stage.handler!r} is not callable"
            if problem is None:
                problem = handler_problem(name, handler)
                expected = None  # the engine's message says what a handler takes
        except PlanError as exc:
            problem = str(exc)
        except SyntaxError as exc:
            problem = f"{exc.filename}:{exc.lineno}: SyntaxError in handler module: {exc.msg}"
        except (Exception, SystemExit) as exc:  # the handler's module raised while importing
            problem = f"importing {stage.handler!r} raised {type(exc).__name__}: {exc}"
        if problem is None:
            continue
        line, column = place(name)
        issues.append(
            ConfigIssue(
                path=f"stages.{name}.handler",
                message=problem,
                expected=expected,
                file=str(source),
                line=line,
                column=column,
            )
        )
    return issues


def _missing_handlers(engine: Any, report: Report) -> None:
    missing = engine.plan.missing_handlers()
    if missing:
        report.warnings.append(
            ReportWarning(
                f"no handler for stage(s) {', '.join(missing)}: set `handler: 'pkg.mod:func'` "
                "or call engine.register_stage(name, handler) before executing"
            )
        )


def check_cascade_file(path: str) -> Report:
    """Load a cascade file, import its handlers and compile it; collect every problem."""
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.cascade.loader import LINTING
    from cascadence.errors import ConfigError, ConfigWarning, PlanError

    report = Report(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        token = LINTING.set(True)
        try:
            config = CascadeConfig.from_file(path)
        except ConfigError as exc:
            report.issues.extend(exc.issues)
            return report
        finally:
            LINTING.reset(token)
    for warned in caught:  # loads, but likely a mistake: shown where it is, failing --strict
        doubt = warned.message
        if isinstance(doubt, ConfigWarning) and doubt.issue is not None:
            where = dataclasses.replace(doubt.issue, file=doubt.issue.file or path).location()
            report.warnings.append(ReportWarning(str(doubt), where))
        else:
            warnings.warn_explicit(warned.message, warned.category, warned.filename, warned.lineno)
    report.issues.extend(handler_issues(config, Path(path)))
    if report.issues:
        return report
    try:
        engine = CascadeEngine(config)
    except PlanError as exc:
        report.issues.append(plan_issue(exc, config, path))
        return report
    _missing_handlers(engine, report)
    count = len(config.stages)
    report.summary = (
        f"cascade {config.name!r} version {config.version}, "
        f"{count} stage{'s' if count != 1 else ''}"
    )
    return report


def check_python_target(target: str) -> list[Report]:
    """Import a Python target and check that each flow, engine and config it names compiles."""
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.cli.targets import load_objects
    from cascadence.errors import CascadenceError, ConfigIssue

    reports = []
    for found in load_objects(target):
        report = Report(found.label)
        try:
            if found.kind == "cadence":
                plan = found.value.plan
                steps = len(plan.nodes)
                report.summary = f"flow {plan.name!r}, {steps} step{'s' if steps != 1 else ''}"
                if not steps:
                    report.warnings.append(ReportWarning("the flow has no steps"))
            elif found.kind == "engine":
                _missing_handlers(found.value, report)
                report.summary = f"cascade engine {found.value.plan.name!r}"
            else:
                engine = CascadeEngine(found.value)
                _missing_handlers(engine, report)
                report.summary = f"cascade config {found.value.name!r}"
        except CascadenceError as exc:
            report.issues.append(ConfigIssue(path=found.label, message=str(exc)))
        reports.append(report)
    return reports


def _print(report: Report, strict: bool) -> bool:
    """Print a report; return whether the target counts as valid."""
    ok = not report.issues and not (strict and report.warnings)
    if report.issues:
        print_issues(report.issues)
    for warning in report.warnings:  # `file:line:col: warning: ...`, as errors are placed
        typer.secho(f"{warning.where or report.label}: warning: {warning.text}", fg="yellow")
    if ok:
        typer.secho(f"ok {report.label}: {report.summary}", fg="green")
    return ok


def validate(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Cascade files (.yaml, .yml, .json) and Python targets "
            "('pkg.module:attribute', 'pkg.module' or 'file.py').",
            show_default=False,
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Treat warnings (such as stages without a handler) as errors."
        ),
    ] = False,
) -> None:
    """Check cascade files and flows without running them.

    Reports every load error of a cascade file with its file and line, every handler import
    path that fails, and whether each plan compiles. Exits 2 when anything is invalid.
    """
    from cascadence.cli.targets import is_cascade_file

    invalid = 0
    problems = 0
    for target in targets:
        if is_cascade_file(target):
            reports = [check_cascade_file(target)]
        else:
            try:
                reports = check_python_target(target)
            except CliError as exc:
                named = exc.message.startswith(target)  # the message names the target already
                typer.secho(exc.message if named else f"{target}: {exc.message}", fg="red")
                invalid += 1
                problems += 1
                continue
        for report in reports:
            if not _print(report, strict):
                invalid += 1
                problems += len(report.issues) or len(report.warnings)
    if invalid:
        typer.secho(
            f"{invalid} invalid target{'s' if invalid != 1 else ''}, "
            f"{problems} problem{'s' if problems != 1 else ''}",
            fg="red",
            bold=True,
        )
        raise typer.Exit(ExitCode.INVALID)
