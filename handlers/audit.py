"""Audit log buttons: paging through `/ops audit`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class AuditAction(StrEnum):
    OLDER = "audit_older"


def older(body: dict[str, Any], respond: Any, context: Any) -> None:
    # The button carries only an opaque page id; the query itself is kept server-side.
    answer_click(body, respond, context, f"click.{AuditAction.OLDER}", operations(context).audit_commands.next_page, "page")


def register(app: App) -> None:
    button(app, AuditAction.OLDER, older)
