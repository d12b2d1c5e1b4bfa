"""Running a flag change end to end: apply it or ask for approval, announce it, publish it, audit it.

Shared by the commands (bot.domain.flags.commands), the Undo button and the approval kinds below, so a
change reached through any of them is checked, recorded and announced the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.approvals import service as approvals
from bot.domain.approvals.service import ApprovalKind, ApprovalRequest, Decision
from bot.domain.shared.context import Call
from bot.domain.shared.errors import Conflict, OpsError
from bot.domain.flags.changes import (
    Decide,
    NeedsApproval,
    NoChange,
    apply_change,
    audit,
    change_params,
    ports,
    service_of,
    timeout_for,
)
from bot.domain.flags.messages import (
    ApprovalAsked,
    ApprovedChangeFailed,
    FlagChanged,
    FlagUnchanged,
    KillAnnouncement,
)
from bot.domain.flags.ports import FlagChange, FlagState
from bot.domain.shared.ports import MessageRef, Reply, ServiceEvent

log = logging.getLogger("opsbot.flags")
TITLES = {"on": "Turn on {flag} in {env}", "unkill": "Unkill {flag} in {env}", "rollout": "Roll out {flag} to {pct} in {env}"}


def perform(call: Call, *, name: str, env: str, action: str, decide: Decide, reason: str) -> Reply:
    """Apply one change as the caller; answer with old → new, or why nothing changed, or the approval asked."""
    try:
        change = apply_change(call, name=name, env=env, action=action, decide=decide, reason=reason, actor=call.actor.user_id)
    except NoChange as same:
        audit(call, action, "unchanged", flag=name, env=env, params={"state": same.state.as_dict(), "reason": reason})
        return Reply(FlagUnchanged(name, env, same.state, same.last, same.why, call.services.clock.now()), outcome="unchanged")
    except NeedsApproval as need:
        return ask_approval(call, name=name, env=env, action=action, need=need, reason=reason)
    except OpsError as exc:
        audit(call, action, exc.outcome, flag=name, env=env, params={"reason": reason}, error=exc.message)
        raise
    audit(call, action, "ok", flag=name, env=env, params=change_params(change))
    return Reply(changed(call, change), visibility="in_channel")


def changed(call: Call, change: FlagChange) -> FlagChanged:
    """Announce and publish what the change needs; the message for the people who made or approved it."""
    service = service_of(call.config, change.flag)
    if change.action == "kill":
        announced = announce_kill(call, change)
        if announced:
            return FlagChanged(change, service, announced_in=announced)
        return FlagChanged(change, service, note="⚠️ The kill is done, but the alert could not be posted in the alerts channel: tell people yourself.")
    if change.action == "unkill":
        close_kill_announcement(call, change)
        publish(call, change, "flag.unkilled", f"Flag {change.flag} unkilled in {change.environment}")
    if change.after.killed and change.action in ("on", "off", "rollout"):
        return FlagChanged(change, service, note="It is still killed: it serves nobody until someone runs /ops flag unkill.")
    return FlagChanged(change, service)


def announce_kill(call: Call, change: FlagChange) -> str | None:
    """Post the kill loudly in the alerts channel (with Undo) and tell listeners; the channel, or None if posting failed."""
    channel: str | None = call.config.channels.alerts
    try:
        ref = call.services.notifier.post(call.config.channels.alerts, KillAnnouncement(change, service_of(call.config, change.flag)))
        ports(call)[1].attach_message(change.id, ref.channel, ref.ts)
    except Exception:  # the kill is done; a lost announcement must not hide that
        log.exception("could not announce the kill of %s", change.flag)
        channel = None
    publish(call, change, "flag.killed", f"Flag {change.flag} killed in {change.environment}: {change.reason}")
    return channel


def close_kill_announcement(call: Call, unkill: FlagChange) -> None:
    """Mark the kill's alert as undone and drop its Undo button."""
    provider, history = ports(call)
    kill = next((c for c in history.recent(provider.kind, unkill.flag, limit=20)
                 if c.environment == unkill.environment and c.action == "kill"), None)
    if kill is None or not (kill.message_channel and kill.message_ts):
        return
    try:
        call.services.notifier.update(MessageRef(kill.message_channel, kill.message_ts),
                                      KillAnnouncement(kill, service_of(call.config, kill.flag), undone=unkill))
    except OpsError as exc:  # cosmetic: the unkill itself is done and announced to the caller
        log.warning("could not update the kill alert of %s: %s", unkill.flag, exc.message)


def publish(call: Call, change: FlagChange, kind: str, summary: str) -> None:
    """Tell the service's listeners (open incidents) when the flag belongs to a service."""
    service = service_of(call.config, change.flag)
    if service is None:
        return
    try:
        call.services.events.publish(ServiceEvent(service=service, environment=change.environment, kind=kind, summary=summary,
                                                  actor=change.actor, at=change.at))
    except Exception:  # listeners are best effort; the change is done and audited
        log.exception("could not publish %s for %s", kind, change.flag)


def ask_approval(call: Call, *, name: str, env: str, action: str, need: NeedsApproval, reason: str) -> Reply:
    """Open a shared approval request for a guarded change; nothing is written until it is approved."""
    config = call.config
    channel = config.channels.alerts if action == "unkill" else config.channels.deployments
    title = TITLES[action].format(flag=name, env=env, pct=need.after.percent)
    request = approvals.request_approval(
        call, kind="flag_unkill" if action == "unkill" else "flag_rollout", title=title,
        reason=reason or "no reason given", required=need.required, timeout_minutes=timeout_for(config, env),
        service=service_of(config, name), environment=env,
        details={"Flag": name, "Environment": env, "Change": f"{need.before.label} → {need.after.label}",
                 "Why approval": "; ".join(need.reasons)},
        payload={"flag": name, "environment": env, "action": action, "reason": reason,
                 "expected": need.before.as_dict(), "target": need.after.as_dict()},
        channel=channel,
    )
    audit(call, action, "pending_approval", flag=name, env=env,
          params={"request": request.id, "before": need.before.as_dict(), "after": need.after.as_dict(), "reason": reason})
    asked = ApprovalAsked(name, env, action, need.before, need.after, need.reasons, request.needed, request.channel or channel)
    return Reply(asked, outcome="pending_approval")


def on_approved(call: Call, request: ApprovalRequest) -> None:
    """The approvers agreed: apply the change as the requester, if the flag is still as they saw it."""
    p: dict[str, Any] = request.payload
    name, env, action = p["flag"], p["environment"], p["action"]
    expected, target = FlagState(**p["expected"]), FlagState(**p["target"])
    found = call.services.approvals.get(request.id)
    approvers = tuple(v.voter for v in (found[1] if found else []) if v.decision is Decision.APPROVE)
    channel = request.channel or call.config.channels.deployments

    def decide(before: FlagState, last: FlagChange | None) -> FlagState:
        if action == "unkill":
            if not before.killed:
                raise NoChange(before, last, "it is no longer killed")
            return before.with_(killed=False)
        if before != expected:
            raise Conflict(f"`{name}` in `{env}` changed since the request (then {expected.label}, now {before.label}); "
                           "nothing was changed. Ask again.")
        return target

    try:
        change = apply_change(call, name=name, env=env, action=action, decide=decide, reason=p.get("reason") or "",
                              actor=request.requester, approved_by=approvers)
    except NoChange as same:
        call.services.notifier.post(channel, FlagUnchanged(name, env, same.state, same.last, same.why, call.services.clock.now()))
        audit(call, action, "unchanged", flag=name, env=env, params={"request": request.id})
        return
    except OpsError as exc:
        call.services.notifier.post(channel, ApprovedChangeFailed(name, env, action, request.requester, exc.message))
        audit(call, action, exc.outcome, flag=name, env=env, params={"request": request.id}, error=exc.message)
        raise
    audit(call, action, "ok", flag=name, env=env, params={**change_params(change), "request": request.id})
    call.services.notifier.post(channel, changed(call, change))


def on_closed(call: Call, request: ApprovalRequest) -> None:
    """Rejected, expired or withdrawn: nothing was changed; the audit log says so."""
    p = request.payload
    audit(call, p["action"], request.state.value, flag=p["flag"], env=p["environment"],
          params={"request": request.id, "requester": request.requester})


APPROVAL_KINDS = [ApprovalKind("flag_unkill", on_approved, on_closed), ApprovalKind("flag_rollout", on_approved, on_closed)]
