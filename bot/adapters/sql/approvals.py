"""Approval requests and votes in SQL, inside a unit of work."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, utc, utc_or_none
from bot.adapters.sql.tables import approval_requests, approval_votes
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, Decision, Vote
from bot.domain.shared.errors import Conflict
from bot.domain.shared.ports import MessageRef


def _request(row: Any) -> ApprovalRequest:
    return ApprovalRequest(
        id=row.id,
        kind=row.kind,
        title=row.title,
        requester=row.requester,
        reason=row.reason,
        required=row.required,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        state=ApprovalState(row.state),
        service=row.service,
        environment=row.environment,
        require_admin=row.require_admin,
        admin_self_approval=row.admin_self_approval,
        details=json.loads(row.details),
        payload=json.loads(row.payload),
        link=row.link,
        channel=row.channel,
        message_ts=row.message_ts,
        decided_at=utc_or_none(row.decided_at),
    )


class SqlApprovalRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @guard_db
    def add(self, request: ApprovalRequest) -> None:
        self._conn.execute(
            approval_requests.insert().values(
                id=request.id,
                kind=request.kind,
                title=request.title[:300],
                requester=request.requester,
                reason=request.reason,
                service=request.service,
                environment=request.environment,
                required=request.required,
                require_admin=request.require_admin,
                admin_self_approval=request.admin_self_approval,
                details=json.dumps(request.details),
                payload=json.dumps(request.payload),
                link=request.link,
                channel=request.channel,
                state=request.state.value,
                created_at=request.created_at,
                expires_at=request.expires_at,
            )
        )

    @guard_db
    def get(self, request_id: str, *, for_update: bool = False) -> tuple[ApprovalRequest, list[Vote]] | None:
        query = sa.select(approval_requests).where(approval_requests.c.id == request_id)
        # The row lock serializes every vote on this request (SQLite: BEGIN IMMEDIATE does).
        row = self._conn.execute(query.with_for_update() if for_update else query).first()
        return None if row is None else (_request(row), self._votes(request_id))

    def _votes(self, request_id: str) -> list[Vote]:
        rows = self._conn.execute(
            sa.select(approval_votes).where(approval_votes.c.request_id == request_id).order_by(approval_votes.c.id)
        )
        return [Vote(r.voter, Decision(r.decision), utc(r.at), r.as_admin, r.self_approval) for r in rows]

    @guard_db
    def add_vote(self, request_id: str, vote: Vote) -> None:
        try:
            self._conn.execute(
                approval_votes.insert().values(
                    request_id=request_id,
                    voter=vote.voter,
                    decision=vote.decision.value,
                    at=vote.at,
                    as_admin=vote.as_admin,
                    self_approval=vote.self_approval,
                )
            )
        except IntegrityError:
            # Two clicks by one person raced past the check: the unique constraint kept one.
            raise Conflict("You already voted on this request; each approver counts once.") from None

    @guard_db
    def set_state(self, request_id: str, state: ApprovalState, at: datetime) -> None:
        self._conn.execute(
            approval_requests.update().where(approval_requests.c.id == request_id).values(state=state.value, decided_at=at)
        )

    @guard_db
    def set_details(self, request_id: str, details: dict[str, str]) -> None:
        self._conn.execute(
            approval_requests.update().where(approval_requests.c.id == request_id).values(details=json.dumps(details))
        )

    @guard_db
    def attach_message(self, request_id: str, ref: MessageRef) -> None:
        self._conn.execute(
            approval_requests.update().where(approval_requests.c.id == request_id).values(channel=ref.channel, message_ts=ref.ts)
        )

    @guard_db
    def pending(self) -> list[ApprovalRequest]:
        rows = self._conn.execute(
            sa.select(approval_requests)
            .where(approval_requests.c.state == ApprovalState.PENDING.value)
            .order_by(approval_requests.c.created_at)
        )
        return [_request(r) for r in rows]
