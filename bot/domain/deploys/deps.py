"""What the deploys family needs, built once by the wiring.

Approvals are not among them: ``DeployOutcomes`` (what happens once a request is decided) is built
first and handed to the approvals family; the request side (``DeployRequests``) receives the
``ApprovalService`` next to these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import OpsConfig
from bot.domain.deploys.charts import ChartImages, FileUploads
from bot.domain.deploys.ports import CiStatus, DeployProviders, DeploysUnitOfWork
from bot.domain.health.ports import HealthProbe
from bot.domain.incidents.freezes import IncidentFreezes
from bot.domain.locks.ports import LockStore
from bot.domain.locks.waiting import DeployLocks
from bot.domain.shared.metrics import MetricsReader, NoMetricsStore
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock, Jobs, Notifier, ServiceEvents, ShutdownSignal


@dataclass(frozen=True)
class DeployDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], DeploysUnitOfWork]
    providers: DeployProviders
    locks: LockStore
    deploy_locks: DeployLocks
    incident_freezes: IncidentFreezes  # a rollback may take over an open incident's deploy freeze
    health: HealthProbe  # verification after the provider
    notifier: Notifier
    events: ServiceEvents  # open incidents of the service hear about deploys and rollbacks
    jobs: Jobs
    policy: Policy
    audit: AuditLog
    charts: ChartImages  # `/ops metrics`: the chart as an image (matplotlib)
    files: FileUploads  # … shared in the channel (Slack's files.uploadV2)
    health_alert: Callable[[str], dict[str, Any]]  # a health alert's context by its opaque id (raises NotFound)
    shutdown: ShutdownSignal  # set on SIGTERM: a running deploy hands over within durability.shutdown_grace_seconds
    ci: CiStatus  # the CI gate: a version's checks on GitHub (services.<name>.ci)
    metrics: MetricsReader = field(default_factory=NoMetricsStore)  # metric guardrails during verification (Prometheus)
