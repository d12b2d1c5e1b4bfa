"""Audit log buttons: paging through `/ops audit`."""

from __future__ import annotations

from enum import StrEnum

from slack_bolt import App

from bot.domain.audit import service as audit
from handlers.common import button


class AuditAction(StrEnum):
    OLDER = "audit_older"


def register(app: App) -> None:
    # The button carries only an opaque page id; the query itself is kept server-side.
    button(app, AuditAction.OLDER, audit.next_page, param="page")
