"""The approvals family's ports: where requests and votes are kept, and what a family does once one is decided."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.approvals.model import ApprovalRequest, ApprovalState, ChecklistItem, Tick, Vote
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import MessageRef, UnitOfWork


class ApprovalRepository(Protocol):
    """Approval requests and their votes, inside one unit of work."""

    def add(self, request: ApprovalRequest) -> None: ...

    def get(self, request_id: str, *, for_update: bool = False) -> tuple[ApprovalRequest, list[Vote]] | None:
        """The request and its votes in the order cast; ``for_update`` locks the row until the unit of work ends,
        so concurrent votes on one request are applied one after another."""
        ...

    def add_vote(self, request_id: str, vote: Vote) -> None:
        """Keep ``vote``; raises Conflict when this voter already voted on the request."""
        ...

    def set_state(self, request_id: str, state: ApprovalState, at: datetime) -> None: ...

    def set_details(self, request_id: str, details: dict[str, str]) -> None:
        """Replace the request's details (the labelled lines its message shows)."""
        ...

    def ticks(self, request_id: str) -> list[Tick]:
        """Every approver's checklist ticks on the request, oldest first."""
        ...

    def set_tick(self, request_id: str, tick: Tick, ticked: bool) -> bool:
        """Record that ``tick.voter`` ticked (``ticked``) or unticked item ``tick.item``; False when it already was so
        (the same click delivered twice changes nothing)."""
        ...

    def set_checklist(self, request_id: str, checklist: tuple[ChecklistItem, ...]) -> None:
        """Replace the request's checklist (a gate ticked items of it for everyone)."""
        ...

    def attach_message(self, request_id: str, ref: MessageRef) -> None: ...

    def pending(self) -> list[ApprovalRequest]:
        """Pending requests, oldest first."""
        ...


class ApprovalsUnitOfWork(UnitOfWork, Protocol):
    @property
    def approvals(self) -> ApprovalRepository: ...


@dataclass(frozen=True)
class Approved:
    """What a family answers when its request is approved: what happens next, in words, for the voter ("The deploy
    starts"); and work to do once the decision is committed (``then``), whose typed errors reach the voter; what it
    still waits for (``holds``), if anything."""

    next_step: str | None = None
    then: Callable[[], None] | None = None
    holds: str | None = None  # why it does not start yet though approved (e.g. it waits for CI), told to the voter


class ApprovalOutcome(Protocol):
    """What a family does once one of its requests (by ``ApprovalRequest.kind``) is decided.

    Both run inside the unit of work that records the decision, so the family's own change and its effects
    commit with it, or not at all. ``approved`` runs once, as the person whose vote approved it; ``closed``
    runs once for a request that was rejected, withdrawn or expired.
    """

    def approved(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> Approved: ...

    def closed(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest) -> None: ...
