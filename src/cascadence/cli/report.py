"""How `cascadence run` shows decisions: JSON lines, rich tables, a summary and a progress bar."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cascadence.integrations._decision import encode_json

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from cascadence.cascade.engine import CascadeEngine

__all__ = [
    "JsonPrinter",
    "print_decisions",
    "print_details",
    "print_summary",
    "progress_bar",
]


class JsonPrinter:
    """Write one JSON line per decision to stdout, in input order, as soon as each is ready.

    Each line is the engine's result with `index` (the input's position) and `id` (its id
    field, or null) first.
    """

    def __init__(self, ids: list[str | None]) -> None:
        self._ids = ids
        self._ready: dict[int, dict[str, Any]] = {}
        self._next = 0

    def add(self, index: int, result: dict[str, Any]) -> None:
        """Record a finished decision and print every line that is now next in order."""
        self._ready[index] = result
        write = sys.stdout.write
        while self._next in self._ready:
            n = self._next
            row = {"index": n, "id": self._ids[n], **self._ready.pop(n)}
            write(encode_json(row).decode() + "\n")  # strict JSON: NaN and infinities are null
            self._next += 1
        sys.stdout.flush()


@contextmanager
def progress_bar(target: Console | None, total: int, label: str) -> Iterator[Callable[[], None]]:
    """A transient progress bar on `target` (no bar when it is None); yields `advance()`."""
    if target is None:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # stdout is redirected above the bar only when it shares the terminal: a piped stdout
    # (`--json | jq`) must receive every line itself, never through the bar's console.
    shared = sys.stdout.isatty()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=target,
        transient=True,
        redirect_stdout=shared,
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def _text(value: Any) -> Any:
    from rich.text import Text

    return Text("-" if value is None else str(value))


def _num(value: Any, fmt: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return "-" if value is None else str(value)


def _label(index: int, ids: list[str | None]) -> str:
    ident = ids[index]
    return f"#{index} {ident}" if ident is not None else f"#{index}"


def _error_text(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return ""
    first = errors[0]
    stage = f"{first.get('stage')}: " if first.get("stage") else ""
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{stage}{first.get('type')}: {first.get('error')}{more}"


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def print_decisions(out: Console, results: list[dict[str, Any]], ids: list[str | None]) -> None:
    """One row per decision: input, outcome, confidence, path, cost, time and errors."""
    table = _table(
        "Decisions",
        "input",
        "ok",
        "final result",
        "confidence",
        "path",
        "cost",
        "time ms",
        "errors",
        right=("confidence", "cost", "time ms"),
    )
    for index, result in enumerate(results):
        ok = "yes" if result.get("success") else "NO"
        if result.get("timed_out"):
            ok += " (timed out)"
        table.add_row(
            _text(_label(index, ids)),
            ok,
            _text(result.get("final_result")),
            _num(result.get("final_confidence"), ".2f"),
            _text(" > ".join(result.get("path", []))),
            _num(result.get("cost"), "g"),
            _num(result.get("execution_time_ms"), ".2f"),
            _text(_error_text(result.get("errors", []))),
        )
    out.print(table)


def _condition_text(condition: dict[str, Any] | None) -> str:
    if not condition:
        return ""
    field = condition.get("field")
    operator = condition.get("operator", "")
    if field is None:
        return str(operator)
    if condition.get("missing"):
        return f"{field} is missing"
    return f"{field} = {condition.get('value')!r} {operator} {condition.get('expected')!r}"


def print_details(out: Console, results: list[dict[str, Any]], ids: list[str | None]) -> None:
    """A table of stages for each decision, and the routing rules explained when recorded."""
    for index, result in enumerate(results):
        title = (
            f"{_label(index, ids)}: {result.get('final_result')!s} "
            f"({'ok' if result.get('success') else 'failed'}, cost {result.get('cost', 0):g})"
        )
        table = _table(
            title,
            "stage",
            "result",
            "confidence",
            "cost",
            "time ms",
            "error",
            right=("confidence", "cost", "time ms"),
        )
        stage_results: dict[str, Any] = result.get("stage_results", {})
        for stage, sr in stage_results.items():
            error = f"{sr.get('error_type')}: {sr.get('error')}" if sr.get("error") else ""
            table.add_row(
                _text(stage),
                _text(sr.get("result")),
                _num(sr.get("confidence"), ".2f"),
                _num(sr.get("cost"), "g"),
                _num(sr.get("time_ms"), ".2f"),
                _text(error),
            )
        for stage, reason in result.get("skipped_stages", {}).items():
            table.add_row(_text(stage), _text(f"skipped: {reason}"), "", "", "", "")
        out.print(table)
        explanation = result.get("explanation")
        if explanation:
            rules = _table("  routing rules", "stage", "rule", "matched", "action", "condition")
            for entry in explanation:
                rules.add_row(
                    _text(entry.get("stage")),
                    _text(entry.get("rule")),
                    "yes" if entry.get("matched") else "no",
                    _text(entry.get("action") or ""),
                    _text(_condition_text(entry.get("condition"))),
                )
            out.print(rules)


def print_summary(out: Console, engine: CascadeEngine, results: list[dict[str, Any]]) -> None:
    """Decisions by outcome, stages executed, cost, time and errors."""
    total = len(results)
    ok = sum(1 for r in results if r.get("success"))
    timed_out = sum(1 for r in results if r.get("timed_out"))
    costs = [float(r.get("cost") or 0.0) for r in results]
    times = [float(r.get("execution_time_ms") or 0.0) for r in results]

    head = _table(
        f"Summary: {engine.plan.name} {engine.plan.version}", "measure", "value", right=("value",)
    )
    head.add_row("decisions", str(total))
    head.add_row("succeeded", str(ok))
    head.add_row("failed", str(total - ok))
    if timed_out:
        head.add_row("timed out", str(timed_out))
    head.add_row("total cost", f"{sum(costs):g}")
    head.add_row("mean cost", f"{sum(costs) / total:.3g}" if total else "-")
    head.add_row("mean time ms", f"{sum(times) / total:.2f}" if total else "-")
    out.print(head)

    outcomes = Counter(
        "-" if r.get("final_result") is None else str(r.get("final_result")) for r in results
    )
    table = _table(
        "Decisions by outcome", "final result", "decisions", "share", right=("decisions", "share")
    )
    for outcome, count in outcomes.most_common():
        table.add_row(_text(outcome), str(count), f"{count / total:.0%}")
    out.print(table)

    executed: Counter[str] = Counter(s for r in results for s in r.get("path", []))
    order = [s.name for s in engine.plan.stages]
    table = _table("Stages executed", "stage", "decisions", "share", right=("decisions", "share"))
    for stage in order + sorted(set(executed) - set(order)):
        count = executed.get(stage, 0)
        table.add_row(_text(stage), str(count), f"{count / total:.0%}" if total else "-")
    out.print(table)

    errors = Counter(
        (str(e.get("stage") or "-"), str(e.get("type")))
        for r in results
        for e in r.get("errors", [])
    )
    if errors:
        table = _table("Errors", "stage", "type", "count", right=("count",))
        for (stage, kind), count in errors.most_common():
            table.add_row(_text(stage), _text(kind), str(count))
        out.print(table)
    else:
        out.print("Errors: none")

    # conditions that met a value of the wrong type (false, and recorded on the result)
    doubts = Counter(
        (str(w.get("path") or "-"), str(w.get("message")))
        for r in results
        for w in r.get("warnings") or []
        if isinstance(w, dict)
    )
    if doubts:
        table = _table(
            "Condition warnings (those tests were false)",
            "field",
            "warning",
            "count",
            right=("count",),
        )
        for (path, message), count in doubts.most_common():
            table.add_row(_text(path), _text(message), str(count))
        out.print(table)
