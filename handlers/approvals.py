"""Approve and Reject buttons on approval requests: the button carries only the request id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import approvals
from bot.domain.approvals import Decision
from handlers.common import answer_click, button_value


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


def _vote(decision: Decision) -> Any:
    def handle(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
        ack()
        request_id = button_value(body)
        answer_click(body, respond, context, f"click.{decision.value}", lambda call: approvals.vote(call, request_id, decision),
                     {"request": request_id})

    handle.__name__ = f"handle_{decision.value}"
    return handle


handle_approve = _vote(Decision.APPROVE)
handle_reject = _vote(Decision.REJECT)


def register(app: App) -> None:
    app.action(ApprovalAction.APPROVE)(handle_approve)
    app.action(ApprovalAction.REJECT)(handle_reject)
