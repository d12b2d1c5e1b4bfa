"""What incidents post and show; each names its template in templates/incident/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from bot.domain.incidents.model import Incident, Status, TimelineEntry
from bot.domain.shared.changes import ChangeList
from bot.domain.shared.errors import UsageError
from bot.domain.shared.ports import ServiceEvent

EXPORT_CHUNK = 2000
EXPORT_WHOLE_MAX = 11_000  # under Slack's 12,000 characters of markdown blocks in one message (bot/slack_limits.py)


@dataclass(frozen=True)
class Declaration:
    """The runbook's declaration, posted in the incident channel, pinned, and kept current in place."""

    template: ClassVar[str] = "incident/declaration"
    incident: Incident
    cadence_minutes: int | None
    now: datetime


@dataclass(frozen=True)
class WhatChanged:
    """Posted under the declaration: the declared services' deploys, rollbacks and flag changes of the last ``hours``,
    newest first, each with Roll back (a deploy or rollback) or Undo (a flag kill)."""

    template: ClassVar[str] = "incident/what_changed"
    ref: str
    changed: ChangeList


@dataclass(frozen=True)
class Summary:
    """One line per incident in the incidents channel, kept current in place."""

    template: ClassVar[str] = "incident/summary"
    incident: Incident
    now: datetime


@dataclass(frozen=True)
class StatusUpdate:
    """The runbook's update. It refuses to exist without Impact and Next update, except the final one."""

    template: ClassVar[str] = "incident/update"
    incident: Incident
    status: Status
    impact: str
    started: datetime
    last_update: datetime
    what_happened: str
    current_status: str
    next_update: datetime | None
    author: str
    duration: timedelta | None = None
    public: str = ""  # the text the public status page shows, if any

    def __post_init__(self) -> None:
        if self.status is Status.RESOLVED:
            return
        missing = [name for name, value in (("Impact", self.impact.strip()), ("Next update", self.next_update)) if not value]
        if missing:
            raise UsageError(f"The update template needs {' and '.join(missing)}; nothing was posted.")


@dataclass(frozen=True)
class Declared:
    """Told where the declaration was made."""

    template: ClassVar[str] = "incident/declared"
    incident: Incident
    warnings: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # what is still on its way (Slack was slow), in words


@dataclass(frozen=True)
class AlreadyDeclared:
    """The same person declared the same incident moments ago (an impatient second send): not a second incident."""

    template: ClassVar[str] = "incident/already_declared"
    incident: Incident
    seconds_ago: int
    again_id: str  # the "Declare another" button's opaque id


@dataclass(frozen=True)
class Declaring:
    """Told while Slack is slow to create the channel: what is under way."""

    template: ClassVar[str] = "incident/declaring"
    ref: str
    title: str
    channel_name: str


@dataclass(frozen=True)
class Note:
    """A short line in the incident channel: ``subject`` (a user) did ``text``."""

    template: ClassVar[str] = "incident/note"
    icon: str
    subject: str
    text: str
    by: str | None = None
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reminder:
    """An overdue update: the commander is asked, with Post update and Snooze buttons."""

    template: ClassVar[str] = "incident/reminder"
    incident: Incident
    due: datetime
    now: datetime
    reminder_id: str  # "<incident id>.<reminder seq>": all the Snooze button carries
    snooze_minutes: int


@dataclass(frozen=True)
class Escalation:
    template: ClassVar[str] = "incident/escalation"
    incident: Incident
    level: int
    label: str
    notify: list[str]
    now: datetime


@dataclass(frozen=True)
class Frozen:
    """What ``/ops incident freeze`` locked, and what someone else holds."""

    template: ClassVar[str] = "incident/frozen"
    incident: Incident
    locked: list[str]
    already: list[str]
    held: list[str]
    until: datetime


@dataclass(frozen=True)
class ServicePosted:
    """A deploy, rollback or flag kill of an incident's service, as it lands in the incident channel."""

    template: ClassVar[str] = "incident/service_event"
    event: ServiceEvent


@dataclass(frozen=True)
class IncidentList:
    template: ClassVar[str] = "incident/list"
    incidents: list[Incident]
    now: datetime


@dataclass(frozen=True)
class Timeline:
    template: ClassVar[str] = "incident/timeline"
    incident: Incident
    entries: list[TimelineEntry]
    now: datetime


@dataclass(frozen=True)
class Export:
    """The timeline as JSON or Markdown, in a code block."""

    template: ClassVar[str] = "incident/export"
    incident: Incident
    format: str
    body: str

    @property
    def whole(self) -> str | None:
        """The body as one fenced block (one thing to copy), when it fits a markdown block; None otherwise."""
        fenced = f"```{self.format}\n{self.body.rstrip()}\n```"
        return fenced if len(fenced) <= EXPORT_WHOLE_MAX else None

    @property
    def chunks(self) -> list[str]:
        """The body in pieces that fit a section each (Slack cuts at 3,000 characters); split at line ends."""
        pieces, current = [], ""
        for line in self.body.splitlines(keepends=True):
            if current and len(current) + len(line) > EXPORT_CHUNK:
                pieces.append(current)
                current = ""
            current += line[:EXPORT_CHUNK]
        return [*pieces, current] if current else pieces


@dataclass(frozen=True)
class Postmortem:
    template: ClassVar[str] = "incident/postmortem"
    incident: Incident
    markdown: str


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class DeclareForm:
    """The declare modal; ``channel_id`` is where it was opened, to answer there."""

    template: ClassVar[str] = "incident/declare_form"
    modal: ClassVar[bool] = True  # rendered as a view (renderer.render_view), not a message
    severities: list[Choice]
    services: list[Choice]
    channel_id: str
    severity: str | None = None
    title: str = ""
    service: str | None = None
    impact: str = ""


@dataclass(frozen=True)
class UpdateForm:
    """The update modal with the runbook's fields, pre-filled from the incident."""

    template: ClassVar[str] = "incident/update_form"
    modal: ClassVar[bool] = True
    incident: Incident
    statuses: list[Choice]
    next_update: str
