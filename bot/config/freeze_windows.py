"""Recurring freeze windows such as ``SUN 02:00-04:00 UTC`` or ``MON-FRI 17:00-09:00 Europe/Berlin``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WINDOW = re.compile(
    r"^(?P<days>DAILY|[A-Z]{3}(?:-[A-Z]{3})?(?:,[A-Z]{3}(?:-[A-Z]{3})?)*)\s+"
    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})(?:\s+(?P<tz>\S+))?$"
)


def _days(spec: str) -> frozenset[int]:
    if spec == "DAILY":
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        for name in (first, last or first):
            if name not in DAYS:
                raise ValueError(f"unknown day {name!r} (use {', '.join(DAYS)} or DAILY)")
        start, stop = DAYS.index(first), DAYS.index(last or first)
        span = (stop - start) % 7
        days.update((start + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _clock(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return time(hours, minutes)


@dataclass(frozen=True)
class FreezeWindow:
    """A weekly window; a window whose end is before its start runs past midnight."""

    text: str
    days: frozenset[int]
    start: time
    end: time
    tz: str

    @classmethod
    def parse(cls, text: str) -> FreezeWindow:
        match = WINDOW.match(text.strip().upper() if text else "")
        if not match:
            raise ValueError(f"{text!r} is not a freeze window like 'SUN 02:00-04:00 UTC' or 'MON-FRI 18:00-08:00 Europe/Paris'")
        tz = text.strip().split()[-1] if match["tz"] else "UTC"
        tz = "UTC" if tz.upper() == "UTC" else tz
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        return cls(text.strip(), _days(match["days"]), _clock(match["start"]), _clock(match["end"]), tz)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls inside this window."""
        local = moment.astimezone(ZoneInfo(self.tz))
        today, now = local.weekday(), local.time()
        if self.start <= self.end:
            return today in self.days and self.start <= now < self.end
        started_today = today in self.days and now >= self.start
        started_yesterday = (today - 1) % 7 in self.days and now < self.end
        return started_today or started_yesterday

    def ends_after(self, moment: datetime) -> datetime:
        """When the window containing ``moment`` ends."""
        local = moment.astimezone(ZoneInfo(self.tz))
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end

    def __str__(self) -> str:
        return self.text
