"""Incidents when Slack or the process fails part-way: a declaration is finished, once, and the reply says what waits."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from pytest_mock import MockerFixture

from bot.console.slack_emulator import SlackEmulator
from bot.domain.incidents.declare import Declarations
from tests.e2e.incident_helpers import channel_of, incident_channels
from tests.support import Bot, FrozenClock, eventually, make_config


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, clock: FrozenClock) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=make_config(), clock=clock
    )


def delivered(bot: Bot, clock: FrozenClock, predicate: Any, timeout: float = 15) -> Any:
    """What `opsbot worker`'s deliverer does every second, with the test's clock moving on two seconds a round
    (past a Retry-After): deliver what is due, until ``predicate()`` holds."""

    def round_() -> Any:
        clock.advance(seconds=2)
        bot.services.delivery.drain()
        return predicate()

    return eventually(round_, timeout=timeout)


def test_a_declaration_during_slack_429s_says_its_status_message_is_on_its_way_and_posts_it_once(
    bot: Bot, emulator: SlackEmulator, clock: FrozenClock
) -> None:
    emulator.fail("chat.postMessage", "ratelimited", times=3, status=429, retry_after=1)
    reply = bot.command('incident declare P1 Checkout errors --service api --impact "5% fail"')
    seen = reply.seen()
    assert "Declared INC-1" in seen and "its status message is still being posted" in seen
    assert "INC-1 is declared; its status message is still being posted (Slack is slow to answer)." in seen
    assert "nothing was changed" not in seen
    channel = emulator.channels[channel_of(reply)]
    assert emulator.in_channel(channel.id) == []  # Slack has not taken it yet

    delivered(bot, clock, lambda: emulator.in_channel(channel.id) and channel.pins and emulator.in_channel("C0INCIDENTS"))
    declaration = emulator.in_channel(channel.id)
    assert len(declaration) == 1 and "🚨 INCIDENT: api - Checkout errors" in declaration[0].seen()
    assert channel.pins == [declaration[0].ts]
    summaries = [m for m in emulator.in_channel("C0INCIDENTS") if "INC-1" in m.seen()]
    assert len(summaries) == 1
    assert [e.kind.value for e in bot.reads.incidents.timeline(1)].count("declared") == 1
    assert bot.services.dispatcher.reconcile() == []  # nothing left part-way
    assert len(emulator.in_channel(channel.id)) == 1


def test_a_declaration_cut_short_after_its_channel_is_finished_by_the_reconciler_once(
    bot: Bot, emulator: SlackEmulator, clock: FrozenClock, mocker: MockerFixture
) -> None:
    mocker.patch.object(Declarations, "finish", side_effect=RuntimeError("the process died here"))
    reply = bot.command("incident declare P1 Checkout errors --service api")
    assert "Something went wrong" in reply.seen() and "nothing was changed" not in reply.seen()
    [channel] = incident_channels(bot)
    assert emulator.in_channel(channel.id) == []
    mocker.stopall()

    assert bot.services.dispatcher.reconcile() == []  # too fresh: the declaration may still be going on
    clock.advance(minutes=5)
    assert bot.services.dispatcher.reconcile() == ["finished the declaration of INC-1"]
    assert bot.services.dispatcher.reconcile() == []

    [declaration, what_changed] = emulator.in_channel(channel.id)  # the declaration, then what changed in api
    assert "What changed" in what_changed.seen()
    assert "🚨 INCIDENT: api - Checkout errors" in declaration.seen() and channel.pins == [declaration.ts]
    assert len([m for m in emulator.in_channel("C0INCIDENTS") if "INC-1" in m.seen()]) == 1
    told = [m for m in emulator.visible() if m.channel.startswith("D") and "Declared INC-1" in m.seen()]
    assert [m.channel for m in told] == ["D0DEV"]
    assert incident_channels(bot) == [channel]  # no second channel
    assert "U0DEV" in channel.members
