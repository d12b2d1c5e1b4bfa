"""What to do about Slack's refusals: its error codes turned into one instruction a user or operator can follow.

Codes and meanings: https://api.slack.com/methods/chat.postMessage#errors (and each method's own list).
"""

from __future__ import annotations

from typing import Any

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
