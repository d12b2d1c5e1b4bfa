"""Approve and Reject buttons on approval requests: the button carries only the request id."""

from __future__ import annotations

from enum import StrEnum

from slack_bolt import App

from bot.domain.approvals import service as approvals
from bot.domain.approvals.service import Decision
from handlers.common import button


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


def register(app: App) -> None:
    button(app, ApprovalAction.APPROVE, lambda call, request_id: approvals.vote(call, request_id, Decision.APPROVE),
           audit_action="click.approve", param="request")
    button(app, ApprovalAction.REJECT, lambda call, request_id: approvals.vote(call, request_id, Decision.REJECT),
           audit_action="click.reject", param="request")
