"""`/ops deploy` and `/ops cancel`: from a request to an approved deploy queued for the worker.

A request is checked (deploy_plan), takes the service/environment deploy lock at once, is recorded,
and asks for approvals through the shared mechanism (approvals.request_approval). Once approved,
the deploy is queued as the job ``deploys.run`` (bot/domain/execution.py) with a key, and the
row's compare-and-set from ``approved`` to ``running`` makes sure it runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.approvals import service as approvals

from bot.domain.locks import waiting as deploy_locks

from bot.domain.deploys import planning as deploy_plan

from bot.domain.deploys import support as deploy_support

from bot.domain.deploys import freeze_takeover
from bot.domain.approvals.service import ApprovalKind, ApprovalRequest, ApprovalState, Decision
from bot.domain.shared.commands import Args, Subcommand, expect
from bot.domain.shared.context import Call
from bot.domain.deploys.messages import DeployRequested, DryRun, Frozen, NotStarted
from bot.domain.deploys.planning import Plan
from bot.domain.deploys.ports import Deploy, DeployKind, DeployState
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, OpsError, UsageError
from bot.domain.incidents.model import Incident
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import Reply

USAGE = 'deploy <version> [service] [to <env>] [--reason "…"] [--hotfix] [--dry-run]'
CANCEL_USAGE = "cancel <deploy id>"
CLOSED = {ApprovalState.REJECTED: DeployState.REJECTED, ApprovalState.EXPIRED: DeployState.EXPIRED,
          ApprovalState.CANCELLED: DeployState.CANCELLED}


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


def run(command: StartDeploy, call: Call) -> Reply:
    service, spec, environment = deploy_plan.resolve(call, command.service, command.environment)
    version = deploy_plan.check_version(service, spec, command.version)
    plan = deploy_plan.build(call, kind=DeployKind.DEPLOY, service=service, spec=spec, environment=environment,
                             version=version, reason=command.reason, hotfix=command.hotfix)
    if command.dry_run:
        return dry_run(call, plan, command.hotfix)
    if plan.freezes and not plan.hotfix:
        return Reply(Frozen(service, environment, plan.freezes), outcome="frozen")
    return open_request(call, plan)


def dry_run(call: Call, plan: Plan, hotfix_asked: bool) -> Reply:
    """Who would approve, which lock, which freeze, what the provider would run; nothing changes."""
    approvers = list(call.config.roles.approver) + (list(call.config.roles.admin) if plan.hotfix else [])
    holder = call.services.locks.holder(plan.lock_name)
    return Reply(DryRun(plan, approvers, holder, hotfix_asked, call.services.clock.now()), outcome="dry_run")


def open_request(call: Call, plan: Plan) -> Reply:
    """Take the lock, record the request, ask for approvals (or queue it when none are needed)."""
    services, now = call.services, call.services.clock.now()
    store = deploy_support.store(call)
    deploy_id = deploy_support.new_id(plan.kind)
    ttl = plan.timeout_minutes * 60 + deploy_locks.PENDING_MARGIN_SECONDS if plan.needed else call.config.deploys.lock_ttl_seconds
    wanted = f"{'rollback to' if plan.kind is DeployKind.ROLLBACK else 'deploy of'} {plan.version}"
    lease, freeze_of = freeze_takeover.acquire(call, plan.kind, plan.lock_name, deploy_id, purpose=f"{wanted} ({deploy_id})",
                                               ttl_seconds=ttl)
    deploy = Deploy(
        id=deploy_id, kind=plan.kind, service=plan.service, environment=plan.environment, version=plan.version,
        requester=call.actor.user_id, reason=plan.reason, state=DeployState.REQUESTED, requested_at=now,
        previous_version=plan.previous_version, hotfix=plan.hotfix, lock_name=plan.lock_name,
        lock_token=lease.token if lease else None, lock_fence=lease.fence if lease else None, rollback_of=plan.rollback_of,
    )
    if lease is None:
        reply = deploy_locks.refusal(call, plan.lock_name, wanted)
        held = getattr(reply.message, "lock", None)
        deploy_support.audit(call, f"{plan.kind.value}.lock_refused", deploy, "conflict",
                             holder=getattr(held, "holder", None), holder_purpose=getattr(held, "purpose", None))
        return reply
    if freeze_of is not None:
        freeze_takeover.taken_over(call, deploy, freeze_of)
    try:
        for stale in store.abandon_older(plan.lock_name, lease.fence, now):
            deploy_support.audit(call, f"{stale.kind.value}.lock_lost", stale, "lock_lost", by_fence=lease.fence)
        store.create(deploy)
        deploy_support.audit(call, f"{plan.kind.value}.requested", deploy, hotfix=plan.hotfix, needed=plan.needed,
                             freezes=[f"{f.target}: {f.reason}" for f in plan.freezes])
        if plan.needed == 0:
            approve_and_queue(call, deploy.id, [])
        else:
            request = approvals.request_approval(
                call, kind=plan.kind.value, title=plan.title, reason=plan.reason or "(no reason given)",
                required=plan.required, timeout_minutes=plan.timeout_minutes, service=plan.service,
                environment=plan.environment, require_admin=plan.hotfix, admin_self_approval=plan.hotfix,
                details=_details(plan, deploy_id, freeze_of), payload={"deploy_id": deploy_id}, link=plan.link,
            )
            store.update(deploy_id, approval_id=request.id)
    except Exception:
        # Nothing half-applied: no lock held and no live request for a deploy that could not be opened.
        freeze_takeover.release_quietly(call, deploy, f"the request {deploy_id} could not be opened")
        _close_quietly(call, deploy_id)
        raise
    return Reply(DeployRequested(deploy, plan, call.config.channels.deployments, freeze_of.ref if freeze_of else None),
                 outcome="requested")


def _details(plan: Plan, deploy_id: str, freeze_of: Incident | None) -> dict[str, str]:
    details = {"Service": plan.service, "Environment": plan.environment, "Version": plan.version}
    if plan.previous_version:
        details["Currently"] = plan.previous_version
    taken = f", taken over from the deploy freeze of {freeze_of.ref} until it ends" if freeze_of else ""
    details.update({"Lock": f"{plan.lock_name} (held by this request{taken})", "Deploy id": deploy_id})
    if plan.freezes:
        rule = "⚠️ HOTFIX during a freeze: an admin's approval is required on top" if plan.hotfix else "rollbacks may run during freezes"
        details["Freeze"] = "; ".join(f"{f.target}: {f.reason}" for f in plan.freezes) + f" ({rule})"
    return details


def _close_quietly(call: Call, deploy_id: str) -> None:
    try:
        deploy_support.store(call).transition(deploy_id, frozenset({DeployState.REQUESTED, DeployState.APPROVED}),
                                              DeployState.CANCELLED, finished_at=call.services.clock.now(),
                                              detail="the request could not be opened")
    except Exception:  # the original failure is what the user must hear about
        deploy_support.log.exception("could not mark %s cancelled", deploy_id)


def approve_and_queue(call: Call, deploy_id: str, approvers: list[str]) -> Deploy | None:
    """``requested`` → ``approved``, renew the lock, queue the run. None when the deploy had moved on."""
    store, now = deploy_support.store(call), call.services.clock.now()
    deploy = store.transition(deploy_id, frozenset({DeployState.REQUESTED}), DeployState.APPROVED, approved_at=now, approvers=approvers)
    if deploy is None:
        return None
    try:
        renewed = deploy.lease is not None and call.services.locks.extend(deploy.lease, call.config.deploys.lock_ttl_seconds)
    except OpsError as exc:
        raise _not_started(call, deploy, DeployState.FAILED, f"its deploy lock could not be renewed ({exc.message})") from None
    if not renewed:
        _not_started(call, deploy, DeployState.LOCK_LOST, "its deploy lock was broken or ran out while it waited for approval")
        return None
    deploy_support.audit(call, f"{deploy.kind.value}.approved", deploy, approvers=approvers)
    try:
        call.services.jobs.submit("deploys.run", {"deploy_id": deploy_id}, key=f"deploy:{deploy_id}")
    except OpsError as exc:
        raise _not_started(call, deploy, DeployState.FAILED, f"it could not be queued for the worker ({exc.message})") from None
    return deploy


def _not_started(call: Call, deploy: Deploy, state: DeployState, why: str) -> OpsError:
    """An approved deploy that will not run: record why, free the lock, say so in the channel; the error to tell."""
    ended = deploy_support.store(call).transition(deploy.id, frozenset({DeployState.APPROVED}), state,
                                                  finished_at=call.services.clock.now(), detail=why)
    deploy_support.audit(call, f"{deploy.kind.value}.not_started", deploy, state.value, why)
    freeze_takeover.release_quietly(call, deploy, f"{deploy_support.what(deploy)} ({deploy.id}) did not start")
    deploy_support.announce(call, NotStarted(ended or deploy, why))
    return OpsError(f"`{deploy.id}` was approved but did not start: {why}. It is marked {state.value.replace('_', ' ')}; "
                    "request it again once that is fixed.")


def on_approved(call: Call, request: ApprovalRequest) -> None:
    deploy_id = str(request.payload.get("deploy_id", ""))
    found = call.services.approvals.get(request.id)
    votes = found[1] if found else []
    approvers = [v.voter + (" (self-approved, hotfix)" if v.self_approval else "") for v in votes if v.decision is Decision.APPROVE]
    if approve_and_queue(call, deploy_id, approvers) is None:
        deploy = deploy_support.store(call).get(deploy_id)
        if deploy is not None and deploy.state is not DeployState.LOCK_LOST:
            deploy_support.announce(call, NotStarted(deploy, f"it was already {deploy.state.value}"))


def on_closed(call: Call, request: ApprovalRequest) -> None:
    """Rejected, expired or withdrawn: record it and release the lock."""
    to = CLOSED.get(request.state)
    if to is None:
        return
    deploy_id = str(request.payload.get("deploy_id", ""))
    deploy = deploy_support.store(call).transition(deploy_id, frozenset({DeployState.REQUESTED}), to,
                                                   finished_at=call.services.clock.now())
    if deploy is None:
        return
    deploy_support.audit(call, f"{deploy.kind.value}.{to.value}", deploy, to.value)
    freeze_takeover.release(call, deploy, f"{deploy_support.what(deploy)} ({deploy.id}) was {to.value}")


def parse_cancel(args: Args) -> CancelDeploy:
    (deploy_id,) = expect(args, CANCEL_USAGE, required=1)
    return CancelDeploy(deploy_id.strip().lower())


def run_cancel(command: CancelDeploy, call: Call) -> Reply:
    """Withdraw a pending request (its requester), or reject it (an admin)."""
    deploy = deploy_support.store(call).get(command.deploy_id)
    if deploy is None:
        raise NotFound("deploy", command.deploy_id[:20])
    mine = deploy.requester == call.actor.user_id
    if not mine and not call.services.policy.has(call.actor.user_id, Role.ADMIN):
        raise NotPermitted(Role.ADMIN.value, "cancel", "only its requester or an admin may cancel a deploy")
    if deploy.state in {DeployState.APPROVED, DeployState.RUNNING}:
        raise Conflict(f"`{deploy.id}` is already {deploy.state.value}; a running deploy cannot be stopped from Slack. "
                       "Roll back once it finishes.")
    if deploy.state is not DeployState.REQUESTED or deploy.approval_id is None:
        raise Conflict(f"`{deploy.id}` is already {deploy.state.value.replace('_', ' ')}; there is nothing to cancel.")
    return approvals.vote(call, deploy.approval_id, Decision.REJECT)


APPROVAL_KINDS = [ApprovalKind("deploy", on_approved, on_closed)]
JOBS: list[Any] = []
COMMANDS: list[Subcommand] = [
    Subcommand(("deploy",), "Deploy a version: approvals, lock, provider, verification", USAGE, Role.DEPLOYER, parse, run,
               options=frozenset({"reason"}), flags=frozenset({"hotfix", "dry-run"}), mutates=True),
    Subcommand(("cancel",), "Withdraw a deploy or rollback that waits for approval", CANCEL_USAGE, Role.DEPLOYER,
               parse_cancel, run_cancel, mutates=True),
]
