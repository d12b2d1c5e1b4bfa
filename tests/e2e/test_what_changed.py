""" "What changed" (issue 15 §4) through signed Slack requests: an incident declaration lists the declared services'
deploys, rollbacks and flag changes of the configured window, newest first, with Roll back and Undo; so does a
health DOWN alert. Buttons carry only ids: the server re-checks the deploy is still the latest and who clicks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig, parse_config
from bot.console import payloads
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.shared.changes import RecentChange
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.policy import Actor
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.incident_helpers import declare, posts
from tests.e2e.test_flags_slack import alert, request_in
from tests.fakes import FakeJobs
from tests.flagkit import create_flag_table, flag_row
from tests.support import Bot, FrozenClock, eventually

DEPLOYS = "C0DEPLOYS"
FLAGS = {"checkout.new-flow": (True, False, 30), "search.semantic": (True, False, 10)}


@pytest.fixture
def app_db(tmp_path: Path) -> str:
    """The application's production flag table (SQLite: the flags side is not what is under test here)."""
    url = f"sqlite:///{tmp_path / 'production-app.db'}"
    create_flag_table(url, FLAGS)
    return url


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble, app_db: str) -> OpsConfig:
    data = deploy_config_data(state_dir, services_double.base_url)
    data["flags"] = {
        "provider": {"type": "sql", "databases": {"production": {"url": app_db}}},
        "services": {"checkout.*": "api", "search.*": "web"},
    }
    data["services"]["web"] = {"environments": ["staging", "production"], "version_pattern": "git_sha"}
    data["incidents"] = {"what_changed_hours": 2}
    data["health"] = {"watches": [{"services": ["api"], "environments": ["production"], "failures": 2, "interval": "1m"}]}
    return parse_config(data, "test")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def app(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, clock: FrozenClock
) -> Bot:
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, clock=clock)


def posted(app: Bot, text: str, timeout: float = 10.0) -> Posted:
    return app.emulator.wait_for(
        lambda: next((m for m in reversed(app.emulator.in_channel(DEPLOYS)) if text in m.seen()), None), timeout
    )


def deploy_to_staging(app: Bot, clock: FrozenClock, version: str) -> None:
    app.command(f"deploy {version} api to staging")
    posted(app, f"✅ Deployment of {version} to staging completed")
    clock.advance(minutes=1)


def entries(message: Posted) -> list[tuple[str, str | None]]:
    """Each listed change: its text's first line, and the label of its button (None without one)."""
    listed = []
    for block in message.blocks:
        if block["type"] == "section" and block["text"]["text"].startswith(("🚀", "↩️", "🚩")):
            button = block.get("accessory")
            listed.append((block["text"]["text"].split("\n")[0], button["text"]["text"] if button else None))
    return listed


def test_a_declaration_lists_the_service_deploys_rollback_and_flag_kill_newest_first_with_roll_back_and_undo(
    app: Bot, clock: FrozenClock, app_db: str
) -> None:
    deploy_to_staging(app, clock, "v1.2.0")
    clock.advance(hours=3)  # v1.2.0 is now older than incidents.what_changed_hours (2)
    deploy_to_staging(app, clock, "v1.2.1")
    deploy_to_staging(app, clock, "v1.2.2")
    app.command('rollback api staging --reason "500s after v1.2.2"')
    posted(app, "Rolled back api to v1.2.1 in staging")
    eventually(lambda: app.reads.deploys.history("api", "staging", 1)[0].state.value == "succeeded", 10)  # type: ignore[union-attr]
    clock.advance(minutes=1)
    app.command('flag kill checkout.new-flow --reason "payment errors"', user="U0DEV2")
    app.command('flag kill search.semantic --reason "slow search"')  # a flag of web: not listed for api
    clock.advance(minutes=1)

    channel = declare(app)  # P1 for api
    [changed] = eventually(lambda: posts(app, channel.id, "What changed"))
    assert "🔎 *What changed* in api in the last 2 h (INC-1)" in changed.seen()
    assert entries(changed) == [
        ("🚩 *Flag* · api/production · checkout.new-flow killed, now KILLED (underneath: on · 30%)", "Undo"),
        ("↩️ *Rollback* · api/staging · v1.2.1 (was v1.2.2) · succeeded", "Roll back"),
        ("🚀 *Deploy* · api/staging · v1.2.2 (was v1.2.1) · rolled back", None),
        ("🚀 *Deploy* · api/staging · v1.2.1 (was v1.2.0) · succeeded", "Roll back"),
    ]
    assert "by @U0DEV2" in changed.seen() and "payment errors" in changed.seen()
    assert "search.semantic" not in changed.seen() and "v1.2.0 (" not in changed.seen()
    older = next(d for d in app.reads.deploys.history("api", "staging", 10) if d.version == "v1.2.1" and d.kind.value == "deploy")  # type: ignore[union-attr]
    assert [b["value"] for b in changed.buttons() if b["text"]["text"] == "Roll back"][1] == older.id  # an opaque id only

    # Roll back from a deploy that is no longer the latest in its environment: re-checked on the server, refused.
    assert "That deploy is no longer the latest in staging" in press(app, changed, older.id, "U0DEV")
    # A viewer may not roll back, whatever the button says.
    assert "deployer" in app.click(changed, "Roll back", "U0VIEWER")[-1]["text"]

    # Roll back from the latest (the rollback to v1.2.1): back to the version before it that verified, v1.2.0.
    app.click(changed, "Roll back", "U0DEV")
    posted(app, "Rolled back api to v1.2.0 in staging")
    eventually(lambda: app.reads.deploys.history("api", "staging", 1)[0].state.value == "succeeded", 10)  # type: ignore[union-attr]
    latest = app.reads.deploys.history("api", "staging", 1)[0]  # type: ignore[union-attr]
    assert latest.version == "v1.2.0" and "from a what-changed list" in latest.reason

    # Undo the kill: the unkill asks production's flag approvals, as the kill alert's Undo does.
    app.click(changed, "Undo", "U0DEV")
    request = request_in(app, "C0ALERTS", "Unkill checkout.new-flow in production")
    app.click(request, "Approve", "U0APPROVER1")
    app.click(request, "Approve", "U0APPROVER2")
    eventually(lambda: flag_row(app_db, "checkout.new-flow") == (True, False, 30))
    clicks = [(action, outcome) for _, action, outcome in app.audit_actions() if action.startswith("click.")]
    assert clicks[:4] == [
        ("click.deploy_rollback_from_here", "conflict"),
        ("click.deploy_rollback_from_here", "denied"),
        ("click.deploy_rollback_from_here", "requested"),
        ("click.flag_undo_kill", "pending_approval"),
    ]


def press(app: Bot, message: Posted, value: str, user: str) -> str:
    """Press the button whose value is ``value`` on ``message`` as ``user``; the last text answered to the clicker."""
    button = next(b for b in message.buttons() if b["value"] == value)
    url = app.emulator.response_url(message.channel, user, message.ts)
    before = len(app.emulator.responses(url))
    body = payloads.block_action(
        user_id=user,
        channel_id=message.channel,
        message_ts=message.ts,
        action=button,
        response_url=url,
        is_ephemeral=False,
        trigger_id=app.emulator.trigger_id(),
    )
    assert app.dispatch(body).status == 200
    calls = app.emulator.wait_for(lambda: app.emulator.responses(url)[before:] or None)
    last = calls[-1].args
    return Posted("", "", str(last.get("text", "")), list(last.get("blocks") or [])).seen()


def test_a_declaration_with_nothing_changed_says_so(app: Bot) -> None:
    channel = declare(app, 'P2 Slow search --service web --impact "search is slow"')
    [changed] = eventually(lambda: posts(app, channel.id, "What changed"))
    assert "No deploys, rollbacks or flag changes of web through opsbot in the last 2 h." in changed.seen()
    assert changed.buttons() == []


def test_a_declaration_without_services_posts_no_what_changed(app: Bot) -> None:
    channel = declare(app, 'P2 Something odd --impact "unclear"')
    eventually(lambda: posts(app, channel.id, "INCIDENT"))
    assert posts(app, channel.id, "What changed") == []


@pytest.fixture
def watched(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig, clock: FrozenClock
) -> Bot:
    # Ticks are driven by hand: the queue only records the successors they schedule.
    return Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=config,
        clock=clock,
        jobs=FakeJobs(),
    )


def test_a_health_down_alert_lists_what_changed_in_the_service_with_undo(
    watched: Bot, clock: FrozenClock, services_double: ServiceDouble
) -> None:
    watched.command('flag kill checkout.new-flow --reason "payment errors"')
    alert(watched, "checkout.new-flow")
    services_double.unhealthy.add("api/production")
    for _ in range(2):
        watched.services.health.watches.tick(Actor("opsbot", source="job"), {"service": "api", "environment": "production"})
        clock.advance(minutes=1)
    [down] = [m for m in watched.emulator.in_channel("C0ALERTS") if "DOWN" in m.text]
    assert "🔎 *What changed* in api in the last 2 h" in down.seen()
    assert entries(down) == [("🚩 *Flag* · api/production · checkout.new-flow killed, now KILLED (underneath: on · 30%)", "Undo")]
    assert [b["text"]["text"] for b in down.buttons()][:2] == ["Declare incident", "Silence 1h"]


class LostDatabase:
    """A ``RecentChanges`` whose database is gone (the rest of the app keeps its own)."""

    def of(self, services: Sequence[str], since: datetime, limit: int) -> list[RecentChange]:
        raise Unavailable("The database", "connection refused")


def test_a_declaration_goes_ahead_saying_what_changed_is_unknown_when_it_cannot_be_read(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig
) -> None:
    app = Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=config,
        recent_changes=LostDatabase(),
    )
    channel = declare(app)
    [changed] = eventually(lambda: posts(app, channel.id, "What changed"))
    assert "What changed in api in the last 2 h: unknown" in changed.text
    assert "⚠️ What changed is unknown: The database could not be read (connection refused)." in changed.seen()
    assert posts(app, channel.id, "🚨 INCIDENT") and changed.buttons() == []
