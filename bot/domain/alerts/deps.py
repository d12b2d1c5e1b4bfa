"""What the alerts family needs, built once by the wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.alerts.ports import AlertsUnitOfWork, Silences
from bot.domain.deploys.service import Deploys
from bot.domain.incidents.service import Incidents
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock


@dataclass(frozen=True)
class AlertDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], AlertsUnitOfWork]
    silences: Silences  # Alertmanager's API v2
    incidents: Incidents  # "Declare incident" opens its declare form, pre-filled
    deploys: Deploys  # "Roll back" is its rollback request
    policy: Policy
    audit: AuditLog
