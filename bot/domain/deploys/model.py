"""Deploys as the domain sees them: the deploy record and its states, ad-hoc freezes, what a provider is asked and answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from bot.domain.locks.ports import Lease


class DeployKind(StrEnum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"


class DeployState(StrEnum):
    REQUESTED = "requested"  # waiting for approvals; holds the lock
    APPROVED = "approved"  # queued for the worker; holds the lock
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # withdrawn by the requester, or the request could not be opened
    RUNNING = "running"  # provider, then verification
    SUCCEEDED = "succeeded"  # provider succeeded and verification passed
    FAILED = "failed"  # provider failed, timed out, or verification failed
    ROLLED_BACK = "rolled_back"  # was current, then a rollback away from it succeeded
    LOCK_LOST = "lock_lost"  # its lock was broken or ran out before it could record a result
    UNKNOWN = "unknown"  # its run stopped without a result and verification could not decide: an admin settles it


HOLDS_LOCK = frozenset({DeployState.REQUESTED, DeployState.APPROVED, DeployState.RUNNING})
LIVE = HOLDS_LOCK  # not over yet: at most one per service and environment (the database enforces it)
RAN = frozenset({DeployState.SUCCEEDED, DeployState.FAILED, DeployState.ROLLED_BACK})


@dataclass(frozen=True)
class Deploy:
    """One deploy or rollback request, from request to result."""

    id: str
    kind: DeployKind
    service: str
    environment: str
    version: str
    requester: str
    reason: str
    state: DeployState
    requested_at: datetime
    previous_version: str | None = None
    hotfix: bool = False
    approval_id: str | None = None
    approvers: list[str] = field(default_factory=list)
    lock_name: str = ""
    lock_token: str | None = None
    lock_fence: int | None = None
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    detail: str | None = None
    output_tail: str | None = None
    rollback_of: str | None = None
    rolled_back_by: str | None = None
    heartbeat_at: datetime | None = None  # the run's last sign of life (written every durability.heartbeat_seconds)
    provider_started_at: datetime | None = None  # set just before the provider is called: past it, never call it again
    provider_process: str | None = None  # "host:pgid:start-ticks" of a command provider's process group
    cancel_requested_by: str | None = None
    ci_state: str | None = None  # the CI gate (``ci.CiState``): pending, green, failed; None when no gate applies
    ci_summary: str | None = None  # what CI said last, in one line ("waiting for CI (3 of 5 checks done)")
    ci_checked_at: datetime | None = None  # when CI was last read (the reconciler restarts a poll that went quiet)

    @property
    def waits_for_ci(self) -> bool:
        """Its CI gate has not turned green yet: it must not start (``ci_state`` pending)."""
        return self.ci_state == "pending"

    @property
    def ci_green(self) -> bool:
        """Its CI gate passed: green at request time, or turned green while it waited (``ci_gate.CiWaits.green``).
        False also when no gate applies (``ci_state`` None): nothing vouched for its CI."""
        return self.ci_state == "green"

    @property
    def origin(self) -> str:
        """How effects and logs name it: ``deploy d-1a2b3c4d``."""
        return f"{self.kind.value} {self.id}"

    def key(self, what: str) -> str:
        """A message or job key of this deploy: ``deploy:d-1a2b3c4d:started``."""
        return f"deploy:{self.id}:{what}"

    @property
    def lease(self) -> Lease | None:
        """The lock lease this deploy holds (or held)."""
        if self.lock_token is None or self.lock_fence is None:
            return None
        return Lease(self.lock_name, self.lock_token, self.lock_fence)

    @property
    def is_rollback(self) -> bool:
        return self.kind is DeployKind.ROLLBACK


@dataclass(frozen=True)
class Freeze:
    """An ad-hoc freeze set with `/ops freeze`: no deploys to ``target`` until ``ends_at``."""

    id: int
    scope: Literal["environment", "service"]
    target: str
    reason: str
    created_by: str
    created_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class DeployOrder:
    """What a provider is asked to deploy. ``deploy_id`` doubles as the idempotency key."""

    deploy_id: str
    kind: DeployKind
    service: str
    environment: str
    version: str
    requester: str
    reason: str
    previous_version: str | None = None


@dataclass(frozen=True)
class ProviderResult:
    """How a provider call ended; ``summary`` is one line, ``output_tail`` the end of its output."""

    ok: bool
    summary: str
    output_tail: str = ""
    link: str | None = None


class StopSignal:
    """What a provider watches while it runs: a reason to stop now (the lock was lost, someone cancelled, the
    worker is shutting down), and where it reports the process it started (so a reconciler can end it)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.cancel_remote = True  # False when the run is handed over: a remote run goes on, the reconciler checks it
        self.process: str | None = None
        self.link: str | None = None
        self._on_process: list[Callable[[str], None]] = []
        self._on_link: list[Callable[[str], None]] = []

    def stop(self, reason: str, *, cancel_remote: bool = True) -> None:
        """Ask the provider to stop; the first reason given is kept."""
        if self.reason is None:
            self.reason = reason
            self.cancel_remote = cancel_remote
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a stop is asked for."""
        return self._event.wait(seconds)

    def on_process(self, callback: Callable[[str], None]) -> None:
        self._on_process.append(callback)

    def process_started(self, description: str) -> None:
        """The provider started a local process group: ``host:pgid:start-ticks``."""
        self.process = description
        for callback in self._on_process:
            callback(description)

    def on_link(self, callback: Callable[[str], None]) -> None:
        self._on_link.append(callback)

    def link_found(self, url: str) -> None:
        """The provider knows where people can watch its run (a URL, e.g. a GitHub Actions run page)."""
        self.link = url
        for callback in self._on_link:
            callback(url)
