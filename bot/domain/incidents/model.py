"""Incidents as the domain sees them, and the two ports they need: a store and Slack's conversations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import Lease, Message


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

    def with_role(self, role: IncidentRole, user: str) -> "Incident":
        if role is IncidentRole.COMMANDER:
            return replace(self, commander=user)
        return replace(self, comms=user) if role is IncidentRole.COMMS else replace(self, scribe=user)

    def with_participants(self, *users: str) -> "Incident":
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


class NameTaken(OpsError):
    """Slack already has a channel with that name."""


class IncidentStore(Protocol):
    def create(self, incident: Incident) -> Incident:
        """Store a new incident; returns it with its id."""
        ...

    def discard(self, incident_id: int) -> None:
        """Forget an incident whose declaration failed half-way (nothing else refers to it yet)."""
        ...

    def get(self, incident_id: int) -> Incident | None: ...

    def by_channel(self, channel_id: str) -> Incident | None: ...

    def open_incidents(self) -> list[Incident]:
        """Open incidents, oldest first."""
        ...

    def change(self, incident_id: int, change: Callable[[Incident], Incident]) -> tuple[Incident, Incident]:
        """Under a lock on the incident's row: apply ``change``; returns (before, after)."""
        ...

    def append(self, entry: TimelineEntry) -> bool:
        """Add ``entry``; False when an entry with the same key is already there."""
        ...

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Every entry, oldest first."""
        ...


class Conversations(Protocol):
    """What incidents ask of Slack beyond posting: channels, members, pins, reading messages, modals."""

    def create_channel(self, name: str) -> ChannelRef:
        """A new public channel; NameTaken when the name is in use."""
        ...

    def invite(self, channel: str, users: list[str]) -> dict[str, str]:
        """Invite ``users``; returns the ones Slack refused, with its reason."""
        ...

    def members(self, channel: str) -> frozenset[str]: ...

    def pin(self, channel: str, ts: str) -> None: ...

    def unpin(self, channel: str, ts: str) -> None: ...

    def message(self, channel: str, ts: str) -> ChatMessage | None:
        """The message at ``ts`` (in a thread or not), or None when Slack has no such message."""
        ...

    def permalink(self, channel: str, ts: str) -> str | None: ...

    def open_form(self, trigger_id: str, form: Message) -> None:
        """Open ``form`` as a modal for whoever's action produced ``trigger_id``."""
        ...

    def tell(self, channel: str, user: str, message: Message) -> None:
        """An ephemeral message for ``user`` in ``channel`` (a DM when that is impossible)."""
        ...
