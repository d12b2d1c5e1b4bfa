"""Slack glue: parse the payload, ack, call the domain, render the reply. One module per family."""

from __future__ import annotations

from slack_bolt import App

from handlers import alerts, approvals, audit, deploys, flags, health, incidents, ops

FAMILIES = [ops, audit, approvals, health, deploys, flags, incidents, alerts]


def register_all(app: App) -> None:
    """Register every family's listeners on ``app``."""
    for family in FAMILIES:
        family.register(app)
