"""`/ops incident update`: the runbook's update, posted in the channel, the status message edited, reminders re-armed."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.config.durations import format_duration, parse_duration
from bot.domain.incidents.common import (
    INCIDENT_REF,
    cadence,
    change,
    get,
    number,
    post_in_channel,
    public_text_problem,
    record,
    refresh_in,
    require_open,
    require_participant,
    still_waiting,
    target,
)
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import Choice, StatusUpdate, UpdateForm
from bot.domain.incidents.model import Incident, Kind, Status
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.incidents.reminders import Reminders
from bot.domain.incidents.resolve import Resolutions
from bot.domain.shared.commands import Args, control_characters
from bot.domain.shared.errors import NotFound, UsageError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply

USAGE = 'incident update [INC-n] <investigating|identified|monitoring|resolved> <text> [--impact "…"] [--what "…"] [--next 30m] [--public "…"]'
CLOCK_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_NEXT = timedelta(days=2)
MAX_TEXT = 3000
FIELDS = ("status", "impact", "what_happened", "current_status", "next_update", "public")


@dataclass(frozen=True)
class PostUpdate:
    """``status`` None means: open the form."""

    status: str | None = None
    current_status: str = ""
    impact: str | None = None
    what_happened: str = ""
    next_update: str | None = None
    incident: str | None = None  # INC-n: update it from any channel (its commander or an admin)
    public: str = ""  # what the public status page shows ("": the update stays internal)


def parse(args: Args) -> PostUpdate:
    ref = args.positional[0] if args.positional and INCIDENT_REF.match(args.positional[0]) else None
    if ref is not None:  # `update INC-12 …`: the rest as if typed in its channel
        args = dataclasses.replace(args, positional=args.positional[1:], typed=args.typed[1:] if args.typed else None)
    if not args.positional and not args.options:
        return PostUpdate(incident=ref)
    statuses = [s.value for s in Status]
    status = args.positional[0].lower() if args.positional else ""
    if status not in statuses:
        raise UsageError(f"Start with the status: one of {', '.join(f'`{s}`' for s in statuses)}.", f"/ops {USAGE}")
    text = args.text(1)
    if not text and status != Status.RESOLVED:
        raise UsageError("Say what the current status is after the status word.", f"/ops {USAGE}")
    public = args.options.get("public", "").strip()
    problem = public_text_problem(public)
    if problem:
        raise UsageError(f"`--public`: {problem}", f"/ops {USAGE}")
    return PostUpdate(
        status, text, args.options.get("impact"), args.options.get("what", ""), args.options.get("next"), ref, public
    )


def parse_next(text: str, now: datetime) -> datetime:
    """``30m``, ``1h30m`` or a UTC time of day like ``14:30`` (the next one to come); ValueError otherwise."""
    value = text.strip().lower().removesuffix("utc").strip()
    clock = CLOCK_TIME.match(value)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"`{text}` is not a time of day")
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)
    try:
        return now + parse_duration(value, maximum=MAX_NEXT)
    except ValueError:
        raise ValueError(f"`{text[:40]}` is not a time like 30m, 1h or 14:30 (UTC)") from None


def form_errors(values: dict[str, str]) -> dict[str, str]:
    """What is wrong with a submitted update form, by field; fast and local (it runs before Slack's ack)."""
    errors = {}
    if values.get("status") not in {s.value for s in Status}:
        errors["status"] = "Pick a status."
    resolving = values.get("status") == Status.RESOLVED
    if not values.get("impact", "").strip() and not resolving:
        errors["impact"] = "Impact is required: the update template says who is affected, and how."
    if not values.get("current_status", "").strip():
        errors["current_status"] = "Current status is required: what is being done right now."
    next_update = values.get("next_update", "").strip()
    if not next_update and not resolving:
        errors["next_update"] = "Next update is required: when the next update comes, like 30m, 1h or 14:30 (UTC)."
    elif next_update and not resolving:
        try:
            parse_next(next_update, datetime(2000, 1, 1))
        except ValueError as exc:
            errors["next_update"] = str(exc).replace("`", "") + "."
    for name in FIELDS:
        if len(values.get(name, "")) > MAX_TEXT:
            errors[name] = f"Keep this under {MAX_TEXT} characters."
    public = public_text_problem(values.get("public", "").strip())
    if public and "public" not in errors:
        errors["public"] = public[0].upper() + public[1:]
    return {**errors, **control_characters(values)}


class Updates:
    """Posting the runbook's status update, from the command, the form, or a reminder's button."""

    def __init__(self, deps: IncidentDeps, reminders: Reminders, resolutions: Resolutions) -> None:
        self._d = deps
        self._reminders = reminders
        self._resolutions = resolutions

    def form_errors(self, values: dict[str, str]) -> dict[str, str]:
        return form_errors(values)

    def run(self, command: PostUpdate, actor: Actor) -> Reply:
        d = self._d
        incident = target(d, actor, command.incident, "incident update")
        require_open(incident)
        if actor.channel_id == incident.channel_id:  # named from elsewhere, `target` required its commander or an admin
            require_participant(d, actor, incident, "incident update")
        if command.status is None:
            return self.open_form(actor, incident)
        if command.status == Status.RESOLVED:
            return self._resolutions.resolve(actor, incident, command.current_status, public=command.public)
        impact = incident.impact if command.impact is None else command.impact.strip()
        if not impact:
            raise UsageError(
                'The update template needs Impact: add --impact "who is affected, and how" (nothing was posted).', f"/ops {USAGE}"
            )
        now = d.clock.now()
        if command.next_update:
            try:
                promised = parse_next(command.next_update, now)
            except ValueError as exc:
                raise UsageError(f"`--next`: {exc}.", f"/ops {USAGE}") from None
        else:
            every = cadence(d, incident)
            if every is None:
                raise UsageError(
                    f"The update template needs Next update: add --next 1h ({incident.severity} has no update cadence; nothing was posted).",
                    f"/ops {USAGE}",
                )
            promised = now + every
        return self.post(
            actor,
            incident,
            Status(command.status),
            impact,
            command.what_happened.strip(),
            command.current_status,
            promised,
            public=command.public,
        )

    def open_form(self, actor: Actor, incident: Incident) -> Reply:
        if not actor.request_id:
            raise UsageError("The form can only open from Slack; give the status and text instead.", f"/ops {USAGE}")
        every = cadence(self._d, incident)
        statuses = [Choice(s.value, s.value.capitalize()) for s in Status]
        self._d.conversations.open_form(
            actor.request_id, UpdateForm(incident, statuses, format_duration(every).replace(" ", "") if every else "")
        )
        return Reply(Notice(f"The update form for {incident.ref} is open.", icon="📝"))

    def open_form_for(self, actor: Actor, incident_id: str) -> Reply:
        """The reminder's "Post update" button (it carried only the incident id)."""
        incident = get(self._d, found) if (found := number(incident_id)) else None
        if incident is None:
            raise NotFound("incident", incident_id[:20])
        require_open(incident)
        require_participant(self._d, actor, incident, "incident update")
        return self.open_form(actor, incident)

    def channel_of(self, incident_id: str) -> str | None:
        """The channel of the incident a submitted update form names (a form has no channel of its own)."""
        incident = get(self._d, found) if (found := number(incident_id)) else None
        return incident.channel_id if incident else None

    def submit_form(self, actor: Actor, incident_id: int, values: dict[str, str]) -> Reply:
        d = self._d
        incident = get(d, incident_id)
        if incident is None:
            raise NotFound("incident", str(incident_id))
        require_open(incident)
        require_participant(d, actor, incident, "incident update")
        errors = form_errors(values)
        if errors:
            raise UsageError(next(iter(errors.values())))
        if values["status"] == Status.RESOLVED:
            return self._resolutions.resolve(
                actor, incident, values["current_status"].strip(), public=values.get("public", "").strip()
            )
        now = d.clock.now()
        return self.post(
            actor,
            incident,
            Status(values["status"]),
            values["impact"].strip(),
            values.get("what_happened", "").strip(),
            values["current_status"].strip(),
            parse_next(values["next_update"], now),
            public=values.get("public", "").strip(),
        )

    def post(
        self,
        actor: Actor,
        incident: Incident,
        status: Status,
        impact: str,
        what_happened: str,
        current: str,
        promised: datetime,
        *,
        public: str = "",
    ) -> Reply:
        """Post the update first (if Slack refuses, nothing is recorded), then record it and re-arm the reminder;
        ``public`` (if any) is what the public status page shows of it."""
        d = self._d
        now, user = d.clock.now(), actor.user_id
        message = StatusUpdate(
            incident, status, impact, incident.declared_at, now, what_happened, current, promised, user, public=public
        )
        post_in_channel(d, incident, message)

        def apply(latest: Incident) -> Incident:
            require_open(latest)  # resolved while this update was being posted
            return replace(
                latest,
                status=status,
                impact=impact,
                last_update_at=now,
                next_update_at=promised,
                reminder_seq=latest.reminder_seq + 1,
            ).with_participants(user)

        done: list[IncidentsUnitOfWork] = []

        def follow(uow: IncidentsUnitOfWork, before: Incident, after: Incident) -> None:
            # In the change's transaction: Redis or Slack going away cannot leave the update recorded without its
            # timeline entry, or its reminder moved without the update (the outbox schedules and edits once committed).
            self._reminders.disarm(before, uow=uow)
            self._reminders.arm(after, self._reminders.due_after(after, now, promised), uow=uow)
            text = f"{status.value}: {current}" + (f" · what happened: {what_happened}" if what_happened else "")
            record(d, actor, after, Kind.UPDATE, text, data={"status": status.value}, public=public, uow=uow)
            refresh_in(uow, d, after)
            done.append(uow)

        _, after = change(d, incident.id, apply, then=follow)
        due = self._reminders.due_after(after, now, promised)
        warnings = still_waiting(done[0].pending)  # what Slack or Redis has not taken yet, in words
        when = f"; the next update is due by {due:%H:%M} UTC" if due else ""
        published = "; its public text is on the status page" if public and d.config.status_page.enabled else ""
        return Reply(Notice(f"Update posted in #{after.channel_name}{when}{published}.", details=warnings))
