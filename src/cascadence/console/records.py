"""Runs and proposals as plain, JSON-ready data for the console's pages and API."""

from __future__ import annotations

import json
from typing import Any

from cascadence.checkpoint.base import RunRecord, StepRecord
from cascadence.integrations._decision import encode_json
from cascadence.learning.models import TRANSITIONS, Proposal, ProposalStatus

__all__ = ["ACTIONS", "actions_for", "plain", "proposal_data", "run_data", "step_data"]


def plain(value: Any) -> Any:
    """`value` as JSON data: scores and models as their fields, dates as ISO text, NaN as
    null (the conversion the HTTP integrations answer with)."""
    return json.loads(encode_json(value))


def step_data(step: StepRecord) -> dict[str, Any]:
    return {
        "key": step.key,
        "index": step.index,
        "created_at": step.created_at,
        "payload": plain(step.payload),
    }


def run_data(run: RunRecord, *, with_steps: bool = True) -> dict[str, Any]:
    """A stored run; its steps, result and last state when `with_steps`."""
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "kind": run.kind,
        "name": run.name,
        "status": run.status.value,
        "owner": run.owner,
        "lease_expires_at": run.lease_expires_at,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "error": run.error,
        "meta": plain(run.meta),
    }
    if with_steps:
        data["steps"] = [step_data(step) for step in run.steps]
        data["result"] = plain(run.result)
        data["state"] = plain(run.state)
    return data


ACTIONS: dict[str, ProposalStatus] = {
    "approve": ProposalStatus.APPROVED,
    "reject": ProposalStatus.REJECTED,
    "start_testing": ProposalStatus.TESTING,
    "activate": ProposalStatus.ACTIVE,
    "deprecate": ProposalStatus.DEPRECATED,
}
"""What a reviewer can do to a proposal, and the status each action moves it to."""


def actions_for(status: ProposalStatus) -> list[str]:
    """The actions a proposal in `status` allows, in workflow order."""
    allowed = TRANSITIONS[status]
    return [action for action, to in ACTIONS.items() if to in allowed]


def proposal_data(proposal: Proposal) -> dict[str, Any]:
    """A proposal with its rule's condition as an expression and the actions it allows."""
    data = proposal.to_dict()
    data["expression"] = proposal.rule.expression
    data["stage"] = proposal.stage
    data["actions"] = actions_for(proposal.status)
    data["shadow"]["agreement"] = proposal.shadow.agreement
    data["shadow"]["coverage"] = proposal.shadow.coverage
    data["shadow"]["savings_percentage"] = proposal.shadow.savings_percentage
    return data
