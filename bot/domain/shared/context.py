"""What every domain call receives: who is acting, and the ports it may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.config import OpsConfig
from bot.domain.flags.ports import FlagHistory, FlagProvider
from bot.domain.shared.policy import Actor, Policy
from bot.domain.shared.ports import (
    AuditLog,
    Clock,
    EphemeralState,
    GroupDirectory,
    HealthProbe,
    Jobs,
    LockStore,
    NoServiceEvents,
    Notifier,
    ServiceEvents,
    WatchStore,
)

if TYPE_CHECKING:
    from bot.domain.approvals.service import ApprovalKind, ApprovalStore
    from bot.domain.deploys.ports import DeployProviders, DeployStore, LockWaiters
    from bot.domain.incidents.model import Conversations, IncidentStore


@dataclass
class Services:
    """The ports, wired once per process by ``bot.wiring.build_services``."""

    config: OpsConfig
    clock: Clock
    locks: LockStore
    audit: AuditLog
    groups: GroupDirectory
    notifier: Notifier
    state: EphemeralState
    jobs: Jobs
    approvals: ApprovalStore
    approval_kinds: dict[str, ApprovalKind] = field(default_factory=dict)

    # Deploys, rollbacks and flag kills publish here; incidents listen (issue 6).
    events: ServiceEvents = field(default_factory=NoServiceEvents)

    # The health engine (issue 4); deploy verification uses it too.
    health: HealthProbe | None = None
    # Health watch state and leases, shared by replicas (issue 4).
    watches: WatchStore | None = None

    # Deploys and rollbacks (issue 3): their records and freezes, the providers, who waits for a lock.
    deploys: DeployStore | None = None
    deploy_providers: DeployProviders | None = None
    lock_waiters: LockWaiters | None = None

    # Incidents (issue 6): their SQL store, and Slack's channels, pins, history and modals.
    incidents: IncidentStore | None = None
    conversations: Conversations | None = None

    # Feature flags (issue 5): where flags live, and opsbot's own record of its changes.
    flags: FlagProvider | None = None
    flag_history: FlagHistory | None = None

    extras: dict[str, Any] = field(default_factory=dict)
    policy: Policy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = Policy(self.config.roles.model_dump(), self.groups)


@dataclass(frozen=True)
class Call:
    """One request being served: the actor and the services."""

    actor: Actor
    services: Services

    @property
    def config(self) -> OpsConfig:
        return self.services.config
