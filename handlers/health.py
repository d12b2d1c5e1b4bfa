"""Health alert buttons: "Silence 1h" (the "Declare incident" button belongs to the incidents family)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import App

from handlers.common import answer_click, button, operations


class HealthAction(StrEnum):
    SILENCE = "health_silence"


def silence(body: dict[str, Any], respond: Any, context: Any) -> None:
    # Mutes a watch's bad news for an hour; the button carries only the alert id, the role is re-checked.
    answer_click(body, respond, context, f"click.{HealthAction.SILENCE}", operations(context).health.silence, "alert")


def register(app: App) -> None:
    button(app, HealthAction.SILENCE, silence)
