"""What happens once a deploy or rollback request is decided: approved → queued for the worker; otherwise closed.

The approvals family calls ``approved`` once, as the person whose vote approved the request, and
``closed`` once for a request rejected, withdrawn or expired, both inside the unit of work that records
the decision: the deploy's own transition and the job that runs it (an outbox effect) commit with the
vote, or not at all. The job is delivered to the queue after the commit, retried while Redis is away;
the row's compare-and-set from ``approved`` to ``running`` lets it run once however often it is delivered.
"""

from __future__ import annotations

from typing import cast

from bot.config import CiGate
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, Decision, Vote
from bot.domain.approvals.ports import Approved
from bot.domain.deploys import support
from bot.domain.deploys.ci import gate_of, lock_seconds
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import NotStarted
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.deploys.ports import DeploysUnitOfWork
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import UnitOfWork

RUN_JOB = "deploys.run"
CLOSED = {
    ApprovalState.REJECTED: DeployState.REJECTED,
    ApprovalState.EXPIRED: DeployState.EXPIRED,
    ApprovalState.CANCELLED: DeployState.CANCELLED,
}


def run_key(deploy_id: str) -> str:
    return f"deploy:{deploy_id}"


class DeployOutcomes:
    """The ``ApprovalOutcome`` of deploy and rollback requests, and queueing a run that needs no approval."""

    def __init__(self, deps: DeployDeps, takeover: FreezeTakeover) -> None:
        self._d = deps
        self.takeover = takeover

    def queue(self, uow: DeploysUnitOfWork, actor: Actor, deploy_id: str, approvers: list[str]) -> str | None:
        """In ``uow``: ``requested`` → ``approved`` and the run job as an effect; what happens next, in words.

        None when the deploy had moved on (it says so in the deployments channel) or its lock is gone. The
        lock is renewed here when Redis answers; when it does not, the run checks it as it starts.
        """
        d = self._d
        deploy = uow.deploys.transition(
            deploy_id, frozenset({DeployState.REQUESTED}), DeployState.APPROVED, approved_at=d.clock.now(), approvers=approvers
        )
        if deploy is None:
            current = uow.deploys.get(deploy_id)
            if current is not None and current.state is not DeployState.LOCK_LOST:
                self._not_started(uow, actor, current, None, f"it was already {current.state.value}")
            return None
        gate = self._ci_gate(deploy)
        ttl = d.config.deploys.lock_ttl_seconds
        if gate is not None:  # it waits for CI first: its lock lasts until CI's deadline, then the run's TTL
            ttl = lock_seconds(gate, deploy, d.clock.now(), ttl)
        if self._lock_is_gone(deploy, ttl):
            why = "its deploy lock was broken or ran out while it waited for approval"
            ended = uow.deploys.transition(
                deploy.id, frozenset({DeployState.APPROVED}), DeployState.LOCK_LOST, finished_at=d.clock.now(), detail=why
            )
            self._not_started(uow, actor, ended or deploy, DeployState.LOCK_LOST, why)
            return None
        uow.after_commit(lambda: support.audit(d, actor, f"{deploy.kind.value}.approved", deploy, approvers=approvers))
        if deploy.waits_for_ci:  # the CI gate queues it once CI is green (ci_gate.CiWaits.green)
            return "The deploy starts once CI is green"
        uow.outbox.submit(RUN_JOB, {"deploy_id": deploy.id}, key=run_key(deploy.id), origin=deploy.origin)
        return "The rollback starts" if deploy.is_rollback else "The deploy starts"

    def _ci_gate(self, deploy: Deploy) -> CiGate | None:
        """The CI gate this deploy still waits for, if any."""
        return gate_of(self._d.config, deploy) if deploy.waits_for_ci else None

    def _lock_is_gone(self, deploy: Deploy, ttl: float) -> bool:
        """True when Redis says someone else holds (or nobody holds) the deploy's lock; renews it when it is still ours.

        Redis being away is not "gone": the database keeps deploys of one target apart, and the run checks again.
        """
        lease = deploy.lease
        if lease is None:
            return True
        try:
            return not self._d.locks.extend(lease, ttl)
        except Unavailable:
            return False

    def _not_started(self, uow: DeploysUnitOfWork, actor: Actor, deploy: Deploy, state: DeployState | None, why: str) -> None:
        """Say in the deployments channel that ``deploy`` will not run; when ``state`` is given, it just ended so."""
        d = self._d
        uow.outbox.post(
            d.config.channels.deployments, NotStarted(deploy, why), key=deploy.key("not-started"), origin=deploy.origin
        )
        if state is not None:
            uow.after_commit(lambda: support.audit(d, actor, f"{deploy.kind.value}.not_started", deploy, state.value, why))
            uow.after_commit(
                lambda: self.takeover.release_quietly(actor, deploy, f"{support.what(deploy)} ({deploy.id}) did not start")
            )

    def approved(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> Approved:
        # One unit of work serves every family (bot.wiring): this one has the deploys repository too.
        deploys_uow = cast(DeploysUnitOfWork, uow)
        approvers = [
            v.voter + (" (self-approved, hotfix)" if v.self_approval else "") for v in votes if v.decision is Decision.APPROVE
        ]
        deploy_id = str(request.payload.get("deploy_id", ""))
        next_step = self.queue(deploys_uow, actor, deploy_id, approvers)
        queued = deploys_uow.deploys.get(deploy_id)
        holds = None
        if queued is not None and queued.state is DeployState.APPROVED and queued.waits_for_ci:
            holds = (
                f"The deploy starts once CI is green: {_plain(queued.ci_summary)}. "
                "The request's message shows CI's progress; nothing needs to be done again."
            )
        return Approved(next_step, holds=holds)

    def closed(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest) -> None:
        """Rejected, expired or withdrawn: record it; once committed, release the lock (or give it back to a freeze)."""
        to = CLOSED.get(request.state)
        if to is None:
            return
        d = self._d
        deploys_uow = cast(DeploysUnitOfWork, uow)
        deploy_id = str(request.payload.get("deploy_id", ""))
        deploy = deploys_uow.deploys.transition(deploy_id, frozenset({DeployState.REQUESTED}), to, finished_at=d.clock.now())
        if deploy is None:
            return
        ended = deploy
        uow.after_commit(lambda: support.audit(d, actor, f"{ended.kind.value}.{to.value}", ended, to.value))
        uow.after_commit(
            lambda: self.takeover.release_quietly(actor, ended, f"{support.what(ended)} ({ended.id}) was {to.value}")
        )


def _plain(ci_summary: str | None) -> str:
    """A waiting request's CI line without its icon and retry note: ``waiting for CI (3 of 5 checks done)``."""
    return (ci_summary or "waiting for CI").removeprefix("⏳ ").split("; GitHub could not be read")[0]
