"""What the status page needs: the config, the clock, the incidents' store and the health watches' readings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.health.service import HealthService
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.shared.ports import Clock


@dataclass(frozen=True)
class StatusDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], IncidentsUnitOfWork]
    health: HealthService
