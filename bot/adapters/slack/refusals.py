"""What to do about Slack's refusals: its error codes turned into one instruction a user or operator can follow.

Codes and meanings: https://api.slack.com/methods/chat.postMessage#errors (and each method's own list).
"""

from __future__ import annotations

from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError

from bot.domain.shared.errors import ChannelArchived, OpsError, RateLimited, Unavailable

# Answers that mean "not now": the caller's outage path (Unavailable), not an instruction.
OUTAGES = frozenset({"ratelimited", "service_unavailable", "fatal_error", "internal_error", "request_timeout"})


def instruction(error: str, channel: str | None = None, needed: str | None = None) -> str | None:
    """What the user should do about Slack's ``error`` (with the channel it was about, and for ``missing_scope``
    the scope Slack said is ``needed``); None for codes without one."""
    where = f"<#{channel}>" if channel else "the channel"
    named = f" (`{channel}`)" if channel else ""
    return {
        "not_in_channel": f"invite @opsbot to {where} (`/invite @opsbot`), then try again",
        "channel_not_found": (
            f"Slack cannot find {where}{named}: it was deleted, or it is private and opsbot is not in it. "
            "Invite @opsbot there (`/invite @opsbot`) or fix the channel ID in the ops config"
        ),
        "is_archived": f"{where} is archived: unarchive it, or point the ops config at another channel",
        "missing_scope": (
            f"opsbot's Slack app lacks the `{needed or 'needed'}` permission: add it under OAuth & Permissions "
            "(manifest.yml lists every scope) and reinstall the app"
        ),
        "no_such_subteam": "that user group no longer exists: fix the roles in the ops config",
        "cannot_dm_bot": "that user is a bot and cannot get direct messages",
        "user_not_found": "Slack does not know that user: pick the person from the @ list",
        "expired_trigger_id": "the form took too long to open; try again",
        "invalid_trigger_id": "the form can only open right after a click or command; try again",
        "restricted_action": "a workspace admin restricted this for apps; ask them to allow it",
    }.get(error)


def refusal(what: str, error: str, channel: str | None = None, response: Any = None) -> str:
    """``Slack refused to <what> (`<error>`): <instruction>.`` — the sentence a user reads."""
    needed = None
    if response is not None:
        try:
            needed = response.get("needed")
        except AttributeError:
            needed = None
    todo = instruction(error, channel, needed)
    return f"Slack refused to {what} (`{error}`)" + (f": {todo}." if todo else ".")


def retry_after(response: Any) -> str | None:
    """Slack's Retry-After (seconds) on a 429, as text; None when it did not say."""
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    return str(value) if value else None


# What a Web API call raises when Slack cannot be reached at all.
NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, OSError)


class SlackRefused(OpsError):
    """Slack answered ``ok: false``; ``error`` is its code; the message says what to do about it."""

    def __init__(self, what: str, error: str, channel: str | None = None, response: Any = None) -> None:
        OpsError.__init__(self, refusal(what, error, channel, response))
        self.error = error


class SlackArchived(SlackRefused, ChannelArchived):
    """``is_archived``: a refusal the domain can catch (an incident's posts then go elsewhere)."""

    def __init__(self, what: str, channel: str | None, response: Any = None) -> None:
        SlackRefused.__init__(self, what, "is_archived", channel, response)
        self.channel = channel


def typed_error(exc: BaseException, what: str, channel: str | None = None) -> OpsError:
    """The typed error for a failed Web API call made while doing ``what`` (about ``channel``): RateLimited on 429,
    Unavailable on outages and lost connections, SlackArchived on ``is_archived``, SlackRefused otherwise."""
    if not isinstance(exc, SlackApiError):
        return Unavailable("Slack", f"{what}: {type(exc).__name__}")
    error = str(exc.response.get("error", "unknown_error"))
    if error == "ratelimited":
        return RateLimited("Slack", what, retry_after(exc.response))
    if error in OUTAGES:
        return Unavailable("Slack", f"{what}: {error}")
    if error == "is_archived":
        return SlackArchived(what, channel, exc.response)
    return SlackRefused(what, error, channel, exc.response)
