"""The timeline: `/ops incident timeline`, messages marked with the timeline reaction, and service events."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from bot.domain.incidents import export
from bot.domain.incidents.common import by_ref, get, here, open_incidents, post_in_channel, record, timeline
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.messages import Export, ServicePosted, Timeline
from bot.domain.incidents.model import Kind
from bot.domain.shared.commands import Args, expect
from bot.domain.shared.errors import UsageError
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply, ServiceEvent

log = logging.getLogger("opsbot.incidents")
USAGE = "incident timeline [id] [format=json|markdown]"
FORMATS = ("json", "markdown")
MAX_NOTE = 3000


@dataclass(frozen=True)
class ShowTimeline:
    incident: str | None = None
    format: str | None = None


def parse(args: Args) -> ShowTimeline:
    (ref,) = expect(args, USAGE, required=0, optional=1) or (None,)
    fmt = args.options.get("format")
    if fmt is not None and fmt.lower() not in FORMATS:
        raise UsageError(f"`format=` takes {' or '.join(FORMATS)}.", f"/ops {USAGE}")
    return ShowTimeline(ref, fmt.lower() if fmt else None)


class Timelines:
    """Reading an incident's timeline, and adding messages marked with the timeline reaction."""

    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps

    def show(self, command: ShowTimeline, actor: Actor) -> Reply:
        d = self._d
        incident = by_ref(d, command.incident) if command.incident else here(d, actor)
        entries = timeline(d, incident.id)
        if command.format == "json":
            return Reply(Export(incident, "json", export.as_json(incident, entries)))
        if command.format == "markdown":
            return Reply(Export(incident, "markdown", export.as_markdown(incident, entries)))
        return Reply(Timeline(incident, entries, d.clock.now()))

    def is_timeline_reaction(self, reaction: str) -> bool:
        """Whether ``reaction`` (its name, without a skin tone) is the one that puts a message on the timeline."""
        return reaction == self._d.config.incidents.timeline_reaction

    def add_marked_message(self, actor: Actor, channel: str, ts: str) -> Reply:
        """Someone marked a message in an incident channel with the timeline reaction: add it, once."""
        d = self._d
        with d.uow() as uow:
            incident = uow.incidents.by_channel(channel)
        if incident is None:
            return Reply(Notice("Not an incident channel; the reaction is ignored."), outcome="ignored")
        message = d.conversations.message(channel, ts)
        if message is None:
            return Reply(Notice("That message is gone; nothing was added."), outcome="not_found")
        text = message.text if len(message.text) <= MAX_NOTE else message.text[:MAX_NOTE] + "…"
        added = record(
            d,
            actor,
            incident,
            Kind.NOTE,
            text,
            by=message.user or actor.user_id,
            link=d.conversations.permalink(channel, ts),
            key=f"message:{channel}:{ts}",
            data={"marked_by": actor.user_id},
        )
        return Reply(
            Notice(f"Added to the {incident.ref} timeline." if added else "Already on the timeline."),
            outcome="added" if added else "duplicate",
        )


class IncidentEventListener:
    """Deploys, rollbacks and flag kills publish here: each open incident of that service gets the event
    in its channel and on its timeline. It never raises into the publisher: its deploy goes on."""

    def __init__(self, deps: IncidentDeps) -> None:
        self._d = deps

    def publish(self, event: ServiceEvent) -> None:
        actor = Actor(event.actor, source="event")
        try:
            incidents = [i for i in open_incidents(self._d) if event.service in i.services]
        except Exception:  # a lost database must not fail the deploy that published the event
            log.exception("could not look up incidents for a %s event of %s", event.kind, event.service)
            return
        for incident in incidents:
            try:
                self._deliver(actor, incident.id, event)
            except Exception:
                log.exception("could not add a %s event to %s", event.kind, incident.ref)

    def _deliver(self, actor: Actor, incident_id: int, event: ServiceEvent) -> None:
        incident = get(self._d, incident_id)
        if incident is None:
            return
        digest = hashlib.sha256(
            f"{event.kind}\0{event.service}\0{event.environment}\0{event.at.isoformat()}\0{event.summary}".encode()
        ).hexdigest()[:24]
        where = f"{event.service}/{event.environment}" if event.environment else event.service
        text = f"{event.kind} · {where} · {event.summary}"
        if record(
            self._d,
            actor,
            incident,
            Kind.SERVICE_EVENT,
            text,
            by=event.actor,
            link=event.link,
            key=f"event:{digest}",
            at=event.at,
        ):
            post_in_channel(self._d, incident, ServicePosted(event))
