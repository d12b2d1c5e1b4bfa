"""Approve and Reject buttons on approval requests: the button carries only the request id.

Each click is one call into ``bot/domain/approvals/service.py`` (``ApprovalService.approve`` /
``reject``); the rule that decides whether it counts is ``judge_vote`` in ``bot/domain/approvals/model.py``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


def approve(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.approve", operations(context).approvals.approve, "request")


def reject(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.reject", operations(context).approvals.reject, "request")


def register(app: App) -> None:
    button(app, ApprovalAction.APPROVE, approve)
    button(app, ApprovalAction.REJECT, reject)
