"""Freeze windows and durations as operators write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config.durations import format_duration, parse_duration
from bot.config.freeze_windows import FreezeWindow

UTC = UTC


def test_sunday_window_contains_sunday_night_only() -> None:
    window = FreezeWindow.parse("SUN 02:00-04:00 UTC")
    assert window.contains(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))  # a Sunday
    assert not window.contains(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    assert not window.contains(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))  # Monday


def test_window_past_midnight_covers_the_next_morning() -> None:
    window = FreezeWindow.parse("FRI 18:00-08:00 UTC")
    assert window.contains(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # Friday night
    assert window.contains(datetime(2026, 11, 28, 7, 59, tzinfo=UTC))  # Saturday morning
    assert not window.contains(datetime(2026, 11, 28, 8, 0, tzinfo=UTC))


def test_window_in_a_named_time_zone() -> None:
    window = FreezeWindow.parse("MON-FRI 17:00-18:00 Europe/Paris")
    assert window.contains(datetime(2026, 11, 23, 16, 30, tzinfo=UTC))  # 17:30 in Paris (UTC+1)
    assert window.ends_after(datetime(2026, 11, 23, 16, 30, tzinfo=UTC)).astimezone(UTC).hour == 17


@pytest.mark.parametrize(
    "text,problem",
    [
        ("SUNDAY 02:00-04:00", "is not a freeze window"),
        ("SUN 25:00-26:00 UTC", "not a time of day"),
        ("SUN 02:00-04:00 Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_windows_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FreezeWindow.parse(text)


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "abc", "2x", "-5m", "0m", "5 minutes"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_over_maximum_names_the_maximum() -> None:
    with pytest.raises(ValueError, match="maximum of 7d"):
        parse_duration("8d", maximum=timedelta(days=7))


def test_durations_read_naturally() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h 30m"
    assert format_duration(timedelta(seconds=42)) == "42s"
