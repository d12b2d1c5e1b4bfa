"""Slack conversations for incidents: create channels, invite, pins, read messages back, modals, ephemerals.

Slack's errors become typed ones: ``name_taken`` → NameTaken (the domain tries the next name),
``ratelimited`` (after the client's own Retry-After retries), outages → Unavailable, and the rest
an OpsError that says what Slack answered and what it usually means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.adapters.slack.refusals import NETWORK_ERRORS, SlackRefused, typed_error
from bot.domain.incidents.model import ChannelRef, ChatMessage
from bot.domain.incidents.ports import NameTaken
from bot.domain.shared.errors import OpsError
from bot.domain.shared.ports import Message
from bot.render import Renderer

INVITE_BATCH = 100


def _api(what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (SlackApiError, *NETWORK_ERRORS) as exc:
        channel = kwargs.get("channel")
        raise typed_error(exc, what, channel if isinstance(channel, str) else None) from None


class SlackConversations:
    def __init__(self, client: WebClient, renderer: Renderer) -> None:
        self._client = client
        self._renderer = renderer

    def create_channel(self, name: str) -> ChannelRef:
        try:
            response = _api("create the incident channel", self._client.conversations_create, name=name, is_private=False)
        except SlackRefused as exc:
            if exc.error == "name_taken":
                raise NameTaken(f"#{name} exists already") from None
            raise
        channel = response["channel"]
        return ChannelRef(str(channel["id"]), str(channel["name"]))

    def invite(self, channel: str, users: list[str]) -> dict[str, str]:
        refused: dict[str, str] = {}
        for start in range(0, len(users), INVITE_BATCH):
            self._invite_batch(channel, users[start : start + INVITE_BATCH], refused)
        return refused

    def _invite_batch(self, channel: str, users: list[str], refused: dict[str, str]) -> None:
        try:
            _api(
                "invite people to the incident channel", self._client.conversations_invite, channel=channel, users=",".join(users)
            )
        except SlackRefused as exc:
            if exc.error == "already_in_channel":
                return
            if exc.error in {"channel_not_found", "is_archived", "not_in_channel", "missing_scope", "not_authed", "invalid_auth"}:
                raise
            if len(users) == 1:
                refused[users[0]] = exc.error
                return
            for user in users:  # one bad user fails the whole call: find out who
                self._invite_batch(channel, [user], refused)

    def members(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        while True:
            response = _api(
                "read the channel's members", self._client.conversations_members, channel=channel, cursor=cursor, limit=200
            )
            members.update(response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)

    def pin(self, channel: str, ts: str) -> None:
        try:
            _api("pin the status message", self._client.pins_add, channel=channel, timestamp=ts)
        except SlackRefused as exc:
            if exc.error != "already_pinned":
                raise

    def unpin(self, channel: str, ts: str) -> None:
        try:
            _api("unpin the status message", self._client.pins_remove, channel=channel, timestamp=ts)
        except SlackRefused as exc:
            if exc.error != "no_pin":
                raise

    def message(self, channel: str, ts: str) -> ChatMessage | None:
        """From the channel's history, or from its thread when it is a reply."""
        history = _api(
            "read the marked message", self._client.conversations_history, channel=channel, latest=ts, inclusive=True, limit=1
        )
        found = next((m for m in history.get("messages") or [] if m.get("ts") == ts), None)
        if found is None:
            try:
                thread = _api("read the marked reply", self._client.conversations_replies, channel=channel, ts=ts, limit=200)
            except SlackRefused as exc:
                if exc.error in {"thread_not_found", "message_not_found"}:
                    return None
                raise
            found = next((m for m in thread.get("messages") or [] if m.get("ts") == ts), None)
        if found is None:
            return None
        return ChatMessage(channel, ts, str(found.get("user") or found.get("bot_id") or ""), str(found.get("text") or ""))

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(_api("link to the message", self._client.chat_getPermalink, channel=channel, message_ts=ts)["permalink"])
        except OpsError:
            return None  # a timeline entry without a link is still an entry

    def open_form(self, trigger_id: str, form: Message) -> None:
        _api("open the form", self._client.views_open, trigger_id=trigger_id, view=self._renderer.render_view(form))

    def tell(self, channel: str, user: str, message: Message) -> None:
        payload = self._renderer.render(message)
        try:
            _api(
                "answer you",
                self._client.chat_postEphemeral,
                channel=channel,
                user=user,
                text=payload["text"],
                blocks=payload["blocks"],
            )
        except SlackRefused:
            # Not in that channel (or no channel): a direct message always reaches them.
            _api("answer you", self._client.chat_postMessage, channel=user, text=payload["text"], blocks=payload["blocks"])
