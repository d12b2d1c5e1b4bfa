"""Slack's own payloads, replayed into the app (re-signed with a fresh timestamp), over HTTP and Socket Mode.

The payloads live in ../shared/slack/ (Slack's data, never copied here). Only what must point at
this bot changes: the command and its text, the action id, and the response URL (to the emulator).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.app import create_app
from bot.config import OpsConfig
from bot.console import payloads
from tests.support import SHARED_SLACK, Bot, make_config

pytestmark = pytest.mark.skipif(
    not SHARED_SLACK.is_dir(),
    reason=f"Slack's reference payloads are not here ({SHARED_SLACK}); "
    "they ship with the team's shared folder, not with the repository",
)


def load(name: str) -> dict[str, Any]:
    return json.loads((SHARED_SLACK / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture
def config() -> OpsConfig:
    roles = {"admin": ["U0ADMIN"], "approver": [], "deployer": [], "viewer": ["*"]}
    return make_config(roles=roles)


def test_our_signer_matches_slacks_known_answer() -> None:
    vector = load("slash_command_signed_known_answer.json")
    headers = payloads.sign(
        vector["signing_secret"], vector["raw_body"], timestamp=int(vector["headers"]["X-Slack-Request-Timestamp"])
    )
    assert headers["x-slack-signature"] == vector["headers"]["X-Slack-Signature"]
    pinned = SignatureVerifier(vector["signing_secret"], clock=type("Pinned", (), {"now": lambda self: 1531420618.0})())
    assert pinned.is_valid_request(vector["raw_body"], vector["headers"])


def test_slacks_2018_signed_request_is_too_old_for_the_app(opsbot: Bot) -> None:
    vector = load("slash_command_signed_known_answer.json")
    response = opsbot.dispatch(
        vector["raw_body"], {k.lower(): v for k, v in vector["headers"].items()} | {"content-type": vector["content_type"]}
    )
    assert response.status == 401


def test_a_real_slash_command_body_replayed_as_ops_help(opsbot: Bot) -> None:
    fields = dict(parse_qsl(load("slash_command_bolt.json")["raw_body"]))
    url = opsbot.emulator.response_url(fields["channel_id"], fields["user_id"])
    body = urlencode({**fields, "command": "/ops", "text": "help", "response_url": url})
    assert opsbot.dispatch(body).status == 200
    reply = opsbot.reply_to(url)
    assert reply.ephemeral_to == "W111" and "opsbot help" in reply.seen()


@pytest.mark.parametrize("sample", ["block_actions_button.json", "block_actions_with_message.json"])
def test_real_block_actions_replayed_against_our_button(opsbot: Bot, sample: str) -> None:
    payload = load(sample)["payload"]
    url = opsbot.emulator.response_url(payload["channel"]["id"], payload["user"]["id"], payload["container"]["message_ts"])
    payload = {
        **payload,
        "response_url": url,
        "actions": [{**payload["actions"][0], "action_id": "audit_older", "value": "stale-page"}],
    }
    assert opsbot.dispatch(urlencode({"payload": json.dumps(payload)})).status == 200
    replies = opsbot.emulator.wait_for(lambda: opsbot.emulator.responses(url))
    assert "That page has expired" in replies[-1].args["text"]


def socket_app(opsbot: Bot) -> App:
    return create_app(opsbot.settings, opsbot.services, mode="socket")


def test_socket_mode_slash_command_envelope(opsbot: Bot) -> None:
    envelope = next(e for e in load("socket_mode_envelopes.json")["envelopes"] if e["type"] == "slash_commands")
    url = opsbot.emulator.response_url(envelope["payload"]["channel_id"], envelope["payload"]["user_id"])
    envelope = {**envelope, "payload": {**envelope["payload"], "command": "/ops", "text": "locks", "response_url": url}}
    response = run_bolt_app(socket_app(opsbot), SocketModeRequest.from_dict(envelope))
    assert response.status == 200
    assert "No locks are held" in opsbot.reply_to(url).seen()


def test_the_same_body_without_a_signature_is_refused_over_http(opsbot: Bot) -> None:
    envelope = next(e for e in load("socket_mode_envelopes.json")["envelopes"] if e["type"] == "slash_commands")
    url = opsbot.emulator.response_url("C111", "U111")
    body = urlencode({**envelope["payload"], "command": "/ops", "text": "help", "response_url": url})
    assert opsbot.dispatch(body, {"content-type": "application/x-www-form-urlencoded"}).status == 401
