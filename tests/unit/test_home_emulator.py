"""The console's Slack emulator answers `views.publish` the way Slack does: a `home` view of at most 100 valid blocks,
block ids unique, for a member, in an app whose Home tab is enabled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.console.slack_emulator import SlackEmulator


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, WebClient]]:
    emulator = SlackEmulator().start()
    emulator.add_user("U0ALICE", "alice")
    yield emulator, WebClient(token=emulator.token, base_url=emulator.api_url)
    emulator.stop()


def section(n: int, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": f"row {n}"}}
    if block_id:
        block["block_id"] = block_id
    return block


def refusal(client: WebClient, **args: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        client.views_publish(**args)
    return dict(raised.value.response.data)  # type: ignore[arg-type]


def test_a_home_view_is_kept_per_person_with_a_stable_id(slack: tuple[SlackEmulator, WebClient]) -> None:
    emulator, client = slack
    first = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [section(1)]})
    second = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [section(2)]})
    assert first["view"]["id"] == second["view"]["id"]
    assert emulator.homes["U0ALICE"]["blocks"] == [section(2)]


def test_what_slack_refuses_is_refused(slack: tuple[SlackEmulator, WebClient]) -> None:
    emulator, client = slack
    assert refusal(client, user_id="U0ALICE", view={"type": "modal", "blocks": []})["error"] == "invalid_arguments"
    too_many = refusal(client, user_id="U0ALICE", view={"type": "home", "blocks": [section(n) for n in range(101)]})
    assert "no more than 100 items allowed [json-pointer:/blocks]" in too_many["response_metadata"]["messages"]
    twice = refusal(client, user_id="U0ALICE", view={"type": "home", "blocks": [section(1, "a"), section(2, "a")]})
    assert twice["error"] == "invalid_arguments"
    assert refusal(client, user_id="U0NOBODY", view={"type": "home", "blocks": []})["error"] == "user_not_found"
    emulator.home_tab_enabled = False
    assert refusal(client, user_id="U0ALICE", view={"type": "home", "blocks": []})["error"] == "not_enabled"
    assert "U0ALICE" not in emulator.homes
