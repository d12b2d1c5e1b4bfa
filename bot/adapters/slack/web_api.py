"""Slack Web API adapters: the client, user-group membership and people by name (cached briefly), and the notifier."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.adapters.metrics import Metrics, SlackCallCounter
from bot.adapters.slack.refusals import NETWORK_ERRORS, typed_error
from bot.domain.shared.errors import AmbiguousName
from bot.domain.shared.ports import Message, MessageRef
from bot.render import Renderer

T = TypeVar("T")


def make_web_client(
    token: str | None,
    base_url: str,
    *,
    rate_limit_retries: int = 2,
    connection_retries: int = 1,
    metrics: Metrics | None = None,
) -> WebClient:
    """A client that honours Retry-After on 429 up to ``rate_limit_retries`` times and retries a lost connection
    ``connection_retries`` times (slack_sdk's retry handlers). The outbox's deliverer uses 0 and 0: it schedules its
    own retry after Retry-After, and before posting again it looks for the message an attempt whose answer was lost
    may have posted; the SDK's blind retry would post a twin. With ``metrics``, every attempt is counted by method and status."""
    handlers: list[Any] = [SlackCallCounter(metrics)] if metrics is not None else []
    if connection_retries:
        handlers.append(ConnectionErrorRetryHandler(max_retry_count=connection_retries))
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
            except (SlackApiError, *NETWORK_ERRORS) as exc:
                raise typed_error(exc, what, _channel_of(args, kwargs)) from None

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


class SlackPeople:
    """Workspace members by the name typed after ``@``, from ``users.list`` (cached for ``ttl`` seconds).

    A name matches a member's username (``name``) or display name (``profile.display_name``), case-insensitively;
    deleted members and bots are skipped. https://api.slack.com/methods/users.list
    """

    def __init__(self, client: WebClient, ttl: float = 60.0) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: tuple[float, dict[str, set[str]]] | None = None
        self._lock = threading.Lock()

    def find(self, name: str) -> str | None:
        """The one member named ``name`` (see ``PeopleDirectory.find``); raises ``Unavailable``/``OpsError`` from Slack."""
        wanted = name.strip().lstrip("@").casefold()
        found = self._names().get(wanted, set())
        if len(found) > 1:
            raise AmbiguousName(wanted, len(found))
        return next(iter(found)) if found else None

    def _names(self) -> dict[str, set[str]]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        names = self._fetch()
        with self._lock:
            self._cache = (now, names)
        return names

    @slack_call("list the workspace's people")
    def _fetch(self) -> dict[str, set[str]]:
        names: dict[str, set[str]] = {}
        cursor = None
        while True:
            response = self._client.users_list(limit=200, cursor=cursor) if cursor else self._client.users_list(limit=200)
            for member in response.get("members") or []:
                if member.get("deleted") or member.get("is_bot") or not member.get("id"):
                    continue
                profile = member.get("profile") or {}
                for label in {member.get("name"), profile.get("display_name")}:
                    if label:
                        names.setdefault(str(label).casefold(), set()).add(str(member["id"]))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return names


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
