"""Anchoring the audit chain outside the database: its head (row number and hash) posted to a Slack channel.

A hash chain in the database proves rows were not altered in place, but someone who can write to the
database can delete the newest rows and move the stored head back: the shorter chain verifies. A head
published where the database's writers cannot reach it (a Slack channel, `channels.audit`) fixes a point the
chain must still reach: `opsbot audit verify --anchor <row>:<hash>` reports a chain cut or rewritten below it.

The reconciler posts one every `audit.anchor_every_minutes` (60) on exactly one worker; `opsbot audit anchor`
posts one now. Each anchor is an audit row (`audit.anchor`) naming the head it published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bot.config import OpsConfig
from bot.domain.shared.family import Family
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import AuditEntry, AuditLog, AuditQuery, Clock, UnitOfWork

ANCHOR_ACTION = "audit.anchor"


@dataclass(frozen=True)
class AnchorDeps:
    """What anchoring needs, built once by the wiring."""

    config: OpsConfig
    clock: Clock
    audit: AuditLog
    uow: Callable[[], UnitOfWork]


@dataclass(frozen=True)
class AuditAnchor:
    """The message: the chain's head at ``at``: row ``seq`` (1-based) with SHA-256 ``hash`` (64 hex characters)."""

    template: ClassVar[str] = "audit/anchor"
    seq: int
    hash: str
    at: datetime


class AuditAnchors:
    """Publishes the audit chain's head to `channels.audit`."""

    def __init__(self, deps: AnchorDeps) -> None:
        self._d = deps

    def family(self) -> Family:
        return Family("audit-anchors", reconcile=[self.due])

    def publish(self, actor: Actor) -> AuditAnchor | None:
        """Post the current head to `channels.audit` (through the outbox, keyed by row: the same head is one message)
        and audit it; None when no audit channel is configured. Raises Unavailable when the database is gone."""
        d = self._d
        channel = d.config.channels.audit
        if channel is None:
            return None
        seq, head_hash = d.audit.head()
        anchor = AuditAnchor(seq, head_hash, d.clock.now())
        with d.uow() as uow:
            uow.outbox.post(channel, anchor, key=f"audit-anchor:{seq}", origin=f"audit anchor at row {seq}")
            uow.commit()
        d.audit.record(
            AuditEntry(
                actor=actor.user_id,
                action=ANCHOR_ACTION,
                outcome="ok",
                target=f"row {seq}",
                params={"seq": seq, "hash": head_hash, "channel": channel},
                source=actor.source,
            )
        )
        return anchor

    def due(self, actor: Actor) -> list[str]:
        """Reconciler step: publish the head when the last anchor is older than `audit.anchor_every_minutes`."""
        d = self._d
        if d.config.channels.audit is None:
            return []
        last = d.audit.query(AuditQuery(action_prefix=ANCHOR_ACTION, limit=1))
        every = timedelta(minutes=d.config.audit.anchor_every_minutes)
        if last and d.clock.now() - last[0].at < every:
            return []
        anchor = self.publish(actor)
        return [] if anchor is None else [f"published the audit chain's head (row {anchor.seq}) to the audit channel"]
