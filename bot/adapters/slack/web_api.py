"""Slack Web API adapters: the client, user-group membership (cached briefly) and the notifier."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.adapters.slack.refusals import OUTAGES, refusal, retry_after
from bot.domain.shared.errors import ChannelArchived, OpsError, RateLimited, Unavailable
from bot.domain.shared.ports import Message, MessageRef
from bot.render import Renderer

T = TypeVar("T")


def make_web_client(token: str | None, base_url: str, *, rate_limit_retries: int = 2, connection_retries: int = 1) -> WebClient:
    """A client that honours Retry-After on 429 up to ``rate_limit_retries`` times and retries a lost connection
    ``connection_retries`` times (slack_sdk's retry handlers). The outbox's deliverer uses 0 and 0: it schedules its
    own retry after Retry-After, and before posting again it looks for the message an attempt whose answer was lost
    may have posted; the SDK's blind retry would post a twin."""
    handlers: list[Any] = [ConnectionErrorRetryHandler(max_retry_count=connection_retries)] if connection_retries else []
    if rate_limit_retries:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
    return WebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=10,
        retry_handlers=handlers,
    )


def _channel_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The channel a call was about: a ``channel`` argument, or a message reference's channel."""
    if isinstance(kwargs.get("channel"), str):
        return str(kwargs["channel"])
    for arg in args[1:2]:  # after self: post(channel, …), update(ref, …)
        if isinstance(arg, str) and arg[:1] in ("C", "G", "D"):
            return arg
        if isinstance(getattr(arg, "channel", None), str):
            return str(arg.channel)
    return None


def slack_call(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Map Slack failures to typed errors naming ``what`` we were doing, and what to do about them."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except SlackApiError as exc:
                error = str(exc.response.get("error", "unknown_error"))
                if error == "ratelimited":
                    raise RateLimited("Slack", what, retry_after(exc.response)) from None
                if error in OUTAGES:
                    raise Unavailable("Slack", f"{what}: {error}") from None
                channel = _channel_of(args, kwargs)
                if error == "is_archived":
                    raise ChannelArchived(refusal(what, error, channel, exc.response), channel) from None
                raise OpsError(refusal(what, error, channel, exc.response)) from None
            except (URLError, TimeoutError, ConnectionError, OSError) as exc:
                raise Unavailable("Slack", f"{what}: {type(exc).__name__}") from None

        return wrapper

    return decorate


class SlackGroups:
    """Members of Slack user groups, cached for ``ttl`` seconds so role checks stay fast."""

    def __init__(self, client: WebClient, ttl: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str, max_age_seconds: float | None = None) -> frozenset[str]:
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached and now - cached[0] < (self._ttl if max_age_seconds is None else min(max_age_seconds, self._ttl)):
            return cached[1]
        users = self._fetch(group_id)
        with self._lock:
            self._cache[group_id] = (now, users)
        return users

    def forget(self, group_id: str) -> None:
        with self._lock:
            self._cache.pop(group_id, None)

    @slack_call("read a user group")
    def _fetch(self, group_id: str) -> frozenset[str]:
        response = self._client.usergroups_users_list(usergroup=group_id)
        return frozenset(response.get("users") or [])


class SlackNotifier:
    """Posts and updates the domain's messages through the Web API."""

    def __init__(self, client: WebClient, renderer: Renderer) -> None:
        self._client = client
        self._renderer = renderer

    @slack_call("post a message")
    def post(self, channel: str, message: Message) -> MessageRef:
        payload = self._renderer.render(message)
        response = self._client.chat_postMessage(
            channel=channel, text=payload["text"], blocks=payload["blocks"], unfurl_links=False
        )
        return MessageRef(str(response["channel"]), str(response["ts"]))

    @slack_call("update a message")
    def update(self, ref: MessageRef, message: Message) -> None:
        payload = self._renderer.render(message)
        self._client.chat_update(channel=ref.channel, ts=ref.ts, text=payload["text"], blocks=payload["blocks"])

    def dm(self, user: str, message: Message) -> MessageRef:
        # Posting to a user ID lands in the app's direct messages with them; no im:write needed.
        return self.post(user, message)
