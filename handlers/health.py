"""Health alert buttons: "Silence 1h" (the "Declare incident" button belongs to the incidents family)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import health
from handlers.common import answer_click, button_value


class HealthAction(StrEnum):
    SILENCE = "health_silence"


def handle_silence(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    """Mute a watch's bad news for an hour; the button carries only the alert id, the role is re-checked."""
    ack()
    alert_id = button_value(body)
    answer_click(body, respond, context, "click.health_silence", lambda call: health.silence(call, alert_id), {"alert": alert_id})


def register(app: App) -> None:
    app.action(HealthAction.SILENCE)(handle_silence)
