"""Reminders by severity cadence and escalation while unacknowledged, on a clock the test moves (jobs in-process)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from bot.adapters.local_jobs import InProcessJobs
from bot.console.slack_emulator import SlackEmulator
from tests.e2e.incident_helpers import BotFactory, declare, last_view, posts
from tests.support import Bot, FrozenClock, make_config

ESCALATION = {
    "escalation": [
        {"after_minutes": 0, "label": "on-call", "notify": ["U0APPROVER3"]},
        {"after_minutes": 15, "label": "team lead", "notify": ["S0SRE"]},
        {"after_minutes": 30, "label": "engineering manager", "notify": ["U0ADMIN"]},
    ],
    "severities": {"P0": {"update_every_minutes": 30}, "P3": {"escalation": []}},
}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def bot_with(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, clock: FrozenClock
) -> BotFactory:
    def make(**changes: Any) -> Bot:
        return Bot(
            emulator=emulator,
            db_url=pg_url,
            redis_client=redis_client,
            prefix=redis_prefix,
            config=make_config(**changes),
            clock=clock,
        )

    return make


def jobs_of(bot: Bot) -> InProcessJobs:
    assert isinstance(bot.services.adapters.jobs, InProcessJobs)
    return bot.services.adapters.jobs


def settle(bot: Bot) -> None:
    worker = bot.services.local_worker
    assert worker is not None
    worker.run_due()
    assert worker.wait_idle(10)


def test_an_overdue_update_reminds_the_commander_with_post_update_and_snooze(bot_with: BotFactory, clock: FrozenClock) -> None:
    bot = bot_with()
    channel = declare(bot, 'P0 Checkout down --service api --impact "Nobody can pay"')
    clock.advance(minutes=29)
    settle(bot)
    assert posts(bot, channel.id, "was due at") == []
    clock.advance(minutes=2)
    reminder = bot.emulator.wait_for(lambda: posts(bot, channel.id, "was due at"))[0]
    assert "@U0DEV, the next update for *INC-1* was due at" in reminder.seen()
    assert [b["text"]["text"] for b in reminder.buttons()] == ["Post update", "Snooze 15 min"]

    bot.click(reminder, "Post update", user="U0DEV")
    assert last_view(bot)["callback_id"] == "incident_update"
    denied = bot.click(reminder, "Snooze 15 min", user="U0VIEWER")
    assert "needs the *incident participant* role" in denied[0]["text"]
    as_seen_before = copy.deepcopy(reminder)  # what another responder's screen still shows
    snoozed = bot.click(reminder, "Snooze 15 min", user="U0DEV")
    assert snoozed[0]["replace_original"] and "snoozed the update reminder for 15 min" in snoozed[0]["text"]
    assert reminder.buttons() == []
    assert "out of date" in bot.click(as_seen_before, "Snooze 15 min", user="U0DEV")[0]["text"]

    clock.advance(minutes=14)
    settle(bot)
    assert posts(bot, channel.id, "was due at") == []  # the first reminder became the snooze note
    clock.advance(minutes=2)
    bot.emulator.wait_for(lambda: posts(bot, channel.id, "was due at"))


def test_an_update_replaces_the_pending_reminder(bot_with: BotFactory, clock: FrozenClock) -> None:
    bot = bot_with()
    channel = declare(bot, 'P0 Checkout down --impact "Nobody can pay"')
    clock.advance(minutes=10)
    bot.command('incident update identified "Bad config" --next 1h', channel=channel.id)
    reminders = [(at, payload["seq"]) for at, name, payload in jobs_of(bot).scheduled() if name == "incidents.remind"]
    # One reminder left, for the new update: at the P0 cadence, sooner than the promised hour.
    assert reminders == [(clock.now() + timedelta(minutes=30), 2)]


def test_a_severity_without_cadence_sets_no_reminder(bot_with: BotFactory) -> None:
    bot = bot_with(incidents=ESCALATION)
    declare(bot, "P3 Typo on the status page")
    assert [name for _, name, _ in jobs_of(bot).scheduled()] == []


def test_escalation_climbs_until_acknowledged_then_skips_the_rest(bot_with: BotFactory, clock: FrozenClock) -> None:
    bot = bot_with(incidents=ESCALATION)
    channel = declare(bot, 'P0 Checkout down --impact "Nobody can pay"')
    first = bot.emulator.wait_for(lambda: posts(bot, channel.id, "Escalation 1"))[0]
    assert "Escalation 1: on-call* · @U0APPROVER3" in first.seen() and "U0APPROVER3" in channel.members
    clock.advance(minutes=15)
    second = bot.emulator.wait_for(lambda: posts(bot, channel.id, "Escalation 2"))[0]
    assert "team lead* · @S0SRE" in second.seen() and {"U0APPROVER1", "U0APPROVER2"} <= channel.members

    acked = bot.click(second, "Acknowledge", user="U0APPROVER1")
    assert acked[0]["replace_original"] and "@U0APPROVER1 acknowledged the incident" in acked[0]["text"]
    clock.advance(minutes=20)
    settle(bot)
    assert posts(bot, channel.id, "Escalation 3") == []
    assert [name for _, name, _ in jobs_of(bot).scheduled() if name == "incidents.escalate"] == []
    timeline = bot.command("incident timeline", channel=channel.id).seen()
    assert (
        "escalated to on-call" in timeline and "escalated to team lead" in timeline and "Acknowledged* · @U0APPROVER1" in timeline
    )
