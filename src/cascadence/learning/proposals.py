"""`ProposalManager`: the human-in-the-loop workflow between a learned rule and production.

```python
manager = ProposalManager()                        # SQLite in memory; db_path= for a file
proposal = manager.create_proposal(rule, roi)      # PENDING_REVIEW
manager.approve(proposal.proposal_id, reviewer="admin@example.com")
manager.start_testing(proposal.proposal_id)        # optional: shadow test on live runs
manager.activate(proposal.proposal_id)             # ACTIVE
new_config = merge_rules(config, manager.get_active_rules())
```

The allowed moves are `TRANSITIONS` (see `cascadence.learning.models`); anything else raises
`InvalidTransitionError`. Every move records who made it, when (from the injected clock) and why.
With `min_agreement`, activation requires a shadow test: the proposal must be in TESTING and its
rule must have agreed with the cascade on at least that share of the runs it would have decided
(over at least `min_shadow_samples` of them).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from cascadence.errors import closest
from cascadence.learning.cost import MigrationROI
from cascadence.learning.models import (
    TRANSITIONS,
    InvalidTransitionError,
    Proposal,
    ProposalExistsError,
    ProposalNotFoundError,
    ProposalStatus,
    ShadowStats,
    Transition,
)
from cascadence.learning.rules import GeneratedRule
from cascadence.learning.store import ProposalStore, SQLiteProposalStore, store_from_url
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock

__all__ = ["ProposalManager"]

_UNSET: Any = object()
_S = ProposalStatus


class ProposalManager:
    """Creates proposals, moves them through review, and serves the active rules.

    Args:
        store: A `ProposalStore`, or a URL / path for `store_from_url`; by default an
            in-memory SQLite store.
        db_path: Shortcut for a SQLite file (ignored when `store` is given).
        clock: Source of the transition timestamps.
        min_agreement: When set, `activate` requires a passed shadow test (see module doc).
        min_shadow_samples: Least runs a shadow test must have decided before activation.
        system_actor: Actor recorded for moves made without a named person.
    """

    def __init__(
        self,
        store: ProposalStore | str | os.PathLike[str] | None = None,
        *,
        db_path: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        min_agreement: float | None = None,
        min_shadow_samples: int = 0,
        system_actor: str = "apls",
    ) -> None:
        if min_agreement is not None and not 0.0 <= min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement!r}")
        if isinstance(store, os.PathLike):
            store = os.fspath(store)
        if isinstance(store, str):
            store = store_from_url(store)
        elif store is None:
            store = SQLiteProposalStore(db_path or ":memory:")
        self.store: ProposalStore = store
        self.clock = clock
        self.min_agreement = min_agreement
        self.min_shadow_samples = min_shadow_samples
        self.system_actor = system_actor

    def __enter__(self) -> ProposalManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # -- reading -----------------------------------------------------------------------------
    def get(self, proposal_id: str | Proposal) -> Proposal:
        """The proposal with that id.

        Raises:
            ProposalNotFoundError: No such proposal (with the closest id).
        """
        proposal_id = _id_of(proposal_id)
        proposal = self.store.get(proposal_id)
        if proposal is None:
            ids = [p.proposal_id for p in self.store.list()]
            raise ProposalNotFoundError(proposal_id, closest(proposal_id, ids))
        return proposal

    def proposals(self, status: ProposalStatus | str | None = None) -> list[Proposal]:
        """All proposals, or those in `status`, oldest first."""
        return self.store.list(_status(status) if status is not None else None)

    def history(self, proposal_id: str | Proposal) -> tuple[Transition, ...]:
        """The audit trail of a proposal, oldest first."""
        return self.get(proposal_id).history

    def get_active_rules(self) -> list[GeneratedRule]:
        """The rules of ACTIVE proposals, to merge into the next config version:
        `merge_rules(engine.config, manager.get_active_rules())` (each rule's `to_models()`
        gives its `RoutingRule`s)."""
        return [p.rule for p in self.store.list(_S.ACTIVE)]

    def get_testing_rules(self) -> list[GeneratedRule]:
        """The rules of proposals in shadow test."""
        return [p.rule for p in self.store.list(_S.TESTING)]

    # -- creating ----------------------------------------------------------------------------
    def create_proposal(
        self,
        rule: GeneratedRule,
        roi: MigrationROI | None = None,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Proposal:
        """Put a rule up for review (PENDING_REVIEW).

        Proposing a rule that already has an open proposal (not REJECTED nor DEPRECATED)
        returns that proposal unchanged, so learning again does not flood the queue.
        """
        if not isinstance(rule, GeneratedRule):
            raise TypeError(
                "create_proposal takes a GeneratedRule (from RuleGenerator."
                f"generate_from_pattern), got {type(rule).__name__}"
            )
        if roi is not None and roi.pattern_id != rule.pattern_id:
            raise ValueError(
                f"the ROI given is for pattern {roi.pattern_id!r}, but rule {rule.rule_id!r} "
                f"comes from pattern {rule.pattern_id!r}: compute the ROI of the rule's own "
                "pattern"
            )
        base = "prop_" + rule.rule_id.split("_", 1)[-1]
        why = reason
        if why is None and roi is not None:
            why = f"{roi.recommendation}: {roi.rationale}"
        while True:  # until this call adds it, or finds it open (another replica may race us)
            existing = {p.proposal_id: p for p in self.store.list()}
            for proposal in existing.values():
                if proposal.rule.rule_id == rule.rule_id and TRANSITIONS[proposal.status]:
                    return proposal
            proposal_id, n = base, 1
            while proposal_id in existing:
                n += 1
                proposal_id = f"{base}_{n}"
            now = self.clock.time()
            first = Transition(None, _S.PENDING_REVIEW, actor or self.system_actor, now, why)
            proposal = Proposal(proposal_id, rule, roi, _S.PENDING_REVIEW, now, now, (first,))
            try:
                self.store.add(proposal)
            except ProposalExistsError:
                continue  # created meanwhile: read again
            return proposal

    # -- moving ------------------------------------------------------------------------------
    def _move(
        self,
        proposal_id: str | Proposal,
        to: ProposalStatus,
        actor: str | None,
        reason: str | None,
        *,
        reviewer: str | None = None,
        check: Any = None,
    ) -> Proposal:
        proposal_id = _id_of(proposal_id)
        who = actor or self.system_actor
        if not isinstance(who, str) or not who.strip():
            raise ValueError("a transition needs a non-empty actor (who made the change)")
        proposal = self.get(proposal_id)
        if to not in TRANSITIONS[proposal.status]:
            raise InvalidTransitionError(proposal.proposal_id, proposal.status, to)
        if check is not None:
            check(proposal)
        now = self.clock.time()
        moved = replace(
            proposal,
            status=to,
            updated_at=now,
            history=(*proposal.history, Transition(proposal.status, to, who, now, reason)),
            reviewer=reviewer if reviewer is not None else proposal.reviewer,
        )
        if not self.store.transition(moved, proposal.status):
            current = self.get(proposal_id).status
            raise InvalidTransitionError(
                proposal_id,
                current,
                to,
                f"proposal {proposal_id!r} changed to {current.value} while moving it to "
                f"{to.value}; read it again and retry",
            )
        return moved

    def approve(
        self, proposal_id: str | Proposal, reviewer: str | None = None, reason: str | None = None
    ) -> Proposal:
        """PENDING_REVIEW -> APPROVED, by `reviewer`.

        Without a reviewer, the approval is recorded as made by `system_actor` (in the
        history) and `proposal.reviewer` stays None: nobody signed it off by name.

        Raises:
            ValueError: A reviewer given as a blank or non-text value.
        """
        _check_person(reviewer, "reviewer", f"approving {proposal_id!r}")
        return self._move(proposal_id, _S.APPROVED, reviewer, reason, reviewer=reviewer)

    def reject(
        self, proposal_id: str | Proposal, reviewer: str | None = None, reason: str | None = None
    ) -> Proposal:
        """PENDING_REVIEW, APPROVED or TESTING -> REJECTED, by `reviewer` (as `approve`)."""
        _check_person(reviewer, "reviewer", f"rejecting {proposal_id!r}")
        return self._move(proposal_id, _S.REJECTED, reviewer, reason, reviewer=reviewer)

    def start_testing(
        self, proposal_id: str | Proposal, actor: str | None = None, reason: str | None = None
    ) -> Proposal:
        """APPROVED -> TESTING: the rule is evaluated in shadow on live runs."""
        return self._move(proposal_id, _S.TESTING, actor, reason)

    def activate(
        self,
        proposal_id: str | Proposal,
        actor: str | None = None,
        reason: str | None = None,
        *,
        min_agreement: float | None = _UNSET,
    ) -> Proposal:
        """APPROVED or TESTING -> ACTIVE.

        Args:
            proposal_id: The proposal.
            actor: Who activates it.
            reason: Why.
            min_agreement: Overrides the manager's shadow-test requirement for this call.

        Raises:
            InvalidTransitionError: Not APPROVED or TESTING, or the shadow test required
                was not passed (the message gives the agreement measured).
        """
        need = self.min_agreement if min_agreement is _UNSET else min_agreement

        def check(proposal: Proposal) -> None:
            if need is None:
                return
            stats = proposal.shadow
            agreement = stats.agreement
            problem = None
            if proposal.status is not _S.TESTING:
                problem = "it has not been shadow-tested (start_testing first)"
            elif stats.matched < max(1, self.min_shadow_samples):
                problem = (
                    f"its shadow test decided {stats.matched} runs, fewer than "
                    f"{max(1, self.min_shadow_samples)}"
                )
            elif agreement is None or agreement < need:
                problem = f"its shadow agreement {agreement or 0.0:.2%} is below {need:.2%}"
            if problem is not None:
                raise InvalidTransitionError(
                    proposal.proposal_id,
                    proposal.status,
                    _S.ACTIVE,
                    f"proposal {proposal.proposal_id!r} cannot be activated: {problem}",
                )

        return self._move(proposal_id, _S.ACTIVE, actor, reason, check=check)

    def deprecate(
        self, proposal_id: str | Proposal, actor: str | None = None, reason: str | None = None
    ) -> Proposal:
        """ACTIVE -> DEPRECATED: the rule leaves the next config version."""
        return self._move(proposal_id, _S.DEPRECATED, actor, reason)

    def record_shadow(self, proposal_id: str | Proposal, delta: ShadowStats) -> ShadowStats | None:
        """Add shadow-test statistics to a proposal in TESTING; None if it is not in TESTING."""
        return self.store.add_shadow(_id_of(proposal_id), delta, _S.TESTING)


def _check_person(who: Any, name: str, doing: str) -> None:
    """Refuse a person given as a blank or non-text value (None means nobody named)."""
    if who is not None and (not isinstance(who, str) or not who.strip()):
        raise ValueError(
            f"{doing}: {name} names who makes the change, e.g. {name}='admin@example.com', "
            f"or is left out; got {who!r}"
        )


def _status(value: ProposalStatus | str) -> ProposalStatus:
    if isinstance(value, ProposalStatus):
        return value
    try:
        return ProposalStatus(value.upper())
    except ValueError:
        names = [s.value for s in ProposalStatus]
        hint = closest(value.upper(), names)
        raise ValueError(
            f"unknown proposal status {value!r}; expected one of {', '.join(names)}"
            + (f"; did you mean {hint!r}?" if hint else "")
        ) from None


def _id_of(proposal: Any) -> str:
    """A proposal id, given as the id or as the `Proposal` itself."""
    if isinstance(proposal, Proposal):
        return proposal.proposal_id
    if not isinstance(proposal, str):
        raise TypeError(
            f"expected a proposal id (proposal.proposal_id) or a Proposal, got "
            f"{type(proposal).__name__}: {proposal!r:.60}"
        )
    return proposal
