"""What the flags family needs, built once by the wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.flags.ports import FlagProvider, FlagsUnitOfWork
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock, Notifier, ServiceEvents


@dataclass(frozen=True)
class FlagDeps:
    config: OpsConfig
    clock: Clock
    provider: FlagProvider  # ``FlagsNotConfigured`` when ``flags.provider`` is not set
    uow: Callable[[], FlagsUnitOfWork]  # opsbot's flag history
    notifier: Notifier
    events: ServiceEvents  # open incidents of the flag's service hear about kills
    policy: Policy
    audit: AuditLog
