"""Flag buttons: Undo on a kill alert. The button carries only the kill's opaque id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class FlagAction(StrEnum):
    UNDO_KILL = "flag_undo_kill"


def undo_kill(body: dict[str, Any], respond: Any, context: Any) -> None:
    # Undo is an unkill by the clicker under the same rules (deployer; approval where the environment needs it).
    answer_click(body, respond, context, f"click.{FlagAction.UNDO_KILL}", operations(context).flags.commands.undo_kill, "change")


def register(app: App) -> None:
    button(app, FlagAction.UNDO_KILL, undo_kill)
