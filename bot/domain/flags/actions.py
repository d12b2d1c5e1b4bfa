"""Running a flag change end to end: apply it or ask for approval, announce it, publish it, audit it.

Shared by the commands (``commands.py``), the Undo button and the approval outcomes below, so a
change reached through any of them is checked, recorded and announced the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.approvals.model import ApprovalRequest, Decision, Vote
from bot.domain.approvals.ports import Approved
from bot.domain.approvals.service import ApprovalService
from bot.domain.flags.changes import (
    Decide,
    NeedsApproval,
    NoChange,
    apply_change,
    audit,
    change_params,
    effective,
    service_of,
    timeout_for,
    unknown_flag,
)
from bot.domain.flags.deps import FlagDeps
from bot.domain.flags.messages import ApprovalAsked, ApprovedChangeFailed, FlagChanged, FlagUnchanged, KillAnnouncement
from bot.domain.flags.model import FlagChange, FlagState
from bot.domain.shared.errors import Conflict, OpsError
from bot.domain.shared.messages import DryRunReport, WouldHappen
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import MessageRef, Reply, ServiceEvent, UnitOfWork
from bot.domain.shared.text import plural

log = logging.getLogger("opsbot.flags")
TITLES = {"on": "Turn on {flag} in {env}", "unkill": "Unkill {flag} in {env}", "rollout": "Roll out {flag} to {pct} in {env}"}


class FlagAnnouncements:
    """What a recorded change tells people: the loud kill alert with Undo, its update on unkill, service events."""

    def __init__(self, deps: FlagDeps) -> None:
        self._d = deps

    def changed(self, change: FlagChange) -> FlagChanged:
        """Announce and publish what the change needs; the message for the people who made or approved it."""
        service = service_of(self._d.config, change.flag)
        if change.action == "kill":
            announced = self.announce_kill(change)
            if announced:
                return FlagChanged(change, service, announced_in=announced)
            return FlagChanged(
                change,
                service,
                note="⚠️ The kill is done, but the alert could not be posted in the alerts channel: tell people yourself.",
            )
        if change.action == "unkill":
            self.close_kill_announcement(change)
            self.publish(change, "flag.unkilled", f"Flag {change.flag} unkilled in {change.environment}")
        if change.after.killed and change.action in ("on", "off", "rollout"):
            return FlagChanged(change, service, note="It is still killed: it serves nobody until someone runs /ops flag unkill.")
        return FlagChanged(change, service)

    def announce_kill(self, change: FlagChange) -> str | None:
        """Post the kill loudly in the alerts channel (with Undo) and tell listeners; the channel, or None if posting failed."""
        d = self._d
        channel: str | None = d.config.channels.alerts
        try:
            ref = d.notifier.post(d.config.channels.alerts, KillAnnouncement(change, service_of(d.config, change.flag)))
            with d.uow() as uow:
                uow.flag_history.attach_message(change.id, ref.channel, ref.ts)
                uow.commit()
        except Exception:  # the kill is done; a lost announcement must not hide that
            log.exception("could not announce the kill of %s", change.flag)
            channel = None
        self.publish(change, "flag.killed", f"Flag {change.flag} killed in {change.environment}: {change.reason}")
        return channel

    def close_kill_announcement(self, unkill: FlagChange) -> None:
        """Mark the kill's alert as undone and drop its Undo button."""
        d = self._d
        with d.uow() as uow:
            recent = uow.flag_history.recent(d.provider.kind, unkill.flag, limit=20)
        kill = next((c for c in recent if c.environment == unkill.environment and c.action == "kill"), None)
        if kill is None or not (kill.message_channel and kill.message_ts):
            return
        try:
            d.notifier.update(
                MessageRef(kill.message_channel, kill.message_ts),
                KillAnnouncement(kill, service_of(d.config, kill.flag), undone=unkill),
            )
        except OpsError as exc:  # cosmetic: the unkill itself is done and announced to the caller
            log.warning("could not update the kill alert of %s: %s", unkill.flag, exc.message)

    def publish(self, change: FlagChange, kind: str, summary: str) -> None:
        """Tell the service's listeners (open incidents) when the flag belongs to a service."""
        service = service_of(self._d.config, change.flag)
        if service is None:
            return
        try:
            self._d.events.publish(
                ServiceEvent(
                    service=service, environment=change.environment, kind=kind, summary=summary, actor=change.actor, at=change.at
                )
            )
        except Exception:  # listeners are best effort; the change is done and audited
            log.exception("could not publish %s for %s", kind, change.flag)


class FlagActions:
    """One change as the caller: applied at once, or an approval request when it is guarded."""

    def __init__(self, deps: FlagDeps, announcements: FlagAnnouncements, approvals: ApprovalService) -> None:
        self._d = deps
        self._announcements = announcements
        self._approvals = approvals

    def perform(self, actor: Actor, *, name: str, env: str, action: str, decide: Decide, reason: str) -> Reply:
        """Apply one change as the caller; answer with old → new, or why nothing changed, or the approval asked."""
        d = self._d
        try:
            change = apply_change(d, name=name, env=env, action=action, decide=decide, reason=reason, actor=actor.user_id)
        except NoChange as same:
            audit(d, actor, action, "unchanged", flag=name, env=env, params={"state": same.state.as_dict(), "reason": reason})
            return Reply(FlagUnchanged(name, env, same.state, same.last, same.why, d.clock.now()), outcome="unchanged")
        except NeedsApproval as need:
            return self.ask_approval(actor, name=name, env=env, action=action, need=need, reason=reason)
        except OpsError as exc:
            audit(d, actor, action, exc.outcome, flag=name, env=env, params={"reason": reason}, error=exc.message)
            raise
        audit(d, actor, action, "ok", flag=name, env=env, params=change_params(change))
        return Reply(self._announcements.changed(change), visibility="in_channel")

    def preview(self, actor: Actor, *, name: str, env: str, action: str, decide: Decide, reason: str) -> Reply:
        """What ``perform`` would do now: the state before and after, applied at once or the approval it would ask for,
        and what would be announced. Reads the provider and the flag history; writes nothing."""
        d = self._d
        config = d.config
        provider = d.provider
        raw = provider.state(name, env)
        if raw is None:
            raise unknown_flag(provider, name, env)
        with d.uow() as uow:
            last = uow.flag_history.latest(provider.kind, [name]).get((name, env))
        before = effective(raw, last, provider.kill_switch)
        title = f"flag {action} {name} in {env}"
        steps = [WouldHappen("Now", f"{before.label} in {provider.kind}")]
        try:
            after = decide(before, last)
        except NoChange as same:
            steps.append(WouldHappen("Change", f"none: {same.why}"))
            return Reply(DryRunReport(title, steps, changes=False))
        except NeedsApproval as need:
            channel = config.channels.alerts if action == "unkill" else config.channels.deployments
            steps += [
                WouldHappen("After approval", need.after.label),
                WouldHappen("Approval", f"{plural(need.required, 'distinct approver')}, never you: {'; '.join(need.reasons)}"),
                WouldHappen("Who may approve", "", tuple(d.policy.principals(Role.APPROVER, env))),
                WouldHappen("Request", f"posted in <#{channel}> with Approve / Reject; the flag stays as it is until then"),
            ]
            return Reply(DryRunReport(title, steps))
        steps.append(WouldHappen("After", f"{after.label}, at once (no approval needed)"))
        service = service_of(config, name)
        if action == "kill":
            steps.append(WouldHappen("Announced", f"loudly in <#{config.channels.alerts}>, with an Undo button"))
        if service is not None and action in ("kill", "unkill"):
            steps.append(WouldHappen("Incidents", f"told to the open incidents of {service}"))
        if reason:
            steps.append(WouldHappen("Reason", reason))
        return Reply(DryRunReport(title, steps))

    def ask_approval(self, actor: Actor, *, name: str, env: str, action: str, need: NeedsApproval, reason: str) -> Reply:
        """Open a shared approval request for a guarded change; nothing is written until it is approved."""
        config = self._d.config
        channel = config.channels.alerts if action == "unkill" else config.channels.deployments
        title = TITLES[action].format(flag=name, env=env, pct=need.after.percent)
        request = self._approvals.request(
            actor,
            kind="flag_unkill" if action == "unkill" else "flag_rollout",
            title=title,
            reason=reason or "no reason given",
            required=need.required,
            timeout_minutes=timeout_for(config, env),
            service=service_of(config, name),
            environment=env,
            details={
                "Flag": name,
                "Environment": env,
                "Change": f"{need.before.label} → {need.after.label}",
                "Why approval": "; ".join(need.reasons),
            },
            payload={
                "flag": name,
                "environment": env,
                "action": action,
                "reason": reason,
                "expected": need.before.as_dict(),
                "target": need.after.as_dict(),
            },
            channel=channel,
        )
        audit(
            self._d,
            actor,
            action,
            "pending_approval",
            flag=name,
            env=env,
            params={"request": request.id, "before": need.before.as_dict(), "after": need.after.as_dict(), "reason": reason},
        )
        asked = ApprovalAsked(
            name, env, action, need.before, need.after, need.reasons, request.needed, request.channel or channel
        )
        return Reply(asked, outcome="pending_approval")


class FlagOutcomes:
    """The ``ApprovalOutcome`` of guarded flag changes (``flag_unkill``, ``flag_rollout``)."""

    def __init__(self, deps: FlagDeps, announcements: FlagAnnouncements) -> None:
        self._d = deps
        self.announcements = announcements

    def approved(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> Approved:
        """The approvers agreed: once the decision is committed, apply the change as the requester, if the flag is still
        as they saw it (the provider's write and the flag history's lock are their own transaction)."""
        return Approved(then=lambda: self.apply_approved(actor, request, votes))

    def apply_approved(self, actor: Actor, request: ApprovalRequest, votes: list[Vote]) -> None:
        """Apply an approved change; a failure is posted where the request was, and audited."""
        d = self._d
        p: dict[str, Any] = request.payload
        name, env, action = p["flag"], p["environment"], p["action"]
        expected, target = FlagState(**p["expected"]), FlagState(**p["target"])
        approvers = tuple(v.voter for v in votes if v.decision is Decision.APPROVE)
        channel = request.channel or d.config.channels.deployments

        def decide(before: FlagState, last: FlagChange | None) -> FlagState:
            if action == "unkill":
                if not before.killed:
                    raise NoChange(before, last, "it is no longer killed")
                return before.with_(killed=False)
            if before != expected:
                raise Conflict(
                    f"`{name}` in `{env}` changed since the request (then {expected.label}, now {before.label}); "
                    "nothing was changed. Ask again."
                )
            return target

        try:
            change = apply_change(
                d,
                name=name,
                env=env,
                action=action,
                decide=decide,
                reason=p.get("reason") or "",
                actor=request.requester,
                approved_by=approvers,
            )
        except NoChange as same:
            d.notifier.post(channel, FlagUnchanged(name, env, same.state, same.last, same.why, d.clock.now()))
            audit(d, actor, action, "unchanged", flag=name, env=env, params={"request": request.id})
            return
        except OpsError as exc:
            d.notifier.post(channel, ApprovedChangeFailed(name, env, action, request.requester, exc.message))
            audit(d, actor, action, exc.outcome, flag=name, env=env, params={"request": request.id}, error=exc.message)
            raise
        audit(d, actor, action, "ok", flag=name, env=env, params={**change_params(change), "request": request.id})
        d.notifier.post(channel, self.announcements.changed(change))

    def closed(self, uow: UnitOfWork, actor: Actor, request: ApprovalRequest) -> None:
        """Rejected, expired or withdrawn: nothing was changed; the audit log says so."""
        uow.after_commit(lambda: self._audit_closed(actor, request))

    def _audit_closed(self, actor: Actor, request: ApprovalRequest) -> None:
        p = request.payload
        audit(
            self._d,
            actor,
            p["action"],
            request.state.value,
            flag=p["flag"],
            env=p["environment"],
            params={"request": request.id, "requester": request.requester},
        )
