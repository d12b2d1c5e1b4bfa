"""Flag buttons: Undo on a kill alert. The button carries only the kill's opaque id."""

from __future__ import annotations

from enum import StrEnum

from slack_bolt import App

from bot.domain.flags import commands as flags
from handlers.common import button


class FlagAction(StrEnum):
    UNDO_KILL = "flag_undo_kill"


def register(app: App) -> None:
    # Undo is an unkill by the clicker under the same rules (deployer; approval where the environment needs it).
    button(app, FlagAction.UNDO_KILL, flags.undo_kill, param="change")
