"""`/ops flag …` from Slack (signed requests through Bolt) into a real Unleash and a real SQL flag table."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from tests.flagkit import AppSees, FaultProxy, UnleashAdmin, create_flag_table, flag_row
from tests.support import Bot, eventually, make_config

FLAGS = {
    "default_environment": "production",
    "rollout_max_step": 25,
    "rollout_ceiling": {"production": 50},
    "services": {"checkout.*": "api", "t-*": "api"},
}
MakeBot = Callable[[OpsConfig], Bot]


@pytest.fixture
def make_bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> MakeBot:
    return lambda config: Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def unleash_config(url: str) -> OpsConfig:
    provider = {"type": "unleash", "url": url, "environments": {"staging": "development", "production": "production"}}
    return make_config(flags={**FLAGS, "provider": provider})


@pytest.fixture
def sql_bot(make_bot: MakeBot, app_db_url: str, tmp_path: Path) -> Bot:
    staging = f"sqlite:///{tmp_path / 'staging-app.db'}"
    rows = {"checkout.new-flow": (True, False, 30), "search.semantic": (True, False, 10)}
    create_flag_table(app_db_url, rows)
    create_flag_table(staging, {name: (True, False, 100) for name in rows})
    provider = {"type": "sql", "databases": {"staging": {"url": staging}, "production": {"url": app_db_url}}}
    return make_bot(make_config(flags={**FLAGS, "provider": provider}))


def alert(bot: Bot, flag: str) -> Posted:
    return bot.emulator.wait_for(
        lambda: next((m for m in bot.emulator.in_channel("C0ALERTS") if "FLAG KILLED" in m.seen() and flag in m.seen()), None)
    )


def request_in(bot: Bot, channel: str, words: str) -> Posted:
    return bot.emulator.wait_for(
        lambda: next((m for m in bot.emulator.in_channel(channel) if "Approval needed" in m.seen() and words in m.seen()), None)
    )


def test_a_kill_from_slack_is_what_the_application_sees_through_the_unleash_client(make_bot: MakeBot, unleash_url: str) -> None:
    admin = UnleashAdmin(unleash_url)
    app = AppSees(unleash_url, admin.client_token("production"))
    name = admin.create(production=True, development=True)
    eventually(lambda: app.enabled_share(name) == 1.0, timeout=10)
    bot = make_bot(unleash_config(unleash_url))

    reply = bot.command(f"flag kill {name} --reason '500s on /checkout'")

    assert f"@U0DEV killed *{name}* in *production*" in reply.seen()
    assert "on · 100% → KILLED (underneath: on · 100%)" in reply.seen()
    assert admin.environment(name, "production")["enabled"] is False  # in Unleash when the command returns
    assert admin.environment(name, "development")["enabled"] is True
    eventually(lambda: app.enabled_share(name) == 0.0, timeout=10)  # and applications get it on their next fetch
    loud = alert(bot, name)
    assert "*Reason:* 500s on /checkout" in loud.seen() and [b["text"]["text"] for b in loud.buttons()] == ["Undo"]
    assert ("U0DEV", "flag.kill", "ok") in bot.audit_actions()
    shown = bot.command(f"flag show {name}", user="U0VIEWER").seen()
    assert "*production*: 🛑 KILLED" in shown and "Last change: @U0DEV killed it" in shown


def test_a_kill_from_slack_is_in_the_sql_table_when_the_command_returns(sql_bot: Bot, app_db_url: str) -> None:
    reply = sql_bot.command("flag kill checkout.new-flow --reason 'payment errors'")
    assert "@U0DEV killed *checkout.new-flow* in *production*" in reply.seen()
    assert flag_row(app_db_url, "checkout.new-flow") == (True, True, 30)
    assert "*Reason:* payment errors" in alert(sql_bot, "checkout.new-flow").seen()


def test_undo_on_the_alert_needs_two_approvers_in_production_then_lifts_the_kill(sql_bot: Bot, app_db_url: str) -> None:
    sql_bot.command("flag kill checkout.new-flow --reason boom")
    loud = alert(sql_bot, "checkout.new-flow")
    refused = sql_bot.click(loud, "Undo", "U0VIEWER")
    assert "needs the *deployer* role" in refused[-1]["text"]
    answer = sql_bot.click(loud, "Undo", "U0DEV2")
    assert "needs 2 approvals" in answer[-1]["text"]
    assert flag_row(app_db_url, "checkout.new-flow") == (True, True, 30)
    request = request_in(sql_bot, "C0ALERTS", "Unkill checkout.new-flow in production")
    sql_bot.click(request, "Approve", "U0APPROVER1")
    assert flag_row(app_db_url, "checkout.new-flow") == (True, True, 30)
    sql_bot.click(request, "Approve", "U0APPROVER2")
    assert flag_row(app_db_url, "checkout.new-flow") == (True, False, 30)
    undone = sql_bot.emulator.find(loud.ts)
    assert "Kill undone" in undone.seen() and undone.buttons() == []
    done = [m for m in sql_bot.emulator.in_channel("C0ALERTS") if "unkilled checkout.new-flow" in m.seen()]
    assert "Approved by @U0APPROVER1, @U0APPROVER2" in done[-1].seen()


def test_concurrent_rollouts_from_slack_lose_no_update(sql_bot: Bot, app_db_url: str) -> None:
    start = threading.Barrier(2)

    def rollout(pct: int) -> str:
        start.wait()
        return sql_bot.command(f"flag rollout search.semantic {pct}", user="U0DEV" if pct == 20 else "U0DEV2").seen()

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(rollout, [20, 30]))
    pairs = {tuple(int(x) for x in re.search(r"on · (\d+)% → on · (\d+)%", text).groups()) for text in replies}  # type: ignore[union-attr]
    assert pairs in ({(10, 20), (20, 30)}, {(10, 30), (30, 20)})  # the later one started from the earlier one's value
    last = next(new for old, new in pairs if old != 10)
    assert flag_row(app_db_url, "search.semantic") == (True, False, last)


def test_concurrent_kills_kill_once_and_the_later_sees_who_did(sql_bot: Bot) -> None:
    start = threading.Barrier(2)

    def kill(user: str) -> str:
        start.wait()
        return sql_bot.command("flag kill checkout.new-flow --reason boom", user=user).seen()

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(kill, ["U0DEV", "U0DEV2"]))
    assert sum("killed checkout.new-flow in production" in r for r in replies) == 1
    (later,) = [r for r in replies if "Nothing changed" in r]
    assert "it is already killed" in later and "Last change: @U0DEV" in later
    assert len([m for m in sql_bot.emulator.in_channel("C0ALERTS") if "FLAG KILLED" in m.seen()]) == 1


def test_guarded_rollout_in_unleash_is_applied_once_approved(make_bot: MakeBot, unleash_url: str) -> None:
    admin = UnleashAdmin(unleash_url)
    app = AppSees(unleash_url, admin.client_token("production"))
    name = admin.create(production=True, rollout=10)
    bot = make_bot(unleash_config(unleash_url))
    reply = bot.command(f"flag rollout {name} 60 --reason 'ramp up'")
    assert "Not changed yet" in reply.seen() and "on · 10% → on · 60%" in reply.seen()
    assert "a jump of 50 points is more than the 25-point step" in reply.seen()
    request = request_in(bot, "C0DEPLOYS", f"Roll out {name} to 60% in production")
    bot.click(request, "Approve", "U0APPROVER1")
    bot.click(request, "Approve", "U0APPROVER2")
    assert admin.environment(name, "production")["strategies"][0]["parameters"]["rollout"] == "60"
    # The client refreshes on its own schedule: wait until it sees more than the old 10 %, then check it is 60 %.
    share = eventually(lambda: (seen := app.enabled_share(name, users=2000)) > 0.2 and seen, timeout=10)
    assert 0.55 < share < 0.65


def test_unleash_answering_500_from_slack_changes_nothing_and_is_audited(make_bot: MakeBot, unleash_url: str) -> None:
    admin = UnleashAdmin(unleash_url)
    name = admin.create(production=True)
    proxy = FaultProxy(unleash_url)
    try:
        proxy.fail("POST", f"{name}/environments/production/off", status=500)
        bot = make_bot(unleash_config(proxy.url))
        reply = bot.command(f"flag kill {name} --reason boom")
    finally:
        proxy.stop()
    assert "Unleash is unreachable right now; nothing was changed. (HTTP 500)" in reply.seen()
    assert admin.environment(name, "production")["enabled"] is True
    assert not [m for m in bot.emulator.in_channel("C0ALERTS") if name in m.seen()]
    assert ("U0DEV", "flag.kill", "unavailable") in bot.audit_actions()
    assert ("U0DEV", "command.flag_kill", "unavailable") in bot.audit_actions()


def test_concurrent_rollouts_into_unleash_are_serialized_by_opsbot(make_bot: MakeBot, unleash_url: str) -> None:
    admin = UnleashAdmin(unleash_url)
    name = admin.create(production=True, rollout=10)
    bot = make_bot(unleash_config(unleash_url))
    start = threading.Barrier(3)

    def rollout(pct: int) -> str:
        start.wait()
        return bot.command(f"flag rollout {name} {pct}", user="U0DEV" if pct % 2 else "U0DEV2").seen()

    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(rollout, [15, 20, 25]))
    steps = [tuple(int(x) for x in re.search(r"on · (\d+)% → on · (\d+)%", text).groups()) for text in replies]  # type: ignore[union-attr]
    olds, news = {old for old, _ in steps}, {new for _, new in steps}
    assert 10 in olds and len(olds) == 3  # each started from what the one before it left: a chain, no lost update
    final = (news - olds).pop()
    assert admin.environment(name, "production")["strategies"][0]["parameters"]["rollout"] == str(final)
