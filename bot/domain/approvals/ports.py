"""The approvals family's ports: where requests and votes are kept, and what a family does once one is decided."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.domain.approvals.model import ApprovalRequest, ApprovalState, Vote
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

    def attach_message(self, request_id: str, ref: MessageRef) -> None: ...

    def pending(self) -> list[ApprovalRequest]:
        """Pending requests, oldest first."""
        ...


class ApprovalsUnitOfWork(UnitOfWork, Protocol):
    @property
    def approvals(self) -> ApprovalRepository: ...


class ApprovalOutcome(Protocol):
    """What a family does once one of its requests (by ``ApprovalRequest.kind``) is decided.

    ``approved`` runs once, as the person whose vote approved it; ``closed`` once for a request that
    was rejected, withdrawn or expired.
    """

    def approved(self, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> None: ...

    def closed(self, actor: Actor, request: ApprovalRequest) -> None: ...
