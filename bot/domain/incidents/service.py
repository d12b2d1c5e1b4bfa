"""The incidents family as the app sees it: its parts, built once from ``IncidentDeps``, and its declaration."""

from __future__ import annotations

from bot.domain.incidents import declare, manage, oncall, resolve, timeline, updates
from bot.domain.incidents.declare import Declarations
from bot.domain.incidents.deps import IncidentDeps
from bot.domain.incidents.freezes import IncidentFreezes
from bot.domain.incidents.manage import Management
from bot.domain.incidents.oncall import OnCallQueries
from bot.domain.incidents.reminders import ESCALATE_JOB, REMIND_JOB, Reminders
from bot.domain.incidents.resolve import Resolutions
from bot.domain.incidents.timeline import IncidentEventListener, Timelines
from bot.domain.incidents.updates import Updates
from bot.domain.shared.commands import Subcommand
from bot.domain.shared.family import Family, JobSpec
from bot.domain.shared.policy import Role


class Incidents:
    """Declare, update, roles, freeze, resolve; reminders and escalation as jobs; the timeline; service events."""

    def __init__(self, deps: IncidentDeps) -> None:
        self.deps = deps
        self.reminders = Reminders(deps)
        self.freezes = IncidentFreezes(deps)
        self.declarations = Declarations(deps, self.reminders)
        self.resolutions = Resolutions(deps, self.reminders, self.freezes)
        self.updates = Updates(deps, self.reminders, self.resolutions)
        self.management = Management(deps, self.reminders, self.freezes)
        self.timelines = Timelines(deps)
        self.events = IncidentEventListener(deps)
        self.oncall = OnCallQueries(deps)

    def family(self) -> Family:
        m = self.management
        return Family(
            "incidents",
            commands=[
                Subcommand(
                    ("oncall",),
                    "Who is on call now (PagerDuty), for a service or for all",
                    oncall.USAGE,
                    Role.VIEWER,
                    oncall.parse,
                    self.oncall.show,
                ),
                Subcommand(
                    ("incident", "declare"),
                    "Declare an incident: a channel, responders invited, the status pinned (no arguments: a form)",
                    declare.USAGE,
                    Role.VIEWER,
                    declare.parse,
                    self.declarations.run,
                    options=frozenset({"service", "impact", "eta"}),
                    mutates=True,
                    preview=self.declarations.preview,
                ),
                Subcommand(
                    ("incident", "update"),
                    "Post the runbook's status update in the incident channel (no arguments: a form)",
                    updates.USAGE,
                    Role.VIEWER,
                    updates.parse,
                    self.updates.run,
                    options=frozenset({"impact", "what", "next", "public"}),
                    mutates=True,
                ),
                Subcommand(
                    ("incident", "role"),
                    "Give someone the commander, comms or scribe role",
                    manage.ROLE_USAGE,
                    Role.VIEWER,
                    manage.parse_role,
                    m.role,
                    mutates=True,
                ),
                Subcommand(
                    ("incident", "ack"),
                    "Acknowledge the incident: escalation stops",
                    "incident ack",
                    Role.VIEWER,
                    manage.parse_ack,
                    m.ack,
                    mutates=True,
                ),
                Subcommand(
                    ("incident", "list"),
                    "Open incidents: severity, age, commander, last update",
                    "incident list",
                    Role.VIEWER,
                    manage.parse_list,
                    m.list,
                ),
                Subcommand(
                    ("incident", "freeze"),
                    "Lock deploys of the incident's services until it is resolved",
                    manage.FREEZE_USAGE,
                    Role.VIEWER,
                    manage.parse_freeze,
                    m.freeze,
                    mutates=True,
                ),
                Subcommand(
                    ("incident", "resolve"),
                    "Resolve: final update, freeze lifted, post-mortem draft written",
                    resolve.USAGE,
                    Role.VIEWER,
                    resolve.parse,
                    self.resolutions.run,
                    options=frozenset({"public"}),
                    mutates=True,
                ),
                Subcommand(
                    ("incident", "timeline"),
                    "The incident's timeline, or its export as JSON or Markdown",
                    timeline.USAGE,
                    Role.VIEWER,
                    timeline.parse,
                    self.timelines.show,
                    keys=frozenset({"format"}),
                ),
                Subcommand(
                    ("incident", "postmortem"),
                    "The post-mortem draft of a resolved incident",
                    resolve.POSTMORTEM_USAGE,
                    Role.VIEWER,
                    resolve.parse_postmortem,
                    self.resolutions.postmortem,
                ),
            ],
            jobs=[JobSpec(REMIND_JOB, self.reminders.remind), JobSpec(ESCALATE_JOB, self.reminders.escalate)],
            reconcile=[self.declarations.unfinished],
        )
