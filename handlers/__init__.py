"""Slack glue: parse the payload, ack, call the domain, render the reply. One module per family."""

from __future__ import annotations

from slack_bolt import App

from handlers import alerts, approvals, audit, deploys, flags, health, home, incidents, ops

# home before approvals: its Approve/Reject listeners match only clicks on Home, the first match handles a click.
FAMILIES = [ops, audit, home, approvals, health, deploys, flags, incidents, alerts]


def register_all(app: App) -> None:
    """Register every family's listeners on ``app``."""
    for family in FAMILIES:
        family.register(app)
