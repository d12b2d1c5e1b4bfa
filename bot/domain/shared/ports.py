"""The ports every family talks to, and the value objects that cross them.

Family-specific ports live in each family's ``ports.py`` (``bot/domain/<family>/ports.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


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

    def head(self) -> tuple[int, str]:
        """The chain's head: (rows in the chain, hash of the last row; 64 zeros when empty)."""
        ...


class GroupDirectory(Protocol):
    def members(self, group_id: str, max_age_seconds: float | None = None) -> frozenset[str]:
        """User IDs in the Slack user group ``group_id``, read again when what is known is older than
        ``max_age_seconds`` (None: the directory's own cache time)."""
        ...

    def forget(self, group_id: str) -> None:
        """Drop what is known of ``group_id`` (Slack said its members changed): the next read asks Slack."""
        ...


class PeopleDirectory(Protocol):
    """The workspace's people, found by the name typed after ``@`` (Slack's ``users.list``, cached briefly)."""

    def find(self, name: str) -> str | None:
        """The user ID of the one active member whose username or display name is ``name`` (case-insensitive,
        no ``@``), or None when nobody has it. Raises ``AmbiguousName`` when more than one person has it,
        ``Unavailable`` when Slack cannot say."""
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

    ``name`` picks a job a family declared (``Family.jobs``); ``payload`` is
    JSON-safe data. A ``key`` makes the job idempotent: while one with that key is pending, another
    submit or schedule with the same key does nothing.
    """

    def submit(self, name: str, payload: dict[str, Any], *, key: str | None = None) -> None: ...

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str | None = None) -> None: ...

    def cancel(self, key: str) -> None: ...


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


class Outbox(Protocol):
    """Side effects recorded in the same transaction as the change that implies them, delivered after it commits.

    Each effect is delivered at least once, retried (Slack's Retry-After, backoff on 5xx and timeouts, Redis
    coming back) until its deadline, and made idempotent by its key: a message posted again under the same
    key edits the message instead of posting a twin; a job submitted again under its key is queued once.
    Effects of one stream (a channel, a job key) are delivered in the order they were recorded.
    ``origin`` names what recorded the effect for people (``deploy d-1a2b3c4d``).
    """

    def post(self, channel: str, message: Message, *, key: str, origin: str) -> None:
        """Post ``message`` in ``channel`` as the message ``key`` (or edit it, when ``key`` was posted before)."""
        ...

    def update(self, key: str, message: Message, *, origin: str) -> None:
        """Edit the message posted as ``key`` (after that post is delivered)."""
        ...

    def dm(self, user: str, message: Message, *, key: str, origin: str) -> None:
        """A direct message to ``user``, as the message ``key``."""
        ...

    def pin(self, key: str, *, origin: str) -> None: ...

    def unpin(self, key: str, *, origin: str) -> None: ...

    def submit(self, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        """Queue the job ``name`` now (once per ``key`` while it waits)."""
        ...

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        """Queue the job ``name`` to run at ``at``."""
        ...

    def cancel_job(self, key: str, *, origin: str) -> None:
        """Cancel the job queued under ``key``, if it has not run."""
        ...

    def page(self, event: dict[str, Any], *, key: str, origin: str) -> None:
        """Send a PagerDuty Events API v2 event (``event_action``, ``dedup_key``, ``payload`` — the routing key is added
        on delivery); the events of one ``dedup_key`` go out in the order recorded."""
        ...

    def waiting(self, key: str) -> bool:
        """Whether an effect recorded under ``key`` still waits for delivery."""
        ...

    def failed(self, key: str) -> str | None:
        """Why delivery gave up on the newest effect recorded under ``key`` (Slack refused it for good, or its
        deadline passed); None when it was delivered, still waits, or was never recorded."""
        ...

    def posted(self, key: str) -> MessageRef | None:
        """Where the message ``key`` was posted (channel and ts); None while it has not been."""
        ...


@dataclass(frozen=True)
class Pending:
    """An effect that could not be delivered right after its change committed; it is retried until ``deadline``."""

    kind: str  # slack.post, job.submit …
    key: str
    waiting_for: str  # "Slack", "Redis": what it waits for, in words
    reason: str
    deadline: datetime
    gave_up: bool = False  # Slack refused it for good: it will not be retried (an operator can: `opsbot outbox retry`)


class ShutdownSignal:
    """This process was asked to stop (SIGTERM, a rolling restart): work in flight hands over within a grace period."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._at: float | None = None

    def request(self) -> None:
        if self._at is None:
            self._at = time.monotonic()
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def overdue(self, grace_seconds: float) -> bool:
        """True once stopping was requested at least ``grace_seconds`` ago: work still in flight hands over now."""
        return self._at is not None and time.monotonic() - self._at >= grace_seconds


class UnitOfWork(Protocol):
    """One database transaction: what a family loads, decides and changes is committed together, or not at all.

    Used as a context manager; leaving the block without ``commit()`` (or by an exception) rolls back.
    Each family's ``ports.py`` names the repositories it reads through it (``uow.approvals`` …).
    Raises ``Unavailable`` when the database cannot be reached.
    """

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None: ...

    @property
    def outbox(self) -> Outbox:
        """Effects recorded here are committed with this unit of work and delivered after it."""
        ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this unit of work has committed (audit rows, Redis); its failures are logged, not raised."""
        ...

    def commit(self) -> None:
        """Commit, then deliver this unit of work's effects at once; what could not be delivered is in ``pending``."""
        ...

    @property
    def pending(self) -> list[Pending]:
        """After ``commit``: the effects that wait for a retry (Slack or Redis did not take them yet)."""
        ...
