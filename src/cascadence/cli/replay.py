"""`cascadence replay CONFIG --input EVENTS [--candidate CONFIG2] [--dask ADDRESS]`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascadence.cli._common import fail, rich_console
from cascadence.cli.run import _load_engine, read_inputs

if TYPE_CHECKING:
    from rich.console import Console

    from cascadence.cascade.config import CascadeConfig
    from cascadence.replay import ReplayReport, VersionSummary

__all__ = ["print_report", "replay"]


def replay(
    config: Annotated[
        str,
        typer.Argument(help="The cascade file in use (.yaml, .yml or .json).", show_default=False),
    ],
    input_: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="Recorded events: a JSON object, an array of objects, or JSON lines; '-' reads "
            "stdin.",
        ),
    ] = "-",
    candidate: Annotated[
        str | None,
        typer.Option(
            help="A second version of the cascade, run side by side: the report adds agreement, "
            "cost change and the events decided differently.",
            show_default=False,
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Spread the events over a Dask cluster: a scheduler address "
            "(tcp://host:8786), or 'local' for a cluster of this machine's cores "
            "(needs cascadence[dask]).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON document.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Events run at once (per task).")
    ] = 64,
    id_field: Annotated[
        str, typer.Option(help="Input field naming each event in the report.")
    ] = "id",
    decision_field: Annotated[
        str,
        typer.Option(
            help="The data field routing rules write a decision to (as learned rules do); "
            "without it, a run's decision is its final stage's result."
        ),
    ] = "decision",
    show: Annotated[
        int, typer.Option(min=0, help="How many disagreements to list (all are counted).")
    ] = 20,
) -> None:
    """Replay recorded events through a cascade, or two versions of it, and report decisions,
    cost and disagreements.

    Handlers come from the stages' `handler: 'package.module:function'` paths, as with `run`.
    """
    from cascadence.replay.run import replay_sync

    engine = _load_engine(config, explain=False)
    second = _load_engine(candidate, explain=False) if candidate is not None else None
    items = read_inputs(input_)
    from functools import partial

    from cascadence.learning.records import decision_of

    options: dict[str, Any] = {
        "decision": partial(decision_of, decision_field=decision_field),
        "id_field": id_field,
        "concurrency": concurrency,
        "max_disagreements": max(show, 1000) if json_output else show,
    }
    if dask is None:
        report = replay_sync(engine, items, candidate=second, **options)
    else:
        report = _on_dask(dask, engine.config, second.config if second else None, items, options)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(rich_console(stderr=False), report, show)


def _on_dask(
    address: str,
    baseline: CascadeConfig,
    candidate: CascadeConfig | None,
    items: list[dict[str, Any]],
    options: dict[str, Any],
) -> ReplayReport:
    try:
        from distributed import Client

        from cascadence.replay.dask import replay_on_dask
    except ImportError:
        fail("--dask needs Dask: pip install 'cascadence[dask]'")
    try:
        client = Client() if address == "local" else Client(address, timeout=10)  # type: ignore[no-untyped-call]
    except OSError as exc:
        fail(f"--dask {address}: cannot reach the scheduler ({exc})")
    except (ValueError, TypeError) as exc:  # not an address at all
        fail(
            f"--dask {address}: not a scheduler address ({exc}); expected host:port, "
            "tcp://host:port or local"
        )
    with client:
        return replay_on_dask(baseline, items, client=client, candidate=candidate, **options)


def _summary_rows(summary: VersionSummary) -> list[tuple[str, str]]:
    return [
        ("version", f"{summary.cascade} {summary.version}"),
        ("events", str(summary.events)),
        ("succeeded / failed", f"{summary.succeeded} / {summary.failed}"),
        ("timed out", str(summary.timed_out)),
        ("total cost", f"{summary.total_cost:g}"),
        ("cost per event", f"{summary.mean_cost:.3g}"),
        ("p50 / p95 ms", f"{summary.p50_ms:.2f} / {summary.p95_ms:.2f}"),
        ("decisions", ", ".join(f"{k}: {v}" for k, v in summary.decisions.items())),
        ("ended at", ", ".join(f"{k}: {v}" for k, v in summary.final_stages.items())),
    ]


def print_report(console: Console, report: ReplayReport, show: int) -> None:
    """Print the summaries side by side, the comparison and the first disagreements."""
    from rich.table import Table

    table = Table(title=f"Replay of {report.events} event(s)", title_justify="left")
    table.add_column("")
    table.add_column("baseline")
    versions = [report.baseline]
    if report.candidate is not None:
        table.add_column("candidate")
        versions.append(report.candidate)
    columns = [_summary_rows(v) for v in versions]
    for row, (label, _) in enumerate(columns[0]):
        table.add_row(label, *(c[row][1] for c in columns))
    console.print(table)
    if report.candidate is None:
        return
    agreement = report.agreement
    change = report.cost_change
    console.print(
        f"agreement: {agreement:.2%}" if agreement is not None else "agreement: -",
        f"  cost change: {change:+.1%}" if change is not None else "  cost change: -",
        f"  disagreements: {report.disagreement_count}",
    )
    listed = report.disagreements[:show]
    if not listed:
        return
    rows = Table(title="Events decided differently", title_justify="left")
    for column in ("event", "baseline", "path", "candidate", "path "):
        rows.add_column(column)
    for d in listed:
        rows.add_row(
            d.event_id if d.event_id is not None else f"#{d.index}",
            str(d.baseline.decision),
            " > ".join(d.baseline.path),
            str(d.candidate.decision),
            " > ".join(d.candidate.path),
        )
    console.print(rows)
    if report.disagreement_count > len(listed):
        console.print(f"... and {report.disagreement_count - len(listed)} more (--show N)")
