"""Deploy buttons: "Notify me when free" on a lock refusal, Rollback on a failure announcement, Roll back on a
"what changed" list (incident declarations, health DOWN alerts), and "Roll back the last deploy of <service>" on a
health metric alert.

Approve and Reject on deploy and rollback requests are the shared approval buttons (handlers/approvals.py).
Each button carries only an opaque id; the domain looks everything else up and re-checks the clicker.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class DeployAction(StrEnum):
    NOTIFY_WHEN_FREE = "deploy_notify_free"
    ROLLBACK = "deploy_rollback"
    ROLLBACK_FROM_HERE = "deploy_rollback_from_here"  # "what changed" on incidents and health alerts
    ROLLBACK_LAST = "deploy_rollback_last"  # on a health metric alert; its value is the alert's opaque id


def notify_when_free(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body, respond, context, f"click.{DeployAction.NOTIFY_WHEN_FREE}", operations(context).deploy_locks.wait_for, "wait"
    )


def roll_back(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body, respond, context, f"click.{DeployAction.ROLLBACK}", operations(context).deploys.rollbacks.from_button, "deploy"
    )


def roll_back_from_here(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body,
        respond,
        context,
        f"click.{DeployAction.ROLLBACK_FROM_HERE}",
        operations(context).deploys.rollbacks.from_change,
        "deploy",
    )


def roll_back_last(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(
        body,
        respond,
        context,
        f"click.{DeployAction.ROLLBACK_LAST}",
        operations(context).deploys.rollbacks.from_health_alert,
        "alert",
    )


def register(app: App) -> None:
    button(app, DeployAction.NOTIFY_WHEN_FREE, notify_when_free)
    button(app, DeployAction.ROLLBACK, roll_back)
    button(app, DeployAction.ROLLBACK_FROM_HERE, roll_back_from_here)
    button(app, DeployAction.ROLLBACK_LAST, roll_back_last)
