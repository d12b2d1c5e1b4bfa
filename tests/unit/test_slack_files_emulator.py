"""The emulator's files.uploadV2 steps answer as Slack does: slack_sdk's own files_upload_v2 goes through them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.console.slack_emulator import SlackEmulator


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, WebClient]]:
    emulator = SlackEmulator().start()
    emulator.add_channel("C0OPS", "ops", ["U0DEV"])
    yield emulator, WebClient(token=emulator.token, base_url=emulator.api_url)
    emulator.stop()


def test_files_upload_v2_shares_the_bytes_in_the_channel_with_the_comment(slack: tuple[SlackEmulator, WebClient]) -> None:
    emulator, client = slack
    answer = client.files_upload_v2(
        channel="C0OPS", filename="c.png", content=b"\x89PNG\r\n", title="Chart", initial_comment="📈"
    )
    assert answer["file"]["title"] == "Chart" and answer["file"]["size"] == 6
    [shared] = [m for m in emulator.in_channel("C0OPS") if m.files]
    assert shared.text == "📈" and Path(shared.files[0]["path"]).read_bytes() == b"\x89PNG\r\n"
    methods = [c.method for c in emulator.calls]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_an_unknown_channel_or_a_file_never_uploaded_is_refused_like_slack(slack: tuple[SlackEmulator, WebClient]) -> None:
    _, client = slack
    with pytest.raises(SlackApiError) as refused:
        client.files_upload_v2(channel="C0NOPE", filename="c.png", content=b"x", title="t")
    assert refused.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as missing:
        client.files_completeUploadExternal(files=[{"id": "F999", "title": "t"}], channel_id="C0OPS")
    assert missing.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as empty:
        client.files_getUploadURLExternal(filename="c.png", length=0)
    assert empty.value.response["error"] == "invalid_arguments"
