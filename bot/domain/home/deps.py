"""What the Home family needs, built once by the wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.home.ports import HomeSurface, HomeUnitOfWork, HomeViewers
from bot.domain.locks.ports import LockStore
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import AuditLog, Clock, Jobs, Notifier


@dataclass(frozen=True)
class HomeDeps:
    config: OpsConfig
    clock: Clock
    uow: Callable[[], HomeUnitOfWork]
    locks: LockStore
    audit: AuditLog  # flag kills of the last 24 h and each person's own recent actions
    policy: Policy
    surface: HomeSurface
    viewers: HomeViewers
    jobs: Jobs  # the refresh fan-out and each person's trailing refresh
    notifier: Notifier  # a click's answer by DM when Home itself cannot be published
    mutating: frozenset[str]  # audit actions of `/ops` subcommands that change something ("command.deploy" …)
