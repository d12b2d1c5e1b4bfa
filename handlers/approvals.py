"""Approve and Reject buttons on approval requests: the button carries only the request id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import approvals
from bot.domain.approvals import Decision
from handlers.common import actor_from_action, button_value, deliver, services_of, source_of


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


def _vote(decision: Decision) -> Any:
    def handle(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
        ack()
        services = services_of(context)
        request_id = button_value(body)
        reply = services.dispatcher.perform(
            actor_from_action(body, source_of(context)),
            f"click.{decision.value}",
            lambda call: approvals.vote(call, request_id, decision),
            params={"request": request_id},
        )
        deliver(reply, services, respond)

    handle.__name__ = f"handle_{decision.value}"
    return handle


handle_approve = _vote(Decision.APPROVE)
handle_reject = _vote(Decision.REJECT)


def register(app: App) -> None:
    app.action(ApprovalAction.APPROVE)(handle_approve)
    app.action(ApprovalAction.REJECT)(handle_reject)
