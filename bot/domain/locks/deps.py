"""What the locks family needs, built once by the wiring."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import OpsConfig
from bot.domain.locks.ports import LockStore, LockWaiters
from bot.domain.shared.policy import Policy
from bot.domain.shared.ports import Clock, EphemeralState, Jobs, Notifier


@dataclass(frozen=True)
class LockDeps:
    config: OpsConfig
    clock: Clock
    locks: LockStore
    waiters: LockWaiters
    notifier: Notifier
    state: EphemeralState
    jobs: Jobs
    policy: Policy
