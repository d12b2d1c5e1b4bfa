"""Signed Slack requests in Slack's documented shapes: what the console sends, and what tests send."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import urlencode


def sign(
    secret: str, body: str, timestamp: int | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, str]:
    """Headers Slack would send: ``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
    }


def as_slack_sends(text: str, users: dict[str, str] | None = None) -> str:
    """``text`` typed in the message box, as Slack sends it to a command whose manifest sets ``should_escape: true``:
    ``&``, ``<`` and ``>`` escaped, and ``@name`` of a known user (``users``: ID → name) as the mention Slack's
    autocomplete inserts, ``<@U…|name>`` (https://api.slack.com/interactivity/slash-commands#creating_commands,
    "Escape channels, users, and links sent to your app")."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    by_name = {name.lower(): uid for uid, name in (users or {}).items()}

    def person(found: re.Match[str]) -> str:
        uid = by_name.get(found.group(2).lower())
        return f"{found.group(1)}<@{uid}|{found.group(2)}>" if uid else found.group(0)

    return re.sub(r"(^|[\s(\[,])@([A-Za-z0-9._-]+)\b", person, escaped)


def slash_command(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    trigger_id: str = "1.1.local",
    command: str = "/ops",
    team_id: str = "T0LOCAL",
    user_name: str = "",
    channel_name: str = "",
) -> str:
    """A slash-command body, form-encoded as Slack posts it."""
    return urlencode(
        {
            "token": "unused-verification-token",
            "team_id": team_id,
            "team_domain": "local",
            "channel_id": channel_id,
            "channel_name": channel_name or channel_id.lower(),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0OPSBOT",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def block_action(
    *,
    user_id: str,
    channel_id: str,
    message_ts: str,
    action: dict[str, Any],
    response_url: str,
    trigger_id: str = "1.1.local",
    message: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    team_id: str = "T0LOCAL",
) -> str:
    """A ``block_actions`` body for one button press (``payload=<JSON>``)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0OPSBOT",
        "token": "unused-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": is_ephemeral},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "local"},
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "response_url": response_url,
        "actions": [_action(action)],
    }
    if message is not None:
        payload["message"] = message
    return urlencode({"payload": json.dumps(payload)})


def _action(element: dict[str, Any]) -> dict[str, Any]:
    """One entry of a ``block_actions`` payload's ``actions``: a button's ``value``, or a checkboxes element's
    ``selected_options`` after the click (``element["selected_options"]``; none when everything is unticked)."""
    common = {"action_id": element["action_id"], "block_id": element.get("block_id", ""), "action_ts": f"{time.time():.6f}"}
    if element.get("type") == "checkboxes":
        return {**common, "type": "checkboxes", "selected_options": list(element.get("selected_options") or [])}
    return {
        **common,
        "text": element.get("text", {"type": "plain_text", "text": ""}),
        "value": element.get("value", ""),
        "type": "button",
    }


def view_submission(*, user_id: str, view: dict[str, Any], values: dict[str, dict[str, Any]], team_id: str = "T0LOCAL") -> str:
    """A ``view_submission`` body for a modal, with ``values`` as Slack's ``state.values``."""
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "local"},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0OPSBOT",
        "token": "unused-verification-token",
        "trigger_id": f"{time.time():.0f}.1.local",
        "view": {**view, "state": {"values": values}, "type": "modal", "team_id": team_id},
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_state(view: dict[str, Any], fields: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``state.values`` for a modal as Slack sends them: ``fields`` by block id, else each input's initial value."""
    values: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id, action_id = block["block_id"], element["action_id"]
        if element["type"] == "static_select":
            chosen = fields.get(block_id)
            option = (
                next((o for o in element.get("options", []) if o["value"] == chosen), None)
                if chosen
                else element.get("initial_option")
            )
            values[block_id] = {action_id: {"type": "static_select", "selected_option": option}}
        else:
            values[block_id] = {action_id: {"type": element["type"], "value": fields.get(block_id, element.get("initial_value"))}}
    return values


def event_callback(event: dict[str, Any], *, event_id: str, team_id: str = "T0LOCAL") -> str:
    """An Events API body (JSON)."""
    return json.dumps(
        {
            "token": "unused-verification-token",
            "team_id": team_id,
            "api_app_id": "A0OPSBOT",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "user_id": "U0OPSBOT", "is_bot": True, "is_enterprise_install": False}],
        }
    )


def app_home_opened(*, user_id: str, view: dict[str, Any] | None = None, tab: str = "home") -> dict[str, Any]:
    """The ``app_home_opened`` event (https://docs.slack.dev/reference/events/app_home_opened): ``view`` is the Home
    the person last saw (absent the first time), ``tab`` is ``home`` or ``messages``. Wrap it with ``event_callback``."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D" + user_id[1:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    if view is not None:
        event["view"] = view
    return event


def home_block_action(
    *, user_id: str, view: dict[str, Any], action: dict[str, Any], trigger_id: str = "1.1.local", team_id: str = "T0LOCAL"
) -> str:
    """A ``block_actions`` body for a button on a Home view: ``container`` is the view, and there is no
    ``channel``, ``message`` or ``response_url`` (Slack sends none for a view)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0OPSBOT",
        "token": "unused-verification-token",
        "container": {"type": "view", "view_id": view.get("id", "")},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "local"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {**view, "type": "home", "state": view.get("state") or {"values": {}}},
        "actions": [
            {
                "action_id": action["action_id"],
                "block_id": action.get("block_id", ""),
                "text": action.get("text", {"type": "plain_text", "text": ""}),
                "value": action.get("value", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
