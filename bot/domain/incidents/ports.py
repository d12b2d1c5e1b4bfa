"""The incidents family's ports: where incidents and timelines are kept, and what incidents ask of Slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.incidents.model import ChannelRef, ChatMessage, Incident, TimelineEntry
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import Message, UnitOfWork


class NameTaken(OpsError):
    """Slack already has a channel with that name."""


class IncidentRepository(Protocol):
    """Incidents and their timelines, inside one unit of work."""

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

    def resolved_since(self, since: datetime) -> list[Incident]:
        """Incidents resolved at or after ``since``, latest resolved first."""
        ...

    def get_for_update(self, incident_id: int) -> Incident | None:
        """The incident, its row locked until the unit of work ends: changes to one incident take turns."""
        ...

    def save(self, incident: Incident) -> None:
        """Store every field of ``incident`` (its id names the row)."""
        ...

    def append(self, entry: TimelineEntry) -> bool:
        """Add ``entry``; False when an entry with the same key is already there."""
        ...

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Every entry, oldest first."""
        ...


class IncidentsUnitOfWork(UnitOfWork, Protocol):
    @property
    def incidents(self) -> IncidentRepository: ...


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


@dataclass(frozen=True)
class OnCallShift:
    """One person on call now: their name and e-mail as PagerDuty has them, the escalation level (1 = paged first),
    the escalation policy, and when the shift ends (None: no end)."""

    name: str
    email: str
    level: int
    policy: str
    until: datetime | None


class OnCall(Protocol):
    """Who is on call (PagerDuty's REST API ``oncalls``)."""

    def now(self, policy_ids: list[str]) -> list[OnCallShift]:
        """Shifts on call now for these escalation policies (all when empty). Raises OpsError or Refused."""
        ...
