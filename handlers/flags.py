"""Flag buttons: Undo on a kill alert. The button carries only the kill's opaque id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import flags
from handlers.common import answer_click, button_value


class FlagAction(StrEnum):
    UNDO_KILL = "flag_undo_kill"


def handle_undo_kill(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    """Undo a kill: an unkill by the clicker under the same rules (deployer; approval where the environment needs it)."""
    ack()
    change_id = button_value(body)
    answer_click(body, respond, context, "click.flag_undo_kill", lambda call: flags.undo_kill(call, change_id), {"change": change_id})


def register(app: App) -> None:
    app.action(FlagAction.UNDO_KILL)(handle_undo_kill)
