"""Incidents: declare, update, roles, freeze, resolve; reminders and escalation as jobs; a timeline and a post-mortem draft.

The family's subcommands and jobs are listed here; each lives in the module named after what it does.
"""

from __future__ import annotations

from bot.domain.shared.commands import Subcommand
from bot.domain.dispatch import JobSpec
from bot.domain.incidents import declare, manage, reminders, resolve, timeline, updates
from bot.domain.shared.policy import Role

JOBS = [
    JobSpec("incidents.remind", reminders.remind),
    JobSpec("incidents.escalate", reminders.escalate),
]
COMMANDS: list[Subcommand] = [
    Subcommand(("incident", "declare"), "Declare an incident: a channel, responders invited, the status pinned (no arguments: a form)",
               declare.USAGE, Role.VIEWER, declare.parse, declare.run, options=frozenset({"service", "impact", "eta"}), mutates=True),
    Subcommand(("incident", "update"), "Post the runbook's status update in the incident channel (no arguments: a form)",
               updates.USAGE, Role.VIEWER, updates.parse, updates.run, options=frozenset({"impact", "what", "next"}), mutates=True),
    Subcommand(("incident", "role"), "Give someone the commander, comms or scribe role", manage.ROLE_USAGE, Role.VIEWER,
               manage.parse_role, manage.run_role, mutates=True),
    Subcommand(("incident", "ack"), "Acknowledge the incident: escalation stops", "incident ack", Role.VIEWER,
               manage.parse_ack, manage.run_ack, mutates=True),
    Subcommand(("incident", "list"), "Open incidents: severity, age, commander, last update", "incident list", Role.VIEWER,
               manage.parse_list, manage.run_list),
    Subcommand(("incident", "freeze"), "Lock deploys of the incident's services until it is resolved", manage.FREEZE_USAGE, Role.VIEWER,
               manage.parse_freeze, manage.run_freeze, mutates=True),
    Subcommand(("incident", "resolve"), "Resolve: final update, freeze lifted, post-mortem draft written", resolve.USAGE, Role.VIEWER,
               resolve.parse, resolve.run, mutates=True),
    Subcommand(("incident", "timeline"), "The incident's timeline, or its export as JSON or Markdown", timeline.USAGE, Role.VIEWER,
               timeline.parse, timeline.run, keys=frozenset({"format"})),
    Subcommand(("incident", "postmortem"), "The post-mortem draft of a resolved incident", resolve.POSTMORTEM_USAGE, Role.VIEWER,
               resolve.parse_postmortem, resolve.run_postmortem),
]
