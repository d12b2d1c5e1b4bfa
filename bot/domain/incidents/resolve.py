"""`/ops incident resolve` and `/ops incident postmortem`: the final update, the freeze lifted, the draft written."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.domain.shared.commands import Args, expect
from bot.domain.shared.context import Call
from bot.config.durations import format_duration
from bot.domain.shared.errors import OpsError
from bot.domain.incidents import export, freezes
from bot.domain.incidents.common import by_ref, here, record, refresh, require_commander, require_open, slack, store
from bot.domain.incidents.messages import Postmortem, StatusUpdate
from bot.domain.incidents.model import Incident, Kind, Status
from bot.domain.incidents.reminders import disarm, stop_escalation
from bot.domain.shared.messages import Notice
from bot.domain.shared.ports import Reply

USAGE = "incident resolve [summary]"
POSTMORTEM_USAGE = "incident postmortem <id>"


@dataclass(frozen=True)
class ResolveIncident:
    summary: str = ""


@dataclass(frozen=True)
class ShowPostmortem:
    incident: str


def parse(args: Args) -> ResolveIncident:
    return ResolveIncident(" ".join(args.positional).strip())


def run(command: ResolveIncident, call: Call) -> Reply:
    return resolve(call, here(call), command.summary)


def resolve(call: Call, incident: Incident, summary: str) -> Reply:
    """Claim the resolution first (a second resolve gets a clear answer), then tell everyone and clean up."""
    require_commander(call, incident, "incident resolve")
    now = call.services.clock.now()

    def close(current: Incident) -> Incident:
        require_open(current)
        return replace(current, status=Status.RESOLVED, resolved_at=now, resolution=summary or None,
                       reminder_seq=current.reminder_seq + 1, last_update_at=now, next_update_at=None)

    before, incident = store(call).change(incident.id, close)
    disarm(call, before)
    stop_escalation(call, incident)
    freezes.lift(call, incident)
    warnings: list[str] = []
    duration = incident.duration(now)
    final = StatusUpdate(incident, Status.RESOLVED, incident.impact, incident.declared_at, now, "",
                         summary or "Resolved.", None, call.actor.user_id, duration=duration)
    try:
        call.services.notifier.post(incident.channel_id, final)
    except OpsError as exc:
        warnings.append(f"the final update could not be posted ({exc.message})")
    record(call, incident, Kind.RESOLVED, f"resolved after {format_duration(duration)}" + (f": {summary}" if summary else ""))
    draft = export.postmortem(incident, store(call).timeline(incident.id), now)
    _, incident = store(call).change(incident.id, lambda i: replace(i, postmortem=draft, frozen=()))
    warnings += refresh(call, incident)
    if incident.status_ts:
        try:
            slack(call).unpin(incident.channel_id, incident.status_ts)
        except OpsError as exc:
            warnings.append(f"the status message could not be unpinned ({exc.message})")
    try:
        call.services.notifier.post(incident.channel_id, Postmortem(incident, draft))
    except OpsError as exc:
        warnings.append(f"the post-mortem draft could not be posted ({exc.message})")
    text = (f"{incident.ref} is resolved after {format_duration(duration)}. "
            f"Post-mortem draft: `/ops incident postmortem {incident.id}`.")
    return Reply(Notice(text, details=warnings))


def parse_postmortem(args: Args) -> ShowPostmortem:
    (ref,) = expect(args, POSTMORTEM_USAGE, required=1)
    return ShowPostmortem(ref)


def run_postmortem(command: ShowPostmortem, call: Call) -> Reply:
    incident = by_ref(call, command.incident)
    if incident.postmortem is None:
        raise OpsError(f"{incident.ref} is still open; its post-mortem draft is written when it is resolved.")
    return Reply(Postmortem(incident, incident.postmortem))
