"""In-memory fakes of the domain's ports, for unit tests of the domain."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

from bot.config import OpsConfig
from bot.domain.shared.context import Services
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.ports import AuditEntry, AuditQuery, AuditRecord, Clock, Lease, LockInfo, Message, MessageRef
from tests.support import FrozenClock, make_config


class FakeLocks:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.held_locks: dict[str, tuple[LockInfo, str]] = {}
        self.fences = itertools.count(1)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise Unavailable("Redis", "ConnectionError")
        now = self.clock.now()
        for name in [n for n, (info, _) in self.held_locks.items() if info.expires_at <= now]:
            del self.held_locks[name]

    def acquire(self, name: str, *, holder: str, purpose: str, ttl_seconds: float) -> Lease | None:
        self._check()
        if name in self.held_locks:
            return None
        token, now = secrets.token_hex(4), self.clock.now()
        info = LockInfo(name, holder, purpose, now, now + timedelta(seconds=ttl_seconds), next(self.fences))
        self.held_locks[name] = (info, token)
        return Lease(name, token, info.fence)

    def release(self, lease: Lease) -> bool:
        self._check()
        if self.is_current(lease):
            del self.held_locks[lease.name]
            return True
        return False

    def extend(self, lease: Lease, ttl_seconds: float) -> bool:
        self._check()
        if not self.is_current(lease):
            return False
        info, token = self.held_locks[lease.name]
        self.held_locks[lease.name] = (LockInfo(**{**info.__dict__, "expires_at": self.clock.now() + timedelta(seconds=ttl_seconds)}), token)
        return True

    def is_current(self, lease: Lease) -> bool:
        found = self.held_locks.get(lease.name)
        return found is not None and found[1] == lease.token

    def holder(self, name: str) -> LockInfo | None:
        self._check()
        found = self.held_locks.get(name)
        return found[0] if found else None

    def held(self) -> list[LockInfo]:
        self._check()
        return [info for info, _ in self.held_locks.values()]

    def force_release(self, name: str) -> LockInfo | None:
        self._check()
        found = self.held_locks.pop(name, None)
        return found[0] if found else None


class FakeAudit:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entries: list[AuditEntry] = []
        self.down = False

    def record(self, entry: AuditEntry) -> AuditRecord:
        if self.down:
            raise Unavailable("The database", "connection refused")
        self.entries.append(entry)
        return AuditRecord(len(self.entries), self.clock.now(), entry, "0" * 64, "%064x" % len(self.entries))

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        return [AuditRecord(i + 1, self.clock.now(), e, "", "") for i, e in enumerate(self.entries)][::-1][: query.limit]

    def outcomes(self) -> list[tuple[str, str]]:
        return [(e.action, e.outcome) for e in self.entries]


class FakeNotifier:
    def __init__(self) -> None:
        self.posts: list[tuple[str, Message]] = []
        self.updates: list[tuple[MessageRef, Message]] = []
        self.failing = False

    def post(self, channel: str, message: Message) -> MessageRef:
        if self.failing:
            from bot.domain.shared.errors import OpsError

            raise OpsError("Slack refused to post a message: `channel_not_found`.")
        self.posts.append((channel, message))
        return MessageRef(channel, f"{len(self.posts)}.000")

    def update(self, ref: MessageRef, message: Message) -> None:
        self.updates.append((ref, message))

    def dm(self, user: str, message: Message) -> MessageRef:
        return self.post(user, message)


class FakeGroups:
    def __init__(self, groups: dict[str, list[str]] | None = None) -> None:
        self.groups = groups or {"S0SRE": ["U0APPROVER1", "U0APPROVER2"]}

    def members(self, group_id: str) -> frozenset[str]:
        return frozenset(self.groups.get(group_id, []))


class FakeState:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, kind: str, data: dict[str, Any], ttl_seconds: int) -> str:
        key = secrets.token_hex(4)
        self.data[(kind, key)] = data
        return key

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.data.get((kind, key))


class FakeJobs:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, dict[str, Any], str | None]] = []
        self.scheduled: list[tuple[datetime, str, dict[str, Any], str | None]] = []
        self.cancelled: list[str] = []

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        self.submitted.append((name, payload, key))

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None:
        self.scheduled.append((at, name, payload, key))

    def cancel(self, key: str) -> None:
        self.cancelled.append(key)


def fake_services(config: OpsConfig | None = None, clock: FrozenClock | None = None, **overrides: Any) -> Services:
    """Domain services backed entirely by fakes."""
    clock = clock or FrozenClock()
    parts: dict[str, Any] = {
        "config": config or make_config(), "clock": clock, "locks": FakeLocks(clock), "audit": FakeAudit(clock),
        "groups": FakeGroups(), "notifier": FakeNotifier(), "state": FakeState(), "jobs": FakeJobs(), "approvals": None,
    }
    parts.update(overrides)
    return Services(**parts)
