"""Approve and Reject buttons on approval requests: the button carries only the request id.

Each click is one call into ``bot/domain/approvals/service.py`` (``ApprovalService.approve`` /
``reject``); the rule that decides whether it counts is ``judge_vote`` in ``bot/domain/approvals/model.py``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import ack_now, answer_click, button, operations


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


def approve(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.approve", operations(context).approvals.approve, "request")


def reject(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.reject", operations(context).approvals.reject, "request")


def group_members_changed(event: dict[str, Any], context: Any) -> None:
    """``subteam_members_changed``: a user group's members changed; the next vote reads the group again, so someone
    removed from the approvers' group cannot approve on what opsbot knew a minute ago."""
    group = str(event.get("subteam_id") or "")[:40]
    if group:
        operations(context).forget_group(group)


def register(app: App) -> None:
    button(app, ApprovalAction.APPROVE, approve)
    button(app, ApprovalAction.REJECT, reject)
    app.event("subteam_members_changed")(ack=ack_now, lazy=[group_members_changed])
