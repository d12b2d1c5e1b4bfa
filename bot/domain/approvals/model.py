"""Approval requests and votes, and the rules that decide what a vote does. Pure: no store, no clock of its own.

The two-person rule: a request needs ``required`` distinct approvers (plus one admin when
``require_admin``); the requester may withdraw it (Reject) but never approve it, except an admin
on a hotfix (``admin_self_approval``), shown loudly. Any Reject by an approver rejects it.

A request may carry a checklist (``environments.<env>.checklist``): each approver ticks every item for
themselves before their Approve counts; an item bound to a gate (``satisfied_by``) is ticked for everyone
by opsbot once that gate passed, with a note saying how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.shared.errors import Conflict, Refused, UsageError


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


GATE_WORDS = {"ci": "CI is green", "promotion": "the promotion gate passed"}


@dataclass(frozen=True)
class ChecklistItem:
    """One item of a request's checklist. ``satisfied_by`` names the gate that ticks it for everyone, where that gate
    applies to the request (None: people tick it, like any other item); ``satisfied`` is opsbot's note once it did
    ("v1.2.3 succeeded in staging at …"). Nobody ticks a gate's item by hand: its gate says whether it holds."""

    text: str
    satisfied_by: str | None = None  # "promotion" | "ci"
    satisfied: str | None = None

    @property
    def by_gate(self) -> bool:
        return self.satisfied is not None

    @property
    def awaits_gate(self) -> bool:
        """Bound to a gate that has not ticked it yet: people cannot tick it."""
        return self.satisfied_by is not None and self.satisfied is None


@dataclass(frozen=True)
class Tick:
    """``voter`` ticked item number ``item`` (its position in the request's checklist) at ``at``."""

    voter: str
    item: int
    at: datetime


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
    checklist: tuple[ChecklistItem, ...] = ()

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


def judge_vote(request: ApprovalRequest, votes: list[Vote], ballot: Vote, now: datetime, ticks: Sequence[Tick] = ()) -> Verdict:
    """What ``ballot`` does to ``request`` given the votes and checklist ticks already in; raises Conflict or Refused
    when it cannot count (an Approve before the voter ticked every checklist item is refused, not kept)."""
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
    if ballot.decision is Decision.APPROVE:
        missing = unticked(request, ticks, ballot.voter)
        if missing:
            raise Refused(f"Tick every checklist item before approving: {_not_ticked(missing)}.")
    return Verdict(tally(request, [*votes, ballot]))


def ticked_items(request: ApprovalRequest, ticks: Sequence[Tick], voter: str) -> set[int]:
    """The positions of the checklist items that count as ticked for ``voter``: their own ticks and the gates'."""
    own = {t.item for t in ticks if t.voter == voter}
    return {i for i, item in enumerate(request.checklist) if item.by_gate or i in own}


def unticked(request: ApprovalRequest, ticks: Sequence[Tick], voter: str) -> list[ChecklistItem]:
    """The checklist items ``voter`` has still to tick, in checklist order."""
    done = ticked_items(request, ticks, voter)
    return [item for i, item in enumerate(request.checklist) if i not in done]


def judge_tick(request: ApprovalRequest, votes: list[Vote], voter: str, item: int, now: datetime) -> ChecklistItem:
    """The checklist item ``voter`` may (un)tick now; raises Conflict or UsageError when a tick cannot change anything."""
    if request.state is not ApprovalState.PENDING or now >= request.expires_at:
        state = ApprovalState.EXPIRED if request.state is ApprovalState.PENDING else request.state
        raise Conflict(f"This request is already {state.value}; its checklist no longer changes.")
    if not 0 <= item < len(request.checklist):
        raise UsageError("That checklist item is not on this request; use the checkboxes on the request's own message.")
    earlier = next((v for v in votes if v.voter == voter), None)
    if earlier is not None:
        raise Conflict(f"You already {earlier.decision.value}d this request; your checklist stays as it was when you voted.")
    if voter == request.requester and not request.admin_self_approval:
        raise Refused("You requested this; the checklist is for the approvers who decide it (the two-person rule).")
    chosen = request.checklist[item]
    if chosen.by_gate:
        raise Conflict(f"{chosen.text} is already ticked for everyone by opsbot: {chosen.satisfied}.")
    if chosen.awaits_gate:
        when = GATE_WORDS.get(chosen.satisfied_by or "", f"its gate ({chosen.satisfied_by}) passes")
        raise Conflict(f"Nobody ticks *{chosen.text}* by hand: opsbot ticks it for everyone once {when}.")
    return chosen


@dataclass(frozen=True)
class ChecklistProgress:
    """How far one approver is through a request's checklist."""

    voter: str
    ticked: int
    total: int

    @property
    def complete(self) -> bool:
        return self.ticked >= self.total


def progress(request: ApprovalRequest, ticks: Sequence[Tick]) -> list[ChecklistProgress]:
    """Everyone who ticked something, in the order they first ticked, with how many items count as ticked for them."""
    voters = list(dict.fromkeys(t.voter for t in sorted(ticks, key=lambda t: t.at)))
    total = len(request.checklist)
    return [ChecklistProgress(v, len(ticked_items(request, ticks, v)), total) for v in voters]


def satisfy(request: ApprovalRequest, gate: str, note: str) -> tuple[ApprovalRequest, list[ChecklistItem]]:
    """``request`` with every item bound to ``gate`` and not yet satisfied ticked for everyone with ``note``, and those items."""
    newly = [item for item in request.checklist if item.satisfied_by == gate and not item.by_gate]
    checklist = tuple(
        replace(item, satisfied=note) if item.satisfied_by == gate and not item.by_gate else item for item in request.checklist
    )
    return replace(request, checklist=checklist), newly


def _not_ticked(missing: Sequence[ChecklistItem]) -> str:
    """ "Backup created is not ticked", and for items a gate ticks, what it waits for."""
    names = [item.text for item in missing]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    said = f"{listed} {'is' if len(names) == 1 else 'are'} not ticked"
    waiting = [item for item in missing if item.awaits_gate]
    if waiting:
        said += "; " + "; ".join(
            f"opsbot ticks {item.text} once {GATE_WORDS.get(item.satisfied_by or '', 'its gate passes')}" for item in waiting
        )
    return said


def judge_expiry(request: ApprovalRequest, now: datetime) -> Verdict:
    """A still-pending request whose deadline has passed expires; anything else stays as it is."""
    if request.state is ApprovalState.PENDING and now >= request.expires_at:
        return Verdict(ApprovalState.EXPIRED, keep_vote=False)
    return Verdict(request.state, keep_vote=False)


def _when(moment: datetime | None) -> str:
    return f" at {moment:%H:%M} UTC" if moment else ""
