"""Replay: recorded events through one cascade or two versions side by side, here and on Dask."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascadence import CascadeConfig, CascadeEngine
from cascadence.cli.main import app
from cascadence.errors import PlanError
from cascadence.replay import ReplayReport, replay, replay_sync

HANDLERS = """\
async def rules(context):
    amount = context.get("amount")
    return {"result": "approve" if amount < 100 else "review",
            "confidence": 0.99 if amount < 50 else 0.6}


async def model(context):
    return {"result": "approve" if context.get("amount") < 500 else "decline",
            "confidence": 0.9}
"""

CASCADE = """\
name: screen
version: "{version}"
stages:
  RULES:
    handler: "replay_handlers:rules"
    cost: 1
    routing_rules:
      - name: sure
        condition: {{field: stages.RULES.confidence, operator: ">=", value: {threshold}}}
        action: {{type: terminate}}
  MODEL:
    handler: "replay_handlers:model"
    cost: 5
    depends_on: [RULES]
"""

AMOUNTS = [10, 40, 60, 80, 200, 700]
EVENTS = [{"id": f"e{n}", "amount": amount} for n, amount in enumerate(AMOUNTS, 1)]


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two versions of a two-stage cascade: the second trusts the rules stage far more."""
    (tmp_path / "replay_handlers.py").write_text(HANDLERS)
    v1 = tmp_path / "v1.yaml"
    v1.write_text(CASCADE.format(version="1", threshold=0.95))
    v2 = tmp_path / "v2.yaml"
    v2.write_text(CASCADE.format(version="2", threshold=0.5))
    yield v1, v2
    sys.modules.pop("replay_handlers", None)


def comparable(report: ReplayReport) -> dict[str, Any]:
    """The report without run times, which differ between runs."""
    doc = report.to_dict()
    for side in ("baseline", "candidate"):
        if doc[side] is not None:
            doc[side].pop("p50_ms")
            doc[side].pop("p95_ms")
    for d in doc["disagreements"]:
        d["baseline"].pop("time_ms")
        d["candidate"].pop("time_ms")
    return doc


async def test_one_version_summarizes_decisions_cost_and_where_runs_ended(
    versions: tuple[Path, Path],
) -> None:
    """Replaying one version counts its decisions, final stages and cost exactly."""
    report = await replay(versions[0], EVENTS)
    summary = report.baseline
    assert (summary.cascade, summary.version, summary.events) == ("screen", "1", 6)
    assert summary.succeeded == 6 and summary.failed == 0 and summary.timed_out == 0
    assert summary.decisions == {"approve": 5, "decline": 1}
    assert summary.final_stages == {"MODEL": 4, "RULES": 2}
    assert summary.total_cost == 2 * 1 + 4 * 6
    assert summary.mean_cost == pytest.approx(26 / 6)
    assert report.candidate is None and report.agreement is None and report.cost_change is None
    assert report.disagreements == () and report.disagreement_count == 0


async def test_two_versions_report_agreement_cost_change_and_each_disagreement(
    versions: tuple[Path, Path],
) -> None:
    """Side by side, the events decided differently are listed in order with both outcomes."""
    report = await replay(versions[0], EVENTS, candidate=versions[1])
    assert report.candidate is not None
    assert report.candidate.decisions == {"approve": 4, "review": 2}
    assert report.candidate.total_cost == 6
    assert report.disagreement_count == 2
    assert report.agreement == pytest.approx(4 / 6)
    assert report.cost_change == pytest.approx(6 / 26 - 1)
    first, second = report.disagreements
    assert (first.index, first.event_id) == (4, "e5")
    assert (first.baseline.decision, first.candidate.decision) == ("approve", "review")
    assert first.baseline.path == ("RULES", "MODEL") and first.candidate.path == ("RULES",)
    assert (first.baseline.cost, first.candidate.cost) == (6.0, 1.0)
    assert (second.event_id, second.baseline.decision) == ("e6", "decline")
    json.dumps(report.to_dict())  # JSON-ready


async def test_engines_with_registered_handlers_replay_like_their_configs(
    versions: tuple[Path, Path],
) -> None:
    """An engine is replayed with its own handlers; the report equals the configs' report."""

    async def rules(context: Any) -> dict[str, Any]:
        amount = context.get("amount")
        return {
            "result": "approve" if amount < 100 else "review",
            "confidence": 0.99 if amount < 50 else 0.6,
        }

    async def model(context: Any) -> dict[str, Any]:
        return {
            "result": "approve" if context.get("amount") < 500 else "decline",
            "confidence": 0.9,
        }

    engines = []
    for path in versions:
        doc = CascadeConfig.from_file(path).model_dump(exclude_none=True)
        for stage in doc["stages"].values():
            stage.pop("handler")
        engine = CascadeEngine(doc)
        engine.register_stages({"RULES": rules, "MODEL": model})
        engines.append(engine)
    by_engine = await replay(engines[0], EVENTS, candidate=engines[1], concurrency=2)
    by_config = await replay(versions[0], EVENTS, candidate=versions[1])
    assert comparable(by_engine) == comparable(by_config)


async def test_decision_key_limit_and_ids(versions: tuple[Path, Path]) -> None:
    """A custom decision key decides agreement; the listed disagreements are capped, not the
    count; events without the id field are named by position only."""
    events = [{"amount": a} for a in AMOUNTS]
    report = await replay(
        versions[0],
        events,
        candidate=versions[1],
        decision=lambda result: result["final_stage"],
        max_disagreements=1,
    )
    assert report.disagreement_count == 4  # amounts 60..700 end at MODEL, then at RULES
    assert len(report.disagreements) == 1
    assert report.disagreements[0].event_id is None and report.disagreements[0].index == 2


async def test_events_are_not_changed_and_each_version_sees_the_same_input(
    tmp_path: Path, versions: tuple[Path, Path]
) -> None:
    """A set_field rule of the baseline writes only to its own run's copy of the event."""
    writer = tmp_path / "writer.yaml"
    writer.write_text(
        CASCADE.format(version="w", threshold=0.95).replace(
            "action: {type: terminate}",
            "action: {type: set_field, field: amount, value: 1000}",
        )
    )
    events = [{"id": "a", "amount": 10}]
    report = await replay(writer, events, candidate=versions[0])
    assert events == [{"id": "a", "amount": 10}]
    assert report.baseline.decisions == {"decline": 1}  # MODEL read the written amount
    assert report.candidate is not None and report.candidate.decisions == {"approve": 1}


async def test_a_handler_changing_the_event_in_place_reaches_neither_version_nor_caller() -> None:
    """Each version runs on its own deep copy of the event: a baseline handler appending to a
    list of the event changes neither what the candidate reads nor the caller's events."""

    async def flagger(context: Any) -> dict[str, Any]:
        context.get("flags").append("x")
        return {"result": "flagged", "confidence": 1.0}

    async def counter(context: Any) -> dict[str, Any]:
        return {"result": "approve" if not context.get("flags") else "reject", "confidence": 1.0}

    def engine(handler: Any) -> CascadeEngine:
        built = CascadeEngine(CascadeConfig.from_dict({"name": "f", "stages": {"S": {}}}))
        built.register_stage("S", handler)
        return built

    events = [{"id": "x1", "flags": []}, {"id": "x2", "flags": []}]
    report = await replay(engine(flagger), events, candidate=engine(counter))
    assert report.candidate is not None and report.candidate.decisions == {"approve": 2}
    assert events == [{"id": "x1", "flags": []}, {"id": "x2", "flags": []}]


async def test_a_stage_without_a_handler_is_refused_before_anything_runs() -> None:
    """A config whose stage has no handler names the stage and how to give it one."""
    config = {"name": "bare", "stages": {"ONLY": {"cost": 1}}}
    with pytest.raises(PlanError, match=r"no handler for stage\(s\) ONLY"):
        await replay(config, EVENTS)


async def test_replay_sync_refuses_a_running_loop(versions: tuple[Path, Path]) -> None:
    """`replay_sync` inside a running event loop says to await `replay` instead."""
    with pytest.raises(RuntimeError, match="await replay"):
        replay_sync(versions[0], EVENTS)


def test_replay_sync_outside_a_loop(versions: tuple[Path, Path]) -> None:
    """`replay_sync` runs the replay in its own event loop."""
    report = replay_sync(versions[0], EVENTS, candidate=versions[1])
    assert report.disagreement_count == 2


def test_dask_replay_equals_the_local_replay(versions: tuple[Path, Path]) -> None:
    """On a real (in-process) Dask cluster, slices of the events give the local report."""
    from distributed import Client

    from cascadence.replay.dask import replay_on_dask

    local = replay_sync(versions[0], EVENTS, candidate=versions[1])
    with Client(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as client:
        spread = replay_on_dask(
            str(versions[0]), EVENTS, candidate=versions[1], client=client, partitions=4
        )
        with pytest.raises(TypeError, match="cannot be sent to Dask workers"):
            replay_on_dask(CascadeEngine(versions[0]), EVENTS, client=client)
    assert comparable(spread) == comparable(local)


def test_cli_replay_prints_the_comparison_and_json(
    versions: tuple[Path, Path], tmp_path: Path
) -> None:
    """`cascadence replay` prints both versions, the agreement and the disagreements."""
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    runner = CliRunner()
    args = ["replay", str(versions[0]), "--input", str(events), "--candidate", str(versions[1])]
    shown = runner.invoke(app, args, env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "agreement: 66.67%" in shown.output
    assert "cost change: -76.9%" in shown.output
    assert "e5" in shown.output and "RULES > MODEL" in shown.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["disagreement_count"] == 2
    assert [d["event_id"] for d in doc["disagreements"]] == ["e5", "e6"]


async def test_a_decision_written_by_a_rule_is_the_decision_compared(
    tmp_path: Path, versions: tuple[Path, Path]
) -> None:
    """A version whose rule decides early (writing `decision`, as learned rules do) agrees
    with the version that asked the model, although its final stage's result differs."""
    learned = tmp_path / "learned.yaml"
    learned.write_text(
        CASCADE.format(version="learned", threshold=0.95).replace(
            "    routing_rules:\n",
            "    routing_rules:\n"
            "      - name: large_declined\n"
            "        priority: 10\n"
            "        condition: {field: amount, operator: '>=', value: 500}\n"
            "        action: {type: set_field, field: decision, value: decline}\n"
            "      - name: large_stop\n"
            "        priority: 9\n"
            "        condition: {field: amount, operator: '>=', value: 500}\n"
            "        action: {type: terminate}\n",
        )
    )
    report = await replay(versions[0], EVENTS, candidate=learned)
    assert report.agreement == 1.0 and report.cost_change is not None
    from cascadence.replay import final_result

    strict = await replay(versions[0], EVENTS, candidate=learned, decision=final_result)
    assert strict.disagreement_count == 1  # 700: the rules stage's own result is "review"


async def test_an_event_both_versions_fail_on_is_no_agreement() -> None:
    """Two versions that both fail an event did not agree on it: it is a disagreement, so a
    candidate failing where the baseline fails does not look perfect."""

    def needs_amount(ctx: Any) -> dict[str, Any]:
        return {"result": "ok" if ctx.get("amount") is not None else 1 / 0}

    engines = []
    for version in ("1", "2"):
        engine = CascadeEngine({"name": "f", "version": version, "stages": {"A": {}}})
        engine.register_stage("A", needs_amount)
        engines.append(engine)
    report = await replay(engines[0], [{"amount": 1}, {}], candidate=engines[1])
    assert report.disagreement_count == 1
    assert report.agreement == 0.5
