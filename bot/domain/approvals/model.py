"""Approval requests and votes, and the rules that decide what a vote does. Pure: no store, no clock of its own.

The two-person rule: a request needs ``required`` distinct approvers (plus one admin when
``require_admin``); the requester may withdraw it (Reject) but never approve it, except an admin
on a hotfix (``admin_self_approval``), shown loudly. Any Reject by an approver rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.shared.errors import Conflict, Refused


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Vote:
    voter: str
    decision: Decision
    at: datetime
    as_admin: bool = False
    self_approval: bool = False


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: str
    title: str
    requester: str
    reason: str
    required: int
    created_at: datetime
    expires_at: datetime
    state: ApprovalState = ApprovalState.PENDING
    service: str | None = None
    environment: str | None = None
    require_admin: bool = False
    admin_self_approval: bool = False
    details: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    decided_at: datetime | None = None

    @property
    def needed(self) -> int:
        """Distinct approvals needed: the environment's number, plus one admin's when required."""
        return self.required + (1 if self.require_admin else 0)

    @property
    def message_key(self) -> str:
        """The key of the request's message in Slack (posted once, edited on every vote)."""
        return f"approval:{self.id}"

    @property
    def origin(self) -> str:
        return f"approval {self.id} ({self.kind})"

    def decided(self, state: ApprovalState, at: datetime) -> ApprovalRequest:
        return replace(self, state=state, decided_at=at)


@dataclass(frozen=True)
class Verdict:
    """What a vote does: the state after it, and whether the vote itself is kept."""

    state: ApprovalState
    keep_vote: bool = True


@dataclass(frozen=True)
class Transition:
    """A request before and after a vote (or its expiry), with every vote it holds now."""

    request: ApprovalRequest
    votes: list[Vote]
    before: ApprovalState

    @property
    def changed(self) -> bool:
        return self.request.state != self.before


def approvals_of(votes: list[Vote]) -> int:
    return sum(1 for v in votes if v.decision is Decision.APPROVE)


def tally(request: ApprovalRequest, votes: list[Vote]) -> ApprovalState:
    """Rejected on any Reject; approved once enough distinct approvals (and an admin's, when required) are in."""
    if any(v.decision is Decision.REJECT for v in votes):
        return ApprovalState.REJECTED
    approvals = [v for v in votes if v.decision is Decision.APPROVE]
    admin_ok = not request.require_admin or any(v.as_admin for v in approvals)
    return ApprovalState.APPROVED if len(approvals) >= request.needed and admin_ok else ApprovalState.PENDING


def judge_vote(request: ApprovalRequest, votes: list[Vote], ballot: Vote, now: datetime) -> Verdict:
    """What ``ballot`` does to ``request`` given the votes already in; raises Conflict or NotPermitted when it cannot count."""
    if request.state is ApprovalState.EXPIRED:
        # Its deadline, not the moment the expiry job noticed it (which may be a little later).
        raise Conflict(f"This request already expired at {request.expires_at:%H:%M} UTC; ask for a new one.")
    if request.state is not ApprovalState.PENDING:
        raise Conflict(f"This request was already {request.state.value}{_when(request.decided_at)}.")
    if now >= request.expires_at:
        return Verdict(ApprovalState.EXPIRED, keep_vote=False)
    earlier = next((v for v in votes if v.voter == ballot.voter), None)
    if earlier is not None:
        raise Conflict(f"You already {earlier.decision.value}d this request; each approver counts once.")
    if ballot.voter == request.requester:
        if ballot.decision is Decision.REJECT:
            return Verdict(ApprovalState.CANCELLED)
        if not (request.admin_self_approval and ballot.as_admin):
            kind = {"flag_unkill": "flag change", "flag_rollout": "flag change"}.get(request.kind, request.kind)
            raise Refused(f"You requested this {kind}; another approver must approve it (the two-person rule).")
    return Verdict(tally(request, [*votes, ballot]))


def judge_expiry(request: ApprovalRequest, now: datetime) -> Verdict:
    """A still-pending request whose deadline has passed expires; anything else stays as it is."""
    if request.state is ApprovalState.PENDING and now >= request.expires_at:
        return Verdict(ApprovalState.EXPIRED, keep_vote=False)
    return Verdict(request.state, keep_vote=False)


def _when(moment: datetime | None) -> str:
    return f" at {moment:%H:%M} UTC" if moment else ""
