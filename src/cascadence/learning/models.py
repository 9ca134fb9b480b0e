"""The proposal records: status, transitions (the audit trail) and shadow-test statistics.

```
PENDING_REVIEW -> APPROVED -> TESTING -> ACTIVE -> DEPRECATED      the spec's main line
PENDING_REVIEW -> REJECTED                                          turned down in review
APPROVED -> ACTIVE                                                  activated without a shadow test
APPROVED -> REJECTED,  TESTING -> REJECTED                          withdrawn, or failed its test
```

`TRANSITIONS` is the whole table; any other move raises `InvalidTransitionError`. Every move is
recorded as a `Transition`: from which status to which, who, when and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cascadence.errors import CascadenceError
from cascadence.learning.cost import MigrationROI
from cascadence.learning.rules import GeneratedRule

__all__ = [
    "InvalidTransitionError",
    "Proposal",
    "ProposalError",
    "ProposalExistsError",
    "ProposalNotFoundError",
    "ProposalStatus",
    "ShadowStats",
    "TRANSITIONS",
    "Transition",
]


class ProposalStatus(str, Enum):
    """Where a proposal is in its review workflow."""

    def __str__(self) -> str:  # the value, as in f-strings and logs, on every Python version
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    PENDING_REVIEW = "PENDING_REVIEW"
    """Created; waiting for a person to look at it."""
    APPROVED = "APPROVED"
    """A reviewer accepted it; it is not live yet."""
    TESTING = "TESTING"
    """Evaluated in shadow on live runs, without changing them."""
    ACTIVE = "ACTIVE"
    """Live: part of the rules merged into the next config version."""
    DEPRECATED = "DEPRECATED"
    """Was active, taken out of service."""
    REJECTED = "REJECTED"
    """Turned down by a reviewer or by its shadow test."""


_S = ProposalStatus
TRANSITIONS: Mapping[ProposalStatus, frozenset[ProposalStatus]] = {
    _S.PENDING_REVIEW: frozenset({_S.APPROVED, _S.REJECTED}),
    _S.APPROVED: frozenset({_S.TESTING, _S.ACTIVE, _S.REJECTED}),
    _S.TESTING: frozenset({_S.ACTIVE, _S.REJECTED}),
    _S.ACTIVE: frozenset({_S.DEPRECATED}),
    _S.DEPRECATED: frozenset(),
    _S.REJECTED: frozenset(),
}
"""Allowed moves: status -> the statuses it may go to."""


class ProposalError(CascadenceError):
    """A proposal operation failed."""


class ProposalExistsError(ProposalError, ValueError):
    """A proposal with that id is stored already (another process may just have created it)."""


class InvalidTransitionError(ProposalError, ValueError):
    """A proposal cannot move from its current status to the one asked for.

    Attributes:
        proposal_id: The proposal.
        current: Its status.
        requested: The status asked for.
    """

    def __init__(
        self,
        proposal_id: str,
        current: ProposalStatus,
        requested: ProposalStatus,
        detail: str | None = None,
    ) -> None:
        self.proposal_id = proposal_id
        self.current = current
        self.requested = requested
        allowed = sorted(s.value for s in TRANSITIONS[current])
        message = detail or (
            f"proposal {proposal_id!r} is {current.value}; it cannot become {requested.value} "
            f"(from {current.value} it may become: {', '.join(allowed) or 'nothing, it is final'})"
        )
        super().__init__(message)


class ProposalNotFoundError(ProposalError, KeyError):
    """No proposal has the id asked for.

    Attributes:
        proposal_id: The id asked for.
        suggestion: The closest existing id, if any.
    """

    def __init__(self, proposal_id: str, suggestion: str | None = None) -> None:
        self.proposal_id = proposal_id
        self.suggestion = suggestion
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        self.message = f"no proposal {proposal_id!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Transition:
    """One move of a proposal, for the audit trail.

    Attributes:
        from_status: The status before (None when the proposal was created).
        to_status: The status after.
        actor: Who made the move (a reviewer's address, or a system name).
        at: When, in wall-clock epoch seconds.
        reason: Why, in words.
    """

    from_status: ProposalStatus | None
    to_status: ProposalStatus
    actor: str
    at: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value,
            "actor": self.actor,
            "at": self.at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transition:
        """Rebuild from `to_dict()` output."""
        start = data.get("from_status")
        return cls(
            ProposalStatus(start) if start else None,
            ProposalStatus(data["to_status"]),
            str(data["actor"]),
            float(data["at"]),
            data.get("reason"),
        )


@dataclass(frozen=True)
class ShadowStats:
    """What a rule in TESTING would have done on the live runs observed.

    Attributes:
        executions: Runs observed while the rule was tested.
        eligible: Runs on which the rule would have been evaluated.
        matched: Runs on which it would have decided.
        agreed: Of those, runs where its decision equals the cascade's.
        saved_cost: Cost of the stages it would have skipped on matched runs.
        total_cost: Cost the observed runs spent.
    """

    executions: int = 0
    eligible: int = 0
    matched: int = 0
    agreed: int = 0
    saved_cost: float = 0.0
    total_cost: float = 0.0

    @property
    def agreement(self) -> float | None:
        """Share of matched runs where the rule agrees with the cascade (None before any)."""
        return self.agreed / self.matched if self.matched else None

    @property
    def coverage(self) -> float | None:
        """Share of eligible runs the rule would have decided (None before any)."""
        return self.matched / self.eligible if self.eligible else None

    @property
    def savings_percentage(self) -> float:
        """Cost it would have saved, as a percentage of the cost spent."""
        return 100.0 * self.saved_cost / self.total_cost if self.total_cost else 0.0

    def __add__(self, other: ShadowStats) -> ShadowStats:
        return ShadowStats(
            self.executions + other.executions,
            self.eligible + other.eligible,
            self.matched + other.matched,
            self.agreed + other.agreed,
            self.saved_cost + other.saved_cost,
            self.total_cost + other.total_cost,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "executions": self.executions,
            "eligible": self.eligible,
            "matched": self.matched,
            "agreed": self.agreed,
            "saved_cost": self.saved_cost,
            "total_cost": self.total_cost,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ShadowStats:
        """Rebuild from `to_dict()` output (empty stats for None)."""
        return cls(**dict(data)) if data else cls()


@dataclass(frozen=True)
class Proposal:
    """A learned rule under review.

    Attributes:
        proposal_id: Stable id (`prop_<pattern hash>`).
        rule: The rule proposed.
        roi: Its expected return, when known.
        status: Where it is in the workflow.
        created_at: When it was created (epoch seconds).
        updated_at: When it last moved.
        history: Every transition, oldest first (the first is its creation).
        shadow: Its shadow-test statistics so far.
        reviewer: Who approved (or rejected) it.
    """

    proposal_id: str
    rule: GeneratedRule
    roi: MigrationROI | None
    status: ProposalStatus
    created_at: float
    updated_at: float
    history: tuple[Transition, ...] = ()
    shadow: ShadowStats = field(default_factory=ShadowStats)
    reviewer: str | None = None

    __hash__ = None  # type: ignore[assignment]

    @property
    def stage(self) -> str:
        """The stage the rule joins."""
        return self.rule.stage

    @property
    def pattern_id(self) -> str:
        """The pattern the rule comes from."""
        return self.rule.pattern_id

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `Proposal.from_dict(p.to_dict()) == p`."""
        return {
            "proposal_id": self.proposal_id,
            "rule": self.rule.to_dict(),
            "roi": self.roi.to_dict() if self.roi is not None else None,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "history": [t.to_dict() for t in self.history],
            "shadow": self.shadow.to_dict(),
            "reviewer": self.reviewer,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proposal:
        """Rebuild from `to_dict()` output."""
        roi = data.get("roi")
        return cls(
            proposal_id=str(data["proposal_id"]),
            rule=GeneratedRule.from_dict(data["rule"]),
            roi=MigrationROI.from_dict(roi) if roi else None,
            status=ProposalStatus(data["status"]),
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
            history=tuple(Transition.from_dict(t) for t in data.get("history", ())),
            shadow=ShadowStats.from_dict(data.get("shadow")),
            reviewer=data.get("reviewer"),
        )
