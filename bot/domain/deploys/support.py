"""What deploys, rollbacks and their job share: reading and moving deploy rows, audit rows, events, announcements."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from bot.domain.deploys.deps import DeployDeps
from bot.domain.deploys.model import Deploy, DeployKind, DeployState
from bot.domain.shared.audit import entry, record_quietly
from bot.domain.shared.errors import OpsError
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Message, MessageRef, ServiceEvent

log = logging.getLogger("opsbot.deploys")


def get(d: DeployDeps, deploy_id: str) -> Deploy | None:
    with d.uow() as uow:
        return uow.deploys.get(deploy_id)


def earlier_good(d: DeployDeps, deploy: Deploy) -> Deploy | None:
    """The latest deploy or rollback of ``deploy``'s target that succeeded before it, of another version: what a
    Rollback after ``deploy`` would go back to (None: there is nothing to go back to, so no Rollback is offered)."""
    with d.uow() as uow:
        return uow.deploys.last_good(
            deploy.service, deploy.environment, before=deploy.started_at or deploy.requested_at, other_than=deploy.version
        )


def transition(d: DeployDeps, deploy_id: str, allowed: frozenset[DeployState], to: DeployState, **changes: Any) -> Deploy | None:
    """Move the deploy to ``to`` (with ``changes``) only if its state is in ``allowed``: the deploy after, or None."""
    with d.uow() as uow:
        moved = uow.deploys.transition(deploy_id, allowed, to, **changes)
        uow.commit()
    return moved


def update(d: DeployDeps, deploy_id: str, **changes: Any) -> None:
    with d.uow() as uow:
        uow.deploys.update(deploy_id, **changes)
        uow.commit()


def new_id(kind: DeployKind) -> str:
    """A short id people can type (`/ops cancel d-1a2b3c4d`)."""
    return ("r-" if kind is DeployKind.ROLLBACK else "d-") + secrets.token_hex(4)


def audit(
    d: DeployDeps, actor: Actor, action: str, deploy: Deploy, outcome: str = "ok", error: str | None = None, **params: Any
) -> None:
    """One audit row about ``deploy``; a lost audit log is logged, never raised (the step already happened)."""
    record_quietly(
        d.audit,
        entry(
            actor,
            action,
            outcome,
            target=f"{deploy.service}/{deploy.environment}",
            params={"deploy": deploy.id, "kind": deploy.kind.value, "version": deploy.version, **params},
            error=error,
            service=deploy.service,
            environment=deploy.environment,
        ),
    )


def announce(d: DeployDeps, message: Message) -> MessageRef | None:
    """Post to the deployments channel; a Slack outage must not stop a deploy that is under way."""
    try:
        return d.notifier.post(d.config.channels.deployments, message)
    except OpsError as exc:
        log.error("could not announce %s: %s", message.template, exc.message)
        return None


def publish(d: DeployDeps, deploy: Deploy, kind: str, summary: str) -> None:
    """Tell listeners (open incidents of the service) what happened; their failures are theirs."""
    event = ServiceEvent(deploy.service, deploy.environment, kind, summary, deploy.requester, d.clock.now())
    try:
        d.events.publish(event)
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
