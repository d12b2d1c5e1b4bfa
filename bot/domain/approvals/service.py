"""Approval requests with a server-enforced two-person rule, shared by deploys, rollbacks and flags.

A family opens a request (``request_approval``) and registers an ``ApprovalKind`` saying what to do
once it is approved and what to undo when it is closed otherwise. Every click is re-checked here,
from the database: the clicker's role, the request's state, who already voted. The button carries
only the request's opaque id. The store applies each vote under a row lock, so twenty concurrent
Approve clicks move a request to ``approved`` once, and ``on_approved`` runs once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from bot.domain.shared.context import Call
from bot.domain.dispatch import JobSpec
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, OpsError
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import MessageRef, Reply


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


@dataclass(frozen=True)
class Verdict:
    """What a vote does: the state after it, and whether the vote itself is kept."""

    state: ApprovalState
    keep_vote: bool = True


@dataclass(frozen=True)
class Transition:
    request: ApprovalRequest
    votes: list[Vote]
    before: ApprovalState

    @property
    def changed(self) -> bool:
        return self.request.state != self.before


Rule = Callable[[ApprovalRequest, list[Vote]], Verdict]


class ApprovalStore(Protocol):
    def create(self, request: ApprovalRequest) -> None: ...

    def get(self, request_id: str) -> tuple[ApprovalRequest, list[Vote]] | None: ...

    def attach_message(self, request_id: str, ref: MessageRef) -> None: ...

    def decide(self, request_id: str, vote: Vote | None, now: datetime, rule: Rule) -> Transition:
        """Under a lock on the request: apply ``rule``; keep ``vote`` and the new state if it says so."""
        ...

    def pending(self) -> list[ApprovalRequest]: ...


@dataclass(frozen=True)
class ApprovalKind:
    """What a family does when one of its requests is approved, or closed without approval."""

    name: str
    on_approved: Callable[[Call, ApprovalRequest], None]
    on_closed: Callable[[Call, ApprovalRequest], None] | None = None


@dataclass(frozen=True)
class ApprovalMessage:
    """The request as posted in the channel, updated in place on every vote."""

    template: ClassVar[str] = "approvals/request"
    request: ApprovalRequest
    votes: list[Vote]
    approvals: int
    now: datetime


@dataclass(frozen=True)
class VoteReceipt:
    """Told to the clicker alone."""

    template: ClassVar[str] = "approvals/receipt"
    request: ApprovalRequest
    decision: Decision
    approvals: int
    self_approval: bool = False


def approvals_of(votes: list[Vote]) -> int:
    return sum(1 for v in votes if v.decision is Decision.APPROVE)


def request_approval(
    call: Call,
    *,
    kind: str,
    title: str,
    reason: str,
    required: int,
    timeout_minutes: int,
    service: str | None = None,
    environment: str | None = None,
    require_admin: bool = False,
    admin_self_approval: bool = False,
    details: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
    link: str | None = None,
    channel: str | None = None,
) -> ApprovalRequest:
    """Open a request, post it with Approve/Reject buttons, and schedule its expiry."""
    services = call.services
    if kind not in services.approval_kinds:
        raise OpsError(f"no approval kind {kind!r} is registered")
    now = services.clock.now()
    request = ApprovalRequest(
        id=secrets.token_hex(8), kind=kind, title=title, requester=call.actor.user_id, reason=reason,
        required=required, created_at=now, expires_at=now + timedelta(minutes=timeout_minutes),
        service=service, environment=environment, require_admin=require_admin,
        admin_self_approval=admin_self_approval, details=details or {}, payload=payload or {}, link=link,
    )
    services.approvals.create(request)
    ref = services.notifier.post(channel or services.config.channels.deployments, ApprovalMessage(request, [], 0, now))
    services.approvals.attach_message(request.id, ref)
    services.jobs.schedule(request.expires_at, "approvals.expire", {"request_id": request.id}, key=f"approval-expiry:{request.id}")
    return replace(request, channel=ref.channel, message_ts=ref.ts)


def vote(call: Call, request_id: str, decision: Decision) -> Reply:
    """One click on Approve or Reject, checked from the database, never from the payload."""
    services, voter = call.services, call.actor.user_id
    found = services.approvals.get(request_id)
    if found is None:
        raise NotFound("approval request", request_id[:20])
    request, _ = found
    withdrawing = voter == request.requester and decision is Decision.REJECT
    if not withdrawing and not services.policy.has(voter, Role.APPROVER):
        raise NotPermitted(Role.APPROVER.value, decision.value, request.title)
    is_admin = services.policy.has(voter, Role.ADMIN)
    now = services.clock.now()
    self_approval = voter == request.requester and decision is Decision.APPROVE
    ballot = Vote(voter, decision, now, as_admin=is_admin, self_approval=self_approval)

    def rule(current: ApprovalRequest, votes: list[Vote]) -> Verdict:
        if current.state is not ApprovalState.PENDING:
            raise Conflict(f"This request was already {current.state.value}{_when(current.decided_at)}.")
        if now >= current.expires_at:
            return Verdict(ApprovalState.EXPIRED, keep_vote=False)
        if any(v.voter == voter for v in votes):
            earlier = next(v for v in votes if v.voter == voter)
            raise Conflict(f"You already {earlier.decision.value}d this request; each approver counts once.")
        if voter == current.requester:
            if decision is Decision.REJECT:
                return Verdict(ApprovalState.CANCELLED)
            if not (current.admin_self_approval and is_admin):
                raise NotPermitted("another approver", "approve", "you requested it: the two-person rule needs someone else")
        return Verdict(_tally(current, [*votes, ballot]))

    transition = services.approvals.decide(request_id, ballot, now, rule)
    _after(call, transition)
    if transition.request.state is ApprovalState.EXPIRED and transition.changed:
        raise Conflict(f"This request expired at {transition.request.expires_at:%H:%M} UTC; ask for a new one.")
    return Reply(VoteReceipt(transition.request, decision, approvals_of(transition.votes), self_approval), outcome=decision.value + "d")


def _tally(request: ApprovalRequest, votes: list[Vote]) -> ApprovalState:
    if any(v.decision is Decision.REJECT for v in votes):
        return ApprovalState.REJECTED
    approvals = [v for v in votes if v.decision is Decision.APPROVE]
    admin_ok = not request.require_admin or any(v.as_admin for v in approvals)
    return ApprovalState.APPROVED if len(approvals) >= request.needed and admin_ok else ApprovalState.PENDING


def _when(moment: datetime | None) -> str:
    return f" at {moment:%H:%M} UTC" if moment else ""


def _after(call: Call, transition: Transition) -> None:
    """Update the posted message; on a state change, hand over to the kind exactly once."""
    services = call.services
    request = transition.request
    if request.channel and request.message_ts:
        services.notifier.update(
            MessageRef(request.channel, request.message_ts),
            ApprovalMessage(request, transition.votes, approvals_of(transition.votes), services.clock.now()),
        )
    if not transition.changed:
        return
    kind = services.approval_kinds[request.kind]
    if request.state is ApprovalState.APPROVED:
        services.jobs.cancel(f"approval-expiry:{request.id}")
        kind.on_approved(call, request)
    elif kind.on_closed is not None:
        kind.on_closed(call, request)


def expire(call: Call, payload: dict[str, Any]) -> None:
    """The scheduled expiry: a still-pending request becomes expired, its message says so, its kind cleans up."""
    now = call.services.clock.now()

    def rule(current: ApprovalRequest, votes: list[Vote]) -> Verdict:
        if current.state is ApprovalState.PENDING and now >= current.expires_at:
            return Verdict(ApprovalState.EXPIRED, keep_vote=False)
        return Verdict(current.state, keep_vote=False)

    if call.services.approvals.get(payload["request_id"]) is None:
        return
    transition = call.services.approvals.decide(payload["request_id"], None, now, rule)
    if transition.changed:
        _after(call, transition)


JOBS = [JobSpec("approvals.expire", expire)]
COMMANDS: list[Any] = []
