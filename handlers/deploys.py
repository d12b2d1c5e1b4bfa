"""Deploy buttons: "Notify me when free" on a lock refusal, and Rollback on a failure announcement.

Approve and Reject on deploy and rollback requests are the shared approval buttons (handlers/approvals.py).
Each button carries only an opaque id; the domain looks everything else up and re-checks the clicker.
"""

from __future__ import annotations

from enum import StrEnum

from slack_bolt import App

from bot.domain.locks import waiting as deploy_locks

from bot.domain.deploys import rollbacks
from handlers.common import button


class DeployAction(StrEnum):
    NOTIFY_WHEN_FREE = "deploy_notify_free"
    ROLLBACK = "deploy_rollback"


def register(app: App) -> None:
    button(app, DeployAction.NOTIFY_WHEN_FREE, deploy_locks.wait_for, param="wait")
    button(app, DeployAction.ROLLBACK, rollbacks.from_button, param="deploy")
