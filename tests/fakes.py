"""In-memory fakes of the domain's ports, and the families built on them, for unit tests of the domain."""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.config import OpsConfig
from bot.domain.approvals.model import ApprovalRequest, ApprovalState, ChecklistItem, Tick, Vote
from bot.domain.flags.ports import FlagsNotConfigured
from bot.domain.locks.ports import Lease, LockInfo
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.ports import AuditEntry, AuditQuery, AuditRecord, Clock, Message, MessageRef, ServiceEvent
from bot.wiring import Adapters, build_families
from tests.support import USERS, FrozenClock, make_config


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
        self.held_locks[lease.name] = (
            LockInfo(**{**info.__dict__, "expires_at": self.clock.now() + timedelta(seconds=ttl_seconds)}),
            token,
        )
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
        return AuditRecord(len(self.entries), self.clock.now(), entry, "0" * 64, f"{len(self.entries):064x}")

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        return [AuditRecord(i + 1, self.clock.now(), e, "", "") for i, e in enumerate(self.entries)][::-1][: query.limit]

    def head(self) -> tuple[int, str]:
        return len(self.entries), f"{len(self.entries):064x}"

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

    def members(self, group_id: str, max_age_seconds: float | None = None) -> frozenset[str]:
        return frozenset(self.groups.get(group_id, []))

    def forget(self, group_id: str) -> None:
        pass


class FakePeople:
    """The test workspace's people by name (``tests.support.USERS``)."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names if names is not None else {name: uid for uid, name in USERS.items()}

    def find(self, name: str) -> str | None:
        return self.names.get(name.lstrip("@").casefold())


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


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[ServiceEvent] = []

    def publish(self, event: ServiceEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class FakeLockWaiters:
    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def add(self, name: str, user: str) -> int:
        line = self.lines.setdefault(name, [])
        if user not in line:
            line.append(user)
        return line.index(user) + 1

    def take_all(self, name: str) -> list[str]:
        return self.lines.pop(name, [])


class Unused:
    """A port a test does not expect to be used: any use fails the test, naming it."""

    def __init__(self, name: str = "this port") -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"{self._name}.{attribute} should not be used here")


class FakeApprovalRepository:
    def __init__(self) -> None:
        self.requests: dict[str, ApprovalRequest] = {}
        self.votes: dict[str, list[Vote]] = {}
        self.checklist_ticks: dict[str, list[Tick]] = {}

    def add(self, request: ApprovalRequest) -> None:
        self.requests[request.id], self.votes[request.id], self.checklist_ticks[request.id] = request, [], []

    def ticks(self, request_id: str) -> list[Tick]:
        return list(self.checklist_ticks.get(request_id, []))

    def set_tick(self, request_id: str, tick: Tick, ticked: bool) -> bool:
        ticks = self.checklist_ticks[request_id]
        present = next((t for t in ticks if (t.voter, t.item) == (tick.voter, tick.item)), None)
        if (present is not None) == ticked:
            return False
        if ticked:
            ticks.append(tick)
        else:
            ticks.remove(present)  # type: ignore[arg-type]
        return True

    def set_checklist(self, request_id: str, checklist: tuple[ChecklistItem, ...]) -> None:
        self.requests[request_id] = replace(self.requests[request_id], checklist=checklist)

    def get(self, request_id: str, *, for_update: bool = False) -> tuple[ApprovalRequest, list[Vote]] | None:
        request = self.requests.get(request_id)
        return None if request is None else (request, list(self.votes[request_id]))

    def add_vote(self, request_id: str, vote: Vote) -> None:
        self.votes[request_id].append(vote)

    def set_state(self, request_id: str, state: ApprovalState, at: datetime) -> None:
        self.requests[request_id] = self.requests[request_id].decided(state, at)

    def set_details(self, request_id: str, details: dict[str, str]) -> None:
        self.requests[request_id] = replace(self.requests[request_id], details=dict(details))

    def attach_message(self, request_id: str, ref: MessageRef) -> None:
        self.requests[request_id] = replace(self.requests[request_id], channel=ref.channel, message_ts=ref.ts)

    def pending(self) -> list[ApprovalRequest]:
        return [r for r in self.requests.values() if r.state is ApprovalState.PENDING]


class FakeDatabase:
    """Every repository in memory. One process-wide lock, held for a whole unit of work, stands in for row locks;
    a unit of work left without commit does not roll back (unit tests do not rely on it)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.approvals = FakeApprovalRepository()
        self.repositories: dict[str, Any] = {"approvals": self.approvals}
        self.messages: dict[str, MessageRef] = {}  # message key -> the fake message it became
        self.failed_effects: dict[str, str] = {}  # message key -> why delivery gave up on it
        self.notifier: Any = Unused("notifier")  # where effects go; fake_world connects its fakes
        self.jobs: Any = Unused("jobs")

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeOutbox:
    """Effects recorded in a fake unit of work, delivered to the fake notifier and jobs when it commits."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.effects: list[tuple[str, tuple[Any, ...]]] = []

    def post(self, channel: str, message: Message, *, key: str, origin: str) -> None:
        self.effects.append(("post", (channel, message, key)))

    def update(self, key: str, message: Message, *, origin: str) -> None:
        self.effects.append(("update", (key, message)))

    def dm(self, user: str, message: Message, *, key: str, origin: str) -> None:
        self.effects.append(("dm", (user, message, key)))

    def pin(self, key: str, *, origin: str) -> None:
        self.effects.append(("pin", (key,)))

    def unpin(self, key: str, *, origin: str) -> None:
        self.effects.append(("unpin", (key,)))

    def submit(self, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        self.effects.append(("submit", (name, payload, key)))

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        self.effects.append(("schedule", (at, name, payload, key)))

    def cancel_job(self, key: str, *, origin: str) -> None:
        self.effects.append(("cancel", (key,)))

    def page(self, event: dict[str, Any], *, key: str, origin: str) -> None:
        self.effects.append(("page", (event, key)))

    def waiting(self, key: str) -> bool:
        return False

    def failed(self, key: str) -> str | None:
        return self._db.failed_effects.get(key)

    def posted(self, key: str) -> MessageRef | None:
        return self._db.messages.get(key)

    def deliver(self) -> None:
        db = self._db
        for kind, args in self.effects:
            if kind in ("post", "dm"):
                target, message, key = args
                if key in db.messages:
                    db.notifier.update(db.messages[key], message)
                else:
                    db.messages[key] = db.notifier.post(target, message) if kind == "post" else db.notifier.dm(target, message)
            elif kind == "update":
                key, message = args
                if key in db.messages:
                    db.notifier.update(db.messages[key], message)
            elif kind == "submit":
                db.jobs.submit(args[0], args[1], key=args[2])
            elif kind == "schedule":
                db.jobs.schedule(args[0], args[1], args[2], key=args[3])
            elif kind == "cancel":
                db.jobs.cancel(args[0])
        self.effects = []


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.outbox = FakeOutbox(db)
        self._after: list[Any] = []
        self.pending: list[Any] = []

    def __enter__(self) -> FakeUnitOfWork:
        self._db.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.lock.release()

    def after_commit(self, action: Any) -> None:
        self._after.append(action)

    def commit(self) -> None:
        for action in self._after:
            action()
        self._after = []
        self.outbox.deliver()

    def __getattr__(self, repository: str) -> Any:
        try:
            return self._db.repositories[repository]
        except KeyError:
            raise AssertionError(f"the {repository} repository should not be used here") from None


class World:
    """The families built by the real wiring (``bot.wiring.build_families``) on fakes, each fake at hand for assertions.

    ``world.locks``, ``world.audit``, ``world.notifier`` … are the fakes; ``world.families`` the families;
    ``world.dispatcher`` runs `/ops` text like Slack would.
    """

    def __init__(self, adapters: Adapters, db: FakeDatabase) -> None:
        self.adapters = adapters
        self.db = db
        self.families = build_families(adapters)
        self.dispatcher = self.families.dispatcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapters, name)


def fake_world(
    config: OpsConfig | None = None, clock: FrozenClock | None = None, *, db: FakeDatabase | None = None, **overrides: Any
) -> World:
    """Families on fakes: any adapter can be replaced by keyword (``health=FakeProbe()``, ``flags=provider`` …)."""
    clock = clock or FrozenClock()
    db = db or FakeDatabase()
    parts: dict[str, Any] = {
        "jobs": FakeJobs(),
        "locks": FakeLocks(clock),
        "lock_waiters": FakeLockWaiters(),
        "audit": FakeAudit(clock),
        "groups": FakeGroups(),
        "people": FakePeople(),
        "notifier": FakeNotifier(),
        "state": FakeState(),
        "conversations": Unused("conversations"),
        "deploy_providers": Unused("deploy_providers"),
        "health": Unused("health"),
        "watches": Unused("watches"),
        "flags": FlagsNotConfigured(),
        "events": FakeEvents(),
    }
    parts.update(overrides)
    db.notifier, db.jobs = parts["notifier"], parts["jobs"]
    adapters = Adapters(config=config or make_config(), clock=clock, uow=db.uow, **parts)
    return World(adapters, db)
