"""The web console, through FastAPI's own test client: cascades and flows as they run, runs in a
real SQLite checkpoint store, and the proposal review workflow with its write protections."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cascadence import (
    Cadence,
    CascadeConfig,
    CascadeEngine,
    NoteError,
    Score,
    note,
)
from cascadence.checkpoint import SQLiteCheckpointStore
from cascadence.console import Catalog, create_console
from cascadence.learning import GeneratedRule, ProposalManager, ProposalStatus

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"

RULE = GeneratedRule(
    rule_id="apls_00000000aa",
    pattern_id="pat_00000000aa",
    stage="RULES",
    condition={"field": "amount", "operator": ">=", "value": 500},
    decision="decline",
    confidence=0.995,
    support=300,
)
OTHER = GeneratedRule(
    rule_id="apls_00000000bb",
    pattern_id="pat_00000000bb",
    stage="RULES",
    condition={"field": "country", "operator": "IN", "value": ["NG", "RO"]},
    decision="review",
    confidence=0.97,
    support=120,
)


@dataclass
class Order(Score):
    order_id: str = "ORD-1"
    total: float = 0.0
    status: str = "new"


async def price(score: Order) -> None:
    score.total = 42.0


@note(retry={"max_attempts": 3, "delay": 0.0}, timeout=5.0)
async def charge(score: Order) -> None:
    score.status = "paid"


async def ship(score: Order) -> None:
    score.status = "shipped"


async def hold(score: Order) -> None:
    score.status = "held"


def flow() -> Cadence[Order]:
    child = Cadence("payment", Order()).then("charge", charge)
    return (
        Cadence("checkout", Order())
        .then("price", price)
        .sync("enrich", [price, ship])
        .split("route", lambda s: s.total > 10, [ship], [hold])
        .child("pay", child, lambda parent, done: None)
    )


def cascade_engine(description: str = "trust checks") -> CascadeEngine:
    config = CascadeConfig.from_dict(
        {
            "name": "trust",
            "version": "3",
            "description": description,
            "stages": {
                "FAST": {
                    "routing_rules": [
                        {
                            "name": "sure",
                            "priority": 10,
                            "condition": {
                                "field": "stages.FAST.confidence",
                                "operator": ">=",
                                "value": 0.9,
                            },
                            "action": {"type": "terminate"},
                        },
                        {
                            "name": "big",
                            "priority": 50,
                            "condition": 'amount > 100 and country in ["NG", "RO"]',
                            "action": {"type": "enable_stages", "stages": ["SLOW"]},
                        },
                    ]
                },
                "SLOW": {
                    "enabled": False,
                    "cost": "SINGLE_AI",
                    "depends_on": ["FAST"],
                    "circuit_breaker": {"failure_threshold": 1, "reset_timeout_seconds": 600},
                },
            },
        }
    )
    engine = CascadeEngine(config)

    async def fast(context: Any) -> dict[str, Any]:
        return {"result": "review", "confidence": 0.5}

    async def slow(context: Any) -> dict[str, Any]:
        raise RuntimeError("model down")

    engine.register_stage("FAST", fast)
    engine.register_stage("SLOW", slow)
    return engine


def text_of(page: str) -> str:
    """The visible text of a page's main part, whitespace collapsed."""
    main = page.split("<main>", 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)).strip())


def token_of(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found is not None, "the page has no review form"
    return found.group(1)


@pytest.fixture
def manager() -> Iterator[ProposalManager]:
    with ProposalManager() as chosen:
        chosen.create_proposal(RULE)
        chosen.create_proposal(OTHER)
        yield chosen


# -- cascades and flows --------------------------------------------------------------------------
def test_overview_lists_cascades_and_flows_and_links_to_them() -> None:
    app = create_console([cascade_engine(), QUICKSTART / "cascade.yaml", flow()])
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert 'href="/cascades/trust"' in page.text
        assert 'href="/cascades/trust_scoring_cascade"' in page.text
        assert 'href="/flows/checkout"' in page.text
        assert "price → enrich → route → pay" in text_of(page.text)
        assert client.get("/cascades/trust_scoring_cascade").status_code == 200
        assert client.get("/flows/checkout").status_code == 200


def test_a_cascade_is_shown_as_its_engine_runs_it() -> None:
    engine = cascade_engine()
    app = create_console([engine])
    asyncio.run(engine.execute({"amount": 500, "country": "NG"}))
    with TestClient(app) as client:
        data = client.get("/api/cascades/trust").json()
        page = text_of(client.get("/cascades/trust").text)
    assert data["version"] == "3" and data["running"] is True
    fast, slow = data["stages"]
    # rules in evaluation order, conditions as one expression each, whichever way written
    assert [(r["name"], r["condition"], r["action"]) for r in fast["rules"]] == [
        ("big", 'amount > 100 and country in ["NG", "RO"]', "enable_stages SLOW"),
        ("sure", "stages.FAST.confidence >= 0.9", "terminate"),
    ]
    assert fast["handler"].endswith("cascade_engine.<locals>.fast")
    assert slow["cost"] == 25.0 and slow["depends_on"] == ["FAST"]
    assert fast["statistics"]["count"] == 1
    assert slow["statistics"]["errors"] == 1
    assert slow["breaker_state"] == "open"  # one failure opens it (failure_threshold 1)
    assert "flowchart TD" in data["mermaid"] and "big: enable" in data["mermaid"]
    assert 'amount > 100 and country in ["NG", "RO"] enable_stages SLOW' in page
    assert "open" in page


def test_a_hot_reload_shows_at_once() -> None:
    engine = cascade_engine()
    app = create_console([engine])
    with TestClient(app) as client:
        assert client.get("/api/cascades/trust").json()["version"] == "3"
        config = engine.config.model_copy(update={"version": "4"})
        engine.update_config(config)
        assert client.get("/api/cascades/trust").json()["version"] == "4"


def test_a_config_or_file_shows_without_handlers() -> None:
    app = create_console({"v1": QUICKSTART / "cascade.yaml", "v2": QUICKSTART / "cascade.v2.yaml"})
    with TestClient(app) as client:
        listed = client.get("/api/cascades").json()
        assert [c["name"] for c in listed] == ["v1", "v2"]
        one = client.get("/api/cascades/v1").json()
    assert one["running"] is False and one["source_file"].endswith("cascade.yaml")
    assert [s["name"] for s in one["stages"]] == ["FAST_CHECK", "MEDIUM_CHECK", "EXPENSIVE_CHECK"]
    assert "statistics" not in one["stages"][0]


def test_two_versions_of_one_cascade_get_distinct_names() -> None:
    catalog = Catalog([QUICKSTART / "cascade.yaml", QUICKSTART / "cascade.v2.yaml"])
    assert [e.name for e in catalog.entries()] == [
        "trust_scoring_cascade",
        "trust_scoring_cascade@2.0",
    ]
    with pytest.raises(ValueError, match="already shows a cascade named 'x'"):
        Catalog({"x": QUICKSTART / "cascade.yaml"}).add(cascade_engine(), name="x")
    with pytest.raises(TypeError, match="got int"):
        Catalog([3])


def test_a_flow_shows_its_groups_branches_children_and_policies() -> None:
    app = create_console([flow()])
    with TestClient(app) as client:
        data = client.get("/api/flows/checkout").json()
        page = text_of(client.get("/flows/checkout").text)
    price_step, group, branch, child = data["steps"]
    assert price_step == {"kind": "note", "name": "price", "policy": {}}
    assert group["kind"] == "sync" and [t["name"] for t in group["tasks"]] == ["price", "ship"]
    assert branch["kind"] == "split"
    assert [n["name"] for n in branch["if_true"]] == ["ship"]
    assert [n["name"] for n in branch["if_false"]] == ["hold"]
    assert child["kind"] == "child" and child["flow"] == "payment"
    assert child["steps"][0]["policy"] == {
        "timeout_s": 5.0,
        "retry": {"max_attempts": 3, "delay_s": 0.0, "backoff": "exponential"},
    }
    assert data["score"] == "Order"
    assert "3 attempts (exponential)" in page and "timeout 5.0 s" in page


def test_unknown_names_answer_404_with_the_closest() -> None:
    app = create_console([cascade_engine(), flow()])
    with TestClient(app) as client:
        page = client.get("/cascades/trsut")
        api = client.get("/api/flows/chekout")
    assert page.status_code == 404
    assert "no cascade named 'trsut'; did you mean 'trust'?" in text_of(page.text)
    assert api.status_code == 404
    assert api.json() == {"detail": "no flow named 'chekout'; did you mean 'checkout'?"}


def test_text_from_configs_is_escaped() -> None:
    engine = cascade_engine(description="<script>alert(1)</script>")
    with TestClient(create_console([engine])) as client:
        page = client.get("/cascades/trust").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_diagrams_can_be_drawn_without_the_cdn() -> None:
    with TestClient(create_console([flow()])) as client:
        assert "mermaid.esm.min.mjs" in client.get("/flows/checkout").text
    with TestClient(create_console([flow()], mermaid_url=None)) as client:
        page = client.get("/flows/checkout").text
    assert "<script" not in page and "flowchart TD" in page


# -- runs ----------------------------------------------------------------------------------------
@pytest.fixture
def runs_db(tmp_path: Path) -> str:
    """A SQLite checkpoint store with a failed flow run and a completed cascade run."""
    path = tmp_path / "runs.db"

    async def record() -> None:
        store = SQLiteCheckpointStore(str(path))

        async def broken(score: Order) -> None:
            raise ValueError("card declined")

        failing = (
            Cadence("checkout", Order())
            .with_checkpoint(store, run_id="order-7")
            .then("price", price)
            .then("charge", broken)
        )
        with pytest.raises(NoteError):
            await failing.run(Order(order_id="ORD-7"))
        engine = cascade_engine()
        await engine.execute({"amount": 5, "country": "US"}, run_id="decision-1", checkpoint=store)
        await store.close()

    asyncio.run(record())
    return f"sqlite:///{path}"


def test_runs_are_listed_filtered_and_shown(runs_db: str) -> None:
    with TestClient(create_console(runs=runs_db)) as client:
        everything = client.get("/api/runs").json()
        failed = client.get("/api/runs", params={"status": "failed"}).json()
        named = client.get("/api/runs", params={"name": "trust"}).json()
        one = client.get("/api/runs", params={"limit": 1}).json()
        run = client.get("/api/runs/order-7").json()
        decision = client.get("/api/runs/decision-1").json()
        page = text_of(client.get("/runs/order-7").text)
        listing = text_of(client.get("/runs?status=failed").text)
    assert {r["run_id"] for r in everything} == {"order-7", "decision-1"}
    assert [r["run_id"] for r in failed] == ["order-7"]
    assert [r["run_id"] for r in named] == ["decision-1"]
    assert len(one) == 1
    assert run["status"] == "failed" and "card declined" in run["error"]
    assert [s["key"] for s in run["steps"]] == ["0:price"]
    assert run["steps"][0]["payload"]["score"]["total"] == 42.0  # the score as saved
    assert run["steps"][0]["payload"]["score"]["order_id"] == "ORD-7"
    assert decision["status"] == "completed"
    assert decision["result"]["stage_results"]["FAST"]["result"] == "review"
    assert "Run order-7 failed" in page and "card declined" in page and "0:price" in page
    assert "order-7" in listing and "decision-1" not in listing


def test_run_queries_are_checked(runs_db: str) -> None:
    with TestClient(create_console(runs=runs_db)) as client:
        bad_status = client.get("/api/runs", params={"status": "faild"})
        bad_limit = client.get("/api/runs", params={"limit": "all"})
        too_many = client.get("/api/runs", params={"limit": 5000})
        missing = client.get("/api/runs/order-8")
        page = client.get("/runs?status=runing")
    assert bad_status.status_code == 400
    assert "did you mean 'failed'?" in bad_status.json()["detail"]
    assert bad_limit.status_code == 400 and "whole number" in bad_limit.json()["detail"]
    assert too_many.status_code == 400 and "between 1 and 1000" in too_many.json()["detail"]
    assert missing.status_code == 404 and "'order-8'" in missing.json()["detail"]
    assert page.status_code == 400 and "did you mean 'running'?" in text_of(page.text)


def test_without_a_store_the_runs_pages_say_how_to_add_one() -> None:
    with TestClient(create_console()) as client:
        page = client.get("/runs")
        api = client.get("/api/runs")
    assert page.status_code == 404 and "--runs sqlite:///runs.db" in text_of(page.text)
    assert api.status_code == 404 and "create_console(runs=...)" in api.json()["detail"]


# -- proposals -----------------------------------------------------------------------------------
def test_proposals_are_listed_and_shown(manager: ProposalManager) -> None:
    with TestClient(create_console(proposals=manager)) as client:
        listed = client.get("/api/proposals").json()
        pending = text_of(client.get("/").text)
        page = text_of(client.get("/proposals/" + RULE.pattern_id.replace("pat", "prop")).text)
        filtered = client.get("/api/proposals", params={"status": "active"}).json()
    assert [p["stage"] for p in listed] == ["RULES", "RULES"]
    assert {p["expression"] for p in listed} == {"amount >= 500", 'country in ["NG", "RO"]'}
    assert listed[0]["actions"] == ["approve", "reject"]
    assert "2 proposals waiting for review" in pending
    assert "amount >= 500" in page and "Approve" in page and "Reject" in page
    assert filtered == []


def test_a_rule_deciding_before_its_stage_is_shown_as_such() -> None:
    """A proposal learned from runs its stage decided itself reads "decided before" the stage,
    not a move from the stage to itself."""
    from cascadence.learning import MigrationROI

    rule = GeneratedRule(
        rule_id="apls_00000000cc",
        pattern_id="pat_00000000cc",
        stage="SINGLE_AI",
        condition={"field": "amount", "operator": ">=", "value": 10000},
        decision="fraud",
        confidence=1.0,
        support=45,
        rule_type="precondition",
    )
    roi = MigrationROI(
        pattern_id="pat_00000000cc",
        source_stage="SINGLE_AI",
        target_stage="SINGLE_AI",
        volume=10000,
        coverage=0.5,
        migrated_volume=5000.0,
        confidence=1.0,
        current_cost=250000.0,
        projected_cost=130000.0,
        savings=120000.0,
        cost_reduction_percentage=48.0,
        cost_per_decision_before=25.0,
        cost_per_decision_after=1.0,
        migrated_cost_reduction_percentage=96.0,
        expected_errors=0.0,
        recommendation="MIGRATE",
        rationale="saves 48.0% of the cost at 100.0% precision",
        placement="before",
    )
    with ProposalManager() as chosen:
        proposal = chosen.create_proposal(rule, roi)
        with TestClient(create_console(proposals=chosen)) as client:
            page = text_of(client.get(f"/proposals/{proposal.proposal_id}").text)
    assert "decided before SINGLE_AI runs" in page
    assert "SINGLE_AI → SINGLE_AI" not in page


def test_a_reviewer_approves_through_the_form(manager: ProposalManager) -> None:
    proposal_id = manager.proposals()[0].proposal_id
    with TestClient(create_console(proposals=manager)) as client:
        page = client.get(f"/proposals/{proposal_id}")
        token = token_of(page.text)
        moved = client.post(
            f"/proposals/{proposal_id}/approve",
            data={"token": token, "reviewer": "ana@example.com", "reason": "checked 20 cases"},
            follow_redirects=False,
        )
        assert moved.status_code == 303
        shown = client.get(moved.headers["location"])
    stored = manager.get(proposal_id)
    assert stored.status is ProposalStatus.APPROVED and stored.reviewer == "ana@example.com"
    assert stored.history[-1].reason == "checked 20 cases"
    text = text_of(shown.text)
    assert "Done: approve. The proposal is now APPROVED." in text
    assert "ana@example.com" in text and "checked 20 cases" in text
    assert "Start testing" in text and "Activate" in text  # what approved allows next


def test_form_writes_need_the_console_token(manager: ProposalManager) -> None:
    proposal_id = manager.proposals()[0].proposal_id
    with TestClient(create_console(proposals=manager)) as client:
        forged = client.post(f"/proposals/{proposal_id}/approve", data={"reviewer": "mallory"})
        other = client.post(
            f"/proposals/{proposal_id}/approve", data={"reviewer": "mallory", "token": "guess"}
        )
    assert forged.status_code == 403 and other.status_code == 403
    assert manager.get(proposal_id).status is ProposalStatus.PENDING_REVIEW


def test_form_errors_are_shown_on_the_proposal(manager: ProposalManager) -> None:
    proposal_id = manager.proposals()[0].proposal_id
    with TestClient(create_console(proposals=manager)) as client:
        token = token_of(client.get(f"/proposals/{proposal_id}").text)
        nameless = client.post(
            f"/proposals/{proposal_id}/approve", data={"token": token, "reviewer": "  "}
        )
        early = client.post(f"/proposals/{proposal_id}/activate", data={"token": token})
    assert nameless.status_code == 400
    assert "approving needs the reviewer who signs it off" in text_of(nameless.text)
    assert early.status_code == 409
    assert "is PENDING_REVIEW; it cannot become ACTIVE" in text_of(early.text)
    assert manager.get(proposal_id).status is ProposalStatus.PENDING_REVIEW


def test_the_api_moves_proposals_through_the_workflow(manager: ProposalManager) -> None:
    proposal_id = manager.proposals()[0].proposal_id
    with TestClient(create_console(proposals=manager)) as client:
        url = f"/api/proposals/{proposal_id}"
        approved = client.post(url + "/approve", json={"reviewer": "ana", "reason": "ok"})
        testing = client.post(url + "/start_testing", json={})
        active = client.post(url + "/activate", json={"reviewer": "ana"})
        again = client.post(url + "/approve", json={"reviewer": "ana"})
        typo = client.post(url + "/aprove", json={"reviewer": "ana"})
        form_body = client.post(url + "/deprecate", data={"reviewer": "ana"})
        extra = client.post(url + "/deprecate", json={"reviewer": "ana", "force": True})
        missing = client.post("/api/proposals/prop_nothing/approve", json={"reviewer": "ana"})
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"
    assert testing.json()["status"] == "TESTING"
    assert active.json()["status"] == "ACTIVE" and active.json()["actions"] == ["deprecate"]
    assert again.status_code == 409 and "ACTIVE" in again.json()["detail"]
    assert typo.status_code == 404 and "did you mean 'approve'?" in typo.json()["detail"]
    assert form_body.status_code == 415
    assert extra.status_code == 400 and "'force'" in extra.json()["detail"]
    assert missing.status_code == 404 and "prop_nothing" in missing.json()["detail"]
    assert manager.get_active_rules() == [RULE]


def test_a_login_in_front_names_the_reviewer(manager: ProposalManager) -> None:
    proposal_id = manager.proposals()[0].proposal_id

    def from_proxy(request: Any) -> str | None:
        user: str | None = request.headers.get("X-Forwarded-User")
        return user

    app = create_console(proposals=manager, reviewer=from_proxy)
    with TestClient(app) as client:
        page = client.get(f"/proposals/{proposal_id}").text
        refused = client.post(f"/api/proposals/{proposal_id}/approve", json={"reviewer": "me"})
        signed = client.post(
            f"/api/proposals/{proposal_id}/approve",
            json={"reviewer": "someone else"},
            headers={"X-Forwarded-User": "ana@example.com"},
        )
    assert 'name="reviewer"' not in page  # the form does not ask who you are
    assert refused.status_code == 403
    assert signed.status_code == 200 and signed.json()["reviewer"] == "ana@example.com"


def test_proposals_from_a_store_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'proposals.db'}"
    with ProposalManager(url) as writer:
        writer.create_proposal(RULE)
    with TestClient(create_console(proposals=url)) as client:
        listed = client.get("/api/proposals").json()
    assert [p["rule"]["rule_id"] for p in listed] == [RULE.rule_id]
