"""Approval requests and votes in SQL; each decision runs under a lock on its request row."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, metadata
from bot.domain.approvals.service import ApprovalRequest, ApprovalState, Decision, Rule, Transition, Vote
from bot.domain.shared.errors import Conflict
from bot.domain.shared.ports import MessageRef

approval_requests = sa.Table(
    "approval_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("requester", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("service", sa.String(64), nullable=True),
    sa.Column("environment", sa.String(64), nullable=True),
    sa.Column("required", sa.Integer, nullable=False),
    sa.Column("require_admin", sa.Boolean, nullable=False),
    sa.Column("admin_self_approval", sa.Boolean, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("message_ts", sa.String(32), nullable=True),
)
approval_votes = sa.Table(
    "approval_votes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), sa.ForeignKey("approval_requests.id"), nullable=False, index=True),
    sa.Column("voter", sa.String(32), nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_admin", sa.Boolean, nullable=False),
    sa.Column("self_approval", sa.Boolean, nullable=False),
    sa.UniqueConstraint("request_id", "voter"),
)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _request(row: Any) -> ApprovalRequest:
    return ApprovalRequest(
        id=row.id, kind=row.kind, title=row.title, requester=row.requester, reason=row.reason,
        required=row.required, created_at=_utc(row.created_at), expires_at=_utc(row.expires_at),  # type: ignore[arg-type]
        state=ApprovalState(row.state), service=row.service, environment=row.environment,
        require_admin=row.require_admin, admin_self_approval=row.admin_self_approval,
        details=json.loads(row.details), payload=json.loads(row.payload), link=row.link,
        channel=row.channel, message_ts=row.message_ts, decided_at=_utc(row.decided_at),
    )


def _votes(conn: Connection, request_id: str) -> list[Vote]:
    rows = conn.execute(sa.select(approval_votes).where(approval_votes.c.request_id == request_id).order_by(approval_votes.c.id))
    return [Vote(r.voter, Decision(r.decision), _utc(r.at), r.as_admin, r.self_approval) for r in rows]  # type: ignore[arg-type]


class SqlApprovalStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @guard_db
    def create(self, request: ApprovalRequest) -> None:
        with self._engine.begin() as conn:
            conn.execute(approval_requests.insert().values(
                id=request.id, kind=request.kind, title=request.title[:300], requester=request.requester, reason=request.reason,
                service=request.service, environment=request.environment, required=request.required,
                require_admin=request.require_admin, admin_self_approval=request.admin_self_approval,
                details=json.dumps(request.details), payload=json.dumps(request.payload), link=request.link,
                state=request.state.value, created_at=request.created_at, expires_at=request.expires_at,
            ))

    @guard_db
    def get(self, request_id: str) -> tuple[ApprovalRequest, list[Vote]] | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(approval_requests).where(approval_requests.c.id == request_id)).first()
            return None if row is None else (_request(row), _votes(conn, request_id))

    @guard_db
    def attach_message(self, request_id: str, ref: MessageRef) -> None:
        with self._engine.begin() as conn:
            conn.execute(approval_requests.update().where(approval_requests.c.id == request_id).values(channel=ref.channel, message_ts=ref.ts))

    @guard_db
    def decide(self, request_id: str, vote: Vote | None, now: datetime, rule: Rule) -> Transition:
        try:
            with self._engine.begin() as conn:
                # The row lock serializes every vote on this request (SQLite: BEGIN IMMEDIATE does).
                row = conn.execute(
                    sa.select(approval_requests).where(approval_requests.c.id == request_id).with_for_update()
                ).one()
                request, votes = _request(row), _votes(conn, request_id)
                verdict = rule(request, votes)
                if vote is not None and verdict.keep_vote:
                    conn.execute(approval_votes.insert().values(
                        request_id=request_id, voter=vote.voter, decision=vote.decision.value, at=vote.at,
                        as_admin=vote.as_admin, self_approval=vote.self_approval,
                    ))
                    votes = [*votes, vote]
                after = request
                if verdict.state is not request.state:
                    conn.execute(approval_requests.update().where(approval_requests.c.id == request_id)
                                 .values(state=verdict.state.value, decided_at=now))
                    after = ApprovalRequest(**{**request.__dict__, "state": verdict.state, "decided_at": now})
                return Transition(after, votes, request.state)
        except IntegrityError:
            # Two clicks by one person raced past the check: the unique constraint kept one.
            raise Conflict("You already voted on this request; each approver counts once.") from None

    @guard_db
    def pending(self) -> list[ApprovalRequest]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(approval_requests).where(approval_requests.c.state == ApprovalState.PENDING.value)
                                .order_by(approval_requests.c.created_at))
            return [_request(r) for r in rows]
