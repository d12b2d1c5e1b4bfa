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
from bot.domain.deploys.ci import CiState, CiUnreadable, describe_failure
from bot.domain.deploys.ci_gate import CI_LABEL, CiWaits
from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.freeze_takeover import FreezeTakeover
from bot.domain.deploys.messages import (
    CancelRequested,
    CiFailed,
    DeployRequested,
    DeploySettled,
    DryRun,
    Frozen,
    NotStarted,
    NotVerified,
)
from bot.domain.deploys.model import Deploy, DeployKind, DeployState
from bot.domain.deploys.outcomes import DeployOutcomes
from bot.domain.deploys.planning import Plan, PromotionGate
from bot.domain.deploys.ports import TargetBusy
from bot.domain.incidents.model import Incident
from bot.domain.locks.waiting import PENDING_MARGIN_SECONDS
from bot.domain.shared.audit import entry, record_quietly
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import Conflict, NotFound, NotPermitted, UsageError
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Pending, Reply
from bot.domain.shared.text import word_for

USAGE = 'deploy <version> [service] [to <env>] [--reason "…"] [--hotfix]'
CANCEL_USAGE = "cancel <deploy id>"
SETTLE_USAGE = 'deploy settle <deploy id> succeeded|failed --reason "…"'


@dataclass(frozen=True)
class StartDeploy:
    version: str
    service: str | None
    environment: str | None
    reason: str
    hotfix: bool


@dataclass(frozen=True)
class CancelDeploy:
    deploy_id: str


@dataclass(frozen=True)
class SettleDeploy:
    deploy_id: str
    outcome: str  # "succeeded" | "failed"
    reason: str


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
        raise UsageError(f"Unexpected {word_for(len(words) - 2, 'argument')}: `{' '.join(words[2:])[:80]}`.", f"/ops {USAGE}")
    reason = args.options.get("reason", "").strip()
    hotfix = "hotfix" in args.flags
    if hotfix and not reason:
        raise UsageError('A hotfix needs a reason: add `--reason "…"`.', f"/ops {USAGE}")
    return StartDeploy(words[0], words[1] if len(words) > 1 else None, environment, reason, hotfix)


def parse_cancel(args: Args) -> CancelDeploy:
    (deploy_id,) = expect(args, CANCEL_USAGE, required=1)
    return CancelDeploy(deploy_id.strip().lower())


def parse_settle(args: Args) -> SettleDeploy:
    deploy_id, outcome = expect(args, SETTLE_USAGE, required=2)
    if outcome.lower() not in ("succeeded", "failed"):
        raise UsageError(f"Settle it as `succeeded` or `failed`, not `{outcome[:20]}`.", f"/ops {SETTLE_USAGE}")
    reason = args.options.get("reason", "").strip()
    if not reason:
        raise UsageError('Say how you know with `--reason "…"`: it is announced and audited.', f"/ops {SETTLE_USAGE}")
    return SettleDeploy(deploy_id.strip().lower(), outcome.lower(), reason)


class DeployRequests:
    """Opening deploy and rollback requests (lock, record, approvals) and withdrawing them."""

    def __init__(
        self,
        deps: DeployDeps,
        approvals: ApprovalService,
        outcomes: DeployOutcomes,
        takeover: FreezeTakeover,
        ci_waits: CiWaits,
    ) -> None:
        self._d = deps
        self._approvals = approvals
        self._outcomes = outcomes
        self._takeover = takeover
        self._ci_waits = ci_waits

    def deploy(self, command: StartDeploy, actor: Actor) -> Reply:
        plan = self._plan(command, actor)
        if plan.gate is not None and plan.gate_refused and not plan.hotfix:
            self._refused_by_gate(actor, plan, plan.gate)
            return Reply(NotVerified(plan.service, plan.environment, plan.gate), outcome="not_verified")
        refused = self._refused_by_ci(actor, plan)
        if refused is not None:
            return refused
        if plan.freezes and not plan.hotfix:
            return Reply(Frozen(plan.service, plan.environment, plan.freezes), outcome="frozen")
        return self.open(actor, plan)

    def _refused_by_gate(self, actor: Actor, plan: Plan, gate: PromotionGate) -> None:
        """The audit row of a promotion gate refusal: nothing was locked, recorded or posted."""
        last = gate.last
        params = {"version": plan.version, "requires_verified_in": gate.source, "last_there": last.id if last else None}
        if last is not None:
            params["last_state"] = last.state.value
        row = entry(
            actor,
            "deploy.refused",
            "not_verified",
            target=f"{plan.service}/{plan.environment}",
            params=params,
            error=gate.why,
            service=plan.service,
            environment=plan.environment,
        )
        record_quietly(self._d.audit, row)

    def _refused_by_ci(self, actor: Actor, plan: Plan) -> Reply | None:
        """The CI gate at request time: CI that could not be read (raised: an ephemeral message saying what to do) or
        that failed (a refusal naming the check) stops the request before anything is locked, recorded or posted.
        ``--hotfix`` does not pass it. Both are audited as ``deploy.refused``."""
        reading = plan.ci
        if reading is None:
            return None
        params = {"version": plan.version, "repo": reading.gate.repo, "ci": reading.line}
        where = {"target": f"{plan.service}/{plan.environment}", "service": plan.service, "environment": plan.environment}
        if reading.error is not None:
            message = (
                f"`{plan.service}`: the CI gate could not read {plan.version} in {reading.gate.repo}: {reading.error.message}"
            )
            record_quietly(
                self._d.audit, entry(actor, "deploy.refused", reading.error.outcome, params=params, error=message, **where)
            )
            raise CiUnreadable(reading.error.outcome, message)
        failed = reading.report.failed if reading.report is not None else None
        if failed is None:
            return None
        why = describe_failure(failed)
        record_quietly(self._d.audit, entry(actor, "deploy.refused", "ci_failed", params=params, error=why, **where))
        return Reply(CiFailed(plan.service, plan.environment, reading, failed, why), outcome="ci_failed")

    def preview(self, command: StartDeploy, actor: Actor) -> Reply:
        """``--dry-run``: who would approve, which lock, which freeze, what the provider would run; nothing changes."""
        return self.dry_run(self._plan(command, actor), command.hotfix)

    def _plan(self, command: StartDeploy, actor: Actor) -> Plan:
        d = self._d
        service, spec, environment = planning.resolve(d, command.service, command.environment)
        version = planning.check_version(service, spec, command.version)
        return planning.build(
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

    def dry_run(self, plan: Plan, hotfix_asked: bool) -> Reply:
        """Who would approve, which lock, which freeze, what the provider would run, for ``plan``; nothing changes."""
        d = self._d
        where = plan.environment
        approvers = d.policy.principals(Role.APPROVER, where) + (d.policy.principals(Role.ADMIN, where) if plan.hotfix else [])
        holder = d.locks.holder(plan.lock_name)
        return Reply(DryRun(plan, approvers, holder, hotfix_asked, d.clock.now()), outcome="dry_run")

    def open(self, actor: Actor, plan: Plan) -> Reply:
        """Take the lock, then in one unit of work: record the request and its approval request (or queue it when
        none is needed), with their Slack messages and jobs as effects. Nothing is half-applied: if that unit of
        work does not commit, the lock is released and nothing was recorded or posted."""
        d, now = self._d, self._d.clock.now()
        deploy_id = support.new_id(plan.kind)
        ttl = plan.timeout_minutes * 60 + PENDING_MARGIN_SECONDS if plan.needed else d.config.deploys.lock_ttl_seconds
        ci = plan.ci.report if plan.ci is not None else None
        waits_for_ci = ci is not None and ci.state is CiState.PENDING
        wanted = f"{'rollback to' if plan.kind is DeployKind.ROLLBACK else 'deploy of'} {plan.version}"
        if waits_for_ci and plan.ci is not None:  # the lock lasts while it may wait for CI (then the run's TTL)
            ttl = max(ttl, plan.ci.gate.ci_timeout_minutes * 60 + PENDING_MARGIN_SECONDS)
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
            ci_state=ci.state.value if ci is not None else None,
            ci_summary=(f"⏳ {ci.summary}" if waits_for_ci else ci.summary) if ci is not None else None,
            ci_checked_at=now if ci is not None else None,
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
        next_step: str | None = None
        try:
            with d.uow() as uow:
                stale = uow.deploys.abandon_older(plan.lock_name, lease.fence, now)
                uow.deploys.create(deploy)
                if waits_for_ci and plan.ci is not None:
                    self._ci_waits.start(uow, deploy, plan.ci.gate)
                if plan.needed == 0:
                    next_step = self._outcomes.queue(uow, actor, deploy.id, [])
                else:
                    request = self._approvals.open(
                        uow,
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
                        details=_details(plan, deploy_id, freeze_of, deploy.ci_summary),
                        payload={"deploy_id": deploy_id},
                        link=plan.link,
                        checklist=plan.checklist,
                    )
                    uow.deploys.update(deploy_id, approval_id=request.id)
                uow.commit()
        except Exception as exc:
            # Nothing was recorded: free the lock (or give it back to the freeze it came from).
            why = exc.message if isinstance(exc, TargetBusy) else f"the request {deploy_id} could not be opened"
            self._takeover.release_quietly(actor, deploy, why)
            if isinstance(exc, TargetBusy):
                support.audit(d, actor, f"{plan.kind.value}.refused", deploy, "conflict", exc.message)
            raise
        for lost in stale:
            support.audit(d, actor, f"{lost.kind.value}.lock_lost", lost, "lock_lost", by_fence=lease.fence)
        support.audit(
            d,
            actor,
            f"{plan.kind.value}.requested",
            deploy,
            hotfix=plan.hotfix,
            gate_bypassed=plan.gate.why if plan.gate is not None and plan.gate_bypassed else None,
            needed=plan.needed,
            freezes=[f"{f.target}: {f.reason}" for f in plan.freezes],
        )
        waiting = _waiting(uow.pending, next_step, d.config.channels.deployments)
        message = DeployRequested(deploy, plan, d.config.channels.deployments, freeze_of.ref if freeze_of else None, waiting)
        return Reply(message, outcome="requested")

    def cancel(self, command: CancelDeploy, actor: Actor) -> Reply:
        """Withdraw a pending request (its requester), reject it (an admin), or stop a queued or running one."""
        d = self._d
        deploy = support.get(d, command.deploy_id)
        if deploy is None:
            raise NotFound("deploy", command.deploy_id[:20])
        mine = deploy.requester == actor.user_id
        if not mine and not d.policy.has(actor.user_id, Role.ADMIN, environment=deploy.environment):
            raise NotPermitted(Role.ADMIN.value, "cancel", "only its requester or an admin may cancel a deploy")
        if deploy.state is DeployState.RUNNING:
            return self._stop_running(actor, deploy)
        if deploy.state is DeployState.APPROVED:
            return self._cancel_queued(actor, deploy)
        if deploy.state is not DeployState.REQUESTED or deploy.approval_id is None:
            raise Conflict(f"`{deploy.id}` is already {deploy.state.value.replace('_', ' ')}; there is nothing to cancel.")
        return self._approvals.vote(actor, deploy.approval_id, Decision.REJECT)

    def _stop_running(self, actor: Actor, deploy: Deploy) -> Reply:
        """Ask the run to stop its provider; its heartbeat sees the request within one beat (or the reconciler, if
        its worker is gone) and the outcome is announced."""
        with self._d.uow() as uow:
            uow.deploys.update(deploy.id, cancel_requested_by=actor.user_id)
            uow.commit()
        support.audit(self._d, actor, f"{deploy.kind.value}.cancel_requested", deploy, "ok")
        return Reply(CancelRequested(deploy), visibility="in_channel", outcome="cancel_requested")

    def _cancel_queued(self, actor: Actor, deploy: Deploy) -> Reply:
        """Approved but not started: it will not start (its job finds it cancelled); the lock is released."""
        d = self._d
        with d.uow() as uow:
            ended = uow.deploys.transition(
                deploy.id,
                frozenset({DeployState.APPROVED}),
                DeployState.CANCELLED,
                finished_at=d.clock.now(),
                detail=f"cancelled by <@{actor.user_id}> before it started",
                cancel_requested_by=actor.user_id,
            )
            if ended is None:
                raise Conflict(f"`{deploy.id}` just started; run `/ops cancel {deploy.id}` again to stop it.")
            uow.outbox.post(
                d.config.channels.deployments,
                NotStarted(ended, f"<@{actor.user_id}> cancelled it"),
                key=ended.key("not-started"),
                origin=ended.origin,
            )
            uow.commit()
        support.audit(d, actor, f"{deploy.kind.value}.cancelled", ended, "cancelled")
        self._takeover.release_quietly(actor, ended, f"{support.what(ended)} ({ended.id}) was cancelled")
        return Reply(NotStarted(ended, "you cancelled it"), outcome="cancelled")

    def settle(self, command: SettleDeploy, actor: Actor) -> Reply:
        """An admin settles an unknown outcome by hand: ``succeeded`` or ``failed``, with a reason; announced, audited."""
        d = self._d
        to = DeployState(command.outcome)
        known = support.get(d, command.deploy_id)
        if known is not None:
            d.policy.require(actor, Role.ADMIN, "deploy settle", environment=known.environment)
        with d.uow() as uow:
            settled = uow.deploys.transition(
                command.deploy_id, frozenset({DeployState.UNKNOWN}), to, detail=f"settled by <@{actor.user_id}>: {command.reason}"
            )
            if settled is None:
                found = uow.deploys.get(command.deploy_id)
                if found is None:
                    raise NotFound("deploy", command.deploy_id[:20])
                raise Conflict(
                    f"`{found.id}` is {found.state.value.replace('_', ' ')}, not unknown: only an unknown outcome is settled by hand."
                )
            message = DeploySettled(settled, actor.user_id, command.reason)
            uow.outbox.post(d.config.channels.deployments, message, key=settled.key("settled"), origin=settled.origin)
            uow.commit()
        support.audit(d, actor, f"{settled.kind.value}.settled", settled, to.value, reason=command.reason)
        self._takeover.release_quietly(actor, settled, f"{support.what(settled)} ({settled.id}) was settled")
        return Reply(message, visibility="in_channel", outcome="settled")


def _waiting(pending: list[Pending], next_step: str | None, channel: str) -> list[str]:
    """What the requester should know is still on its way."""
    notes = []
    refused = [p for p in pending if p.gave_up and p.kind == "slack.post"]
    if refused:
        notes.append(
            f"Slack refused the approval request's message in <#{channel}> ({refused[0].reason}): nobody can approve it, so "
            "opsbot cancels it and releases the lock within a minute. Fix that and ask again."
        )
    pending = [p for p in pending if not p.gave_up]
    if any(p.kind.startswith("slack.") for p in pending):
        notes.append(f"The approval request will appear in <#{channel}> as soon as Slack takes it; it is already open.")
    if next_step and any(p.kind.startswith("job.") for p in pending):
        waiting_for = next(p.waiting_for for p in pending if p.kind.startswith("job."))
        notes.append(f"{next_step} as soon as {waiting_for} is back; nothing needs to be done again.")
    return notes


def _details(plan: Plan, deploy_id: str, freeze_of: Incident | None, ci_line: str | None) -> dict[str, str]:
    details = {"Service": plan.service, "Environment": plan.environment, "Version": plan.version}
    if ci_line is not None:
        details[CI_LABEL] = ci_line
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
    if plan.gate is not None and plan.gate_bypassed:
        details["Promotion gate"] = (
            f"⚠️ BYPASSED by --hotfix: {plan.gate.why}. An admin's approval is required on top; this is audited."
        )
    return details
