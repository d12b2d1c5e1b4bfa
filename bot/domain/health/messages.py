"""What the health family says: the report of `/ops health`, the watch list, alerts and silences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.domain.shared.changes import ChangeList


@dataclass(frozen=True)
class CheckLine:
    icon: str
    name: str
    latency: str
    reason: str | None


@dataclass(frozen=True)
class Counts:
    healthy: int = 0
    degraded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.healthy + self.degraded + self.failed

    @classmethod
    def of(cls, statuses: list[str]) -> Counts:
        return cls(*(statuses.count(status) for status in ("healthy", "degraded", "failed")))


@dataclass(frozen=True)
class ReportGroup:
    """One service in one environment: a section of the message."""

    icon: str
    title: str
    version: str | None
    version_error: str | None
    lines: list[CheckLine]
    hidden: int


@dataclass(frozen=True)
class HealthOverview:
    template: ClassVar[str] = "health/report"
    scope: str
    icon: str
    verdict: str
    counts: Counts  # checks by status
    services: Counts  # service environments by status
    groups: list[ReportGroup]
    folded_healthy: list[str]
    folded_unhealthy: list[str]
    unconfigured: list[str]
    elapsed_ms: int
    at: datetime


@dataclass(frozen=True)
class WatchLine:
    icon: str
    target: str
    level: str
    since: datetime | None
    last_tick: datetime | None
    silenced_until: datetime | None
    silenced_by: str | None
    reason: str
    rule: str


@dataclass(frozen=True)
class WatchList:
    template: ClassVar[str] = "health/watches"
    watches: list[WatchLine]
    now: datetime


@dataclass(frozen=True)
class HealthAlert:
    """A watch's state change, posted to the alerts channel; bad news carries the two buttons."""

    template: ClassVar[str] = "health/alert"
    headline: str
    lines: list[str]
    alert_id: str | None
    rule: str
    at: datetime
    changed: ChangeList | None = None  # on DOWN: the service's recent deploys, rollbacks and flag changes


@dataclass(frozen=True)
class AlertSilenced:
    template: ClassVar[str] = "health/silenced"
    service: str
    environment: str
    by: str
    until: datetime


@dataclass(frozen=True)
class MetricAlert:
    """A metric rule fired (with Declare incident and "Roll back the last deploy of <service>") or recovered."""

    template: ClassVar[str] = "health/metric_alert"
    headline: str
    lines: list[str]
    alert_id: str | None  # None for a recovery: no buttons
    service: str
    at: datetime
