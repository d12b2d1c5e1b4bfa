"""The timeline: `/ops incident timeline`, messages marked with the timeline reaction, and service events."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.shared.commands import Args, expect
from bot.domain.shared.context import Call
from bot.domain.shared.errors import UsageError
from bot.domain.incidents import export
from bot.domain.incidents.common import by_ref, here, record, slack, store
from bot.domain.incidents.messages import Export, ServicePosted, Timeline
from bot.domain.incidents.model import Kind
from bot.domain.shared.messages import Notice
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply, ServiceEvent

if TYPE_CHECKING:
    from bot.domain.shared.context import Services

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


def run(command: ShowTimeline, call: Call) -> Reply:
    incident = by_ref(call, command.incident) if command.incident else here(call)
    entries = store(call).timeline(incident.id)
    if command.format == "json":
        return Reply(Export(incident, "json", export.as_json(incident, entries)))
    if command.format == "markdown":
        return Reply(Export(incident, "markdown", export.as_markdown(incident, entries)))
    return Reply(Timeline(incident, entries, call.services.clock.now()))


def add_marked_message(call: Call, channel: str, ts: str) -> Reply:
    """Someone marked a message in an incident channel with the timeline reaction: add it, once."""
    incident = store(call).by_channel(channel)
    if incident is None:
        return Reply(Notice("Not an incident channel; the reaction is ignored."), outcome="ignored")
    message = slack(call).message(channel, ts)
    if message is None:
        return Reply(Notice("That message is gone; nothing was added."), outcome="not_found")
    text = message.text if len(message.text) <= MAX_NOTE else message.text[:MAX_NOTE] + "…"
    added = record(call, incident, Kind.NOTE, text, actor=message.user or call.actor.user_id, link=slack(call).permalink(channel, ts),
                   key=f"message:{channel}:{ts}", data={"marked_by": call.actor.user_id})
    return Reply(Notice(f"Added to the {incident.ref} timeline." if added else "Already on the timeline."),
                 outcome="added" if added else "duplicate")


class IncidentEventListener:
    """Deploys, rollbacks and flag kills publish here: each open incident of that service gets the event
    in its channel and on its timeline. It never raises into the publisher: its deploy goes on."""

    def __init__(self) -> None:
        self._services: Services | None = None

    def bind(self, services: Services) -> None:
        self._services = services

    def publish(self, event: ServiceEvent) -> None:
        if self._services is None or self._services.incidents is None:
            return
        call = Call(Actor(event.actor, source="event"), self._services)
        try:
            incidents = [i for i in self._services.incidents.open_incidents() if event.service in i.services]
        except Exception:  # a lost database must not fail the deploy that published the event
            log.exception("could not look up incidents for a %s event of %s", event.kind, event.service)
            return
        for incident in incidents:
            try:
                self._deliver(call, incident.id, event)
            except Exception:
                log.exception("could not add a %s event to %s", event.kind, incident.ref)

    def _deliver(self, call: Call, incident_id: int, event: ServiceEvent) -> None:
        incident = store(call).get(incident_id)
        if incident is None:
            return
        digest = hashlib.sha256(f"{event.kind}\0{event.service}\0{event.environment}\0{event.at.isoformat()}\0{event.summary}".encode()).hexdigest()[:24]
        where = f"{event.service}/{event.environment}" if event.environment else event.service
        text = f"{event.kind} · {where} · {event.summary}"
        if record(call, incident, Kind.SERVICE_EVENT, text, actor=event.actor, link=event.link, key=f"event:{digest}", at=event.at):
            call.services.notifier.post(incident.channel_id, ServicePosted(event))
