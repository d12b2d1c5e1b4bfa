"""Alert group buttons (Declare incident, Silence 1h, Roll back): thin glue into ``bot/domain/alerts``.

Alertmanager's notifications arrive over HTTP, not from Slack: ``bot/alertmanager_receiver.py``. Each button carries
only the alert group's opaque id; the domain reads the group again and re-checks the clicker's role.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class AlertAction(StrEnum):
    DECLARE = "alert_declare_incident"
    SILENCE = "alert_silence"
    ROLL_BACK = "alert_roll_back"


def declare(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, f"click.{AlertAction.DECLARE}", operations(context).alerts.declare, "group")


def silence(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, f"click.{AlertAction.SILENCE}", operations(context).alerts.silence, "group")


def roll_back(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, f"click.{AlertAction.ROLL_BACK}", operations(context).alerts.roll_back, "group")


def register(app: App) -> None:
    button(app, AlertAction.DECLARE, declare)
    button(app, AlertAction.SILENCE, silence)
    button(app, AlertAction.ROLL_BACK, roll_back)
