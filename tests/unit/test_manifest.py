"""manifest.yml: valid for Slack's published schema, and exactly the scopes the code uses."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support import SHARED_SLACK

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
# Web API method → the bot scope Slack requires for it (docs.slack.dev method reference).
SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_delete": "chat:write",
    "usergroups_users_list": "usergroups:read",
    "usergroups_list": "usergroups:read",
    "conversations_create": "channels:manage",
    "conversations_invite": "channels:manage",
    "conversations_setTopic": "channels:manage",
    "conversations_archive": "channels:manage",
    "conversations_info": "channels:read",
    "conversations_members": "channels:read",
    "conversations_history": "channels:history",
    "conversations_replies": "channels:history",
    "pins_add": "pins:write",
    "pins_remove": "pins:write",
    "reactions_add": "reactions:write",
    "reactions_get": "reactions:read",
    "users_info": "users:read",
    "users_list": "users:read",
    "chat_getPermalink": None,
    "views_open": None,
    "views_update": None,
    "views_push": None,
    "auth_test": None,
    "conversations_open": "im:write",
    "files_upload_v2": "files:write",  # files.getUploadURLExternal and files.completeUploadExternal
}
ALWAYS = {"commands"}  # the slash command itself


def called_methods() -> set[str]:
    """Every WebClient method the app calls (``client.chat_postMessage(…)`` and the like)."""
    found = set()
    for folder in ("bot", "handlers"):
        for path in (ROOT / folder).rglob("*.py"):
            if "console" in path.parts:
                continue  # the console's emulator answers Slack methods; it does not call them
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in SCOPES:
                    found.add(node.attr)
    return found


def test_bot_scopes_are_exactly_those_the_code_needs() -> None:
    needed = {SCOPES[m] for m in called_methods() if SCOPES[m]} | ALWAYS
    reaction_events = set(MANIFEST["settings"].get("event_subscriptions", {}).get("bot_events", []))
    if "reaction_added" in reaction_events:
        needed.add("reactions:read")
    assert sorted(MANIFEST["oauth_config"]["scopes"]["bot"]) == sorted(needed)


def test_ops_command_interactivity_and_socket_mode_are_declared() -> None:
    assert [c["command"] for c in MANIFEST["features"]["slash_commands"]] == ["/ops"]
    assert MANIFEST["features"]["slash_commands"][0]["should_escape"] is True  # mentions arrive as <@U…>
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True


@pytest.mark.skipif(
    not (SHARED_SLACK / "slack-app-manifest.schema.json").exists(),
    reason=f"Slack's manifest schema is not here ({SHARED_SLACK}); it ships with the team's shared folder",
)
def test_manifest_is_valid_for_slacks_schema() -> None:
    schema = json.loads((SHARED_SLACK / "slack-app-manifest.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(MANIFEST, schema)
    broken = {**MANIFEST, "features": {**MANIFEST["features"], "slash_commands": [{"command": "ops"}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.skipif(not (SHARED_SLACK / "slack_limits.json").exists(), reason=f"Slack's limits file is not here ({SHARED_SLACK})")
def test_our_block_limits_are_slacks() -> None:
    from bot.slack_limits import LIMITS, MESSAGE_TEXT_MAX

    published = json.loads((SHARED_SLACK / "slack_limits.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in published["block_kit"].items() if isinstance(v, int)} == LIMITS
    assert published["message_text"]["truncate_over_chars"] == MESSAGE_TEXT_MAX
