"""Deploy buttons: "Notify me when free" on a lock refusal, and Rollback on a failure announcement.

Approve and Reject on deploy and rollback requests are the shared approval buttons (handlers/approvals.py).
Each button carries only an opaque id; the domain looks everything else up and re-checks the clicker.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import deploy_locks, rollbacks
from handlers.common import answer_click, button_value


class DeployAction(StrEnum):
    NOTIFY_WHEN_FREE = "deploy_notify_free"
    ROLLBACK = "deploy_rollback"


def handle_notify_when_free(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    ack()
    wait_id = button_value(body)
    answer_click(body, respond, context, "click.deploy_notify_free", lambda call: deploy_locks.wait_for(call, wait_id), {"wait": wait_id})


def handle_rollback(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    ack()
    deploy_id = button_value(body)
    answer_click(body, respond, context, "click.deploy_rollback", lambda call: rollbacks.from_button(call, deploy_id),
                 {"deploy": deploy_id})


def register(app: App) -> None:
    app.action(DeployAction.NOTIFY_WHEN_FREE)(handle_notify_when_free)
    app.action(DeployAction.ROLLBACK)(handle_rollback)
