"""What happens once a deploy or rollback request is decided: approved → queued for the worker; otherwise closed.

The approvals family calls ``approved`` once, as the person whose vote approved the request, and
``closed`` once for a request rejected, withdrawn or expired. The row's compare-and-set from
``requested`` to ``approved`` lets one caller through; the run is queued as the job ``deploys.run``
with a key, so it runs once however often it is submitted.
"""

from __future__ import annotations

from bot.domain.approvals.model import ApprovalRequest, ApprovalState, Decision, Vote
from bot.domain.deploys import support
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import NotStarted
from bot.domain.deploys.model import Deploy, DeployState
from bot.domain.shared.errors import OpsError
from bot.domain.shared.policy import Actor

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

    def approve_and_queue(self, actor: Actor, deploy_id: str, approvers: list[str]) -> Deploy | None:
        """``requested`` → ``approved``, renew the lock, queue the run. None when the deploy had moved on."""
        d = self._d
        deploy = support.transition(
            d, deploy_id, frozenset({DeployState.REQUESTED}), DeployState.APPROVED, approved_at=d.clock.now(), approvers=approvers
        )
        if deploy is None:
            return None
        try:
            renewed = deploy.lease is not None and d.locks.extend(deploy.lease, d.config.deploys.lock_ttl_seconds)
        except OpsError as exc:
            raise self._not_started(
                actor, deploy, DeployState.FAILED, f"its deploy lock could not be renewed ({exc.message})"
            ) from None
        if not renewed:
            self._not_started(
                actor, deploy, DeployState.LOCK_LOST, "its deploy lock was broken or ran out while it waited for approval"
            )
            return None
        support.audit(d, actor, f"{deploy.kind.value}.approved", deploy, approvers=approvers)
        try:
            d.jobs.submit(RUN_JOB, {"deploy_id": deploy_id}, key=run_key(deploy_id))
        except OpsError as exc:
            raise self._not_started(
                actor, deploy, DeployState.FAILED, f"it could not be queued for the worker ({exc.message})"
            ) from None
        return deploy

    def _not_started(self, actor: Actor, deploy: Deploy, state: DeployState, why: str) -> OpsError:
        """An approved deploy that will not run: record why, free the lock, say so in the channel; the error to tell."""
        d = self._d
        ended = support.transition(d, deploy.id, frozenset({DeployState.APPROVED}), state, finished_at=d.clock.now(), detail=why)
        support.audit(d, actor, f"{deploy.kind.value}.not_started", deploy, state.value, why)
        self.takeover.release_quietly(actor, deploy, f"{support.what(deploy)} ({deploy.id}) did not start")
        support.announce(d, NotStarted(ended or deploy, why))
        return OpsError(
            f"`{deploy.id}` was approved but did not start: {why}. It is marked {state.value.replace('_', ' ')}; "
            "request it again once that is fixed."
        )

    def approved(self, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> None:
        deploy_id = str(request.payload.get("deploy_id", ""))
        approvers = [
            v.voter + (" (self-approved, hotfix)" if v.self_approval else "") for v in votes if v.decision is Decision.APPROVE
        ]
        if self.approve_and_queue(actor, deploy_id, approvers) is None:
            deploy = support.get(self._d, deploy_id)
            if deploy is not None and deploy.state is not DeployState.LOCK_LOST:
                support.announce(self._d, NotStarted(deploy, f"it was already {deploy.state.value}"))

    def closed(self, actor: Actor, request: ApprovalRequest) -> None:
        """Rejected, expired or withdrawn: record it and release the lock."""
        to = CLOSED.get(request.state)
        if to is None:
            return
        d = self._d
        deploy_id = str(request.payload.get("deploy_id", ""))
        deploy = support.transition(d, deploy_id, frozenset({DeployState.REQUESTED}), to, finished_at=d.clock.now())
        if deploy is None:
            return
        support.audit(d, actor, f"{deploy.kind.value}.{to.value}", deploy, to.value)
        self.takeover.release(actor, deploy, f"{support.what(deploy)} ({deploy.id}) was {to.value}")
