"""Audit rows written by the families themselves (the dispatcher writes one per command, click and job)."""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.shared.errors import Unavailable
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import AuditEntry, AuditLog

log = logging.getLogger("opsbot.audit")


def entry(
    actor: Actor,
    action: str,
    outcome: str = "ok",
    *,
    target: str = "",
    params: dict[str, Any] | None = None,
    error: str | None = None,
    service: str | None = None,
    environment: str | None = None,
) -> AuditEntry:
    """An audit entry for something ``actor`` did, carrying where and how they asked."""
    return AuditEntry(
        actor=actor.user_id,
        action=action,
        outcome=outcome,
        target=target,
        params=params or {},
        error=error,
        channel=actor.channel_id,
        request_id=actor.request_id,
        source=actor.source,
        service=service,
        environment=environment,
    )


def record_quietly(audit: AuditLog, row: AuditEntry) -> None:
    """Record a step that already happened; a lost audit log is logged with the entry, never raised."""
    try:
        audit.record(row)
    except Unavailable as exc:
        log.error("audit log unavailable (%s); entry: %s", exc.detail or exc.what, row)
