"""`cascadence run CONFIG --input FILE|-`: execute a cascade on JSON or JSON-lines input."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascadence.cli._common import ExitCode, echo_err, fail, print_issues, rich_console

if TYPE_CHECKING:
    from rich.console import Console

    from cascadence.cascade.engine import CascadeEngine
    from cascadence.checkpoint import CheckpointStore
    from cascadence.cli.report import JsonPrinter

__all__ = ["PROGRESS_THRESHOLD", "execute_all", "parse_inputs", "read_inputs", "run"]

PROGRESS_THRESHOLD = 50
"""More inputs than this show a progress bar (on a terminal, unless `--no-progress`)."""

_JSON_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), "number")


def parse_inputs(text: str, name: str) -> list[dict[str, Any]]:
    """Read decisions' inputs: a JSON object, a JSON array of objects, or JSON lines.

    Raises:
        CliError: The text is empty, is not JSON, or holds something other than objects;
            the message gives `name:line:column`.
    """
    if not text.strip():
        fail(
            f"{name}: the input is empty; expected a JSON object, an array of objects or JSON lines"
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as whole:
        return _json_lines(text, name, whole)
    items = doc if isinstance(doc, list) else [doc]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            if isinstance(doc, list):
                line, column = _item_place(text, index)
                where = f"{name}:{line}:{column}: item {index}"
            else:
                where = f"{name}: the document"
            fail(f"{where} is a JSON {_json_kind(item)}; expected a JSON object")
    return items


def _item_place(text: str, index: int) -> tuple[int, int]:
    """Line and column (1-based) where item `index` of the JSON array `text` starts."""
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    for _ in range(index + 1):
        while text[position] in " \t\r\n,":
            position += 1
        start = position
        _, position = decoder.raw_decode(text, position)
    line = text.count("\n", 0, start) + 1
    return line, start - (text.rfind("\n", 0, start) + 1) + 1


def _json_lines(text: str, name: str, whole: json.JSONDecodeError) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if not items:  # not JSON lines either: report the document's own error
                fail(f"{name}:{whole.lineno}:{whole.colno}: invalid JSON: {whole.msg}")
            fail(f"{name}:{number}:{exc.colno}: invalid JSON line: {exc.msg}")
        if not isinstance(value, dict):
            fail(f"{name}:{number}: a JSON {_json_kind(value)}; expected one JSON object per line")
        items.append(value)
    return items


def read_inputs(source: str) -> list[dict[str, Any]]:
    """Read inputs from a file, or from stdin when `source` is `-`.

    Raises:
        CliError: Nothing to read, or the input is invalid (see `parse_inputs`).
    """
    if source == "-":
        if sys.stdin is None or sys.stdin.isatty():
            fail("no input: pass --input FILE, or pipe JSON into stdin with --input -")
        return parse_inputs(sys.stdin.read(), "<stdin>")
    try:
        text = Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read input {source}: {getattr(exc, 'strerror', None) or exc}")
    return parse_inputs(text, source)


def _failed(exc: BaseException, engine: CascadeEngine, run_id: str | None) -> dict[str, Any]:
    """A result for a decision the engine could not run (its checkpoint store failed)."""
    plan = engine.plan
    return {
        "success": False,
        "execution_time_ms": 0.0,
        "stages_executed": 0,
        "stage_results": {},
        "path": [],
        "final_stage": None,
        "final_result": None,
        "final_confidence": None,
        "terminated": False,
        "terminated_by": None,
        "timed_out": False,
        "cost": 0.0,
        "errors": [{"stage": None, "error": str(exc), "type": type(exc).__name__}],
        "routing_decisions": [],
        "skipped_stages": {},
        "timeline": [],
        "warnings": [],
        "cascade": plan.name,
        "version": plan.version,
        "run_id": run_id,
    }


async def execute_all(
    engine: CascadeEngine,
    items: list[dict[str, Any]],
    *,
    concurrency: int,
    explain: bool,
    store: CheckpointStore | None = None,
    run_ids: list[str] | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Execute every input, at most `concurrency` at a time; results in input order.

    `on_result(index, result)` is called as each decision finishes. A decision whose
    checkpoint store fails is reported as a failed result rather than stopping the others.
    """
    import asyncio

    from cascadence.errors import CheckpointError

    results: list[dict[str, Any]] = [{}] * len(items)
    indices = iter(range(len(items)))
    # Inputs sharing a run id share one run: a later one waits for the first one's result
    # instead of racing it for the run's lease (which this very process holds).
    runs: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def decide(index: int, run_id: str | None) -> dict[str, Any]:
        if run_id is None or store is None:
            return await engine.execute(items[index], explain=explain, run_id=run_id)
        first = runs.get(run_id)
        if first is not None:
            return await asyncio.shield(first)
        runs[run_id] = shared = asyncio.get_running_loop().create_future()
        try:
            result = await engine.execute(
                items[index], explain=explain, run_id=run_id, checkpoint=store
            )
        except CheckpointError as exc:
            result = _failed(exc, engine, run_id)
        except BaseException as exc:
            shared.set_exception(exc)
            shared.exception()  # retrieved here: the waiters, if any, re-raise it
            raise
        shared.set_result(result)
        return result

    async def worker() -> None:
        for index in indices:  # shared by the workers: each takes the next input
            run_id = run_ids[index] if run_ids is not None else None
            result = await decide(index, run_id)  # a store's failure is a failed result
            results[index] = result
            if on_result is not None:
                on_result(index, result)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)) or 1)))
    return results


class HandlerExit(Exception):
    """A handler tried to end the process (`sys.exit()`, `GeneratorExit`, another
    `BaseException`): in a batch this fails the handler's stage for that input only."""


def _exit_message(stage: str, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else repr(exc.code)
        what = f"called sys.exit({code})"
    else:
        text = str(exc)
        what = f"raised {type(exc).__name__}{': ' + text if text else ''}"
    return (
        f"the handler of stage {stage!r} {what}; the stage fails for this input and the batch "
        "goes on (a handler should raise an exception or return a result, not end the process)"
    )


def guard_stage(stage: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`handler` (the function a stage calls), with `SystemExit`, `GeneratorExit` and other
    `BaseException`s it raises turned into `HandlerExit`, a failure of the stage: one handler
    calling `sys.exit` must not end a batch of decisions. Ctrl-C (`KeyboardInterrupt`) and
    cancellation (timeouts) pass through. A plain function stays plain (it still runs in a
    worker thread), an async one async."""
    import asyncio

    from cascadence.runtime.invoke import is_async_callable

    # raised as they are: errors the engine records, Ctrl-C, cancellation
    passed = (Exception, KeyboardInterrupt, asyncio.CancelledError)

    async def awaited(awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except GeneratorExit as exc:
            trace = exc.__traceback__
            if trace is None or trace.tb_next is None:
                raise  # thrown in here to close this call, not raised by the handler
            raise HandlerExit(_exit_message(stage, exc)) from exc
        except passed:
            raise
        except BaseException as exc:
            raise HandlerExit(_exit_message(stage, exc)) from exc

    if is_async_callable(handler):

        async def guarded_async(context: Any) -> Any:
            return await awaited(handler(context))

        return guarded_async

    def guarded(context: Any) -> Any:
        try:
            result = handler(context)
        except passed:
            raise
        except BaseException as exc:
            raise HandlerExit(_exit_message(stage, exc)) from exc
        if inspect.isawaitable(result):  # a plain function returning a coroutine
            return awaited(result)
        return result

    return guarded


def _item_id(item: dict[str, Any], field: str) -> str | None:
    value = item.get(field)
    if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
        return str(value)
    return None


def _load_engine(config_path: str, explain: bool) -> CascadeEngine:
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.cli.validate import handler_issues, plan_issue
    from cascadence.errors import ConfigError, PlanError

    try:
        config = CascadeConfig.from_file(config_path)
    except ConfigError as exc:
        print_issues(exc.issues, err=True)
        fail(f"{config_path} is not a valid cascade file ({len(exc.issues)} problem(s))")
    issues = handler_issues(config, Path(config_path))
    if issues:
        print_issues(issues, err=True)
        fail(f"{config_path}: {len(issues)} handler(s) cannot be used")
    try:
        engine = CascadeEngine(config, explain=explain)
    except PlanError as exc:  # placed in the file, as validate shows it
        print_issues([plan_issue(exc, config, config_path)], err=True)
        fail(f"{config_path}: the cascade cannot be run as written")
    missing = engine.plan.missing_handlers()
    if missing:
        fail(
            f"{config_path}: no handler for stage(s) {', '.join(missing)}; set "
            "`handler: 'package.module:function'` on each stage to run it from the command line"
        )
    engine._guard_handlers(guard_stage)  # a handler's sys.exit fails its stage, not the batch
    return engine


async def _check_store(store: CheckpointStore, url: str) -> None:
    """Reach the store once before any decision runs: a store that cannot be used is a usage
    error (exit 2), not a failure of every decision."""
    from cascadence.errors import CheckpointError

    try:
        await store.load("cascadence-cli-probe")
    except (CheckpointError, OSError) as exc:
        await store.close()
        fail(f"--checkpoint {url}: the store cannot be used: {exc}")


def _open_store(url: str) -> CheckpointStore:
    from cascadence.checkpoint import store_from_url

    try:
        return store_from_url(url)
    except ImportError as exc:
        fail(f"--checkpoint {url}: {exc} (install the matching extra, e.g. cascadence[redis])")
    except (ValueError, LookupError) as exc:
        fail(f"--checkpoint {url}: {exc}")


def run(
    config: Annotated[
        str, typer.Argument(help="The cascade file (.yaml, .yml or .json).", show_default=False)
    ],
    input_: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="A JSON object, an array of objects, or JSON lines; '-' reads stdin.",
        ),
    ] = "-",
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON line per decision (the summary goes to stderr)."
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Decisions executed at once.")
    ] = 10,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint each run in a store, e.g. sqlite:///runs.db; re-running an input "
            "with the same run id returns its stored result.",
            show_default=False,
        ),
    ] = None,
    id_field: Annotated[
        str,
        typer.Option(help="Input field naming each decision (and its run id with --checkpoint)."),
    ] = "id",
    explain: Annotated[
        bool, typer.Option("--explain", help="Record why each routing rule matched or not.")
    ] = False,
    details: Annotated[
        bool,
        typer.Option("--details", "-d", help="Print a table of stages for each decision."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print no per-decision output, only the summary.")
    ] = False,
    summary: Annotated[
        bool, typer.Option("--summary/--no-summary", help="Print the summary after the decisions.")
    ] = True,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help=f"Show a progress bar on stderr (default: when stderr is a terminal and there "
            f"are more than {PROGRESS_THRESHOLD} inputs).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Execute a cascade on every input and print each decision and a summary.

    Handlers come from the stages' `handler: 'package.module:function'` paths (the current
    folder and the cascade file's folder are importable). Exits 3 when a decision failed.
    """
    from cascadence.cli import report

    engine = _load_engine(config, explain)
    items = read_inputs(input_)
    ids = [_item_id(item, id_field) for item in items]
    console = rich_console(stderr=False)
    err_console = rich_console(stderr=True)
    printer = report.JsonPrinter(ids) if json_lines and not quiet else None
    show_progress = (
        progress
        if progress is not None
        else len(items) > PROGRESS_THRESHOLD and err_console.is_terminal
    )
    results = _execute(
        engine,
        items,
        ids,
        label=config,
        concurrency=concurrency,
        explain=explain,
        checkpoint=checkpoint,
        printer=printer,
        progress_console=err_console if show_progress else None,
    )
    if not json_lines and not quiet:
        if details:
            report.print_details(console, results, ids)
        report.print_decisions(console, results, ids)
    if summary:
        report.print_summary(err_console if json_lines else console, engine, results)
    failed = sum(1 for r in results if not r.get("success"))
    if failed:
        echo_err(f"{failed} of {len(results)} decision(s) failed", fg="red")
        raise typer.Exit(ExitCode.FAILED_RUN)


def _execute(
    engine: CascadeEngine,
    items: list[dict[str, Any]],
    ids: list[str | None],
    *,
    label: str,
    concurrency: int,
    explain: bool,
    checkpoint: str | None,
    printer: JsonPrinter | None,
    progress_console: Console | None,
) -> list[dict[str, Any]]:
    import asyncio

    from cascadence.cli import report

    store = _open_store(checkpoint) if checkpoint else None
    run_ids = None
    if store is not None:
        run_ids = [i if i is not None else f"{engine.plan.name}-{n}" for n, i in enumerate(ids)]

    async def main() -> list[dict[str, Any]]:
        if store is not None:
            await _check_store(store, checkpoint or "")
        with report.progress_bar(progress_console, len(items), label) as advance:

            def on_result(index: int, result: dict[str, Any]) -> None:
                advance()
                if printer is not None:
                    printer.add(index, result)

            try:
                return await execute_all(
                    engine,
                    items,
                    concurrency=concurrency,
                    explain=explain,
                    store=store,
                    run_ids=run_ids,
                    on_result=on_result,
                )
            finally:
                if store is not None:
                    await store.close()

    return asyncio.run(main())
