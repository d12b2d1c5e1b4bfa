"""What the public status page shows, and the one rule that turns health watch levels into a service's state.

Only public things live here: service names the page lists, watch levels, incident refs, and the texts responders
marked public (``--public``). Nothing internal (incident titles, impact, status texts, people) has a field to go in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ServiceState(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    OUTAGE = "outage"
    UNKNOWN = "unknown"  # no watch covers it, none has checked yet, or the watch store cannot be read


# Worst first: the page's overall state is the worst service's.
WORST_FIRST = (ServiceState.OUTAGE, ServiceState.DEGRADED, ServiceState.UNKNOWN, ServiceState.OPERATIONAL)
HEADLINES = {
    ServiceState.OUTAGE: "Some services are down",
    ServiceState.DEGRADED: "Some services are degraded",
    ServiceState.UNKNOWN: "The state of some services is unknown",
    ServiceState.OPERATIONAL: "All systems operational",
}


def state_of(levels: list[str | None]) -> ServiceState:
    """A service's state from its watched environments' levels (``ok`` / ``warning`` / ``down``, None: not checked yet).

    Any ``down`` → outage; else any ``warning`` (slow) → degraded; else at least one ``ok`` → operational;
    nothing checked (or nothing watched) → unknown.
    """
    if "down" in levels:
        return ServiceState.OUTAGE
    if "warning" in levels:
        return ServiceState.DEGRADED
    if "ok" in levels:
        return ServiceState.OPERATIONAL
    return ServiceState.UNKNOWN


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState
    since: datetime | None = None  # when its worst environment reached this state


@dataclass(frozen=True)
class PublicUpdate:
    """One update's public text; ``status`` is the incident's phase (investigating, identified, monitoring) at that time."""

    at: datetime
    status: str
    text: str


@dataclass(frozen=True)
class PublicIncident:
    """An open incident as the public sees it: its ref, the listed services it affects, and its public updates, newest first."""

    ref: str
    services: tuple[str, ...]
    started_at: datetime
    updates: tuple[PublicUpdate, ...]
    resolved_at: datetime | None = None

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at is not None else self.updates[0].status

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "services": list(self.services),
            "started_at": _iso(self.started_at),
            "resolved_at": _iso(self.resolved_at),
            "status": self.status,
            "updates": [{"at": _iso(u.at), "status": u.status, "text": u.text} for u in self.updates],
        }


@dataclass(frozen=True)
class StatusSnapshot:
    """The whole page at ``generated_at``. ``notices`` say what could not be read (the page is then incomplete)."""

    title: str
    generated_at: datetime
    services: tuple[ServiceStatus, ...]
    incidents: tuple[PublicIncident, ...]
    notices: tuple[str, ...] = field(default_factory=tuple)
    resolved: tuple[PublicIncident, ...] = ()  # resolved recently (``status_page.show_resolved_hours``), latest first

    @property
    def overall(self) -> ServiceState:
        states = {s.state for s in self.services}
        return next((state for state in WORST_FIRST if state in states), ServiceState.OPERATIONAL)

    @property
    def headline(self) -> str:
        return HEADLINES[self.overall]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``GET /status.json``; times are ISO 8601 in UTC."""
        return {
            "title": self.title,
            "generated_at": _iso(self.generated_at),
            "overall": self.overall.value,
            "headline": self.headline,
            "complete": not self.notices,
            "notices": list(self.notices),
            "services": [{"name": s.name, "state": s.state.value, "since": _iso(s.since)} for s in self.services],
            "incidents": [i.to_dict() for i in self.incidents],
            "recently_resolved": [i.to_dict() for i in self.resolved],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
