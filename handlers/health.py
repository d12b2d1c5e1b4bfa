"""Health alert buttons: "Silence 1h" (the "Declare incident" button belongs to the incidents family)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.domain import health
from handlers.common import actor_from_action, button_value, deliver, services_of, source_of


class HealthAction(StrEnum):
    SILENCE = "health_silence"


def handle_silence(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    """Mute a watch's bad news for an hour; the button carries only the alert id, the role is re-checked."""
    ack()
    services = services_of(context)
    alert_id = button_value(body)
    reply = services.dispatcher.perform(
        actor_from_action(body, source_of(context)),
        "click.health_silence",
        lambda call: health.silence(call, alert_id),
        params={"alert": alert_id},
    )
    deliver(reply, services, respond)


def register(app: App) -> None:
    app.action(HealthAction.SILENCE)(handle_silence)
