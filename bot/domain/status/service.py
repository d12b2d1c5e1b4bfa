"""The public status page's data: ``StatusBoard.snapshot()`` reads the watches and open incidents, keeps what is public.

It always answers: when Redis (the watches) or the database (incidents) cannot be read, the affected part says so
(services "unknown", a notice) instead of failing the page.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.domain.health.model import WatchReading
from bot.domain.incidents.model import Incident, Kind, TimelineEntry
from bot.domain.shared.errors import Unavailable
from bot.domain.status.deps import StatusDeps
from bot.domain.status.model import PublicIncident, PublicUpdate, ServiceState, ServiceStatus, StatusSnapshot, state_of

log = logging.getLogger("opsbot.status")
MAX_INCIDENTS = 20  # open incidents on one page; more than this is a bad day the page need not list in full
MAX_UPDATES = 20  # public updates per incident, newest first
WATCHES_UNREADABLE = "Service states cannot be read right now; they show as unknown."
PUBLISHED_KINDS = frozenset({Kind.UPDATE, Kind.RESOLVED})  # the timeline entries that may carry a public text
INCIDENTS_UNREADABLE = "Incidents cannot be read right now; open incidents may be missing below."


class StatusBoard:
    """Assembles the public status page (``opsbot serve``'s ``/status`` and ``/status.json``)."""

    def __init__(self, deps: StatusDeps) -> None:
        self._d = deps

    @property
    def enabled(self) -> bool:
        return self._d.config.status_page.enabled

    def listed_services(self) -> list[str]:
        """The services the page lists: ``status_page.services``, else every configured service (sorted)."""
        page = self._d.config.status_page
        return list(page.services) if page.services is not None else sorted(self._d.config.services)

    def snapshot(self) -> StatusSnapshot:
        """The page now: every listed service's state and every open incident with a public update."""
        notices: list[str] = []
        services = self._services(notices)
        incidents, resolved = self._incidents(notices)
        return StatusSnapshot(
            self._d.config.status_page.title,
            self._d.clock.now(),
            tuple(services),
            tuple(incidents),
            tuple(notices),
            tuple(resolved),
        )

    def unreadable(self) -> StatusSnapshot:
        """The page when it could not be assembled at all: every listed service unknown, one notice."""
        services = tuple(ServiceStatus(name, ServiceState.UNKNOWN) for name in self.listed_services())
        notice = "The status cannot be read right now; service states show as unknown and incidents are missing."
        return StatusSnapshot(self._d.config.status_page.title, self._d.clock.now(), services, (), (notice,))

    def _services(self, notices: list[str]) -> list[ServiceStatus]:
        names = self.listed_services()
        try:
            readings = self._d.health.watch_readings()
        except Unavailable as exc:
            log.warning("status page: watch states unreadable (%s)", exc.detail)
            notices.append(WATCHES_UNREADABLE)
            return [ServiceStatus(name, ServiceState.UNKNOWN) for name in names]
        environments = self._d.config.status_page.environments
        statuses = []
        for name in names:
            mine = [
                r for (service, env), r in readings.items() if service == name and (environments is None or env in environments)
            ]
            state = state_of([r.level for r in mine])
            statuses.append(ServiceStatus(name, state, _since(state, mine)))
        return statuses

    def _incidents(self, notices: list[str]) -> tuple[list[PublicIncident], list[PublicIncident]]:
        """(open incidents, recently resolved ones) that have public updates, each latest first."""
        listed = set(self.listed_services())
        hours = self._d.config.status_page.show_resolved_hours
        try:
            with self._d.uow() as uow:
                repository = uow.incidents
                opened = [(i, repository.timeline(i.id)) for i in repository.open_incidents()]
                since = self._d.clock.now() - timedelta(hours=hours)
                closed = [(i, repository.timeline(i.id)) for i in repository.resolved_since(since)] if hours else []
        except Unavailable as exc:
            log.warning("status page: incidents unreadable (%s)", exc.detail)
            notices.append(INCIDENTS_UNREADABLE)
            return [], []
        published = [public for incident, timeline in opened if (public := _public(incident, timeline, listed)) is not None]
        resolved = [public for incident, timeline in closed if (public := _public(incident, timeline, listed)) is not None]
        return sorted(published, key=lambda i: i.updates[0].at, reverse=True)[:MAX_INCIDENTS], resolved[:MAX_INCIDENTS]


def _public(incident: Incident, timeline: list[TimelineEntry], listed: set[str]) -> PublicIncident | None:
    """The incident's public face, or None when no update of it was made public (then the page does not show it)."""
    updates = [
        PublicUpdate(entry.at, str(entry.data.get("status") or incident.status.value), entry.public)
        for entry in reversed(timeline)
        if entry.public and entry.kind in PUBLISHED_KINDS
    ]
    if not updates:
        return None
    services = tuple(s for s in incident.services if s in listed)
    return PublicIncident(incident.ref, services, incident.declared_at, tuple(updates[:MAX_UPDATES]), incident.resolved_at)


def _since(state: ServiceState, readings: list[WatchReading]) -> datetime | None:
    """When the environment that decided ``state`` reached it (the earliest, for an outage in two)."""
    level = {ServiceState.OUTAGE: "down", ServiceState.DEGRADED: "warning", ServiceState.OPERATIONAL: "ok"}.get(state)
    moments = [r.since for r in readings if r.level == level and r.since is not None]
    return min(moments) if moments else None
