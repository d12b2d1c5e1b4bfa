"""The Slack emulator's message metadata and failures, seen through slack_sdk's real WebClient over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.models.metadata import Metadata

from bot.console.slack_emulator import SlackEmulator

CHANNEL = "C0DEPLOYS"
DEPLOY = {"event_type": "opsbot_deploy", "event_payload": {"deploy_id": "d-1", "state": "running"}}


def client(emulator: SlackEmulator, *handlers: RetryHandler) -> WebClient:
    """slack_sdk's client on the emulator, with exactly these retry handlers (none: every failure reaches the caller)."""
    return WebClient(token=emulator.token, base_url=emulator.api_url, retry_handlers=list(handlers), timeout=5)


def history(emulator: SlackEmulator, **args: Any) -> list[dict[str, Any]]:
    return list(client(emulator).conversations_history(channel=CHANNEL, **args)["messages"])


def posted_texts(emulator: SlackEmulator) -> list[str]:
    return [m.text for m in emulator.in_channel(CHANNEL)]


class Seen:
    """Wraps a retry handler and records the status and Retry-After of each response it is asked about."""

    def __init__(self) -> None:
        self.responses: list[tuple[int | None, str | None]] = []
        self.errors: list[type[BaseException]] = []

    def wrap(self, handler: RetryHandler) -> RetryHandler:
        seen = self
        original = handler._can_retry

        def can_retry(
            *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None, error: Exception | None = None
        ) -> bool:
            if response is not None:
                retry_after = next((v[0] for k, v in response.headers.items() if k.lower() == "retry-after"), None)
                seen.responses.append((response.status_code, retry_after))
            if error is not None:
                seen.errors.append(type(error))
            return original(state=state, request=request, response=response, error=error)

        handler._can_retry = can_retry  # type: ignore[method-assign]
        return handler


# ----- message metadata -----


def test_posted_metadata_is_kept_and_returned_by_history_only_when_asked(emulator: SlackEmulator) -> None:
    response = client(emulator).chat_postMessage(channel=CHANNEL, text="Deploying api", metadata=DEPLOY)
    assert response["message"]["metadata"] == DEPLOY
    assert emulator.in_channel(CHANNEL)[-1].metadata == DEPLOY
    assert "metadata" not in history(emulator)[0]
    assert history(emulator, include_all_metadata=True)[0]["metadata"] == DEPLOY


def test_metadata_as_slack_sdks_model_and_as_a_form_encoded_string(emulator: SlackEmulator) -> None:
    web = client(emulator)
    web.chat_postMessage(channel=CHANNEL, text="model", metadata=Metadata(event_type="opsbot_deploy", event_payload={"n": 1}))
    web.api_call("chat.postMessage", data={"channel": CHANNEL, "text": "form", "metadata": json.dumps(DEPLOY)})
    assert [m.metadata for m in emulator.in_channel(CHANNEL)] == [
        {"event_type": "opsbot_deploy", "event_payload": {"n": 1}},
        DEPLOY,
    ]
    assert isinstance(emulator.calls_to("chat.postMessage")[-1].args["metadata"], dict)


def test_metadata_in_thread_replies_only_when_asked(emulator: SlackEmulator) -> None:
    web = client(emulator)
    root = web.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    web.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=root, metadata=DEPLOY)
    plain = web.conversations_replies(channel=CHANNEL, ts=root)["messages"]
    full = web.conversations_replies(channel=CHANNEL, ts=root, include_all_metadata=True)["messages"]
    assert [m.get("metadata") for m in plain] == [None, None]
    assert [m.get("metadata") for m in full] == [None, DEPLOY]


def test_chat_update_replaces_keeps_or_removes_metadata(emulator: SlackEmulator) -> None:
    web = client(emulator)
    ts = web.chat_postMessage(channel=CHANNEL, text="v1", metadata=DEPLOY)["ts"]
    done = {"event_type": "opsbot_deploy", "event_payload": {"deploy_id": "d-1", "state": "done"}}
    web.chat_update(channel=CHANNEL, ts=ts, text="v2", metadata=done)
    assert history(emulator, include_all_metadata=True)[0]["metadata"] == done
    web.chat_update(channel=CHANNEL, ts=ts, text="v3")  # no metadata argument: Slack keeps what was there
    assert history(emulator, include_all_metadata=True)[0]["metadata"] == done
    web.chat_update(channel=CHANNEL, ts=ts, text="v4", metadata={})  # an empty object removes it
    assert "metadata" not in history(emulator, include_all_metadata=True)[0]


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ("not json", "invalid_metadata_format"),
        ('["a list"]', "invalid_metadata_format"),
        (json.dumps({"event_payload": {}}), "invalid_metadata_schema"),
        (json.dumps({"event_type": "x", "event_payload": "not an object"}), "invalid_metadata_schema"),
    ],
)
def test_malformed_metadata_is_refused_like_slack_refuses_it(emulator: SlackEmulator, metadata: str, error: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        client(emulator).api_call("chat.postMessage", data={"channel": CHANNEL, "text": "x", "metadata": metadata})
    assert raised.value.response["error"] == error and emulator.in_channel(CHANNEL) == []


# ----- failing after the work is done -----


def test_a_failure_before_the_work_posts_nothing(emulator: SlackEmulator) -> None:
    emulator.fail("chat.postMessage", "internal_error", status=500)
    with pytest.raises(SlackApiError) as raised:
        client(emulator).chat_postMessage(channel=CHANNEL, text="hello")
    assert raised.value.response.status_code == 500 and posted_texts(emulator) == []
    assert emulator.calls_to("chat.postMessage")[0].performed is False


def test_a_failure_after_the_work_posts_the_message_and_still_fails_the_caller(emulator: SlackEmulator) -> None:
    emulator.fail("chat.postMessage", "internal_error", status=500, after=True)
    with pytest.raises(SlackApiError) as raised:
        client(emulator).chat_postMessage(channel=CHANNEL, text="hello")
    assert raised.value.response.status_code == 500 and raised.value.response["error"] == "internal_error"
    assert posted_texts(emulator) == ["hello"]
    call = emulator.calls_to("chat.postMessage")[0]
    assert (call.performed, call.status, call.response) == (True, 500, {"ok": False, "error": "internal_error"})


def test_chat_update_can_fail_after_updating(emulator: SlackEmulator) -> None:
    web = client(emulator)
    ts = web.chat_postMessage(channel=CHANNEL, text="v1")["ts"]
    emulator.fail("chat.update", "internal_error", status=503, after=True)
    with pytest.raises(SlackApiError):
        web.chat_update(channel=CHANNEL, ts=ts, text="v2", metadata=DEPLOY)
    message = emulator.find(ts)
    assert message is not None and (message.text, message.edits, message.metadata) == ("v2", 1, DEPLOY)


def test_server_error_retry_handler_retries_a_500_and_the_message_is_posted_twice(emulator: SlackEmulator) -> None:
    """What slack_sdk's ServerErrorRetryHandler does when Slack posted and then answered 500."""
    seen = Seen()
    emulator.fail("chat.postMessage", "internal_error", status=500, after=True)
    response = client(emulator, seen.wrap(ServerErrorRetryHandler(max_retry_count=1))).chat_postMessage(
        channel=CHANNEL, text="hi"
    )
    assert response["ok"] and seen.responses == [(500, None)]
    assert posted_texts(emulator) == ["hi", "hi"]


def test_rate_limit_retry_handler_sees_429_and_waits_the_retry_after(emulator: SlackEmulator) -> None:
    seen = Seen()
    emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    response = client(emulator, seen.wrap(RateLimitErrorRetryHandler(max_retry_count=2))).chat_postMessage(
        channel=CHANNEL, text="hi"
    )
    assert response["ok"] and time.monotonic() - started >= 1.0
    assert seen.responses[0] == (429, "1")
    assert [c.status for c in emulator.calls_to("chat.postMessage")] == [429, 200] and posted_texts(emulator) == ["hi"]


def test_a_429_without_a_retry_handler_reaches_the_caller_with_its_header(emulator: SlackEmulator) -> None:
    emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=30)
    with pytest.raises(SlackApiError) as raised:
        client(emulator).chat_postMessage(channel=CHANNEL, text="hi")
    assert raised.value.response.status_code == 429 and raised.value.response.headers["retry-after"] == "30"


# ----- connections closed with no response -----


def test_a_dropped_connection_is_a_connection_error_for_the_caller(emulator: SlackEmulator) -> None:
    emulator.fail_connection("chat.postMessage")
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        client(emulator).chat_postMessage(channel=CHANNEL, text="hi")
    assert posted_texts(emulator) == []
    call = emulator.calls_to("chat.postMessage")[0]
    assert (call.status, call.response, call.performed) == (0, {}, False)
    assert client(emulator).chat_postMessage(channel=CHANNEL, text="next")["ok"]  # only the next call is dropped


def test_connection_error_retry_handler_retries_a_drop_and_a_drop_after_the_work_posts_twice(emulator: SlackEmulator) -> None:
    """slack_sdk's default client retries a dropped connection once; if Slack had posted, the message is there twice."""
    seen = Seen()
    web = client(emulator, seen.wrap(ConnectionErrorRetryHandler(max_retry_count=1)))
    emulator.fail_connection("chat.postMessage", times=1)
    assert web.chat_postMessage(channel=CHANNEL, text="before")["ok"]
    emulator.fail_connection("chat.postMessage", times=1, after=True)
    assert web.chat_postMessage(channel=CHANNEL, text="after")["ok"]
    assert posted_texts(emulator) == ["before", "after", "after"]
    assert len(seen.errors) == 2 and all(issubclass(e, ConnectionError) for e in seen.errors)


def test_queued_failures_of_a_method_are_used_in_order(emulator: SlackEmulator) -> None:
    emulator.fail("chat.postMessage", "ratelimited", status=429, retry_after=0)
    emulator.fail_connection("chat.postMessage")
    emulator.fail("chat.postMessage", "internal_error", status=500, after=True)
    web = client(emulator)
    outcomes = []
    for _ in range(4):
        try:
            web.chat_postMessage(channel=CHANNEL, text="x")
            outcomes.append("ok")
        except SlackApiError as exc:
            outcomes.append(exc.response.status_code)
        except ConnectionError:
            outcomes.append("dropped")
    assert outcomes == [429, "dropped", 500, "ok"]
    assert [c.performed for c in emulator.calls_to("chat.postMessage")] == [False, False, True, True]
