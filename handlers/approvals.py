"""Approve and Reject buttons on approval requests, and the checkboxes of their checklist: each carries only the
request id (a checkbox's block id ``checklist-<request id>``, its action id the item's position).

Each click is one call into ``bot/domain/approvals/service.py`` (``ApprovalService.approve`` / ``reject`` /
``tick``); the rules that decide whether it counts are ``judge_vote`` and ``judge_tick`` in
``bot/domain/approvals/model.py``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import CONTROL, ack_now, actor_from_action, answer_click, button, deliver, operations, source_of


class ApprovalAction(StrEnum):
    APPROVE = "approval_approve"
    REJECT = "approval_reject"


CHECK_ACTION = re.compile(r"^approval_check_(\d{1,2})$")  # one checkboxes element per checklist item, by its position
CHECKLIST_BLOCK = "checklist-"


def approve(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.approve", operations(context).approvals.approve, "request")


def reject(body: dict[str, Any], respond: Any, context: Any) -> None:
    answer_click(body, respond, context, "click.reject", operations(context).approvals.reject, "request")


def tick(body: dict[str, Any], respond: Any, context: Any) -> None:
    """A click on one checklist item: Slack sends the element's ``selected_options`` after the click (the one option
    when the clicker ticked it, none when they unticked it; https://docs.slack.dev/reference/interaction-payloads/block_actions-payload).
    One element per item, so a click says exactly what happened to that item, whatever the clicker's screen showed of others."""
    ops = operations(context)
    action = (body.get("actions") or [{}])[0]
    found = CHECK_ACTION.match(str(action.get("action_id") or ""))
    block = str(action.get("block_id") or "")
    request_id = CONTROL.sub("\ufffd", block.removeprefix(CHECKLIST_BLOCK)[:200]) if block.startswith(CHECKLIST_BLOCK) else ""
    item = int(found.group(1)) if found else -1
    ticked = bool(action.get("selected_options"))
    params = {"request": request_id, "item": item, "ticked": ticked}
    actor = actor_from_action(body, source_of(context))
    reply = ops.dispatcher.perform(actor, "click.checklist", ops.approvals.tick, request_id, item, ticked, params=params)
    deliver(reply, ops, respond)


def group_members_changed(event: dict[str, Any], context: Any) -> None:
    """``subteam_members_changed``: a user group's members changed; the next vote reads the group again, so someone
    removed from the approvers' group cannot approve on what opsbot knew a minute ago."""
    group = str(event.get("subteam_id") or "")[:40]
    if group:
        operations(context).forget_group(group)


def register(app: App) -> None:
    button(app, ApprovalAction.APPROVE, approve)
    button(app, ApprovalAction.REJECT, reject)
    app.action(CHECK_ACTION)(ack=ack_now, lazy=[tick])
    app.event("subteam_members_changed")(ack=ack_now, lazy=[group_members_changed])
