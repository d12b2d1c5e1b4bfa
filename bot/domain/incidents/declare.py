"""`/ops incident declare`: a channel, the responders in it, the declaration pinned, a summary, reminders armed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bot.config import OpsConfig
from bot.domain.shared import catalog
from bot.domain.shared.commands import Args
from bot.domain.shared.context import Call
from bot.domain.shared.errors import Conflict, OpsError, UsageError
from bot.domain.health.service import alert_context
from bot.domain.incidents.common import people, record, severity, slack, store
from bot.domain.incidents.messages import Choice, Declaration, Declared, DeclareForm, Summary
from bot.domain.incidents.model import ChannelRef, Incident, Kind, NameTaken, Status
from bot.domain.incidents.naming import channel_name
from bot.domain.incidents.reminders import arm, due_after, schedule_escalation
from bot.domain.shared.messages import Notice
from bot.domain.shared.ports import Message, MessageRef, Reply

USAGE = 'incident declare <severity> <title> [--service api] [--impact "…"] [--eta "…"]'
MAX_TITLE = 1000
MAX_TEXT = 3000
NAME_ATTEMPTS = 9


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
    return DeclareIncident(args.positional[0], " ".join(args.positional[1:]).strip(), services,
                           args.options.get("impact", "").strip(), args.options.get("eta", "").strip())


def run(command: DeclareIncident, call: Call) -> Reply:
    if command.severity is None:
        return open_form(call)
    return declare(call, command)


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
    return errors


def submit_form(call: Call, values: dict[str, str]) -> Reply:
    errors = form_errors(call.config, values)
    if errors:
        raise UsageError(next(iter(errors.values())))
    service = values.get("service", "").strip()
    return declare(call, DeclareIncident(values["severity"], values["title"].strip(), (service,) if service else (), values.get("impact", "").strip()))


def open_form(call: Call, *, severity_hint: str | None = None, title: str = "", service: str | None = None, impact: str = "") -> Reply:
    """The declare modal, optionally pre-filled (from a health alert)."""
    if not call.actor.request_id:
        raise UsageError("The form can only open from Slack; give the severity and title instead.", f"/ops {USAGE}")
    incidents = call.config.incidents
    severities = [Choice(name, f"{name} · updates every {s.update_every_minutes} min" if s.update_every_minutes else f"{name} · no update reminders")
                  for name, s in incidents.severities.items()]
    known = incidents.severity(severity_hint or "")
    form = DeclareForm(severities, [Choice(name, name) for name in call.config.services], call.actor.channel_id or "",
                       severity=known[0] if known else None, title=title[:MAX_TITLE],
                       service=service if service in call.config.services else None, impact=impact[:MAX_TEXT])
    slack(call).open_form(call.actor.request_id, form)
    return Reply(Notice("The declare form is open.", icon="📝"))


def open_form_from_alert(call: Call, alert_id: str) -> Reply:
    """The health alert's "Declare incident" button: the form, pre-filled from the alert."""
    context: dict[str, Any] = alert_context(call, alert_id)
    return open_form(call, severity_hint=context.get("severity_hint"), title=str(context.get("summary") or ""),
                     service=context.get("service"), impact=str(context.get("summary") or ""))


def declare(call: Call, command: DeclareIncident) -> Reply:
    severity_name, level = severity(call, command.severity or "")
    if not command.title:
        raise UsageError("Give the incident a title.", f"/ops {USAGE}")
    if len(command.title) > MAX_TITLE or len(command.impact) > MAX_TEXT:
        raise UsageError(f"Keep the title under {MAX_TITLE} and the impact under {MAX_TEXT} characters.", f"/ops {USAGE}")
    services = tuple(dict.fromkeys(catalog.service(call.config, name)[0] for name in command.services))
    now, actor = call.services.clock.now(), call.actor.user_id
    incidents = store(call)
    incident = incidents.create(Incident(0, command.title, severity_name, services, Status.INVESTIGATING, command.impact,
                                         actor, now, actor, eta=command.eta, participants=(actor,)))
    try:
        channel = _create_channel(call, incident)
    except Exception:
        incidents.discard(incident.id)  # no channel, no incident: nothing half-declared
        raise
    warnings: list[str] = []
    responders, unreadable = people(call, level.responders)
    warnings += [f"user group {group} could not be read, so its members were not invited" for group in unreadable]
    warnings += _invite(call, channel.id, [actor, *responders])
    _, incident = incidents.change(incident.id, lambda i: replace(
        i, channel_id=channel.id, channel_name=channel.name, reminder_seq=1).with_participants(*responders))
    status = _post(call, channel.id, Declaration(incident, level.update_every_minutes, now), "the declaration", warnings)
    if status is not None:
        try:
            slack(call).pin(status.channel, status.ts)
        except OpsError as exc:
            warnings.append(f"the status message could not be pinned ({exc.message})")
    summary = _post(call, call.config.channels.incidents, Summary(incident, now), "the summary in the incidents channel", warnings)
    _, incident = incidents.change(incident.id, lambda i: replace(
        i, status_ts=status.ts if status else None,
        summary_channel=summary.channel if summary else None, summary_ts=summary.ts if summary else None))
    record(call, incident, Kind.DECLARED, f"{severity_name} declared: {incident.title}" + (f" · impact: {incident.impact}" if incident.impact else ""))
    arm(call, incident, due_after(call, incident, now, None))
    schedule_escalation(call, incident)
    return Reply(Declared(incident, warnings))


def _create_channel(call: Call, incident: Incident) -> ChannelRef:
    prefix = call.config.incidents.channel_prefix
    for attempt in [*range(1, NAME_ATTEMPTS + 1), incident.id]:
        try:
            return slack(call).create_channel(channel_name(prefix, incident.declared_at, incident.title, attempt))
        except NameTaken:
            continue
    raise Conflict("Slack already has channels with every name tried for this incident; rename or archive old ones.")


def _invite(call: Call, channel: str, users: list[str]) -> list[str]:
    try:
        refused = slack(call).invite(channel, list(dict.fromkeys(users)))
    except OpsError as exc:
        return [f"nobody could be invited ({exc.message})"]
    return [f"{user} could not be invited ({reason})" for user, reason in refused.items()]


def _post(call: Call, channel: str, message: Message, what: str, warnings: list[str]) -> MessageRef | None:
    try:
        return call.services.notifier.post(channel, message)
    except OpsError as exc:
        warnings.append(f"{what} could not be posted ({exc.message})")
        return None
