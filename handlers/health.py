"""Health alert buttons: "Silence 1h" (the "Declare incident" button belongs to the incidents family)."""

from __future__ import annotations

from enum import StrEnum

from slack_bolt import App

from bot.domain.health import service as health
from handlers.common import button


class HealthAction(StrEnum):
    SILENCE = "health_silence"


def register(app: App) -> None:
    # Mutes a watch's bad news for an hour; the button carries only the alert id, the role is re-checked.
    button(app, HealthAction.SILENCE, health.silence, param="alert")
