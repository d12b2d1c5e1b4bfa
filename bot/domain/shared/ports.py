"""The ports the domain talks to, and the value objects that cross them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@runtime_checkable
class Message(Protocol):
    """Anything the edge can render: a dataclass naming its template (``family/name``)."""

    template: ClassVar[str]


@dataclass(frozen=True)
class MessageRef:
    """Where a posted message lives, so it can be updated in place later."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Reply:
    """What the domain answers the person who asked."""

    message: Message
    visibility: Literal["ephemeral", "in_channel"] = "ephemeral"
    replace_original: bool = False
    outcome: str = "ok"


@dataclass(frozen=True)
class LockInfo:
    """A held lock as anyone may see it (never its owner token)."""

    name: str
    holder: str
    purpose: str
    since: datetime
    expires_at: datetime
    fence: int


@dataclass(frozen=True)
class Lease:
    """Proof of holding a lock: only the holder has the token; the fence orders holders."""

    name: str
    token: str
    fence: int


class LockStore(Protocol):
    def acquire(self, name: str, *, holder: str, purpose: str, ttl_seconds: float) -> Lease | None:
        """Take the lock if free; None when someone holds it."""
        ...

    def release(self, lease: Lease) -> bool:
        """Release if ``lease`` still holds the lock; False for a stale holder."""
        ...

    def extend(self, lease: Lease, ttl_seconds: float) -> bool:
        """Renew the TTL if ``lease`` still holds the lock."""
        ...

    def is_current(self, lease: Lease) -> bool:
        """Whether ``lease`` is still the holder (the fencing check before recording a result)."""
        ...

    def holder(self, name: str) -> LockInfo | None: ...

    def held(self) -> list[LockInfo]: ...

    def force_release(self, name: str) -> LockInfo | None:
        """Release whoever holds ``name``; returns who that was."""
        ...


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened: who did what to which target, and how it ended."""

    actor: str
    action: str
    outcome: str
    target: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    channel: str | None = None
    request_id: str | None = None
    source: str = "slack"
    service: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """An entry as stored: its place in the chain and its hash."""

    seq: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditQuery:
    service: str | None = None
    actor: str | None = None
    since: datetime | None = None
    before_seq: int | None = None
    action_prefix: str | None = None
    limit: int = 15


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> AuditRecord:
        """Append ``entry`` to the chain."""
        ...

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first."""
        ...


class GroupDirectory(Protocol):
    def members(self, group_id: str) -> frozenset[str]:
        """User IDs in the Slack user group ``group_id``."""
        ...


class Notifier(Protocol):
    """Posts the domain's messages to channels and people."""

    def post(self, channel: str, message: Message) -> MessageRef: ...

    def update(self, ref: MessageRef, message: Message) -> None: ...

    def dm(self, user: str, message: Message) -> MessageRef: ...


class EphemeralState(Protocol):
    """Short-lived server-side state behind opaque ids (button payloads carry only the id)."""

    def put(self, kind: str, data: dict[str, Any], ttl_seconds: int) -> str: ...

    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...


class Jobs(Protocol):
    """Background work that outlives the request that started it, run by `opsbot worker`.

    ``name`` picks a job registered by a family (``bot.domain.registry.jobs()``); ``payload`` is
    JSON-safe data. A ``key`` makes the job idempotent: while one with that key is pending, another
    submit or schedule with the same key does nothing.
    """

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None: ...

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None: ...

    def cancel(self, key: str) -> None: ...


@dataclass(frozen=True)
class CheckOutcome:
    """One health check's verdict: ``healthy``, ``degraded`` (slow) or ``failed``, with the reason."""

    name: str
    url: str
    status: Literal["healthy", "degraded", "failed"]
    latency_ms: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """Every check of one service in one environment, and the version it reports (if configured)."""

    service: str
    environment: str
    status: Literal["healthy", "degraded", "failed"]
    checks: list[CheckOutcome] = field(default_factory=list)
    version: str | None = None
    version_error: str | None = None


class HealthProbe(Protocol):
    """Runs a service's configured health checks (and its version endpoint) concurrently."""

    def check(self, service: str, environment: str) -> HealthReport: ...


@runtime_checkable
class HealthFanout(Protocol):
    """A probe that can check many services at once under one concurrency cap (`/ops health all`)."""

    def check_many(self, targets: list[tuple[str, str]]) -> list[HealthReport]: ...


class WatchStore(Protocol):
    """Health watch state shared by every replica. Only the holder of a watch's lease may write it,
    so a replica whose lease ran out cannot overwrite (or announce over) a newer one."""

    def lease(self, watch: str, ttl_seconds: float) -> Lease | None:
        """Take the watch's lease if nobody holds it; None when another replica is ticking it."""
        ...

    def release(self, lease: Lease) -> None: ...

    def load(self, watch: str) -> dict[str, Any] | None: ...

    def save(self, lease: Lease, data: dict[str, Any]) -> bool:
        """Store ``data`` only if ``lease`` still holds the watch; False otherwise."""
        ...

    def silence(self, watch: str, until: datetime, by: str) -> None:
        """Mute the watch's bad news until ``until``."""
        ...

    def silence_of(self, watch: str) -> tuple[datetime, str] | None:
        """(until, by) of the watch's silence, if one was set and has not been cleaned up."""
        ...


@dataclass(frozen=True)
class ServiceEvent:
    """Something that happened to a service: deploys, rollbacks and flag kills publish these;
    open incidents of that service put them in their channel and timeline."""

    service: str
    environment: str | None
    kind: str  # e.g. deploy.started, deploy.succeeded, deploy.failed, rollback.done, flag.killed
    summary: str  # plain text; escaped when rendered
    actor: str
    at: datetime
    link: str | None = None


class ServiceEvents(Protocol):
    def publish(self, event: ServiceEvent) -> None: ...


class NoServiceEvents:
    """Nobody listens (no incidents feature wired): events are dropped."""

    def publish(self, event: ServiceEvent) -> None:
        return None
