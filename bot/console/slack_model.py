"""What the Slack emulator keeps: messages as Slack holds them, API calls, channels, response URLs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.console.mrkdwn import plain


@dataclass
class Posted:
    """A message as Slack holds it: where, when, what, for whom."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    ephemeral_to: str | None = None
    via: str = "api"
    thread_ts: str | None = None
    edits: int = 0
    deleted: bool = False
    seq: int = 0
    response_key: str | None = None
    user: str | None = None  # who wrote it, for messages people typed (None: the bot)
    metadata: dict[str, Any] | None = None  # {"event_type": str, "event_payload": {...}}, as the app attached it
    files: list[dict[str, Any]] | None = None  # files shared with the message: {"id", "name", "title", "path"}

    def buttons(self) -> list[dict[str, Any]]:
        """Every button in the message, each with the block it sits in."""
        found = []
        for block in self.blocks:
            elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
            for element in elements:
                if element.get("type") == "button":
                    found.append({**element, "block_id": block.get("block_id", "")})
        return found

    def all_text(self) -> str:
        """The text and every string inside the blocks, for assertions."""
        parts = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "text" and isinstance(value, str):
                        parts.append(value)
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.blocks)
        return "\n".join(parts)

    def seen(self) -> str:
        """What a person reading the message sees: entities decoded, mentions as @U…."""
        return plain(self.all_text())


@dataclass
class ApiCall:
    """One Web API call: what was asked, and what the caller got (``status`` 0 and ``{}``: the connection was
    closed with no response). ``performed``: whether the method did its work (False when a failure was answered instead)."""

    method: str
    args: dict[str, Any]
    at: float
    status: int
    response: dict[str, Any]
    performed: bool = True


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    pins: list[str] = field(default_factory=list)
    is_private: bool = False
    archived: bool = False
    topic: str = ""


@dataclass
class ResponseTarget:
    channel: str
    user: str
    message_ts: str | None
    uses: int = 0


@dataclass
class Failure:
    """A failure queued for one call: an error answer, or (``drop``) a connection closed with no response;
    ``after``: the method does its work first, then the caller gets the failure."""

    error: str
    status: int = 200
    retry_after: int | None = None
    after: bool = False
    drop: bool = False
    needed: str | None = None  # missing_scope: the scope Slack names in its answer
