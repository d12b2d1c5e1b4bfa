"""Approval requests with a server-enforced two-person rule, shared by deploys, rollbacks and flags.

A family opens a request (``ApprovalService.request``) and is told through its ``ApprovalOutcome``
once the request is approved, or closed otherwise. Every click is re-checked here, from the
database: the clicker's role, the request's state, who already voted. The button carries only the
request's opaque id. Each vote is judged (``model.judge_vote``) under a lock on the request's row,
so twenty concurrent Approve clicks move a request to ``approved`` once, and ``approved`` runs once.

A request with a checklist (``environments.<env>.checklist``) records each approver's ticks (``tick``) under
the same row lock; an Approve counts only once its voter ticked every item. A gate ticks its items for
everyone (``satisfy``), saying how it passed.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.approvals.deps import ApprovalDeps
from bot.domain.approvals.messages import ApprovalMessage, ChecklistTicked, RequestExpired, RequestUnposted, VoteReceipt
from bot.domain.approvals.model import (
    ApprovalRequest,
    ApprovalState,
    ChecklistItem,
    Decision,
    Tick,
    Transition,
    Vote,
    approvals_of,
    judge_expiry,
    judge_tick,
    judge_vote,
    satisfy,
    unticked,
)
from bot.domain.approvals.ports import ApprovalsUnitOfWork, Approved
from bot.domain.shared.audit import entry, record_quietly
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, OpsError, Refused
from bot.domain.shared.family import JOB_ACTOR, Family, JobSpec
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import MessageRef, Pending, Reply

EXPIRE_JOB = "approvals.expire"


# A vote re-reads a user group whose members opsbot has known for longer than this. Slack rate-limits
# usergroups.users.list (Tier 2, about 20 calls a minute: https://api.slack.com/methods/usergroups.users.list),
# so not on every click; `subteam_members_changed` drops a group at once.
VOTE_FRESHNESS_SECONDS = 10.0


def expiry_key(request_id: str) -> str:
    return f"approval-expiry:{request_id}"


class ApprovalService:
    """Opening requests, counting votes, expiring what nobody decided."""

    def __init__(self, deps: ApprovalDeps) -> None:
        self._d = deps

    def family(self) -> Family:
        return Family("approvals", jobs=[JobSpec(EXPIRE_JOB, self.expire)], reconcile=[self.unposted])

    def open(
        self,
        uow: ApprovalsUnitOfWork,
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
        checklist: Sequence[ChecklistItem] = (),
    ) -> ApprovalRequest:
        """Record a request as ``actor`` in the caller's unit of work, with its message (Approve/Reject, and the
        ``checklist``'s checkboxes) and expiry as effects: they go out once that unit of work commits, with whatever
        the caller changed in it."""
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
            channel=channel or d.config.channels.deployments,
            checklist=tuple(checklist),
        )
        uow.approvals.add(request)
        assert request.channel is not None
        uow.outbox.post(request.channel, ApprovalMessage(request, [], 0, now), key=request.message_key, origin=request.origin)
        uow.outbox.schedule(
            request.expires_at, EXPIRE_JOB, {"request_id": request.id}, key=expiry_key(request.id), origin=request.origin
        )
        return request

    def request(self, actor: Actor, **fields: Any) -> ApprovalRequest:
        """``open`` in a unit of work of its own (for callers that change nothing else), committed."""
        with self._d.uow() as uow:
            request = self.open(uow, actor, **fields)
            uow.commit()
        return request

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
        fresh = VOTE_FRESHNESS_SECONDS
        where = request.environment  # an environment's own roles decide its requests
        if not withdrawing:
            self._require_approver(voter, request, decision.value)
        now = d.clock.now()
        self_approval = voter == request.requester and decision is Decision.APPROVE
        as_admin = d.policy.has(voter, Role.ADMIN, environment=where, fresh_within=fresh)
        ballot = Vote(voter, decision, now, as_admin=as_admin, self_approval=self_approval)
        with d.uow() as uow:
            locked = uow.approvals.get(request_id, for_update=True)
            if locked is None:
                raise NotFound("approval request", request_id[:20])
            current, votes = locked
            _carried_by_its_message(uow, actor, current)
            ticks = uow.approvals.ticks(request_id) if current.checklist else []
            verdict = judge_vote(current, votes, ballot, now, ticks)
            if verdict.keep_vote:
                uow.approvals.add_vote(request_id, ballot)
                votes = [*votes, ballot]
            after = current
            if verdict.state is not current.state:
                uow.approvals.set_state(request_id, verdict.state, now)
                after = current.decided(verdict.state, now)
            approved = self._after(uow, actor, Transition(after, votes, current.state))
            if after.state is ApprovalState.EXPIRED and current.state is not ApprovalState.EXPIRED:
                self._tell_expired(uow, current, votes)
            uow.commit()
        if approved.then is not None:
            approved.then()
        if after.state is ApprovalState.EXPIRED and after.state is not current.state:
            raise Conflict(f"This request expired at {after.expires_at:%H:%M} UTC; ask for a new one.")
        waiting = ([approved.holds] if approved.holds else []) + _waiting(uow.pending, approved.next_step)
        receipt = VoteReceipt(after, decision, approvals_of(votes), self_approval, waiting=waiting)
        outcome = "withdrawn" if withdrawing else ("approved" if decision is Decision.APPROVE else "rejected")
        return Reply(receipt, outcome=outcome)

    def tick(self, actor: Actor, request_id: str, item: int, ticked: bool) -> Reply:
        """One click on a checklist item of ``request_id`` (its position ``item``): recorded for the clicker alone, who
        must be someone who may vote on the request; the message shows everyone's progress. Idempotent: the same click
        twice records once. Audited as ``approval.checklist_ticked`` / ``approval.checklist_unticked``."""
        d, voter = self._d, actor.user_id
        found = self.get(request_id)
        if found is None:
            raise NotFound("approval request", request_id[:20])
        self._require_approver(voter, found[0], "tick the checklist")
        now = d.clock.now()
        with d.uow() as uow:
            locked = uow.approvals.get(request_id, for_update=True)
            if locked is None:
                raise NotFound("approval request", request_id[:20])
            current, votes = locked
            _carried_by_its_message(uow, actor, current)
            chosen = judge_tick(current, votes, voter, item, now)
            changed = uow.approvals.set_tick(request_id, Tick(voter, item, now), ticked)
            ticks = uow.approvals.ticks(request_id)
            if changed:
                self._after(uow, actor, Transition(current, votes, current.state), ticks)
                action = "approval.checklist_ticked" if ticked else "approval.checklist_unticked"
                still = len(unticked(current, ticks, voter))
                row = entry(
                    actor,
                    action,
                    target=current.origin,
                    params={"request": current.id, "item": chosen.text, "position": item, "still_to_tick": still},
                    service=current.service,
                    environment=current.environment,
                )
                uow.after_commit(lambda: record_quietly(d.audit, row))
            uow.commit()
        receipt = ChecklistTicked(current, chosen, ticked, changed, unticked(current, ticks, voter))
        return Reply(receipt, outcome=("ticked" if ticked else "unticked") if changed else "unchanged")

    def satisfy(self, uow: ApprovalsUnitOfWork, request_id: str, *, gate: str, note: str) -> list[ChecklistItem]:
        """In the caller's unit of work: tick, for every approver, the items of ``request_id``'s checklist bound to
        ``gate`` (``satisfied_by``: "promotion", "ci"), saying ``note`` ("v1.2.3 succeeded in staging at …"); the
        message is edited and the change audited (``approval.checklist_satisfied``, by opsbot) once it commits.
        Returns the items it ticked now ([] when none are bound to the gate, or the request is no longer pending)."""
        d = self._d
        locked = uow.approvals.get(request_id, for_update=True)
        if locked is None or locked[0].state is not ApprovalState.PENDING:
            return []
        current, votes = locked
        after, newly = satisfy(current, gate, note)
        if not newly:
            return []
        uow.approvals.set_checklist(request_id, after.checklist)
        self._after(uow, JOB_ACTOR, Transition(after, votes, after.state))
        row = entry(
            JOB_ACTOR,
            "approval.checklist_satisfied",
            target=after.origin,
            params={"request": after.id, "gate": gate, "items": [i.text for i in newly], "note": note},
            service=after.service,
            environment=after.environment,
        )
        uow.after_commit(lambda: record_quietly(d.audit, row))
        return newly

    def _require_approver(self, voter: str, request: ApprovalRequest, what: str) -> None:
        """Raises NotPermitted unless ``voter`` holds the approver role where ``request`` is decided (its environment's
        own roles), read afresh when the groups known are older than ``VOTE_FRESHNESS_SECONDS``."""
        where = request.environment
        if not self._d.policy.has(voter, Role.APPROVER, environment=where, fresh_within=VOTE_FRESHNESS_SECONDS):
            raise NotPermitted(Role.APPROVER.value, what, request.title, environment=where)

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
            approved = self._after(uow, actor, Transition(current.decided(verdict.state, now), votes, current.state))
            if verdict.state is ApprovalState.EXPIRED:
                self._tell_expired(uow, current, votes)
            uow.commit()
        if approved.then is not None:
            approved.then()

    def unposted(self, actor: Actor) -> list[str]:
        """Reconciler step: a pending request whose message Slack refused for good (the outbox gave up on it) can be
        approved by nobody. It is cancelled, its family closes it (a deploy releases its lock) and the requester is
        told why in a DM. A message still being retried is left to the outbox."""
        d = self._d
        with d.uow() as uow:
            stuck = [(r, why) for r in uow.approvals.pending() if (why := uow.outbox.failed(r.message_key))]
        done = []
        for request, why in stuck:
            now = d.clock.now()
            with d.uow() as uow:
                locked = uow.approvals.get(request.id, for_update=True)
                if locked is None or locked[0].state is not ApprovalState.PENDING:
                    continue
                uow.approvals.set_state(request.id, ApprovalState.CANCELLED, now)
                cancelled = locked[0].decided(ApprovalState.CANCELLED, now)
                d.outcomes[request.kind].closed(uow, actor, cancelled)
                uow.outbox.cancel_job(expiry_key(request.id), origin=request.origin)
                uow.outbox.dm(
                    request.requester,
                    RequestUnposted(cancelled, why),
                    key=f"{request.message_key}:unposted",
                    origin=request.origin,
                )
                uow.commit()
            done.append(f"cancelled the request {request.title!r} ({request.origin}): its message could not be posted ({why})")
        return done

    def revise(
        self,
        uow: ApprovalsUnitOfWork,
        request_id: str,
        *,
        details: dict[str, str] | None = None,
        close_as: ApprovalState | None = None,
    ) -> ApprovalRequest | None:
        """The owning family changes its request in ``uow``: sets detail lines (``details`` are merged in, by label),
        and/or closes a pending request as ``close_as`` (a gate of its own refused it: no vote decided it, so its
        ``ApprovalOutcome`` is not called; the caller does its own part). The message is edited to match.
        The request after, or None when it does not exist."""
        locked = uow.approvals.get(request_id, for_update=True)
        if locked is None:
            return None
        request, votes = locked
        now = self._d.clock.now()
        changed = False
        if details and {**request.details, **details} != request.details:
            merged = {**request.details, **details}
            uow.approvals.set_details(request_id, merged)
            request = replace(request, details=merged)
            changed = True
        if close_as is not None and request.state is ApprovalState.PENDING:
            uow.approvals.set_state(request_id, close_as, now)
            request = request.decided(close_as, now)
            uow.outbox.cancel_job(expiry_key(request.id), origin=request.origin)
            changed = True
        if changed:  # an edit resets the checkboxes approvers see in Slack: none when nothing it shows changed
            uow.outbox.update(request.message_key, _message(uow, request, votes, now), origin=request.origin)
        return request

    def _tell_expired(self, uow: ApprovalsUnitOfWork, request: ApprovalRequest, votes: list[Vote]) -> None:
        """The requester hears that their request expired, and when: its deadline (keyed: told once)."""
        expired = RequestExpired(request, approvals_of(votes))
        uow.outbox.dm(request.requester, expired, key=f"{request.message_key}:expired", origin=request.origin)

    def _after(self, uow: ApprovalsUnitOfWork, actor: Actor, transition: Transition, ticks: list[Tick] | None = None) -> Approved:
        """In the decision's unit of work: edit the posted message; on a state change, hand over to the request's family
        exactly once. What the family answered, when the request was approved."""
        d, request = self._d, transition.request
        message = _message(uow, request, transition.votes, d.clock.now(), ticks)
        uow.outbox.update(request.message_key, message, origin=request.origin)
        if not transition.changed:
            return Approved()
        outcome = d.outcomes[request.kind]
        if request.state is ApprovalState.APPROVED:
            uow.outbox.cancel_job(expiry_key(request.id), origin=request.origin)
            return outcome.approved(uow, actor, request, transition.votes)
        outcome.closed(uow, actor, request)
        return Approved()


def _message(
    uow: ApprovalsUnitOfWork, request: ApprovalRequest, votes: list[Vote], now: datetime, ticks: list[Tick] | None = None
) -> ApprovalMessage:
    """The request's message as it stands: its votes and every approver's checklist ticks (every edit shows them; an
    edit without them would say nobody ticked anything). ``ticks`` as the caller just read them, else read here."""
    if ticks is None:
        ticks = uow.approvals.ticks(request.id) if request.checklist else []
    return ApprovalMessage(request, votes, approvals_of(votes), now, ticks)


def _carried_by_its_message(uow: ApprovalsUnitOfWork, actor: Actor, request: ApprovalRequest) -> None:
    """A click counts only on the request whose message carried it (a copied or forged payload does not)."""
    if actor.message_ts is None:
        return
    if uow.outbox.posted(request.message_key) != MessageRef(actor.channel_id or "", actor.message_ts):
        raise Refused(
            f"That button is not on the request *{request.title}*; it was not counted. "
            "Use the buttons on the request's own message."
        )


def _waiting(pending: list[Pending], next_step: str | None) -> list[str]:
    """What the voter should know is still on its way, when delivery could not finish right after the vote."""
    notes = []
    pending = [p for p in pending if not p.gave_up]
    if next_step and any(p.kind.startswith("job.") for p in pending):
        waiting_for = next(p.waiting_for for p in pending if p.kind.startswith("job."))
        notes.append(f"{next_step} as soon as {waiting_for} is back; nothing needs to be done again.")
    if any(p.kind.startswith("slack.") for p in pending):
        notes.append("The request's message in the channel will be updated as soon as Slack takes it.")
    return notes
