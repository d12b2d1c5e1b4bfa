"""Human durations: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

PART = re.compile(r"(\d+)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LONGEST = timedelta(days=3650)  # the bound when the caller names none: far below timedelta's own overflow


def parse_duration(text: str, *, maximum: timedelta | None = None, argument: str = "") -> timedelta:
    """``90s``, ``30m``, ``1h30m``, ``2d``, ``1w`` → a timedelta of at most ``maximum`` (``LONGEST`` when None).

    Raises ValueError with a readable reason (prefixed with ``argument``, like ``for=``, when given) when ``text`` is
    not a duration, is zero, or is longer than the maximum; absurd numbers are refused before any arithmetic."""
    prefix = f"`{argument}`: " if argument else ""
    shown = text if len(text) <= 40 else text[:40] + "…"
    cleaned = text.strip().lower().replace(" ", "")
    parts = PART.findall(cleaned) if cleaned.isascii() else []
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{prefix}`{shown}` is not a duration like 30m, 2h, 1d or 1h30m")
    limit = maximum if maximum is not None else LONGEST
    if any(len(n.lstrip("0")) > 12 for n, _ in parts):
        raise ValueError(f"{prefix}`{shown}` is longer than the maximum of {format_duration(limit)}")
    seconds = sum(int(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{prefix}`{shown}` must be longer than zero")
    if seconds > limit.total_seconds():
        raise ValueError(f"{prefix}`{shown}` is longer than the maximum of {format_duration(limit)}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``timedelta(seconds=5400)`` → ``1h 30m``; under a minute → seconds."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p)
