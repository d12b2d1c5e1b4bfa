"""What the approvals family says: the request as posted (updated on every vote), and the receipt for the voter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from bot.domain.approvals.model import ApprovalRequest, ChecklistItem, ChecklistProgress, Decision, Tick, Vote, progress


@dataclass(frozen=True)
class ApprovalMessage:
    """The request as posted in the channel, updated in place on every vote."""

    template: ClassVar[str] = "approvals/request"
    request: ApprovalRequest
    votes: list[Vote]
    approvals: int
    now: datetime
    ticks: list[Tick] = field(default_factory=list)

    @property
    def checklist_progress(self) -> list[ChecklistProgress]:
        """Who ticked how much of the checklist ("@alice 3 of 3 · @bob 1 of 3")."""
        return progress(self.request, self.ticks)


@dataclass(frozen=True)
class ChecklistTicked:
    """Told to the clicker alone: what their click on a checklist item recorded, and what they have still to tick."""

    template: ClassVar[str] = "approvals/ticked"
    request: ApprovalRequest
    item: ChecklistItem
    ticked: bool
    changed: bool  # False when it already was so (the same click delivered twice)
    still_to_tick: list[ChecklistItem]


@dataclass(frozen=True)
class VoteReceipt:
    """Told to the clicker alone."""

    template: ClassVar[str] = "approvals/receipt"
    request: ApprovalRequest
    decision: Decision
    approvals: int
    self_approval: bool = False
    waiting: list[str] = field(default_factory=list)  # what is still on its way, in words


@dataclass(frozen=True)
class RequestUnposted:
    """Told to the requester: Slack refused the request's message for good, so the request was cancelled."""

    template: ClassVar[str] = "approvals/unposted"
    request: ApprovalRequest
    why: str


@dataclass(frozen=True)
class RequestExpired:
    """Told to the requester: nobody decided before the deadline (``request.expires_at``, not when it was noticed)."""

    template: ClassVar[str] = "approvals/expired"
    request: ApprovalRequest
    approvals: int
