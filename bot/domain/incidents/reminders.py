"""Update reminders by severity cadence, snoozing them, and escalation while nobody acknowledges.

Both are background jobs (RQ in production, run by `opsbot worker`), so they survive restarts. A job
key makes scheduling idempotent; and each job claims its turn on the incident's row (``reminder_seq``
/ ``escalation_level``) before posting, so a job that runs twice, late, or after the incident moved
on posts once or not at all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.config.incidents import EscalationStep
from bot.domain.incidents.common import (
    cadence,
    change,
    get,
    log,
    number,
    people,
    post_in_channel,
    record,
    require_open,
    require_participant,
)
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import Escalation, Note, Reminder
from bot.domain.incidents.model import Incident, Kind
from bot.domain.incidents.paging import Paging
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.shared.errors import Conflict, NotFound, OpsError
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply, UnitOfWork

REMIND_JOB = "incidents.remind"
ESCALATE_JOB = "incidents.escalate"


def reminder_key(incident_id: int, seq: int) -> str:
    return f"incident-remind:{incident_id}:{seq}"


def escalation_key(incident_id: int, level: int) -> str:
    return f"incident-escalate:{incident_id}:{level}"


class Reminders:
    """Arming, firing and snoozing update reminders; scheduling, firing and stopping escalation."""

    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps
        self.paging = Paging(deps)

    def due_after(self, incident: Incident, now: datetime, promised: datetime | None) -> datetime | None:
        """When the next update is overdue: the promised time or the severity's cadence, whichever is sooner."""
        every = cadence(self._d, incident)
        candidates = [t for t in (promised, now + every if every else None) if t is not None]
        return min(candidates) if candidates else None

    def arm(self, incident: Incident, due: datetime | None, *, uow: UnitOfWork | None = None) -> None:
        """Schedule the reminder for the incident's current ``reminder_seq``; with ``uow``, as an outbox effect of it."""
        if due is None or not incident.is_open:
            return
        payload = {"incident": incident.id, "seq": incident.reminder_seq, "due": due.isoformat()}
        key = reminder_key(incident.id, incident.reminder_seq)
        if uow is not None:
            uow.outbox.schedule(due, REMIND_JOB, payload, key=key, origin=incident.origin)
        else:
            self._d.jobs.schedule(due, REMIND_JOB, payload, key=key)

    def disarm(self, incident: Incident, *, uow: UnitOfWork) -> None:
        """Cancel the reminder for the incident's current ``reminder_seq``, as an outbox effect of ``uow`` (delivered
        once it commits, whenever Redis answers)."""
        uow.outbox.cancel_job(reminder_key(incident.id, incident.reminder_seq), origin=incident.origin)

    def remind(self, actor: Actor, payload: dict[str, Any]) -> None:
        """The job: if this reminder is still the current one and has not fired, remind the commander."""
        d, seq = self._d, int(payload["seq"])

        def claim(current: Incident) -> Incident:
            if not current.is_open or current.reminder_seq != seq or current.reminded_seq >= seq:
                raise Conflict("stale")
            return replace(current, reminded_seq=seq)

        try:
            _, incident = change(d, int(payload["incident"]), claim)
        except (Conflict, NotFound):
            return  # updated, snoozed, resolved, or already reminded: nothing to say
        now = d.clock.now()
        due = datetime.fromisoformat(payload["due"]) if payload.get("due") else now
        reminder_id = f"{incident.id}.{seq}"
        post_in_channel(d, incident, Reminder(incident, due, now, reminder_id, d.config.incidents.snooze_minutes))
        record(d, actor, incident, Kind.REMINDER, f"update overdue since {due:%H:%M} UTC; commander reminded", by="opsbot")

    def snooze(self, actor: Actor, reminder_id: str) -> Reply:
        """The Snooze button: the current reminder moves ``snooze_minutes`` later; the button carried only ``id.seq``."""
        d = self._d
        incident_id, _, seq_text = reminder_id.partition(".")
        incident_number, seq = number(incident_id), (int(seq_text) if seq_text.isascii() and seq_text.isdigit() else None)
        if incident_number is None or seq is None:
            raise NotFound("reminder", reminder_id[:20])
        found = get(d, incident_number)
        if found is None:
            raise NotFound("incident", incident_id)
        require_open(found)
        require_participant(d, actor, found, "incident snooze")
        minutes = d.config.incidents.snooze_minutes

        def bump(current: Incident) -> Incident:
            if current.reminder_seq != seq:
                raise Conflict("This reminder is out of date: an update was posted or it was snoozed already.")
            return replace(current, reminder_seq=current.reminder_seq + 1)

        until = d.clock.now() + timedelta(minutes=minutes)

        def reschedule(uow: IncidentsUnitOfWork, before: Incident, after: Incident) -> None:  # one transaction: nothing half-done
            self.disarm(before, uow=uow)
            self.arm(after, until, uow=uow)
            record(d, actor, after, Kind.SNOOZE, f"reminder snoozed until {until:%H:%M} UTC", uow=uow)

        change(d, found.id, bump, then=reschedule)
        # The reminder itself turns into the note, for everyone in the channel.
        note = Note("😴", actor.user_id, f"snoozed the update reminder for {minutes} min (until {until:%H:%M} UTC).")
        return Reply(note, visibility="in_channel", replace_original=True)

    def schedule_escalation(self, incident: Incident, *, uow: UnitOfWork | None = None) -> None:
        """One job per configured step that names someone; the first may be due at once. With ``uow``, as outbox
        effects of it."""
        config = self._d.config.incidents
        found = config.severity(incident.severity)
        if found is None:
            return
        for level, step in enumerate(config.escalation_for(found[1])):
            if step.notify or self._pages_at(step):
                at = incident.declared_at + timedelta(minutes=step.after_minutes)
                payload = {"incident": incident.id, "level": level}
                if uow is not None:
                    uow.outbox.schedule(at, ESCALATE_JOB, payload, key=escalation_key(incident.id, level), origin=incident.origin)
                else:
                    self._d.jobs.schedule(at, ESCALATE_JOB, payload, key=escalation_key(incident.id, level))

    def stop_escalation(self, incident: Incident, *, uow: UnitOfWork) -> None:
        """Cancel every escalation step's job, as outbox effects of ``uow``."""
        config = self._d.config.incidents
        found = config.severity(incident.severity)
        steps = config.escalation_for(found[1]) if found else []
        for level in range(max(len(steps), incident.escalation_level + 1)):
            uow.outbox.cancel_job(escalation_key(incident.id, level), origin=incident.origin)

    def _pages_at(self, step: EscalationStep) -> bool:
        return step.page and self._d.config.pagerduty is not None

    def escalate(self, actor: Actor, payload: dict[str, Any]) -> None:
        """The job: page this level unless the incident was acknowledged or resolved (or this level already fired)."""
        d, level = self._d, int(payload["level"])
        first = get(d, int(payload["incident"]))
        found = d.config.incidents.severity(first.severity) if first else None
        steps = d.config.incidents.escalation_for(found[1]) if found else []
        if first is None or level >= len(steps) or not (steps[level].notify or self._pages_at(steps[level])):
            return
        step = steps[level]

        def claim(current: Incident) -> Incident:
            if not current.is_open or current.acknowledged_at is not None or current.escalation_level > level:
                raise Conflict("skipped")
            return replace(current, escalation_level=level + 1)

        def page(uow: Any, _: Incident, claimed: Incident) -> None:
            if self._pages_at(step):
                self.paging.trigger(uow, claimed, f"escalation-{level + 1}")

        try:
            _, incident = change(d, first.id, claim, then=page)
        except Conflict:
            return
        if not step.notify:
            label = step.label or f"level {level + 1}"
            record(d, actor, incident, Kind.ESCALATION, f"escalated to {label}: paged through PagerDuty", by="opsbot")
            return
        users, _ = people(d, step.notify)
        if users:
            try:
                d.conversations.invite(incident.channel_id, users)
            except OpsError:  # the mention below still reaches them
                log.warning("could not invite escalation level %s to %s", level + 1, incident.channel_id)
            change(d, incident.id, lambda current: current.with_participants(*users))
        label = step.label or f"level {level + 1}"
        post_in_channel(d, incident, Escalation(incident, level + 1, label, step.notify, d.clock.now()))
        record(d, actor, incident, Kind.ESCALATION, f"escalated to {label}: " + ", ".join(step.notify), by="opsbot")
