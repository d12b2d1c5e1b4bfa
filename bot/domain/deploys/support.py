"""What deploys, rollbacks and their job share: the store, audit rows, service events, announcements."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from bot.domain.shared.context import Call
from bot.domain.deploys.ports import Deploy, DeployKind, DeployProviders, DeployStore
from bot.domain.shared.errors import OpsError, Unavailable
from bot.domain.shared.ports import AuditEntry, Message, MessageRef, ServiceEvent

log = logging.getLogger("opsbot.deploys")


def store(call: Call) -> DeployStore:
    if call.services.deploys is None:
        raise OpsError("Deploys are not set up on this bot (no deploy store is wired).")
    return call.services.deploys


def providers(call: Call) -> DeployProviders:
    if call.services.deploy_providers is None:
        raise OpsError("Deploys are not set up on this bot (no deploy providers are wired).")
    return call.services.deploy_providers


def new_id(kind: DeployKind) -> str:
    """A short id people can type (`/ops cancel d-1a2b3c4d`)."""
    return ("r-" if kind is DeployKind.ROLLBACK else "d-") + secrets.token_hex(4)


def audit(call: Call, action: str, deploy: Deploy, outcome: str = "ok", error: str | None = None, **params: Any) -> None:
    """One audit row about ``deploy``; a lost audit log is logged, never raised (the step already happened)."""
    actor = call.actor
    entry = AuditEntry(
        actor=actor.user_id, action=action, outcome=outcome, target=f"{deploy.service}/{deploy.environment}",
        params={"deploy": deploy.id, "kind": deploy.kind.value, "version": deploy.version, **params}, error=error,
        channel=actor.channel_id, request_id=actor.request_id, source=actor.source,
        service=deploy.service, environment=deploy.environment,
    )
    try:
        call.services.audit.record(entry)
    except Unavailable as exc:
        log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, entry)


def announce(call: Call, message: Message) -> MessageRef | None:
    """Post to the deployments channel; a Slack outage must not stop a deploy that is under way."""
    try:
        return call.services.notifier.post(call.config.channels.deployments, message)
    except OpsError as exc:
        log.error("could not announce %s: %s", message.template, exc.message)
        return None


def publish(call: Call, deploy: Deploy, kind: str, summary: str) -> None:
    """Tell listeners (open incidents of the service) what happened; their failures are theirs."""
    event = ServiceEvent(deploy.service, deploy.environment, kind, summary, deploy.requester, call.services.clock.now())
    try:
        call.services.events.publish(event)
    except Exception:  # a listener's bug must not fail a deploy
        log.exception("service event listener failed for %s", kind)


def event_summary(deploy: Deploy, outcome: str) -> str:
    """``deploy of api v1.2.3 to production failed: …``: the plain-text summary of a service event."""
    if deploy.is_rollback:
        return f"rollback of {deploy.service} to {deploy.version} in {deploy.environment} {outcome}"
    return f"deploy of {deploy.service} {deploy.version} to {deploy.environment} {outcome}"


def what(deploy: Deploy) -> str:
    """``deploy of v1.2.3`` / ``rollback to v1.2.2``: the lock's purpose and plain-text summaries."""
    return f"{'rollback to' if deploy.is_rollback else 'deploy of'} {deploy.version}"
