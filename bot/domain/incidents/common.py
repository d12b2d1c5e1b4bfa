"""What every incident command shares: finding the incident, who may act on it, recording, keeping messages current."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from bot.config import Severity
from bot.domain.shared.context import Call
from bot.domain.shared.errors import NotFound, NotPermitted, OpsError, UsageError
from bot.domain.incidents.messages import Declaration, Summary
from bot.domain.incidents.model import Conversations, Incident, IncidentStore, Kind, TimelineEntry
from bot.domain.shared.policy import Role
from bot.domain.shared.ports import MessageRef

log = logging.getLogger("opsbot.incidents")
REF = re.compile(r"^(?:#|inc-)?(\d{1,9})$", re.I)


def store(call: Call) -> IncidentStore:
    if call.services.incidents is None:
        raise OpsError("Incidents are not set up in this deployment (no incident store is wired).")
    return call.services.incidents


def slack(call: Call) -> Conversations:
    if call.services.conversations is None:
        raise OpsError("Incidents are not set up in this deployment (no Slack conversations adapter is wired).")
    return call.services.conversations


def here(call: Call) -> Incident:
    """The incident whose channel the command was typed in."""
    channel = call.actor.channel_id or ""
    incident = store(call).by_channel(channel) if channel else None
    if incident is None:
        open_ones = store(call).open_incidents()
        hint = " Open incidents: " + ", ".join(f"`{i.ref}` #{i.channel_name}" for i in open_ones[:5]) + "." if open_ones else ""
        raise UsageError(f"This is not an incident channel: run this in the incident's own channel.{hint}")
    return incident


def by_ref(call: Call, text: str) -> Incident:
    """``12``, ``#12``, ``INC-12`` or the channel name."""
    match = REF.match(text.strip())
    found = None
    if match:
        found = store(call).get(int(match.group(1)))
    else:
        found = next((i for i in store(call).open_incidents() if i.channel_name == text.strip().lstrip("#")), None)
    if found is None:
        raise NotFound("incident", text[:40])
    return found


def severity(call: Call, name: str) -> tuple[str, Severity]:
    found = call.config.incidents.severity(name)
    if found is None:
        known = ", ".join(f"`{s}`" for s in call.config.incidents.severities)
        raise UsageError(f"Severity `{name[:20]}` is not configured; use one of {known}.")
    return found


def cadence(call: Call, incident: Incident) -> timedelta | None:
    """How often the incident's severity wants an update (None: no reminders)."""
    found = call.config.incidents.severity(incident.severity)
    minutes = found[1].update_every_minutes if found else None
    return timedelta(minutes=minutes) if minutes else None


def in_incident(call: Call, incident: Incident, user: str) -> bool:
    """Whether ``user`` is part of the incident: a role holder, invited responder, or a member of its channel."""
    if user in incident.participants or user in {incident.commander, incident.comms, incident.scribe}:
        return True
    try:
        return user in slack(call).members(incident.channel_id)
    except OpsError:
        log.warning("could not read the members of %s", incident.channel_id)
        return False


def require_participant(call: Call, incident: Incident, action: str) -> None:
    if not in_incident(call, incident, call.actor.user_id):
        raise NotPermitted("incident participant", action, f"join #{incident.channel_name} or ask the commander to add you")


def require_commander(call: Call, incident: Incident, action: str) -> None:
    """The commander, or an admin (someone must be able to act when the commander is away)."""
    if call.actor.user_id != incident.commander and not call.services.policy.has(call.actor.user_id, Role.ADMIN):
        raise NotPermitted("incident commander", action, f"the commander of {incident.ref} or an admin")


def require_open(incident: Incident) -> None:
    if not incident.is_open:
        raise UsageError(f"{incident.ref} was resolved at {incident.resolved_at:%H:%M} UTC; declare a new incident if it is back.")


def people(call: Call, principals: list[str]) -> tuple[list[str], list[str]]:
    """User IDs for users and user groups; and the groups that could not be read."""
    users: list[str] = []
    unreadable: list[str] = []
    for principal in principals:
        if principal.startswith("S"):
            try:
                users.extend(sorted(call.services.groups.members(principal)))
            except OpsError:
                unreadable.append(principal)
        else:
            users.append(principal)
    return list(dict.fromkeys(users)), unreadable


def record(call: Call, incident: Incident, kind: Kind, text: str, *, actor: str | None = None,
           link: str | None = None, key: str | None = None, data: dict[str, str] | None = None, at: datetime | None = None) -> bool:
    """Append to the incident's timeline (now, unless ``at``); False when ``key`` was already recorded."""
    entry = TimelineEntry(incident.id, at or call.services.clock.now(), kind, actor or call.actor.user_id, text, link, key, data or {})
    return store(call).append(entry)


def refresh(call: Call, incident: Incident) -> list[str]:
    """Edit the pinned status message and the incidents-channel summary in place; what failed, as warnings."""
    now = call.services.clock.now()
    warnings = []
    notifier = call.services.notifier
    if incident.channel_id and incident.status_ts:
        try:
            notifier.update(MessageRef(incident.channel_id, incident.status_ts), Declaration(incident, _minutes(cadence(call, incident)), now))
        except OpsError as exc:
            warnings.append(f"the pinned status message could not be updated ({exc.message})")
    if incident.summary_channel and incident.summary_ts:
        try:
            notifier.update(MessageRef(incident.summary_channel, incident.summary_ts), Summary(incident, now))
        except OpsError as exc:
            warnings.append(f"the summary in the incidents channel could not be updated ({exc.message})")
    return warnings


def _minutes(value: timedelta | None) -> int | None:
    return int(value.total_seconds() // 60) if value else None


def cadence_minutes(call: Call, incident: Incident) -> int | None:
    return _minutes(cadence(call, incident))
