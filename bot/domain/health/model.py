"""What a health check found: one check's verdict, and every check of one service in one environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class CheckOutcome:
    """One health check's verdict: ``healthy``, ``degraded`` (slow) or ``failed``, with the reason."""

    name: str
    url: str
    status: Literal["healthy", "degraded", "failed"]
    latency_ms: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class WatchReading:
    """What a background watch last saw of one service in one environment: ``level`` is ``ok``, ``warning`` or
    ``down`` (None: it has not checked yet) and ``since`` when that level began."""

    level: str | None
    since: datetime | None = None


@dataclass(frozen=True)
class HealthReport:
    """Every check of one service in one environment, and the version it reports (if configured)."""

    service: str
    environment: str
    status: Literal["healthy", "degraded", "failed"]
    checks: list[CheckOutcome] = field(default_factory=list)
    version: str | None = None
    version_error: str | None = None
