"""Helpers for incident tests: the incident channel, modal submissions and events, all in Slack's shapes."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse

from bot.console import payloads
from bot.console.slack_emulator import Channel, Posted
from tests.support import Bot, eventually

BotFactory = Callable[..., Bot]


def incident_channels(bot: Bot) -> list[Channel]:
    return [c for c in bot.emulator.channels.values() if c.name.startswith("inc-")]


def only_incident_channel(bot: Bot) -> Channel:
    channels = incident_channels(bot)
    assert len(channels) == 1, [c.name for c in channels]
    return channels[0]


def declare(
    bot: Bot, text: str = 'P1 Checkout errors --service api --impact "5% of checkouts fail"', user: str = "U0DEV"
) -> Channel:
    reply = bot.command(f"incident declare {text}", user=user)
    assert "Declared" in reply.seen(), reply.seen()
    return bot.emulator.channels[channel_of(reply)]


def channel_of(reply: Posted) -> str:
    """The channel a reply links to."""
    match = re.search(r"<#(C[A-Z0-9]+)>", reply.all_text())
    assert match, reply.all_text()
    return match.group(1)


def posts(bot: Bot, channel: str, contains: str) -> list[Posted]:
    return [m for m in bot.emulator.in_channel(channel) if contains in m.seen()]


def last_view(bot: Bot) -> dict[str, Any]:
    assert bot.emulator.views, "no modal was opened"
    return bot.emulator.views[-1]


def submit(bot: Bot, view: dict[str, Any], user: str, **fields: str) -> dict[str, Any]:
    """Submit the modal; returns what the app answered in the ack (``{}`` when it closed the modal)."""
    body = payloads.view_submission(user_id=user, view=view, values=payloads.view_state(view, fields))
    response: BoltResponse = bot.dispatch(body)
    assert response.status == 200, (response.status, response.body)
    return json.loads(response.body) if response.body else {}


def react(
    bot: Bot, channel: str, ts: str, user: str, reaction: str = "pushpin", event_id: str | None = None, retry: int | None = None
) -> BoltResponse:
    event = {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item_user": user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": ts,
    }
    body = payloads.event_callback(event, event_id=event_id or "Ev" + secrets.token_hex(5).upper())
    headers = payloads.sign(bot.secret, body, content_type="application/json")
    if retry is not None:
        headers.update({"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"})
    return bot.dispatch(body, headers)


def outcomes(bot: Bot, action: str, count: int) -> list[str]:
    """The audited outcomes of ``action`` once there are ``count`` of them (listeners run after the ack)."""

    def ready() -> list[str] | None:
        found = [outcome for _, name, outcome in bot.audit_actions() if name == action]
        return found if len(found) >= count else None

    return eventually(ready)  # type: ignore[no-any-return]
