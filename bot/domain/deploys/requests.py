"""`/ops deploy` and `/ops cancel`: from a request to an approved deploy queued for the worker.

A request is checked (``planning``), takes the service/environment deploy lock at once, is recorded,
and asks for approvals through the approvals family. Once approved (``outcomes``), the deploy is
queued as the job ``deploys.run`` (``execution``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.approvals.model import Decision
from bot.domain.approvals.service import ApprovalService
from bot.domain.deploys import planning, support
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import DeployRequested, DryRun, Frozen
from bot.domain.deploys.model import Deploy, DeployKind, DeployState
from bot.domain.deploys.outcomes import DeployOutcomes
from bot.domain.deploys.planning import Plan
from bot.domain.incidents.model import Incident
from bot.domain.locks.waiting import PENDING_MARGIN_SECONDS
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

USAGE = 'deploy <version> [service] [to <env>] [--reason "…"] [--hotfix] [--dry-run]'
CANCEL_USAGE = "cancel <deploy id>"


@dataclass(frozen=True)
class StartDeploy:
    version: str
    service: str | None
    environment: str | None
    reason: str
    hotfix: bool
    dry_run: bool


@dataclass(frozen=True)
class CancelDeploy:
    deploy_id: str


def split_to(args: Args, usage: str) -> tuple[list[str], str | None]:
    """Positional words, and the word after ``to`` (which must come last)."""
    words = list(args.positional)
    lowered = [w.lower() for w in words]
    if "to" not in lowered:
        return words, None
    at = lowered.index("to")
    if at != len(words) - 2:
        raise UsageError("`to` takes one word and comes last.", f"/ops {usage}")
    return words[:at], words[at + 1]


def parse(args: Args) -> StartDeploy:
    words, environment = split_to(args, USAGE)
    if not words:
        raise UsageError("Name the version to deploy.", f"/ops {USAGE}")
    if len(words) > 2:
        raise UsageError(f"Unexpected argument(s): `{' '.join(words[2:])[:80]}`.", f"/ops {USAGE}")
    reason = args.options.get("reason", "").strip()
    hotfix = "hotfix" in args.flags
    if hotfix and not reason:
        raise UsageError('A hotfix needs a reason: add `--reason "…"`.', f"/ops {USAGE}")
    return StartDeploy(words[0], words[1] if len(words) > 1 else None, environment, reason, hotfix, "dry-run" in args.flags)


def parse_cancel(args: Args) -> CancelDeploy:
    (deploy_id,) = expect(args, CANCEL_USAGE, required=1)
    return CancelDeploy(deploy_id.strip().lower())


class DeployRequests:
    """Opening deploy and rollback requests (lock, record, approvals) and withdrawing them."""

    def __init__(self, deps: DeployDeps, approvals: ApprovalService, outcomes: DeployOutcomes, takeover: FreezeTakeover) -> None:
        self._d = deps
        self._approvals = approvals
        self._outcomes = outcomes
        self._takeover = takeover

    def deploy(self, command: StartDeploy, actor: Actor) -> Reply:
        d = self._d
        service, spec, environment = planning.resolve(d, command.service, command.environment)
        version = planning.check_version(service, spec, command.version)
        plan = planning.build(
            d,
            actor,
            kind=DeployKind.DEPLOY,
            service=service,
            spec=spec,
            environment=environment,
            version=version,
            reason=command.reason,
            hotfix=command.hotfix,
        )
        if command.dry_run:
            return self.dry_run(plan, command.hotfix)
        if plan.freezes and not plan.hotfix:
            return Reply(Frozen(service, environment, plan.freezes), outcome="frozen")
        return self.open(actor, plan)

    def dry_run(self, plan: Plan, hotfix_asked: bool) -> Reply:
        """Who would approve, which lock, which freeze, what the provider would run; nothing changes."""
        d = self._d
        approvers = list(d.config.roles.approver) + (list(d.config.roles.admin) if plan.hotfix else [])
        holder = d.locks.holder(plan.lock_name)
        return Reply(DryRun(plan, approvers, holder, hotfix_asked, d.clock.now()), outcome="dry_run")

    def open(self, actor: Actor, plan: Plan) -> Reply:
        """Take the lock, record the request, ask for approvals (or queue it when none are needed)."""
        d, now = self._d, self._d.clock.now()
        deploy_id = support.new_id(plan.kind)
        ttl = plan.timeout_minutes * 60 + PENDING_MARGIN_SECONDS if plan.needed else d.config.deploys.lock_ttl_seconds
        wanted = f"{'rollback to' if plan.kind is DeployKind.ROLLBACK else 'deploy of'} {plan.version}"
        lease, freeze_of = self._takeover.acquire(
            actor, plan.kind, plan.lock_name, deploy_id, purpose=f"{wanted} ({deploy_id})", ttl_seconds=ttl
        )
        deploy = Deploy(
            id=deploy_id,
            kind=plan.kind,
            service=plan.service,
            environment=plan.environment,
            version=plan.version,
            requester=actor.user_id,
            reason=plan.reason,
            state=DeployState.REQUESTED,
            requested_at=now,
            previous_version=plan.previous_version,
            hotfix=plan.hotfix,
            lock_name=plan.lock_name,
            lock_token=lease.token if lease else None,
            lock_fence=lease.fence if lease else None,
            rollback_of=plan.rollback_of,
        )
        if lease is None:
            reply = d.deploy_locks.refusal(plan.lock_name, wanted)
            held = getattr(reply.message, "lock", None)
            support.audit(
                d,
                actor,
                f"{plan.kind.value}.lock_refused",
                deploy,
                "conflict",
                holder=getattr(held, "holder", None),
                holder_purpose=getattr(held, "purpose", None),
            )
            return reply
        if freeze_of is not None:
            self._takeover.taken_over(actor, deploy, freeze_of)
        try:
            with d.uow() as uow:
                stale = uow.deploys.abandon_older(plan.lock_name, lease.fence, now)
                uow.deploys.create(deploy)
                uow.commit()
            for lost in stale:
                support.audit(d, actor, f"{lost.kind.value}.lock_lost", lost, "lock_lost", by_fence=lease.fence)
            support.audit(
                d,
                actor,
                f"{plan.kind.value}.requested",
                deploy,
                hotfix=plan.hotfix,
                needed=plan.needed,
                freezes=[f"{f.target}: {f.reason}" for f in plan.freezes],
            )
            if plan.needed == 0:
                self._outcomes.approve_and_queue(actor, deploy.id, [])
            else:
                request = self._approvals.request(
                    actor,
                    kind=plan.kind.value,
                    title=plan.title,
                    reason=plan.reason or "(no reason given)",
                    required=plan.required,
                    timeout_minutes=plan.timeout_minutes,
                    service=plan.service,
                    environment=plan.environment,
                    require_admin=plan.hotfix,
                    admin_self_approval=plan.hotfix,
                    details=_details(plan, deploy_id, freeze_of),
                    payload={"deploy_id": deploy_id},
                    link=plan.link,
                )
                support.update(d, deploy_id, approval_id=request.id)
        except Exception:
            # Nothing half-applied: no lock held and no live request for a deploy that could not be opened.
            self._takeover.release_quietly(actor, deploy, f"the request {deploy_id} could not be opened")
            self._close_quietly(deploy_id)
            raise
        return Reply(
            DeployRequested(deploy, plan, d.config.channels.deployments, freeze_of.ref if freeze_of else None),
            outcome="requested",
        )

    def _close_quietly(self, deploy_id: str) -> None:
        d = self._d
        try:
            support.transition(
                d,
                deploy_id,
                frozenset({DeployState.REQUESTED, DeployState.APPROVED}),
                DeployState.CANCELLED,
                finished_at=d.clock.now(),
                detail="the request could not be opened",
            )
        except Exception:  # the original failure is what the user must hear about
            support.log.exception("could not mark %s cancelled", deploy_id)

    def cancel(self, command: CancelDeploy, actor: Actor) -> Reply:
        """Withdraw a pending request (its requester), or reject it (an admin)."""
        deploy = support.get(self._d, command.deploy_id)
        if deploy is None:
            raise NotFound("deploy", command.deploy_id[:20])
        mine = deploy.requester == actor.user_id
        if not mine and not self._d.policy.has(actor.user_id, Role.ADMIN):
            raise NotPermitted(Role.ADMIN.value, "cancel", "only its requester or an admin may cancel a deploy")
        if deploy.state in {DeployState.APPROVED, DeployState.RUNNING}:
            raise Conflict(
                f"`{deploy.id}` is already {deploy.state.value}; a running deploy cannot be stopped from Slack. "
                "Roll back once it finishes."
            )
        if deploy.state is not DeployState.REQUESTED or deploy.approval_id is None:
            raise Conflict(f"`{deploy.id}` is already {deploy.state.value.replace('_', ' ')}; there is nothing to cancel.")
        return self._approvals.vote(actor, deploy.approval_id, Decision.REJECT)


def _details(plan: Plan, deploy_id: str, freeze_of: Incident | None) -> dict[str, str]:
    details = {"Service": plan.service, "Environment": plan.environment, "Version": plan.version}
    if plan.previous_version:
        details["Currently"] = plan.previous_version
    taken = f", taken over from the deploy freeze of {freeze_of.ref} until it ends" if freeze_of else ""
    details.update({"Lock": f"{plan.lock_name} (held by this request{taken})", "Deploy id": deploy_id})
    if plan.freezes:
        rule = (
            "⚠️ HOTFIX during a freeze: an admin's approval is required on top"
            if plan.hotfix
            else "rollbacks may run during freezes"
        )
        details["Freeze"] = "; ".join(f"{f.target}: {f.reason}" for f in plan.freezes) + f" ({rule})"
    return details
