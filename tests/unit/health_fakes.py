"""In-memory fakes of the ports the health family uses, for domain tests without Redis, SQL or HTTP."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import OpsConfig
from bot.domain.context import Call, Services
from bot.domain.errors import Unavailable
from bot.domain.policy import Actor
from bot.domain.ports import AuditEntry, CheckOutcome, HealthReport, Lease, Message, MessageRef
from tests.support import FrozenClock


class FakeProbe:
    """Answers with whatever ``status`` says for a (service, environment) right now."""

    def __init__(self) -> None:
        self.status: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str]] = []

    def check(self, service: str, environment: str) -> HealthReport:
        self.calls.append((service, environment))
        status = self.status.get((service, environment), "healthy")
        reason = {"failed": "timeout after 2000 ms", "degraded": "slow: 800 ms (warning at 500 ms)"}.get(status)
        check = CheckOutcome("/health/db", f"https://{service}.example.com/health/db", status, 800.0 if status != "failed" else 2000.0, reason)  # type: ignore[arg-type]
        return HealthReport(service, environment, status, [check], version="1.2.3")  # type: ignore[arg-type]


class FakeWatchStore:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.holders: dict[str, str] = {}
        self.silences: dict[str, tuple[datetime, str]] = {}
        self._fences = itertools.count(1)

    def lease(self, watch: str, ttl_seconds: float) -> Lease | None:
        if watch in self.holders:
            return None
        token = secrets.token_hex(4)
        self.holders[watch] = token
        return Lease(watch, token, next(self._fences))

    def release(self, lease: Lease) -> None:
        if self.holders.get(lease.name) == lease.token:
            del self.holders[lease.name]

    def load(self, watch: str) -> dict[str, Any] | None:
        return self.states.get(watch)

    def save(self, lease: Lease, data: dict[str, Any]) -> bool:
        if self.holders.get(lease.name) != lease.token:
            return False
        self.states[lease.name] = data
        return True

    def silence(self, watch: str, until: datetime, by: str) -> None:
        self.silences[watch] = (until, by)

    def silence_of(self, watch: str) -> tuple[datetime, str] | None:
        return self.silences.get(watch)


class FakeNotifier:
    def __init__(self) -> None:
        self.posts: list[tuple[str, Message]] = []
        self.down = False

    def post(self, channel: str, message: Message) -> MessageRef:
        if self.down:
            raise Unavailable("Slack", "post a message: service_unavailable")
        self.posts.append((channel, message))
        return MessageRef(channel, str(len(self.posts)))

    def update(self, ref: MessageRef, message: Message) -> None: ...

    def dm(self, user: str, message: Message) -> MessageRef:
        return self.post(user, message)


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> Any:
        self.entries.append(entry)

    def actions(self) -> list[str]:
        return [e.action for e in self.entries]


class FakeState:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, kind: str, data: dict[str, Any], ttl_seconds: int) -> str:
        key = secrets.token_urlsafe(8)
        self.data[(kind, key)] = data
        return key

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.data.get((kind, key))


class FakeJobs:
    def __init__(self) -> None:
        self.scheduled: list[tuple[datetime, str, dict[str, Any], str | None]] = []

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None: ...

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        self.scheduled.append((at, name, payload, key))

    def cancel(self, key: str) -> None: ...


class FakeGroups:
    def members(self, group_id: str) -> frozenset[str]:
        return frozenset({"U0APPROVER1", "U0APPROVER2"}) if group_id == "S0SRE" else frozenset()


@dataclass
class World:
    """Domain services on fakes, with each fake at hand for assertions."""

    services: Services
    clock: FrozenClock
    probe: FakeProbe
    notifier: FakeNotifier
    audit: FakeAudit
    jobs: FakeJobs
    store: FakeWatchStore

    def call(self, user: str = "opsbot") -> Call:
        return Call(Actor(user, source="job" if user == "opsbot" else "slack"), self.services)


def fake_world(config: OpsConfig, clock: FrozenClock | None = None) -> World:
    clock = clock or FrozenClock()
    probe, notifier, audit, jobs, store = FakeProbe(), FakeNotifier(), FakeAudit(), FakeJobs(), FakeWatchStore()
    services = Services(
        config=config, clock=clock, locks=None, audit=audit, groups=FakeGroups(), notifier=notifier,  # type: ignore[arg-type]
        state=FakeState(), jobs=jobs, approvals=None, health=probe, watches=store,  # type: ignore[arg-type]
    )
    return World(services, clock, probe, notifier, audit, jobs, store)
