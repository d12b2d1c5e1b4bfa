"""`/ops incident resolve` and `/ops incident postmortem`: the final update, the freeze lifted, the draft written."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.config.durations import format_duration
from bot.domain.incidents import export
from bot.domain.incidents.common import (
    INCIDENT_REF,
    by_ref,
    change,
    post_in_channel,
    public_text_problem,
    record,
    refresh,
    require_commander,
    require_open,
    target,
    timeline,
)
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.freezes import IncidentFreezes
from bot.domain.incidents.messages import Postmortem, StatusUpdate
from bot.domain.incidents.model import Incident, Kind, Status
from bot.domain.incidents.ports import IncidentsUnitOfWork
from bot.domain.incidents.reminders import Reminders
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import OpsError, UsageError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply

USAGE = 'incident resolve [INC-n] [summary] [--public "…"]'
POSTMORTEM_USAGE = "incident postmortem <id>"


@dataclass(frozen=True)
class ResolveIncident:
    summary: str = ""
    incident: str | None = None  # INC-n: resolve it from any channel (its commander or an admin)
    public: str = ""  # the final text of the public status page ("": none)


@dataclass(frozen=True)
class ShowPostmortem:
    incident: str


def parse(args: Args) -> ResolveIncident:
    ref = args.positional[0] if args.positional and INCIDENT_REF.match(args.positional[0]) else None
    public = args.options.get("public", "").strip()
    problem = public_text_problem(public)
    if problem:
        raise UsageError(f"`--public`: {problem}", f"/ops {USAGE}")
    return ResolveIncident(args.text(1 if ref else 0), ref, public)


def parse_postmortem(args: Args) -> ShowPostmortem:
    (ref,) = expect(args, POSTMORTEM_USAGE, required=1)
    return ShowPostmortem(ref)


class Resolutions:
    """Resolving an incident, and reading its post-mortem draft."""

    def __init__(self, deps: IncidentDeps, reminders: Reminders, freezes: IncidentFreezes) -> None:
        self._d = deps
        self._reminders = reminders
        self._freezes = freezes

    def run(self, command: ResolveIncident, actor: Actor) -> Reply:
        incident = target(self._d, actor, command.incident, "incident resolve")
        return self.resolve(actor, incident, command.summary, public=command.public)

    def resolve(self, actor: Actor, incident: Incident, summary: str, *, public: str = "") -> Reply:
        """Claim the resolution first (a second resolve gets a clear answer), then tell everyone and clean up;
        ``public`` (if any) is the status page's final text."""
        d = self._d
        require_commander(d, actor, incident, "incident resolve")
        now = d.clock.now()

        def close(current: Incident) -> Incident:
            require_open(current)
            return replace(
                current,
                status=Status.RESOLVED,
                resolved_at=now,
                resolution=summary or None,
                reminder_seq=current.reminder_seq + 1,
                last_update_at=now,
                next_update_at=None,
            )

        def stop(uow: IncidentsUnitOfWork, before: Incident, after: Incident) -> None:
            # In the resolution's transaction: Redis going away cannot leave it resolved with its reminder still due.
            self._reminders.paging.resolved(uow, after)
            self._reminders.disarm(before, uow=uow)
            self._reminders.stop_escalation(after, uow=uow)

        _, incident = change(d, incident.id, close, then=stop)
        self._freezes.lift(actor, incident)
        warnings: list[str] = []
        duration = incident.duration(now)
        final = StatusUpdate(
            incident,
            Status.RESOLVED,
            incident.impact,
            incident.declared_at,
            now,
            "",
            summary or "Resolved.",
            None,
            actor.user_id,
            duration=duration,
            public=public,
        )
        try:
            post_in_channel(d, incident, final)
        except OpsError as exc:
            warnings.append(f"the final update could not be posted ({exc.message})")
        record(
            d,
            actor,
            incident,
            Kind.RESOLVED,
            f"resolved after {format_duration(duration)}" + (f": {summary}" if summary else ""),
            data={"status": Status.RESOLVED.value},
            public=public,
        )
        draft = export.postmortem(incident, timeline(d, incident.id), now)
        _, incident = change(d, incident.id, lambda i: replace(i, postmortem=draft, frozen=()))
        warnings += refresh(d, incident)
        with d.uow() as uow:
            uow.outbox.unpin(incident.status_key, origin=incident.origin)
            uow.commit()
        try:
            post_in_channel(d, incident, Postmortem(incident, draft))
        except OpsError as exc:
            warnings.append(f"the post-mortem draft could not be posted ({exc.message})")
        text = (
            f"{incident.ref} is resolved after {format_duration(duration)}. "
            f"Post-mortem draft: `/ops incident postmortem {incident.id}`."
        )
        return Reply(Notice(text, details=warnings))

    def postmortem(self, command: ShowPostmortem, actor: Actor) -> Reply:
        incident = by_ref(self._d, command.incident)
        if incident.postmortem is None:
            raise OpsError(f"{incident.ref} is still open; its post-mortem draft is written when it is resolved.")
        return Reply(Postmortem(incident, incident.postmortem))
