"""What every incident command shares: finding the incident, who may act on it, recording, keeping messages current."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config import Severity
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import Declaration, Summary
from bot.domain.incidents.model import Incident, Kind, TimelineEntry
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.shared.errors import ChannelArchived, NotFound, NotPermitted, OpsError, UsageError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Message, MessageRef, Pending

log = logging.getLogger("opsbot.incidents")
REF = re.compile(r"^(?:#|inc-)?(\d{1,9})$", re.I)


MAX_ID = 2**31 - 1  # the id column is a 32-bit integer (PostgreSQL refuses larger ones with an error)


def number(text: str) -> int | None:
    """``"12"`` → 12: ASCII digits naming a possible incident id; anything else (``²``, ``-1``, 10¹² …) → None."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def get(d: IncidentDeps, incident_id: int) -> Incident | None:
    if not 0 < incident_id <= MAX_ID:
        return None
    with d.uow() as uow:
        return uow.incidents.get(incident_id)


def open_incidents(d: IncidentDeps) -> list[Incident]:
    """Open incidents, oldest first."""
    with d.uow() as uow:
        return uow.incidents.open_incidents()


def timeline(d: IncidentDeps, incident_id: int) -> list[TimelineEntry]:
    with d.uow() as uow:
        return uow.incidents.timeline(incident_id)


def change(
    d: IncidentDeps,
    incident_id: int,
    rule: Callable[[Incident], Incident],
    then: Callable[[IncidentsUnitOfWork, Incident, Incident], None] | None = None,
) -> tuple[Incident, Incident]:
    """Load the incident under a row lock, let ``rule`` decide its next state, save and commit; (before, after).

    ``rule`` may raise (Conflict, UsageError …): nothing is saved then. Changes to one incident take turns.
    ``then(uow, before, after)`` records what the change implies (timeline entries, outbox effects: messages, jobs to
    schedule or cancel) in the same transaction, so that a store going away cannot leave the change half-applied.
    """
    with d.uow() as uow:
        before = uow.incidents.get_for_update(incident_id)
        if before is None:
            raise NotFound("incident", str(incident_id))
        after = rule(before)
        if after != before:
            uow.incidents.save(after)
        if then is not None:
            then(uow, before, after)
        uow.commit()
    return before, after


def here(d: IncidentDeps, actor: Actor) -> Incident:
    """The incident whose channel the command was typed in."""
    channel = actor.channel_id or ""
    incident = None
    if channel:
        with d.uow() as uow:
            incident = uow.incidents.by_channel(channel)
    if incident is None:
        open_ones = open_incidents(d)
        hint = " Open incidents: " + ", ".join(f"`{i.ref}` #{i.channel_name}" for i in open_ones[:5]) + "." if open_ones else ""
        raise UsageError(f"This is not an incident channel: run this in the incident's own channel.{hint}")
    return incident


INCIDENT_REF = re.compile(r"^inc-\d{1,9}$", re.I)  # an incident named in a command typed anywhere: INC-12


def target(d: IncidentDeps, actor: Actor, ref: str | None, action: str) -> Incident:
    """The incident a command is about: the one named (``INC-12``), or the one whose channel it was typed in.

    Named from outside its channel (its channel was archived, or someone runs it from #ops), only its commander or
    an admin may act on it. Raises NotFound, NotPermitted, UsageError."""
    if ref is None:
        return here(d, actor)
    incident = by_ref(d, ref)
    if actor.channel_id != incident.channel_id:
        require_commander(d, actor, incident, action)
    return incident


def post_in_channel(d: IncidentDeps, incident: Incident, message: Message) -> MessageRef:
    """Post ``message`` in the incident's channel; when Slack says that channel is archived, in the incidents
    channel instead, after a note saying why (the incident is still open: its posts must be seen somewhere)."""
    try:
        return d.notifier.post(incident.channel_id, message)
    except ChannelArchived:
        channel = d.config.channels.incidents
        d.notifier.post(channel, Notice(f"#{incident.channel_name} is archived; {incident.ref}'s posts come here.", icon="📦"))
        return d.notifier.post(channel, message)


def by_ref(d: IncidentDeps, text: str) -> Incident:
    """``12``, ``#12``, ``INC-12``, the channel name, or the channel (its ID, as ``<#C123|inc-12-…>`` unwraps to)."""
    match = REF.match(text.strip())
    found = None
    if match:
        found = get(d, int(match.group(1)))
    else:
        wanted = text.strip().lstrip("#")
        found = next((i for i in open_incidents(d) if wanted in (i.channel_name, i.channel_id)), None)
    if found is None:
        raise NotFound("incident", text[:40])
    return found


def severity(d: IncidentDeps, name: str) -> tuple[str, Severity]:
    found = d.config.incidents.severity(name)
    if found is None:
        known = ", ".join(f"`{s}`" for s in d.config.incidents.severities)
        raise UsageError(f"Severity `{name[:20]}` is not configured; use one of {known}.")
    return found


def cadence(d: IncidentDeps, incident: Incident) -> timedelta | None:
    """How often the incident's severity wants an update (None: no reminders)."""
    found = d.config.incidents.severity(incident.severity)
    minutes = found[1].update_every_minutes if found else None
    return timedelta(minutes=minutes) if minutes else None


def in_incident(d: IncidentDeps, incident: Incident, user: str) -> bool:
    """Whether ``user`` is part of the incident: a role holder, invited responder, or a member of its channel."""
    if user in incident.participants or user in {incident.commander, incident.comms, incident.scribe}:
        return True
    try:
        return user in d.conversations.members(incident.channel_id)
    except OpsError:
        log.warning("could not read the members of %s", incident.channel_id)
        return False


def require_participant(d: IncidentDeps, actor: Actor, incident: Incident, action: str) -> None:
    if not in_incident(d, incident, actor.user_id):
        raise NotPermitted("incident participant", action, f"join #{incident.channel_name} or ask the commander to add you")


def require_commander(d: IncidentDeps, actor: Actor, incident: Incident, action: str) -> None:
    """The commander, or an admin (someone must be able to act when the commander is away)."""
    if actor.user_id != incident.commander and not d.policy.has(actor.user_id, Role.ADMIN):
        raise NotPermitted("incident commander", action, f"the commander of {incident.ref} or an admin")


def require_open(incident: Incident) -> None:
    if not incident.is_open:
        raise UsageError(
            f"{incident.ref} was resolved at {incident.resolved_at:%H:%M} UTC; declare a new incident if it is back."
        )


def people(d: IncidentDeps, principals: list[str]) -> tuple[list[str], list[str]]:
    """User IDs for users and user groups; and the groups that could not be read."""
    users: list[str] = []
    unreadable: list[str] = []
    for principal in principals:
        if principal.startswith("S"):
            try:
                users.extend(sorted(d.groups.members(principal)))
            except OpsError:
                unreadable.append(principal)
        else:
            users.append(principal)
    return list(dict.fromkeys(users)), unreadable


def record(
    d: IncidentDeps,
    actor: Actor,
    incident: Incident,
    kind: Kind,
    text: str,
    *,
    by: str | None = None,
    link: str | None = None,
    key: str | None = None,
    data: dict[str, str] | None = None,
    at: datetime | None = None,
    public: str = "",
    uow: IncidentsUnitOfWork | None = None,
) -> bool:
    """Append to the incident's timeline as ``by`` (default: the actor), now unless ``at``; False when ``key`` was already
    recorded. ``public``: what the public status page may show of the entry. With ``uow``, in its transaction (the
    caller commits)."""
    entry = TimelineEntry(incident.id, at or d.clock.now(), kind, by or actor.user_id, text, link, key, data or {}, public)
    if uow is not None:
        return uow.incidents.append(entry)
    with d.uow() as own:
        added = own.incidents.append(entry)
        own.commit()
    return added


def refresh(d: IncidentDeps, incident: Incident) -> list[str]:
    """Edit the pinned status message and the incidents-channel summary in place, through the outbox (retried until
    Slack takes the edit; a newer edit replaces one still waiting); what is still on its way, in words."""
    if not incident.channel_id:
        return []
    with d.uow() as uow:
        refresh_in(uow, d, incident)
        uow.commit()
    return still_waiting(uow.pending)


def refresh_in(uow: IncidentsUnitOfWork, d: IncidentDeps, incident: Incident) -> None:
    """``refresh``'s two edits as outbox effects of ``uow`` (the caller commits)."""
    if not incident.channel_id:
        return
    now = d.clock.now()
    uow.outbox.update(incident.status_key, Declaration(incident, cadence_minutes(d, incident), now), origin=incident.origin)
    uow.outbox.update(incident.summary_key, Summary(incident, now), origin=incident.origin)


SLACK_SLOW = "Slack has not taken every message yet"


def still_waiting(pending: list[Pending]) -> list[str]:
    """What the user should know is still on its way after a change committed (Slack or Redis being slow)."""
    notes = [
        f"Slack refused a message for good ({p.reason}); an operator can post it again with `opsbot outbox retry`."
        for p in pending
        if p.gave_up
    ][:1]
    pending = [p for p in pending if not p.gave_up]
    if any(p.kind.startswith("slack.") for p in pending):
        waiting = sorted({p.reason for p in pending if p.kind.startswith("slack.")})
        notes.append(
            f"Slack has not taken every message yet ({waiting[0]}); opsbot keeps trying, nothing needs to be done again."
        )
    if any(p.kind.startswith("job.") for p in pending):
        notes.append("Reminders will be scheduled as soon as the job queue (Redis) is back.")
    return notes


def cadence_minutes(d: IncidentDeps, incident: Incident) -> int | None:
    value = cadence(d, incident)
    return int(value.total_seconds() // 60) if value else None


MAX_PUBLIC = 1000  # a status page update is a paragraph, not a report
SLACK_REFERENCE = re.compile(r"<[@#!][^>]*>")  # a person, channel or user group in Slack's markup


def public_text_problem(text: str) -> str | None:
    """Why ``text`` cannot go on the public status page, or None. It is public: no Slack mentions of people,
    channels or user groups (their ids would show), and at most ``MAX_PUBLIC`` characters."""
    if len(text) > MAX_PUBLIC:
        return f"keep the public text under {MAX_PUBLIC} characters."
    if SLACK_REFERENCE.search(text):
        return "the public text names a person, channel or group; the status page is public, so write it without them."
    return None
