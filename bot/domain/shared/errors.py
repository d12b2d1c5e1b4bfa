"""Typed errors the edge turns into one short ephemeral message, in one place."""

from __future__ import annotations


class OpsError(Exception):
    """A failure the user should read; ``outcome`` is what the audit log records."""

    outcome = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(OpsError):
    """The command text is malformed; ``usage`` is the usage line to show."""

    outcome = "usage_error"

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class NotPermitted(OpsError):
    """The caller lacks a role; the message names the role."""

    outcome = "denied"

    def __init__(self, role: str, action: str, detail: str = "", *, environment: str | None = None) -> None:
        where = f" in {environment}" if environment else ""
        message = f"`{action}` needs the *{role}* role{where}" + (f" ({detail})" if detail else "") + "."
        super().__init__(message)
        self.role = role
        self.action = action


MAX_KNOWN_LISTED = 12  # more names than this make a reply nobody reads


class Refused(OpsError):
    """A click or command that no role makes valid (a button on the wrong message, an offer that no longer holds);
    audited as denied."""

    outcome = "denied"


class NotFound(OpsError):
    """A named thing does not exist; ``suggestions`` lists close names."""

    outcome = "not_found"

    def __init__(self, kind: str, name: str, suggestions: list[str] | None = None, known: list[str] | None = None) -> None:
        hint = f" Did you mean {', '.join(f'`{s}`' for s in suggestions)}?" if suggestions else ""
        if known and len(known) <= MAX_KNOWN_LISTED:
            hint += f" Known: {', '.join(f'`{k}`' for k in known)}."
        elif known:
            hint += f" {len(known)} are configured; `/ops help` says where to find them."
        super().__init__(f"Unknown {kind} `{name}`.{hint}")
        self.kind = kind
        self.name = name
        self.suggestions = suggestions or []


class Conflict(OpsError):
    """The request collides with current state (lock held, request already decided …)."""

    outcome = "conflict"


class Unavailable(OpsError):
    """A backing service (Redis, database, provider, Slack) cannot be reached; nothing was changed."""

    outcome = "unavailable"

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(f"{what} is unreachable right now; nothing was changed." + (f" ({detail})" if detail else ""))
        self.what = what
        self.detail = detail


class RateLimited(Unavailable):
    """Slack (or another API) answered 429: not down, but not now; ``retry_after`` in seconds when it said."""

    def __init__(self, what: str, doing: str, retry_after: str | None = None) -> None:
        when = f"in {retry_after} s" if retry_after else "in a minute"
        OpsError.__init__(self, f"{what} is rate limiting opsbot right now; nothing was changed. Try again {when} ({doing}).")
        self.what, self.detail, self.retry_after = what, f"{doing}: rate limited", retry_after


class ChannelArchived(OpsError):
    """Slack refused a post because ``channel`` is archived (``is_archived``); a caller with somewhere else to say
    it (an incident's posts go to the incidents channel) catches this one."""

    def __init__(self, message: str, channel: str | None) -> None:
        super().__init__(message)
        self.channel = channel


class AmbiguousName(OpsError):
    """A name typed after ``@`` belongs to ``count`` people of the workspace; only a mention picks one."""

    def __init__(self, name: str, count: int) -> None:
        super().__init__(f"@{name} names {count} people in this workspace")
        self.name, self.count = name, count
