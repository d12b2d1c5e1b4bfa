"""Paging the on-call engineer through PagerDuty: trigger on declaration (severities with ``page: true``) and at
escalation steps with ``page: true``, acknowledge on `/ops incident ack`, resolve on resolve — one PagerDuty alert
per incident (``dedup_key`` ``opsbot-INC-12``), each event an outbox effect recorded with the change that implies it,
so a failed page is retried (429 after its Retry-After, 5xx with backoff) and never sent twice for one change.
"""

from __future__ import annotations

from typing import Any

from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.model import Incident
from bot.domain.shared.ports import UnitOfWork


class Paging:
    """The PagerDuty events an incident's life records (nothing when ``pagerduty`` is not configured)."""

    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps

    @staticmethod
    def dedup_key(incident: Incident) -> str:
        """The incident's one PagerDuty alert: ``opsbot-INC-12``."""
        return f"opsbot-{incident.ref}"

    def pages(self, incident: Incident) -> bool:
        """Whether anything in this incident's severity may page (on declaration or at an escalation step)."""
        config = self._d.config
        found = config.incidents.severity(incident.severity)
        if config.pagerduty is None or found is None:
            return False
        return found[1].page or any(step.page for step in config.incidents.escalation_for(found[1]))

    def declared(self, uow: UnitOfWork, incident: Incident) -> bool:
        """Trigger the page when the severity asks for one on declaration; whether it did."""
        found = self._d.config.incidents.severity(incident.severity)
        if self._d.config.pagerduty is None or found is None or not found[1].page:
            return False
        self.trigger(uow, incident, "declared")
        return True

    def trigger(self, uow: UnitOfWork, incident: Incident, why: str) -> None:
        """Record a trigger for ``incident`` (``why`` names the step: ``declared``, ``escalation-2``)."""
        config = self._d.config
        assert config.pagerduty is not None
        names = list(config.incidents.severities)
        rank = names.index(incident.severity) if incident.severity in names else len(names)
        summary = f"{incident.ref} {incident.severity}: {incident.title}"
        event: dict[str, Any] = {
            "event_action": "trigger",
            "dedup_key": self.dedup_key(incident),
            "payload": {
                "summary": summary[:1024],  # Events API v2 limit
                "source": "opsbot",
                "severity": config.pagerduty.severity_of(incident.severity, rank),
                "component": ", ".join(incident.services) or None,
                "group": incident.channel_name or None,
                "class": incident.severity,
                "custom_details": {
                    "incident": incident.ref,
                    "channel": incident.channel_name,
                    "declared_by": incident.declared_by,
                },
            },
            "client": "opsbot",
        }
        event["payload"] = {k: v for k, v in event["payload"].items() if v is not None}
        uow.outbox.page(event, key=f"incident:{incident.id}:page:{why}", origin=incident.origin)

    def acknowledged(self, uow: UnitOfWork, incident: Incident) -> None:
        if self.pages(incident):
            self._close(uow, incident, "acknowledge")

    def resolved(self, uow: UnitOfWork, incident: Incident) -> None:
        if self.pages(incident):
            self._close(uow, incident, "resolve")

    def _close(self, uow: UnitOfWork, incident: Incident, action: str) -> None:
        event = {"event_action": action, "dedup_key": self.dedup_key(incident)}
        uow.outbox.page(event, key=f"incident:{incident.id}:page:{action}", origin=incident.origin)
