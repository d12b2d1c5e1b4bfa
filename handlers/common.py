"""What every handler shares: who is acting, and how a domain reply reaches Slack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.domain.shared.context import Call
from bot.domain.shared.policy import Actor
from bot.domain.shared.ports import Reply
from bot.wiring import AppServices

log = logging.getLogger("opsbot.handlers")


def services_of(context: Any) -> AppServices:
    return context["services"]  # type: ignore[no-any-return]


def actor_from_command(command: dict[str, Any], source: str = "slack") -> Actor:
    return Actor(user_id=command["user_id"], channel_id=command.get("channel_id"), source=source, request_id=command.get("trigger_id"))


def actor_from_action(body: dict[str, Any], source: str = "slack") -> Actor:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return Actor(user_id=body["user"]["id"], channel_id=channel, source=source, request_id=body.get("trigger_id"))


def source_of(context: Any) -> str:
    """``console`` when the local console sent the request, else ``slack``."""
    return "console" if context.get("opsbot_console") else "slack"


def deliver(reply: Reply, services: AppServices, respond: Any) -> None:
    """Send ``reply`` through the response URL: ephemeral unless the domain said otherwise."""
    payload = services.renderer.render(reply.message)
    try:
        respond(
            text=payload["text"],
            blocks=payload["blocks"],
            response_type=reply.visibility,
            replace_original=reply.replace_original,
        )
    except Exception:  # the work is done and audited; a lost reply is logged, not retried blindly
        log.exception("could not deliver a reply through the response URL")


def button_value(body: dict[str, Any]) -> str:
    """The opaque id a button carried: nothing else in a payload is trusted."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")[:200]


def answer_click(body: dict[str, Any], respond: Any, context: Any, action: str, fn: Callable[[Call], Reply],
                 params: dict[str, Any] | None = None) -> None:
    """Run a button's domain call as the clicker (checked, audited) and reply to them."""
    services = services_of(context)
    reply = services.dispatcher.perform(actor_from_action(body, source_of(context)), action, fn, params=params or {})
    deliver(reply, services, respond)


def ack_now(ack: Ack) -> None:
    """Acknowledge on the request thread: Slack's 3-second deadline never waits behind other requests' work."""
    ack()


def button(app: App, action_id: str, run: Callable[[Call, str], Reply], *, audit_action: str | None = None, param: str = "value") -> None:
    """Register a button: ack at once; then, on Bolt's pool, ``run(call, value)`` as the clicker, audited, and reply to them."""

    def work(body: dict[str, Any], respond: Any, context: Any) -> None:
        value = button_value(body)
        answer_click(body, respond, context, audit_action or f"click.{action_id}", lambda call: run(call, value), {param: value})

    work.__name__ = f"handle_{action_id}"
    app.action(action_id)(ack=ack_now, lazy=[work])
