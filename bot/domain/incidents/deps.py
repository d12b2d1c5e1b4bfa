"""What the incidents family needs, built once by the wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.health.service import HealthService
from bot.domain.incidents.ports import Conversations, IncidentsUnitOfWork, OnCall
from bot.domain.locks.ports import LockStore
from bot.domain.locks.waiting import DeployLocks
from bot.domain.shared.changes import RecentChanges
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import Clock, EphemeralState, GroupDirectory, Jobs, Notifier


@dataclass(frozen=True)
class IncidentDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], IncidentsUnitOfWork]
    conversations: Conversations
    notifier: Notifier
    groups: GroupDirectory
    jobs: Jobs
    policy: Policy
    locks: LockStore  # an incident freeze holds deploy locks
    deploy_locks: DeployLocks  # releasing one tells whoever waits for it
    health: HealthService  # a health alert's "Declare incident" button reads the alert
    state: EphemeralState  # "Declare another": the declaration a button stands for, behind an opaque id
    recent_changes: RecentChanges  # "what changed": the services' recent deploys, rollbacks and flag changes
    oncall: OnCall | None = None  # `/ops oncall` (PagerDuty's REST API), when `pagerduty` is configured
