"""Approval requests with a server-enforced two-person rule, shared by deploys, rollbacks and flags.

A family opens a request (``ApprovalService.request``) and is told through its ``ApprovalOutcome``
once the request is approved, or closed otherwise. Every click is re-checked here, from the
database: the clicker's role, the request's state, who already voted. The button carries only the
request's opaque id. Each vote is judged (``model.judge_vote``) under a lock on the request's row,
so twenty concurrent Approve clicks move a request to ``approved`` once, and ``approved`` runs once.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.domain.approvals.deps import ApprovalDeps
from bot.domain.approvals.messages import ApprovalMessage, VoteReceipt
from bot.domain.approvals.model import (
    ApprovalRequest,
    ApprovalState,
    Decision,
    Transition,
    Vote,
    approvals_of,
    judge_expiry,
    judge_vote,
)
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, OpsError
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import MessageRef, Reply

EXPIRE_JOB = "approvals.expire"


def expiry_key(request_id: str) -> str:
    return f"approval-expiry:{request_id}"


class ApprovalService:
    """Opening requests, counting votes, expiring what nobody decided."""

    def __init__(self, deps: ApprovalDeps) -> None:
        self._d = deps

    def family(self) -> Family:
        return Family("approvals", jobs=[JobSpec(EXPIRE_JOB, self.expire)])

    def request(
        self,
        actor: Actor,
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
        """Open a request as ``actor``, post it with Approve/Reject buttons, and schedule its expiry."""
        d = self._d
        if kind not in d.outcomes:
            raise OpsError(f"no approval kind {kind!r} is registered")
        now = d.clock.now()
        request = ApprovalRequest(
            id=secrets.token_hex(8),
            kind=kind,
            title=title,
            requester=actor.user_id,
            reason=reason,
            required=required,
            created_at=now,
            expires_at=now + timedelta(minutes=timeout_minutes),
            service=service,
            environment=environment,
            require_admin=require_admin,
            admin_self_approval=admin_self_approval,
            details=details or {},
            payload=payload or {},
            link=link,
        )
        with d.uow() as uow:
            uow.approvals.add(request)
            uow.commit()
        ref = d.notifier.post(channel or d.config.channels.deployments, ApprovalMessage(request, [], 0, now))
        with d.uow() as uow:
            uow.approvals.attach_message(request.id, ref)
            uow.commit()
        d.jobs.schedule(request.expires_at, EXPIRE_JOB, {"request_id": request.id}, key=expiry_key(request.id))
        return replace(request, channel=ref.channel, message_ts=ref.ts)

    def get(self, request_id: str) -> tuple[ApprovalRequest, list[Vote]] | None:
        with self._d.uow() as uow:
            return uow.approvals.get(request_id)

    def approve(self, actor: Actor, request_id: str) -> Reply:
        """The Approve button."""
        return self.vote(actor, request_id, Decision.APPROVE)

    def reject(self, actor: Actor, request_id: str) -> Reply:
        """The Reject button (the requester's own Reject withdraws the request)."""
        return self.vote(actor, request_id, Decision.REJECT)

    def vote(self, actor: Actor, request_id: str, decision: Decision) -> Reply:
        """One click on Approve or Reject, checked from the database, never from the payload."""
        d, voter = self._d, actor.user_id
        found = self.get(request_id)
        if found is None:
            raise NotFound("approval request", request_id[:20])
        request, _ = found
        withdrawing = voter == request.requester and decision is Decision.REJECT
        if not withdrawing and not d.policy.has(voter, Role.APPROVER):
            raise NotPermitted(Role.APPROVER.value, decision.value, request.title)
        now = d.clock.now()
        self_approval = voter == request.requester and decision is Decision.APPROVE
        ballot = Vote(voter, decision, now, as_admin=d.policy.has(voter, Role.ADMIN), self_approval=self_approval)
        with d.uow() as uow:
            locked = uow.approvals.get(request_id, for_update=True)
            if locked is None:
                raise NotFound("approval request", request_id[:20])
            current, votes = locked
            verdict = judge_vote(current, votes, ballot, now)
            if verdict.keep_vote:
                uow.approvals.add_vote(request_id, ballot)
                votes = [*votes, ballot]
            after = current
            if verdict.state is not current.state:
                uow.approvals.set_state(request_id, verdict.state, now)
                after = current.decided(verdict.state, now)
            uow.commit()
        transition = Transition(after, votes, current.state)
        self._after(actor, transition)
        if transition.request.state is ApprovalState.EXPIRED and transition.changed:
            raise Conflict(f"This request expired at {transition.request.expires_at:%H:%M} UTC; ask for a new one.")
        return Reply(
            VoteReceipt(transition.request, decision, approvals_of(transition.votes), self_approval), outcome=decision.value + "d"
        )

    def expire(self, actor: Actor, payload: dict[str, Any]) -> None:
        """The scheduled expiry: a still-pending request becomes expired, its message says so, its family cleans up."""
        now = self._d.clock.now()
        with self._d.uow() as uow:
            found = uow.approvals.get(str(payload["request_id"]), for_update=True)
            if found is None:
                return
            current, votes = found
            verdict = judge_expiry(current, now)
            if verdict.state is current.state:
                return
            uow.approvals.set_state(current.id, verdict.state, now)
            uow.commit()
        self._after(actor, Transition(current.decided(verdict.state, now), votes, current.state))

    def _after(self, actor: Actor, transition: Transition) -> None:
        """Update the posted message; on a state change, hand over to the request's family exactly once."""
        d, request = self._d, transition.request
        if request.channel and request.message_ts:
            d.notifier.update(
                MessageRef(request.channel, request.message_ts),
                ApprovalMessage(request, transition.votes, approvals_of(transition.votes), d.clock.now()),
            )
        if not transition.changed:
            return
        outcome = d.outcomes[request.kind]
        if request.state is ApprovalState.APPROVED:
            d.jobs.cancel(expiry_key(request.id))
            outcome.approved(actor, request, transition.votes)
        else:
            outcome.closed(actor, request)
