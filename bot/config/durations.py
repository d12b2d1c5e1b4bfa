"""Human durations: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

PART = re.compile(r"(\d+)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, maximum: timedelta | None = None) -> timedelta:
    """Parse ``text``; ValueError with a readable reason when it is not a duration."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"`{text}` is not a duration like 30m, 2h, 1d or 1h30m")
    seconds = sum(int(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"`{text}` must be longer than zero")
    value = timedelta(seconds=seconds)
    if maximum is not None and value > maximum:
        raise ValueError(f"`{text}` is longer than the maximum of {format_duration(maximum)}")
    return value


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
