"""What the health family needs, built once by the wiring."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.health.ports import HealthProbe, WatchStore
from bot.domain.shared.changes import RecentChanges
from bot.domain.shared.metrics import MetricsReader
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock, EphemeralState, Jobs, Notifier


@dataclass(frozen=True)
class HealthDeps:
    config: OpsConfig
    clock: Clock
    probe: HealthProbe
    watches: WatchStore
    notifier: Notifier
    jobs: Jobs
    state: EphemeralState
    policy: Policy
    audit: AuditLog
    recent_changes: RecentChanges  # "what changed": the services' recent deploys, rollbacks and flag changes
    metrics: MetricsReader  # the watches' metric rules (Prometheus; NoMetricsStore without a `prometheus:` section)
