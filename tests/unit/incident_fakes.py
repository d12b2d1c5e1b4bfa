"""In-memory fakes of the ports incidents use, for domain tests without Slack, Redis or a database."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.domain.incidents.model import ChannelRef, ChatMessage, Incident, TimelineEntry
from bot.domain.incidents.ports import NameTaken
from bot.domain.incidents.service import Incidents
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import Message, MessageRef
from tests.fakes import FakeDatabase, FakeLocks, World
from tests.fakes import fake_world as families_on_fakes
from tests.support import FrozenClock, make_config


class FakeIncidentRepository:
    def __init__(self) -> None:
        self.incidents: dict[int, Incident] = {}
        self.entries: list[TimelineEntry] = []
        self._lock = threading.Lock()

    def create(self, incident: Incident) -> Incident:
        with self._lock:
            created = replace(incident, id=len(self.incidents) + 1)
            self.incidents[created.id] = created
            return created

    def discard(self, incident_id: int) -> None:
        self.incidents.pop(incident_id, None)
        self.entries = [e for e in self.entries if e.incident_id != incident_id]

    def get(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)

    def by_channel(self, channel_id: str) -> Incident | None:
        return next((i for i in self.incidents.values() if i.channel_id == channel_id), None)

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.is_open]

    def resolved_since(self, since: datetime) -> list[Incident]:
        found = [i for i in self.incidents.values() if i.resolved_at is not None and i.resolved_at >= since]
        return sorted(found, key=lambda i: (i.resolved_at, i.id), reverse=True)

    def get_for_update(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)

    def save(self, incident: Incident) -> None:
        self.incidents[incident.id] = incident

    def append(self, entry: TimelineEntry) -> bool:
        if entry.key and any(e.incident_id == entry.incident_id and e.key == entry.key for e in self.entries):
            return False
        self.entries.append(entry)
        return True

    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        return sorted((e for e in self.entries if e.incident_id == incident_id), key=lambda e: e.at)


@dataclass
class FakeConversations:
    taken: set[str] = field(default_factory=set)
    channels: dict[str, ChannelRef] = field(default_factory=dict)
    invited: dict[str, list[str]] = field(default_factory=dict)
    pins: list[tuple[str, str]] = field(default_factory=list)
    forms: list[Message] = field(default_factory=list)
    fail_create: OpsError | None = None

    def create_channel(self, name: str) -> ChannelRef:
        if self.fail_create:
            raise self.fail_create
        if name in self.taken:
            raise NameTaken(name)
        self.taken.add(name)
        ref = ChannelRef(f"C{len(self.channels) + 1:04d}", name)
        self.channels[ref.id] = ref
        return ref

    def invite(self, channel: str, users: list[str]) -> dict[str, str]:
        self.invited.setdefault(channel, []).extend(users)
        return {}

    def members(self, channel: str) -> frozenset[str]:
        return frozenset(self.invited.get(channel, []))

    def pin(self, channel: str, ts: str) -> None:
        self.pins.append((channel, ts))

    def unpin(self, channel: str, ts: str) -> None:
        self.pins.remove((channel, ts))

    def message(self, channel: str, ts: str) -> ChatMessage | None:
        return None

    def permalink(self, channel: str, ts: str) -> str | None:
        return None

    def open_form(self, trigger_id: str, form: Message) -> None:
        self.forms.append(form)

    def tell(self, channel: str, user: str, message: Message) -> None:
        pass


@dataclass
class FakeNotifier:
    posted: list[tuple[str, Message]] = field(default_factory=list)
    updated: list[tuple[MessageRef, Message]] = field(default_factory=list)

    def post(self, channel: str, message: Message) -> MessageRef:
        self.posted.append((channel, message))
        return MessageRef(channel, f"{len(self.posted)}.000")

    def update(self, ref: MessageRef, message: Message) -> None:
        self.updated.append((ref, message))

    def dm(self, user: str, message: Message) -> MessageRef:
        return self.post(user, message)


@dataclass
class FakeJobs:
    scheduled: dict[str, tuple[datetime, str, dict[str, Any]]] = field(default_factory=dict)

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        raise AssertionError("incidents only schedule")

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        assert key is not None
        self.scheduled.setdefault(key, (at, name, payload))

    def cancel(self, key: str) -> None:
        self.scheduled.pop(key, None)


class FakeGroups:
    def members(self, group_id: str, max_age_seconds: float | None = None) -> frozenset[str]:
        return frozenset({"S0SRE": {"U0APPROVER1", "U0APPROVER2"}}.get(group_id, set()))

    def forget(self, group_id: str) -> None:
        pass


def incident_world(**config_changes: Any) -> tuple[World, Incidents, FakeIncidentRepository]:
    """The incidents family on fakes: (the world, the family, its repository); locks are real fakes, Slack is faked."""
    db = FakeDatabase()
    repository = FakeIncidentRepository()
    db.repositories["incidents"] = repository
    clock = FrozenClock()
    world = families_on_fakes(
        make_config(**config_changes),
        clock,
        db=db,
        locks=FakeLocks(clock),
        groups=FakeGroups(),
        notifier=FakeNotifier(),
        jobs=FakeJobs(),
        conversations=FakeConversations(),
    )
    return world, world.families.incidents, repository
