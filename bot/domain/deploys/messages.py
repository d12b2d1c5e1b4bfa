"""What deploys and rollbacks say: replies to the requester and announcements in the deployments channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from bot.domain.deploys.ci import CiCheck, CiReading
from bot.domain.deploys.guardrails import GuardrailReading
from bot.domain.deploys.model import Deploy
from bot.domain.deploys.planning import FreezeNote, Plan, PromotionGate
from bot.domain.locks.ports import LockInfo


@dataclass(frozen=True)
class DeployRequested:
    """Told to the requester: the request is open (or, with no approvals needed, queued)."""

    template: ClassVar[str] = "deploy/requested"
    deploy: Deploy
    plan: Plan
    channel: str
    freeze_of: str | None = None  # the incident whose deploy freeze this rollback took over
    waiting: list[str] = field(default_factory=list)  # what is still on its way (Slack or Redis did not take it yet)


@dataclass(frozen=True)
class DryRun:
    template: ClassVar[str] = "deploy/dry_run"
    plan: Plan
    approvers: list[str]
    lock: LockInfo | None
    hotfix_asked: bool
    now: datetime


@dataclass(frozen=True)
class Frozen:
    """A deploy refused because of a freeze, and how to go ahead in an emergency."""

    template: ClassVar[str] = "deploy/frozen"
    service: str
    environment: str
    freezes: list[FreezeNote]


@dataclass(frozen=True)
class NotVerified:
    """A deploy refused by the promotion gate: the version has not succeeded in ``gate.source`` (yet)."""

    template: ClassVar[str] = "deploy/not_verified"
    service: str
    environment: str
    gate: PromotionGate


@dataclass(frozen=True)
class CiFailed:
    """A deploy refused at request time by the CI gate: a check of the version failed (``--hotfix`` does not pass it)."""

    template: ClassVar[str] = "deploy/ci_failed"
    service: str
    environment: str
    reading: CiReading
    failed: CiCheck
    why: str  # "check `build` failed (failure): <link|details>"


@dataclass(frozen=True)
class CiRefusedForRequester:
    """A direct message to the requester: their request waited for CI, and CI failed or did not finish in time."""

    template: ClassVar[str] = "deploy/ci_refused_dm"
    deploy: Deploy
    why: str


@dataclass(frozen=True)
class DeployStarted:
    template: ClassVar[str] = "deploy/started"
    deploy: Deploy
    provider: str
    link: str | None = None  # where to watch the provider's run (added by an edit once the provider knows it)


@dataclass(frozen=True)
class DeploySucceeded:
    template: ClassVar[str] = "deploy/succeeded"
    deploy: Deploy
    provider: str
    verification: str
    verified: bool
    note: str | None = None  # e.g. decided by the reconciler after its worker stopped
    link: str | None = None  # the provider's run
    guardrails: tuple[GuardrailReading, ...] = ()  # each metric guardrail's last reading


@dataclass(frozen=True)
class DeployFailed:
    """Provider or verification failure; the Rollback button carries only the deploy's id."""

    template: ClassVar[str] = "deploy/failed"
    deploy: Deploy
    stage: str  # "provider" or "verification"
    what: str
    output_tail: str = ""
    link: str | None = None
    can_roll_back: bool = True
    note: str | None = None
    guardrails: tuple[GuardrailReading, ...] = ()  # each metric guardrail's reading when verification ended
    auto_rollback: bool = False  # the environment's auto_rollback opens the rollback at once


@dataclass(frozen=True)
class RolledBack:
    template: ClassVar[str] = "deploy/rolled_back"
    deploy: Deploy
    verification: str
    locked_until_unlocked: bool = False
    frozen_for: str | None = None  # the incident whose deploy freeze took the lock back


@dataclass(frozen=True)
class LockLost:
    """The deploy's lock was broken or ran out: its result is not recorded as the environment's state."""

    template: ClassVar[str] = "deploy/lock_lost"
    deploy: Deploy
    stage: str
    provider: str | None = None
    link: str | None = None  # the provider's run


@dataclass(frozen=True)
class NotStarted:
    template: ClassVar[str] = "deploy/not_started"
    deploy: Deploy
    why: str


@dataclass(frozen=True)
class History:
    template: ClassVar[str] = "deploy/history"
    deploys: list[Deploy]
    filters: str
    now: datetime


@dataclass(frozen=True)
class DeployStopped:
    """A running deploy or rollback stopped on purpose (cancelled) before it recorded a result."""

    template: ClassVar[str] = "deploy/stopped"
    deploy: Deploy
    by: str
    provider: str
    link: str | None = None  # the provider's run


@dataclass(frozen=True)
class OutcomeUnknown:
    """A run stopped without a result and verification could not decide: an admin must settle it."""

    template: ClassVar[str] = "deploy/unknown"
    deploy: Deploy
    why: str


@dataclass(frozen=True)
class DeploySettled:
    """An admin settled an unknown outcome by hand."""

    template: ClassVar[str] = "deploy/settled"
    deploy: Deploy
    by: str
    reason: str


@dataclass(frozen=True)
class CancelRequested:
    """Told to whoever asked to stop a running deploy."""

    template: ClassVar[str] = "deploy/cancel_requested"
    deploy: Deploy


@dataclass(frozen=True)
class OutcomeForRequester:
    """A direct message to the requester when opsbot decided a run's outcome after its worker stopped."""

    template: ClassVar[str] = "deploy/outcome_dm"
    deploy: Deploy
    outcome: str
    why: str
