"""Incidents as the domain sees them: their state, roles, timeline entries and the deploy locks they freeze."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.locks.ports import Lease


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class IncidentRole(StrEnum):
    COMMANDER = "commander"
    COMMS = "comms"
    SCRIBE = "scribe"


class Kind(StrEnum):
    """What a timeline entry records."""

    DECLARED = "declared"
    UPDATE = "update"
    ROLE = "role"
    ACK = "ack"
    FREEZE = "freeze"
    REMINDER = "reminder"
    SNOOZE = "snooze"
    ESCALATION = "escalation"
    NOTE = "note"
    SERVICE_EVENT = "service_event"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class FrozenLock:
    """A deploy lock an incident holds (``/ops incident freeze``), released when it is resolved.

    ``lent_to`` names the rollback that took the lock over (its lease here is then spent); the
    freeze takes the lock again when that rollback ends.
    """

    name: str
    token: str
    fence: int
    holder: str = ""  # who froze it (the lock's holder again when the freeze is taken back)
    lent_to: str | None = None

    @property
    def lease(self) -> Lease:
        return Lease(self.name, self.token, self.fence)


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    severity: str
    services: tuple[str, ...]
    status: Status
    impact: str
    declared_by: str
    declared_at: datetime
    commander: str
    eta: str = ""
    channel_id: str = ""
    channel_name: str = ""
    status_ts: str | None = None
    summary_channel: str | None = None
    summary_ts: str | None = None
    comms: str | None = None
    scribe: str | None = None
    participants: tuple[str, ...] = ()
    last_update_at: datetime | None = None
    next_update_at: datetime | None = None
    reminder_seq: int = 0
    reminded_seq: int = 0
    escalation_level: int = 0
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    postmortem: str | None = None
    frozen: tuple[FrozenLock, ...] = ()

    @property
    def ref(self) -> str:
        """How people name it: ``INC-12``."""
        return f"INC-{self.id}"

    @property
    def status_key(self) -> str:
        """The outbox key of its pinned status message in its channel."""
        return f"incident:{self.id}:status"

    @property
    def summary_key(self) -> str:
        """The outbox key of its summary in the incidents channel."""
        return f"incident:{self.id}:summary"

    @property
    def origin(self) -> str:
        """What recorded an effect, for operators (`opsbot outbox list`)."""
        return f"incident {self.ref}"

    @property
    def headline(self) -> str:
        """The runbook's "[Service] - [Brief Description]"."""
        return f"{', '.join(self.services)} - {self.title}" if self.services else self.title

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED

    def duration(self, now: datetime) -> timedelta:
        return (self.resolved_at or now) - self.declared_at

    def holder(self, role: IncidentRole) -> str | None:
        return {IncidentRole.COMMANDER: self.commander, IncidentRole.COMMS: self.comms, IncidentRole.SCRIBE: self.scribe}[role]

    def with_role(self, role: IncidentRole, user: str) -> Incident:
        if role is IncidentRole.COMMANDER:
            return replace(self, commander=user)
        return replace(self, comms=user) if role is IncidentRole.COMMS else replace(self, scribe=user)

    def with_participants(self, *users: str) -> Incident:
        added = tuple(u for u in dict.fromkeys(users) if u and u not in self.participants)
        return replace(self, participants=self.participants + added) if added else self


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an incident's timeline; ``key`` makes an entry idempotent (a reacted message, an event)."""

    incident_id: int
    at: datetime
    kind: Kind
    actor: str
    text: str
    link: str | None = None
    key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    public: str = ""  # what the public status page may show of this entry ("" : nothing)


@dataclass(frozen=True)
class ChannelRef:
    id: str
    name: str


@dataclass(frozen=True)
class ChatMessage:
    """A message someone wrote in a channel, as read back from Slack."""

    channel: str
    ts: str
    user: str
    text: str
