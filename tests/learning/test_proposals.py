"""The proposal workflow: the transition table, the audit trail, persistence, and activation
gated by a shadow test."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from cascadence.learning import (
    TRANSITIONS,
    GeneratedRule,
    InvalidTransitionError,
    ProposalManager,
    ProposalNotFoundError,
    ProposalStatus,
    ShadowStats,
)
from cascadence.testing import FakeClock

S = ProposalStatus
RULE = GeneratedRule(
    rule_id="apls_00000000aa",
    pattern_id="pat_00000000aa",
    stage="RULES",
    condition={"field": "amount", "operator": ">=", "value": 500},
    decision="decline",
    confidence=0.995,
    support=300,
)

# how to bring a new proposal into each status with legal moves
PATHS: dict[ProposalStatus, list[str]] = {
    S.PENDING_REVIEW: [],
    S.APPROVED: ["approve"],
    S.TESTING: ["approve", "start_testing"],
    S.ACTIVE: ["approve", "activate"],
    S.DEPRECATED: ["approve", "activate", "deprecate"],
    S.REJECTED: ["reject"],
}
MOVES = {
    S.APPROVED: "approve",
    S.TESTING: "start_testing",
    S.ACTIVE: "activate",
    S.DEPRECATED: "deprecate",
    S.REJECTED: "reject",
}


def call(manager: ProposalManager, move: str, proposal_id: str) -> None:
    method: Callable[..., object] = getattr(manager, move)
    method(proposal_id, "reviewer@example.com")


@pytest.mark.parametrize("start", list(PATHS))
@pytest.mark.parametrize("target", list(MOVES))
def test_transition_table(start: ProposalStatus, target: ProposalStatus) -> None:
    """Every move in `TRANSITIONS` works; every other move raises and changes nothing."""
    with ProposalManager() as manager:
        proposal_id = manager.create_proposal(RULE).proposal_id
        for move in PATHS[start]:
            call(manager, move, proposal_id)
        assert manager.get(proposal_id).status is start
        if target in TRANSITIONS[start]:
            call(manager, MOVES[target], proposal_id)
            assert manager.get(proposal_id).status is target
        else:
            with pytest.raises(InvalidTransitionError) as caught:
                call(manager, MOVES[target], proposal_id)
            assert (caught.value.current, caught.value.requested) == (start, target)
            assert manager.get(proposal_id).status is start
            assert len(manager.history(proposal_id)) == len(PATHS[start]) + 1


def test_the_spec_main_line_and_its_table() -> None:
    """The table holds the spec's line PENDING_REVIEW -> APPROVED -> TESTING -> ACTIVE ->
    DEPRECATED, and REJECTED and DEPRECATED are final."""
    line = [S.PENDING_REVIEW, S.APPROVED, S.TESTING, S.ACTIVE, S.DEPRECATED]
    assert all(b in TRANSITIONS[a] for a, b in itertools.pairwise(line))
    assert S.REJECTED in TRANSITIONS[S.PENDING_REVIEW]
    assert TRANSITIONS[S.REJECTED] == TRANSITIONS[S.DEPRECATED] == frozenset()
    assert all(S.PENDING_REVIEW not in targets for targets in TRANSITIONS.values())


def test_every_transition_records_who_when_and_why() -> None:
    """The audit trail has one entry per move, with actor, clock time and reason."""
    clock = FakeClock(wall_start=1_000.0)
    with ProposalManager(clock=clock) as manager:
        proposal = manager.create_proposal(RULE, reason="learned overnight")
        clock.advance(10)
        manager.approve(proposal.proposal_id, reviewer="alice@example.com", reason="looks right")
        clock.advance(5)
        manager.start_testing(proposal.proposal_id, reason="shadow first")
        clock.advance(60)
        final = manager.activate(proposal.proposal_id, actor="bob@example.com", reason="ok")
        trail = [
            (t.from_status, t.to_status, t.actor, t.at, t.reason)
            for t in manager.history(proposal.proposal_id)
        ]
    assert trail == [
        (None, S.PENDING_REVIEW, "apls", 1_000.0, "learned overnight"),
        (S.PENDING_REVIEW, S.APPROVED, "alice@example.com", 1_010.0, "looks right"),
        (S.APPROVED, S.TESTING, "apls", 1_015.0, "shadow first"),
        (S.TESTING, S.ACTIVE, "bob@example.com", 1_075.0, "ok"),
    ]
    assert final.reviewer == "alice@example.com"
    assert (final.created_at, final.updated_at) == (1_000.0, 1_075.0)


def test_proposals_persist_in_a_sqlite_file(tmp_path: Path) -> None:
    """A manager opened again on the same file sees the proposals and their history."""
    path = str(tmp_path / "proposals.db")
    with ProposalManager(db_path=path) as manager:
        proposal_id = manager.create_proposal(RULE).proposal_id
        manager.approve(proposal_id, reviewer="alice@example.com")
    with ProposalManager(f"sqlite:///{path}") as again:
        proposal = again.get(proposal_id)
        assert proposal.status is S.APPROVED
        assert [t.to_status for t in proposal.history] == [S.PENDING_REVIEW, S.APPROVED]
        assert proposal.rule == RULE


def test_creating_is_idempotent_while_a_proposal_is_open() -> None:
    """Proposing an open rule again returns its proposal; after rejection it gets a new id."""
    with ProposalManager() as manager:
        first = manager.create_proposal(RULE)
        assert first.proposal_id == "prop_00000000aa"
        assert manager.create_proposal(RULE).proposal_id == first.proposal_id
        manager.reject(first.proposal_id, reviewer="alice@example.com", reason="not now")
        second = manager.create_proposal(RULE)
        assert second.proposal_id == "prop_00000000aa_2"
        assert [p.proposal_id for p in manager.proposals()] == [
            "prop_00000000aa",
            "prop_00000000aa_2",
        ]


def test_unknown_ids_and_statuses_suggest_the_closest() -> None:
    """A misspelt proposal id or status names the closest valid one."""
    with ProposalManager() as manager:
        manager.create_proposal(RULE)
        with pytest.raises(ProposalNotFoundError) as caught:
            manager.approve("prop_00000000ab", reviewer="alice@example.com")
        assert str(caught.value) == (
            "no proposal 'prop_00000000ab'; did you mean 'prop_00000000aa'?"
        )
        assert isinstance(caught.value, KeyError)
        with pytest.raises(ValueError, match="did you mean 'TESTING'"):
            manager.proposals("TESTNG")
        for nobody in (" ", "", 42):
            with pytest.raises(ValueError, match="reviewer names who makes the change"):
                manager.approve("prop_00000000aa", reviewer=nobody)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="reviewer names who makes the change"):
                manager.reject("prop_00000000aa", reviewer=nobody)  # type: ignore[arg-type]
        assert manager.get("prop_00000000aa").status.value == "PENDING_REVIEW"


@pytest.mark.parametrize(
    ("move", "before"),
    [
        ("approve", []),
        ("reject", []),
        ("start_testing", ["approve"]),
        ("activate", ["approve"]),
        ("deprecate", ["approve", "activate"]),
    ],
)
def test_every_move_can_leave_out_who_makes_it(move: str, before: list[str]) -> None:
    """As in the spec's `manager.approve(proposal_id)`: a move made without naming a person
    is recorded as the manager's `system_actor`, and no reviewer is stored."""
    with ProposalManager(system_actor="apls-bot") as manager:
        proposal_id = manager.create_proposal(RULE).proposal_id
        for earlier in before:
            getattr(manager, earlier)(proposal_id)
        moved = getattr(manager, move)(proposal_id)
        assert moved.status is next(s for s, m in MOVES.items() if m == move)
        assert moved.reviewer is None
        assert [t.actor for t in manager.history(proposal_id)] == ["apls-bot"] * (len(before) + 2)
        assert manager.get(proposal_id) == moved


def test_activation_can_require_a_passed_shadow_test() -> None:
    """With `min_agreement`, only a TESTING proposal whose rule agreed often enough activates."""
    with ProposalManager(min_agreement=0.99, min_shadow_samples=100) as manager:
        proposal_id = manager.create_proposal(RULE).proposal_id
        manager.approve(proposal_id, reviewer="alice@example.com")
        with pytest.raises(InvalidTransitionError, match="not been shadow-tested"):
            manager.activate(proposal_id)
        assert manager.record_shadow(proposal_id, ShadowStats(matched=1)) is None
        manager.start_testing(proposal_id)
        manager.record_shadow(proposal_id, ShadowStats(100, 80, 50, 50, 1250.0, 2000.0))
        with pytest.raises(InvalidTransitionError, match="decided 50 runs, fewer than 100"):
            manager.activate(proposal_id)
        total = manager.record_shadow(proposal_id, ShadowStats(100, 80, 50, 48, 1250.0, 2000.0))
        assert total == ShadowStats(200, 160, 100, 98, 2500.0, 4000.0)
        assert total.agreement == 0.98 and total.coverage == 0.625
        assert total.savings_percentage == 62.5
        with pytest.raises(InvalidTransitionError, match=r"98\.00% is below 99\.00%"):
            manager.activate(proposal_id)
        assert manager.get_active_rules() == []
        manager.activate(proposal_id, min_agreement=0.95, reason="accepted at 98%")
        assert manager.get_active_rules() == [RULE]
        assert manager.get(proposal_id).shadow.matched == 100


def test_spec_shortcut_approve_then_activate() -> None:
    """Without a shadow requirement, APPROVED goes straight to ACTIVE, as in the spec."""
    with ProposalManager() as manager:
        proposal = manager.create_proposal(RULE)
        manager.approve(proposal.proposal_id, reviewer="admin@example.com")
        assert manager.activate(proposal.proposal_id).status is S.ACTIVE
        assert manager.get_active_rules() == [RULE]
        manager.deprecate(proposal.proposal_id, reason="fraud pattern changed")
        assert manager.get_active_rules() == []
        assert manager.get_testing_rules() == []


@pytest.mark.parametrize("decision", [("decline", 2), 1.5, None, {"route": "manual"}])
def test_a_stored_proposal_keeps_its_decision_exactly(tmp_path: Path, decision: object) -> None:
    """A decision that is not a plain string comes back from the SQLite store with its type."""
    from dataclasses import replace

    path = tmp_path / "proposals.db"
    with ProposalManager(path) as manager:
        proposal_id = manager.create_proposal(replace(RULE, decision=decision)).proposal_id
    with ProposalManager(path) as reopened:
        assert reopened.get(proposal_id).rule.decision == decision
        assert type(reopened.get(proposal_id).rule.decision) is type(decision)


def test_replicas_proposing_the_same_rule_at_once_share_one_proposal(tmp_path: Path) -> None:
    """Eight managers on one SQLite file create the same rule at the same moment: each gets
    the one open proposal, none an error."""
    import threading

    path = tmp_path / "shared.db"
    ProposalManager(path).close()  # the tables, once
    barrier = threading.Barrier(8)
    got: list[str] = []
    errors: list[BaseException] = []

    def replica() -> None:
        with ProposalManager(path) as manager:
            barrier.wait()
            try:
                got.append(manager.create_proposal(RULE).proposal_id)
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(got)) == 1 and len(got) == 8


def test_create_proposal_needs_a_generated_rule() -> None:
    """Passing a plain dict (or anything but a GeneratedRule) is a clear TypeError."""
    with ProposalManager() as manager, pytest.raises(TypeError, match="takes a GeneratedRule"):
        manager.create_proposal({"rule_id": "r1"})  # type: ignore[arg-type]


def test_a_proposal_refuses_the_roi_of_another_pattern() -> None:
    """The ROI shown to reviewers must be the rule's own pattern's."""
    from dataclasses import fields

    from cascadence.learning import MigrationROI

    values: dict[str, object] = {f.name: 0 for f in fields(MigrationROI)}
    values.update(pattern_id="pat_00000000bb", recommendation="MIGRATE", rationale="cheap")
    other = MigrationROI(**values)  # type: ignore[arg-type]
    with ProposalManager() as manager:
        with pytest.raises(ValueError, match="for pattern 'pat_00000000bb'"):
            manager.create_proposal(RULE, other)
        assert manager.proposals() == []
        own = MigrationROI(**{**values, "pattern_id": RULE.pattern_id})  # type: ignore[arg-type]
        assert manager.create_proposal(RULE, own).roi == own


def test_a_proposal_object_stands_for_its_id() -> None:
    """`approve(proposal)` as well as `approve(proposal.proposal_id)`; anything else is a
    TypeError that says what to pass (a SQLite error before)."""
    with ProposalManager() as manager:
        proposal = manager.create_proposal(RULE)
        approved = manager.approve(proposal, reviewer="admin@example.com")
        assert approved.status is S.APPROVED
        assert manager.activate(approved).status is S.ACTIVE
        assert manager.get(proposal).status is S.ACTIVE
        with pytest.raises(TypeError, match="expected a proposal id"):
            manager.approve(42, reviewer="admin@example.com")  # type: ignore[arg-type]
