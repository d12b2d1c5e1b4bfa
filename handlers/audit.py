"""Audit log buttons: paging through `/ops audit`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import audit
from handlers.common import answer_click, button_value


class AuditAction(StrEnum):
    OLDER = "audit_older"


def handle_older(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    """Next page of an audit listing; the button carries only an opaque page id."""
    ack()
    page_id = button_value(body)
    answer_click(body, respond, context, "click.audit_older", lambda call: audit.next_page(call, page_id), {"page": page_id})


def register(app: App) -> None:
    app.action(AuditAction.OLDER)(handle_older)
