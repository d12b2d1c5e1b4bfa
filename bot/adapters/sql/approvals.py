"""Approval requests and votes in SQL, inside a unit of work."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, utc, utc_or_none
from bot.adapters.sql.tables import approval_checklist_ticks, approval_requests, approval_votes
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, ChecklistItem, Decision, Tick, Vote
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
        checklist=_checklist(row.checklist),
    )


def _checklist(text: str | None) -> tuple[ChecklistItem, ...]:
    return tuple(ChecklistItem(i["text"], i.get("satisfied_by"), i.get("satisfied")) for i in json.loads(text or "[]"))


def _checklist_json(checklist: tuple[ChecklistItem, ...]) -> str | None:
    if not checklist:
        return None
    return json.dumps([{"text": i.text, "satisfied_by": i.satisfied_by, "satisfied": i.satisfied} for i in checklist])


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
                checklist=_checklist_json(request.checklist),
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
    def ticks(self, request_id: str) -> list[Tick]:
        rows = self._conn.execute(
            sa.select(approval_checklist_ticks)
            .where(approval_checklist_ticks.c.request_id == request_id)
            .order_by(approval_checklist_ticks.c.at, approval_checklist_ticks.c.id)
        )
        return [Tick(r.voter, r.item, utc(r.at)) for r in rows]

    @guard_db
    def set_tick(self, request_id: str, tick: Tick, ticked: bool) -> bool:
        # Callers hold the request's row lock (``get(for_update=True)``), so the check and the change do not race.
        t = approval_checklist_ticks.c
        where = sa.and_(t.request_id == request_id, t.voter == tick.voter, t.item == tick.item)
        present = self._conn.execute(sa.select(t.id).where(where)).first() is not None
        if present == ticked:
            return False
        if ticked:
            self._conn.execute(
                approval_checklist_ticks.insert().values(request_id=request_id, voter=tick.voter, item=tick.item, at=tick.at)
            )
        else:
            self._conn.execute(approval_checklist_ticks.delete().where(where))
        return True

    @guard_db
    def set_checklist(self, request_id: str, checklist: tuple[ChecklistItem, ...]) -> None:
        self._conn.execute(
            approval_requests.update().where(approval_requests.c.id == request_id).values(checklist=_checklist_json(checklist))
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
