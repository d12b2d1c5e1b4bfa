"""`/ops incident declare`: a channel, the responders in it, the declaration pinned, a summary, reminders armed."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.config import OpsConfig
from bot.domain.incidents.common import SLACK_SLOW, change, people, severity, still_waiting
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import (
    AlreadyDeclared,
    Choice,
    Declaration,
    Declared,
    DeclareForm,
    Declaring,
    Summary,
    WhatChanged,
)
from bot.domain.incidents.model import ChannelRef, Incident, Kind, Status, TimelineEntry
from bot.domain.incidents.naming import channel_name
from bot.domain.incidents.ports import NameTaken
from bot.domain.incidents.reminders import Reminders
from bot.domain.shared import catalog
from bot.domain.shared.changes import what_changed
from bot.domain.shared.commands import Args, control_characters
from bot.domain.shared.errors import Conflict, NotFound, OpsError, UsageError
from bot.domain.shared.messages import DryRunReport, Notice, WouldHappen
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

USAGE = 'incident declare <severity> <title> [--service api] [--impact "…"] [--eta "…"]'
MAX_TITLE = 1000
MAX_TEXT = 3000
NAME_ATTEMPTS = 9
DECLARED_KEY = "declared"  # the timeline entry that says a declaration's steps are recorded
# The same person declaring the same title again within this window is an impatient second send (Slack was slow),
# answered with the first incident and a "Declare another" button, not a second incident.
DUPLICATE_WINDOW = timedelta(minutes=2)
DECLARE_AGAIN_KIND = "incident-declare-again"
PROGRESS_AFTER_SECONDS = 1.0  # creating the channel takes longer than this: say what is under way
log = logging.getLogger("opsbot.incidents")


@dataclass(frozen=True)
class DeclareIncident:
    """``severity`` None means: open the form."""

    severity: str | None = None
    title: str = ""
    services: tuple[str, ...] = ()
    impact: str = ""
    eta: str = ""


def parse(args: Args) -> DeclareIncident:
    if not args.positional and not args.options:
        return DeclareIncident()
    if len(args.positional) < 2:
        raise UsageError("Give a severity and a title (or run `/ops incident declare` alone for the form).", f"/ops {USAGE}")
    services = tuple(part.strip() for part in args.options.get("service", "").split(",") if part.strip())
    return DeclareIncident(
        args.positional[0],
        args.text(1),
        services,
        args.options.get("impact", "").strip(),
        args.options.get("eta", "").strip(),
    )


def form_errors(config: OpsConfig, values: dict[str, str]) -> dict[str, str]:
    """What is wrong with a submitted declare form, by field; fast and local (it runs before Slack's ack)."""
    errors = {}
    if config.incidents.severity(values.get("severity", "")) is None:
        errors["severity"] = "Pick a severity."
    title = values.get("title", "").strip()
    if not title:
        errors["title"] = "A title is required: one line saying what is broken."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"Keep the title under {MAX_TITLE} characters."
    service = values.get("service", "").strip().lower()
    if service and service not in config.services:
        errors["service"] = f"Unknown service {service!r}."
    if len(values.get("impact", "")) > MAX_TEXT:
        errors["impact"] = f"Keep the impact under {MAX_TEXT} characters."
    return {**errors, **control_characters(values)}


class Declarations:
    """Declaring an incident, from the command, the form, or a health alert's button."""

    def __init__(self, deps: IncidentDeps, reminders: Reminders) -> None:
        self._d = deps
        self._reminders = reminders

    def run(self, command: DeclareIncident, actor: Actor) -> Reply:
        if command.severity is None:
            return self.open_form(actor)
        return self.declare(actor, command)

    def form_errors(self, values: dict[str, str]) -> dict[str, str]:
        return form_errors(self._d.config, values)

    def submit_form(self, actor: Actor, values: dict[str, str]) -> Reply:
        errors = form_errors(self._d.config, values)
        if errors:
            raise UsageError(next(iter(errors.values())))
        service = values.get("service", "").strip()
        return self.declare(
            actor,
            DeclareIncident(
                values["severity"], values["title"].strip(), (service,) if service else (), values.get("impact", "").strip()
            ),
        )

    def open_form(
        self, actor: Actor, *, severity_hint: str | None = None, title: str = "", service: str | None = None, impact: str = ""
    ) -> Reply:
        """The declare modal, optionally pre-filled (from a health alert)."""
        if not actor.request_id:
            raise UsageError("The form can only open from Slack; give the severity and title instead.", f"/ops {USAGE}")
        config = self._d.config
        incidents = config.incidents
        severities = [
            Choice(
                name,
                f"{name} · updates every {s.update_every_minutes} min"
                if s.update_every_minutes
                else f"{name} · no update reminders",
            )
            for name, s in incidents.severities.items()
        ]
        known = incidents.severity(severity_hint or "")
        form = DeclareForm(
            severities,
            [Choice(name, name) for name in config.services],
            actor.channel_id or "",
            severity=known[0] if known else None,
            title=title[:MAX_TITLE],
            service=service if service in config.services else None,
            impact=impact[:MAX_TEXT],
        )
        self._d.conversations.open_form(actor.request_id, form)
        return Reply(Notice("The declare form is open.", icon="📝"))

    def open_form_from_alert(self, actor: Actor, alert_id: str) -> Reply:
        """The health alert's "Declare incident" button: the form, pre-filled from the alert."""
        context: dict[str, Any] = self._d.health.alert_context(alert_id)
        return self.open_form(
            actor,
            severity_hint=context.get("severity_hint"),
            title=str(context.get("summary") or ""),
            service=context.get("service"),
            impact=str(context.get("summary") or ""),
        )

    def declare_again(self, actor: Actor, again_id: str) -> Reply:
        """The "Declare another" button under a duplicate's answer: the declaration it stands for, on purpose."""
        d = self._d
        d.policy.require(actor, Role.VIEWER, "incident declare")
        saved = d.state.get(DECLARE_AGAIN_KIND, again_id)
        if saved is None or saved.get("user") != actor.user_id:
            raise Conflict("That button has expired; run `/ops incident declare` again.")
        fields = {k: v for k, v in saved.items() if k != "user"}
        fields["services"] = tuple(fields.get("services") or ())
        return self.declare(actor, DeclareIncident(**fields), again=True)

    def _checked(self, command: DeclareIncident) -> tuple[str, tuple[str, ...]]:
        """The severity's configured name and the declared services, checked; raises ``UsageError``/``NotFound``."""
        d = self._d
        severity_name, _ = severity(d, command.severity or "")
        if not command.title:
            raise UsageError("Give the incident a title.", f"/ops {USAGE}")
        if len(command.title) > MAX_TITLE or len(command.impact) > MAX_TEXT:
            raise UsageError(f"Keep the title under {MAX_TITLE} and the impact under {MAX_TEXT} characters.", f"/ops {USAGE}")
        return severity_name, tuple(dict.fromkeys(catalog.service(d.config, name)[0] for name in command.services))

    def preview(self, command: DeclareIncident, actor: Actor) -> Reply:
        """``--dry-run``: the channel it would create, who would be invited, what would be posted and scheduled.
        Reads the open incidents and the responders' user groups; creates, posts and schedules nothing."""
        if command.severity is None:
            raise UsageError("A dry run needs the severity and the title: the form has nothing to preview.", f"/ops {USAGE}")
        d = self._d
        severity_name, services = self._checked(command)
        _, level = severity(d, severity_name)
        now = d.clock.now()
        with d.uow() as uow:
            earlier = _same_declaration(uow.incidents.open_incidents(), actor.user_id, command.title, now)
        title = f"declare {severity_name}: {command.title[:100]}"
        if earlier is not None:
            return Reply(
                DryRunReport(
                    title,
                    [
                        WouldHappen(
                            "Duplicate",
                            f"you declared {earlier.ref} with this title moments ago; you would be asked whether to declare another",
                        )
                    ],
                )
            )
        responders, unreadable = people(d, level.responders)
        planned = channel_name(d.config.incidents.channel_prefix, now, command.title, 1)
        steps = [
            WouldHappen("Channel", f"#{planned} created (with -2, -3 … if the name is taken)"),
            WouldHappen(
                "Invited", "you and the responders of " + severity_name + ":", tuple(dict.fromkeys([actor.user_id, *responders]))
            ),
            WouldHappen("Posted", f"the declaration, pinned in the new channel; a summary in <#{d.config.channels.incidents}>"),
            WouldHappen(
                "Reminders",
                f"an update asked for every {level.update_every_minutes} min"
                if level.update_every_minutes
                else "none for this severity",
            ),
        ]
        steps += [
            WouldHappen(
                "Escalation",
                f"after {step.after_minutes} min unacknowledged{f' ({step.label})' if step.label else ''}:",
                tuple(step.notify),
            )
            for step in d.config.incidents.escalation_for(level)
            if step.notify
        ]
        if d.config.pagerduty is not None and level.page:
            steps.append(WouldHappen("Paged", f"PagerDuty's on-call, at once ({severity_name} pages when declared)"))
        if services:
            steps.append(
                WouldHappen("Services", ", ".join(services) + ": their deploys and flag changes are told to the incident")
            )
        steps += [
            WouldHappen("Unreadable", f"user group {group} could not be read, so its members would not be invited")
            for group in unreadable
        ]
        return Reply(DryRunReport(title, steps))

    def declare(self, actor: Actor, command: DeclareIncident, *, again: bool = False) -> Reply:
        d = self._d
        severity_name, services = self._checked(command)
        now, user = d.clock.now(), actor.user_id
        with d.uow() as uow:  # step 1: the incident, without a channel yet
            if not again and (earlier := _same_declaration(uow.incidents.open_incidents(), user, command.title, now)):
                saved = {**asdict(command), "services": list(command.services), "user": user}
                again_id = d.state.put(DECLARE_AGAIN_KIND, saved, int(DUPLICATE_WINDOW.total_seconds()) * 5)
                seconds = int((now - earlier.declared_at).total_seconds())
                return Reply(AlreadyDeclared(earlier, seconds, again_id), outcome="duplicate")
            incident = uow.incidents.create(
                Incident(
                    0,
                    command.title,
                    severity_name,
                    services,
                    Status.INVESTIGATING,
                    command.impact,
                    user,
                    now,
                    user,
                    eta=command.eta,
                    participants=(user,),
                )
            )
            uow.commit()
        progress = self._progress_later(actor, incident)
        try:  # step 2: its channel (Slack's answer is needed for everything after), recorded at once
            incident = self._open_channel(incident)
        except Exception:
            with d.uow() as uow:  # no channel, no incident: nothing half-declared
                uow.incidents.discard(incident.id)
                uow.commit()
            raise
        finally:
            progress.cancel()
        return Reply(self.finish(actor, incident))

    def _progress_later(self, actor: Actor, incident: Incident) -> threading.Timer:
        """Unless Slack creates the channel within PROGRESS_AFTER_SECONDS, tell the declarer what is under way
        (when Slack rate-limits channel creation the answer can take 10-20 s; a user who sees nothing sends again)."""
        d = self._d
        planned = channel_name(d.config.incidents.channel_prefix, incident.declared_at, incident.title, 1)

        def tell() -> None:
            if not actor.channel_id:
                return
            try:
                d.conversations.tell(actor.channel_id, actor.user_id, Declaring(incident.ref, incident.title, planned))
            except OpsError as exc:  # a progress note is a courtesy: the declaration goes on
                log.warning("could not tell %s that %s is being declared: %s", actor.user_id, incident.ref, exc.message)

        timer = threading.Timer(PROGRESS_AFTER_SECONDS, tell)
        timer.daemon = True
        timer.start()
        return timer

    def _open_channel(self, incident: Incident) -> Incident:
        channel = self._create_channel(incident)
        _, incident = change(self._d, incident.id, lambda i: replace(i, channel_id=channel.id, channel_name=channel.name))
        return incident

    def finish(self, actor: Actor, incident: Incident, *, tell_declarer: bool = False) -> Declared:
        """Steps 3 and 4 of a declaration: the responders invited; then, in one unit of work, the declaration posted
        and pinned, the summary posted, reminders and escalation scheduled (outbox effects, retried until Slack and
        the queue take them) and the timeline's "declared" entry. Run again by the reconciler for a declaration a
        crash or an outage left part-way; the "declared" entry makes it happen once."""
        d = self._d
        _, level = severity(d, incident.severity)
        warnings: list[str] = []
        responders, unreadable = people(d, level.responders)
        warnings += [f"user group {group} could not be read, so its members were not invited" for group in unreadable]
        warnings += self._invite(incident.channel_id, [incident.declared_by, *responders])
        changed = self._what_changed(incident)
        now = d.clock.now()
        with d.uow() as uow:
            current = uow.incidents.get_for_update(incident.id)
            if current is None:
                raise NotFound("incident", str(incident.id))
            declared = TimelineEntry(
                incident.id,
                now,
                Kind.DECLARED,
                actor.user_id,
                f"{current.severity} declared: {current.title}" + (f" · impact: {current.impact}" if current.impact else ""),
                key=DECLARED_KEY,
            )
            if not uow.incidents.append(declared):
                return Declared(current, warnings)  # finished already (a reconciler round and the declarer raced)
            incident = replace(current, reminder_seq=1).with_participants(*responders)
            uow.incidents.save(incident)
            origin = incident.origin
            uow.outbox.post(
                incident.channel_id,
                Declaration(incident, level.update_every_minutes, incident.declared_at),
                key=incident.status_key,
                origin=origin,
            )
            uow.outbox.pin(incident.status_key, origin=origin)
            if changed is not None:
                uow.outbox.post(incident.channel_id, changed, key=f"incident:{incident.id}:what-changed", origin=origin)
            uow.outbox.post(d.config.channels.incidents, Summary(incident, now), key=incident.summary_key, origin=origin)
            self._reminders.arm(incident, self._reminders.due_after(incident, now, None), uow=uow)
            self._reminders.schedule_escalation(incident, uow=uow)
            self._reminders.paging.declared(uow, incident)
            if tell_declarer:  # they were told the declaration failed part-way: now it is done
                uow.outbox.dm(
                    incident.declared_by, Declared(incident, warnings), key=f"incident:{incident.id}:declared", origin=origin
                )
            uow.commit()
        waiting = still_waiting(uow.pending)
        if any(p.key == incident.status_key and not p.gave_up for p in uow.pending):
            waiting = [
                f"{incident.ref} is declared; its status message is still being posted (Slack is slow to answer).",
                *(note for note in waiting if not note.startswith(SLACK_SLOW)),
            ]
        return Declared(incident, warnings, waiting)

    def _what_changed(self, incident: Incident) -> WhatChanged | None:
        """The declared services' deploys, rollbacks and flag changes of the configured hours before the declaration
        (None when no service is declared)."""
        if not incident.services:
            return None
        hours = self._d.config.incidents.what_changed_hours
        return WhatChanged(incident.ref, what_changed(self._d.recent_changes, incident.services, incident.declared_at, hours))

    def unfinished(self, actor: Actor) -> list[str]:
        """Reconciler step: declarations a crash or an outage left part-way, older than a grace period, finished."""
        d = self._d
        grace = timedelta(seconds=d.config.durability.never_started_after_seconds)
        with d.uow() as uow:
            candidates = [
                i
                for i in uow.incidents.open_incidents()
                if i.declared_at < d.clock.now() - grace and not any(e.key == DECLARED_KEY for e in uow.incidents.timeline(i.id))
            ]
        done = []
        for incident in candidates:
            if not incident.channel_id:  # the process died between asking Slack for the channel and recording it
                incident = self._open_channel(incident)
            self.finish(Actor(incident.declared_by, source="reconciler"), incident, tell_declarer=True)
            done.append(f"finished the declaration of {incident.ref}")
        return done

    def _create_channel(self, incident: Incident) -> ChannelRef:
        prefix = self._d.config.incidents.channel_prefix
        for attempt in [*range(1, NAME_ATTEMPTS + 1), incident.id]:
            try:
                return self._d.conversations.create_channel(channel_name(prefix, incident.declared_at, incident.title, attempt))
            except NameTaken:
                continue
        raise Conflict("Slack already has channels with every name tried for this incident; rename or archive old ones.")

    def _invite(self, channel: str, users: list[str]) -> list[str]:
        try:
            refused = self._d.conversations.invite(channel, list(dict.fromkeys(users)))
        except OpsError as exc:
            return [f"nobody could be invited ({exc.message})"]
        return [f"{user} could not be invited ({reason})" for user, reason in refused.items()]


def _same_declaration(open_incidents: list[Incident], user: str, title: str, now: datetime) -> Incident | None:
    """The newest open incident ``user`` declared with this title (case and spacing aside) within DUPLICATE_WINDOW."""
    wanted = " ".join(title.lower().split())
    matches = [
        i
        for i in open_incidents
        if i.declared_by == user and " ".join(i.title.lower().split()) == wanted and now - i.declared_at < DUPLICATE_WINDOW
    ]
    return max(matches, key=lambda i: i.declared_at, default=None)
