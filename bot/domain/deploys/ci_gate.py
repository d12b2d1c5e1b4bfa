"""The CI gate (``services.<name>.ci``): a deploy of a version waits for its checks on GitHub to be green.

At request time (``read``, from ``planning.build``): failed → refused; pending → the request opens and waits;
green → as before. While a request waits, the job ``deploys.ci_poll`` reads CI every ``poll_seconds`` (scheduled
through the outbox, so it survives a worker's death; the reconciler restarts a poll that went quiet) and edits the
approval request's "CI" line. ``CiWaits.green`` is the one place where a waiting request's CI turns green: an
approved deploy is queued there. CI turning red, or still pending after ``ci_timeout_minutes``, refuses the request
(``refuse``): rejected, the lock released, the messages edited, the requester told, audited.

Rollbacks never wait on CI: they go back to versions that ran already.
"""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import CiGate
from bot.domain.approvals.model import ApprovalState
from bot.domain.approvals.service import ApprovalService
from bot.domain.deploys import support
from bot.domain.deploys.ci import CiReport, CiState, CiUnreadable, deadline, describe_failure, gate_of, minutes
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import CiRefusedForRequester, NotStarted
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.deploys.outcomes import RUN_JOB, run_key
from bot.domain.deploys.planning import ci_proof
from bot.domain.deploys.ports import DeploysUnitOfWork
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.policy import Actor

log = logging.getLogger("opsbot.deploys")
CI_POLL_JOB = "deploys.ci_poll"
CI_LABEL = "CI"  # the approval request's detail line
WAITING = frozenset({DeployState.REQUESTED, DeployState.APPROVED})
UNREADABLE = "; GitHub could not be read since "  # how a waiting request's CI line says GitHub is unreadable
_SINCE = re.compile(re.escape(UNREADABLE) + r"(\d\d:\d\d UTC)")


def poll_key(deploy_id: str) -> str:
    return f"deploy:{deploy_id}:ci-poll"


class CiWaits:
    """The poll job of requests waiting for CI, the reconciler's step for polls that went quiet, green and refused."""

    def __init__(self, deps: DeployDeps, approvals: ApprovalService, takeover: FreezeTakeover) -> None:
        self._d = deps
        self._approvals = approvals
        self._takeover = takeover

    def start(self, uow: DeploysUnitOfWork, deploy: Deploy, gate: CiGate) -> None:
        """In the request's unit of work: its first poll, ``poll_seconds`` after CI was read for the request."""
        self._schedule(uow, deploy, gate, deploy.ci_checked_at or self._d.clock.now())

    def _schedule(self, uow: DeploysUnitOfWork, deploy: Deploy, gate: CiGate, checked_at: datetime) -> None:
        """The next poll, ``poll_seconds`` after ``checked_at``; it carries that time, so a second delivery of it (or a
        poll that lost a race with another) finds CI read since and does nothing."""
        at = checked_at + timedelta(seconds=gate.poll_seconds)
        payload = {"deploy_id": deploy.id, "checked_at": _stamp(checked_at)}
        uow.outbox.schedule(at, CI_POLL_JOB, payload, key=poll_key(deploy.id), origin=deploy.origin)

    # ----- the job -----
    def poll(self, actor: Actor, payload: dict[str, Any]) -> None:
        """Read CI once for a waiting request: green → ``green``; failed or past the deadline → ``refuse``; otherwise
        edit its CI line (when it changed) and schedule the next poll. GitHub unreachable or limiting: say so and try
        again next time; only the deadline ends the wait. A repeated delivery of one poll does nothing."""
        d = self._d
        deploy = support.get(d, str(payload.get("deploy_id", "")))
        if deploy is None or deploy.state not in WAITING or not deploy.waits_for_ci:
            return
        gate = gate_of(d.config, deploy)
        now = d.clock.now()
        if gate is None:  # the gate was removed from the config since: nothing to wait for
            self.green(actor, deploy.id, "no CI gate is configured any more")
            return
        expected = payload.get("checked_at")  # None: a poll the reconciler restarted
        if expected is not None and expected != _stamp(deploy.ci_checked_at):
            return  # this poll was delivered twice (or another one ran): CI was read since it was scheduled
        try:
            report: CiReport | None = d.ci.read(gate, deploy.version, deploy.service)
            trouble = None
        except CiUnreadable as exc:
            report, trouble = None, exc
        ends = deadline(gate, deploy)
        if report is not None and (failed := report.failed) is not None:
            self.refuse(actor, deploy.id, describe_failure(failed), "ci_failed", report.summary)
        elif report is not None and report.green:
            self.green(actor, deploy.id, report.summary)
        elif now >= ends:
            waited = minutes(gate.ci_timeout_minutes)
            last = report.summary if report is not None else deploy.ci_summary or "nothing reported"
            why = f"CI was still pending after {waited} (ci_timeout_minutes): {last}"
            self.refuse(actor, deploy.id, why, "ci_timeout", f"⌛ still pending after {waited}")
        else:
            if report is not None:
                line = f"⏳ {report.summary}"
            else:
                assert trouble is not None
                line = unreadable_line(deploy.ci_summary, trouble, gate, now, ends)
            self._still_waiting(deploy.id, gate, line, now, deploy.ci_checked_at)

    def _locked(self, uow: DeploysUnitOfWork, deploy_id: str) -> Deploy | None:
        """The deploy as it is now, read after taking its approval request's row lock: votes on that request take the
        same lock, so a vote's "approved" and CI's "green" never cross (each sees the other's committed change)."""
        deploy = uow.deploys.get(deploy_id)
        if deploy is not None and deploy.approval_id is not None:
            uow.approvals.get(deploy.approval_id, for_update=True)
            deploy = uow.deploys.get(deploy_id)
        return deploy

    def _still_waiting(self, deploy_id: str, gate: CiGate, line: str, now: datetime, read_after: datetime | None) -> None:
        d = self._d
        with d.uow() as uow:
            deploy = self._locked(uow, deploy_id)
            if deploy is None or deploy.state not in WAITING or not deploy.waits_for_ci:
                return
            if _stamp(deploy.ci_checked_at) != _stamp(read_after):
                return  # a twin of this poll recorded its reading (and scheduled the next) meanwhile
            uow.deploys.update(deploy_id, ci_summary=line, ci_checked_at=now)
            if deploy.approval_id is not None and line != deploy.ci_summary:
                self._approvals.revise(uow, deploy.approval_id, details={CI_LABEL: line})
            self._schedule(uow, deploy, gate, now)
            uow.commit()

    def green(self, actor: Actor, deploy_id: str, summary: str) -> Deploy | None:
        """The one place where a waiting request's CI turns green: recorded (``ci_state`` green), its request's CI line
        edited, and, when its approvals are in already, the deploy queued. The deploy after, or None when it was not
        waiting any more."""
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            deploy = self._locked(uow, deploy_id)
            if deploy is None or deploy.state not in WAITING or not deploy.waits_for_ci:
                return None
            uow.deploys.update(deploy_id, ci_state=CiState.GREEN.value, ci_summary=summary, ci_checked_at=now)
            if deploy.approval_id is not None:
                self._approvals.revise(uow, deploy.approval_id, details={CI_LABEL: summary})
                gate = gate_of(d.config, deploy)
                if gate is not None:  # green for real, not a gate removed from the config: checklist items on CI are ticked
                    note = ci_proof(gate.repo, deploy.version, summary)
                    self._approvals.satisfy(uow, deploy.approval_id, gate="ci", note=note)
            if deploy.state is DeployState.APPROVED:
                self._renew_lock(deploy)
                uow.outbox.submit(RUN_JOB, {"deploy_id": deploy.id}, key=run_key(deploy.id), origin=deploy.origin)
            uow.commit()
        support.audit(d, actor, "deploy.ci_passed", deploy, "ok", ci=summary, queued=deploy.state is DeployState.APPROVED)
        return deploy

    def _renew_lock(self, deploy: Deploy) -> None:
        """The run's TTL from now on; a lock that is gone is found by the run as it starts (it ends ``lock_lost``)."""
        lease = deploy.lease
        if lease is None:
            return
        with contextlib.suppress(Unavailable):
            self._d.locks.extend(lease, self._d.config.deploys.lock_ttl_seconds)

    def refuse(self, actor: Actor, deploy_id: str, why: str, outcome: str, line: str) -> Deploy | None:
        """CI failed, or stayed pending past the deadline: the request is rejected (its approval request too), the
        approval request's message says why, the deployments channel and the requester are told, the lock released,
        audited (``deploy.refused`` with ``outcome`` ``ci_failed`` / ``ci_timeout``)."""
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            deploy = self._locked(uow, deploy_id)
            if deploy is None or deploy.state not in WAITING or not deploy.waits_for_ci:
                return None
            ended = uow.deploys.transition(
                deploy_id,
                WAITING,
                DeployState.REJECTED,
                finished_at=now,
                detail=f"refused by the CI gate: {why}",
                ci_state=CiState.FAILED.value,
                ci_summary=line,
                ci_checked_at=now,
            )
            if ended is None:
                return None
            if ended.approval_id is not None:
                self._approvals.revise(
                    uow, ended.approval_id, details={CI_LABEL: f"{line} · refused"}, close_as=ApprovalState.REJECTED
                )
            channel = d.config.channels.deployments
            uow.outbox.post(
                channel, NotStarted(ended, f"the CI gate refused it: {why}"), key=ended.key("not-started"), origin=ended.origin
            )
            uow.outbox.dm(ended.requester, CiRefusedForRequester(ended, why), key=ended.key("ci-refused"), origin=ended.origin)
            uow.commit()
        support.audit(d, actor, "deploy.refused", ended, outcome, why, ci=line)
        self._takeover.release_quietly(actor, ended, f"{support.what(ended)} ({ended.id}) was refused by the CI gate")
        return ended

    # ----- the reconciler's step -----
    def quiet_polls(self, actor: Actor) -> list[str]:
        """A request waiting for CI whose poll went quiet (its job was lost with a worker or Redis) gets one now."""
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            waiting = uow.deploys.waiting_for_ci()
        repaired = []
        for deploy in waiting:
            gate = gate_of(d.config, deploy)
            every = gate.poll_seconds if gate is not None else 15.0
            last = deploy.ci_checked_at or deploy.requested_at
            if (now - last).total_seconds() < 3 * every + 2:
                continue
            with d.uow() as uow:
                if uow.outbox.waiting(poll_key(deploy.id)):
                    continue  # its poll is still on its way to the queue
                uow.outbox.submit(CI_POLL_JOB, {"deploy_id": deploy.id}, key=poll_key(deploy.id), origin=deploy.origin)
                uow.commit()
            support.audit(d, actor, "deploy.ci_poll_restarted", deploy, "ok", last_checked=str(deploy.ci_checked_at))
            repaired.append(f"{deploy.id}: waiting for CI with no poll since {last:%H:%M:%S}; polling again")
        return repaired


def unreadable_line(previous: str | None, trouble: CiUnreadable, gate: CiGate, now: datetime, ends: datetime) -> str:
    """A waiting request's CI line while GitHub cannot be read: the last reading, since when (kept from ``previous``
    while GitHub stays unreadable) and what went wrong, with no per-poll time, so a poll that finds GitHub as unreadable
    as the last one writes the same line (and the request's message is not edited: an edit clears approvers'
    unsubmitted ticks in Slack)."""
    base, _, rest = (previous or "⏳ waiting for CI").partition(UNREADABLE)
    kept = _SINCE.match(UNREADABLE + rest) if rest else None
    since = kept.group(1) if kept else f"{now.astimezone(UTC):%H:%M} UTC"
    return (
        f"{base}{UNREADABLE}{since} ({trouble.problem}); polling again every {gate.poll_seconds:g} s "
        f"until {ends.astimezone(UTC):%H:%M} UTC"
    )


def _stamp(moment: datetime | None) -> str | None:
    """A check time as a poll's payload carries it (UTC, microseconds)."""
    return None if moment is None else moment.astimezone(UTC).isoformat()
