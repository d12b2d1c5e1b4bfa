"""Incident channel names within Slack's rules: lowercase letters, digits, '-' and '_', at most 80 characters."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

MAX_CHANNEL_NAME = 80
NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
VALID = re.compile(r"^[a-z0-9_-]{1,80}$")


def slug(text: str) -> str:
    """``"API: 500s on /checkout 🔥"`` → ``"api-500s-on-checkout"``; accents fold to ASCII, the rest becomes '-'."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return NOT_ALLOWED.sub("-", folded).strip("-")


def channel_name(prefix: str, declared_at: datetime, title: str, attempt: int = 1) -> str:
    """``inc-20261123-api-500s``; ``attempt`` 2, 3 … adds ``-2``, ``-3`` for when the name is taken."""
    suffix = "" if attempt <= 1 else f"-{attempt}"
    head = f"{prefix}-{declared_at:%Y%m%d}"
    room = MAX_CHANNEL_NAME - len(head) - len(suffix) - 1
    body = slug(title)[:room].rstrip("-") or "incident"
    return f"{head}-{body}{suffix}"
