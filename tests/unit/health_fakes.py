"""Fakes of the health ports (the probe, the watch store) on top of the shared fakes in tests/fakes.py."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import OpsConfig
from bot.domain.health.model import CheckOutcome, HealthReport
from bot.domain.health.service import HealthService
from bot.domain.health.watches import HealthWatches
from bot.domain.locks.ports import Lease
from bot.domain.shared.policy import Actor
from tests.fakes import FakeAudit, FakeJobs, FakeNotifier
from tests.fakes import fake_world as families_on_fakes
from tests.support import FrozenClock


class FakeProbe:
    """Answers with whatever ``status`` says for a (service, environment) right now."""

    def __init__(self) -> None:
        self.status: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str]] = []

    def check(self, service: str, environment: str) -> HealthReport:
        self.calls.append((service, environment))
        status = self.status.get((service, environment), "healthy")
        reason = {"failed": "timeout after 2000 ms", "degraded": "slow: 800 ms (warning at 500 ms)"}.get(status)
        latency = 2000.0 if status == "failed" else 800.0
        check = CheckOutcome("/health/db", f"https://{service}.example.com/health/db", status, latency, reason)  # type: ignore[arg-type]
        return HealthReport(service, environment, status, [check], version="1.2.3")  # type: ignore[arg-type]


class FakeWatchStore:
    """Leases and state in memory; ``save`` honours the lease like the Redis store does."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.holders: dict[str, str] = {}
        self.silences: dict[str, tuple[datetime, str]] = {}
        self._fences = itertools.count(1)

    def lease(self, watch: str, ttl_seconds: float) -> Lease | None:
        if watch in self.holders:
            return None
        token = secrets.token_hex(4)
        self.holders[watch] = token
        return Lease(watch, token, next(self._fences))

    def release(self, lease: Lease) -> None:
        if self.holders.get(lease.name) == lease.token:
            del self.holders[lease.name]

    def load(self, watch: str) -> dict[str, Any] | None:
        return self.states.get(watch)

    def save(self, lease: Lease, data: dict[str, Any]) -> bool:
        if self.holders.get(lease.name) != lease.token:
            return False
        self.states[lease.name] = data
        return True

    def silence(self, watch: str, until: datetime, by: str) -> None:
        self.silences[watch] = (until, by)

    def silence_of(self, watch: str) -> tuple[datetime, str] | None:
        return self.silences.get(watch)


@dataclass
class World:
    """The health family on fakes, with each fake at hand for assertions."""

    health: HealthService
    clock: FrozenClock
    probe: FakeProbe
    notifier: FakeNotifier
    audit: FakeAudit
    jobs: FakeJobs
    store: FakeWatchStore

    @property
    def watches(self) -> HealthWatches:
        return self.health.watches

    def actor(self, user: str = "opsbot") -> Actor:
        return Actor(user, source="job" if user == "opsbot" else "slack")

    def audited(self) -> list[str]:
        return [action for action, _ in self.audit.outcomes()]


def fake_world(config: OpsConfig, clock: FrozenClock | None = None) -> World:
    clock = clock or FrozenClock()
    probe, notifier, audit, jobs, store = FakeProbe(), FakeNotifier(), FakeAudit(clock), FakeJobs(), FakeWatchStore()
    world = families_on_fakes(config, clock, health=probe, watches=store, notifier=notifier, audit=audit, jobs=jobs)
    return World(world.families.health, clock, probe, notifier, audit, jobs, store)
