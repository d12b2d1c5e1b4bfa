"""`/ops health` and the alert buttons through Bolt's real dispatch, against real local HTTP servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.config import OpsConfig
from bot.console.slack_emulator import Posted, SlackEmulator
from bot.domain.shared.policy import Actor
from tests.e2e.incident_helpers import incident_channels, last_view, posts, submit
from tests.fakes import FakeJobs
from tests.health_stubs import StubServer, closed_port, hang, json_reply, serving, text_reply
from tests.support import Bot, FrozenClock, make_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[StubServer]:
    with serving(
        {
            "/health": json_reply({"status": "healthy"}),
            "/health/db": json_reply({"database": "connected"}, delay=0.4),
            "/health/redis": json_reply({"redis": "disconnected"}, status=503),
            "/version": json_reply({"version": "1.4.2"}),
            "/hang": hang,
            "/html": text_reply("<html>Bad gateway</html>"),
        }
    ) as running:
        yield running


@pytest.fixture
def config(server: StubServer) -> OpsConfig:
    production = {
        "health": [
            {"url": server.url("/health"), "expect_json": {"status": "healthy"}},
            {"url": server.url("/health/db"), "expect_json": {"database": "connected"}, "warn_ms": 200},
            {"url": server.url("/health/redis"), "expect_json": {"redis": "connected"}},
        ],
        "version_url": server.url("/version"),
    }
    faulty = {
        "health": [
            {"url": f"http://127.0.0.1:{closed_port()}/health", "name": "refused"},
            {"url": "http://health.nowhere.invalid/health", "name": "dns"},
            {"url": server.url("/hang"), "name": "hang", "timeout_ms": 800},
            {"url": server.url("/html"), "name": "html", "expect_json": {"status": "healthy"}},
        ]
    }
    return make_config(
        services={
            "api": {"environments": {"staging": {}, "production": production}},
            "web": {"environments": {"staging": faulty}},
        },
        health={"watches": [{"services": ["api"], "environments": ["production"], "failures": 2, "interval": "1m"}]},
    )


def test_health_shows_healthy_slow_and_failing_checks_with_latencies_and_reasons(opsbot: Bot) -> None:
    reply = opsbot.command("health api production")
    seen = reply.seen()
    assert reply.ephemeral_to == "U0DEV"
    assert "❌ Health: api in production" in seen
    assert "3 checks: 1 failing, 1 degraded, 1 healthy" in seen
    assert "version `1.4.2`" in seen
    assert "✅ `/health` " in seen
    assert "⚠️ `/health/db` " in seen and "slow: " in seen and "(warning at 200 ms)" in seen
    assert "❌ `/health/redis` " in seen and "status 503 (expected 200)" in seen
    assert " ms" in seen.split("`/health`")[1].splitlines()[0]


def test_every_fault_is_a_failed_line_and_the_command_still_answers(opsbot: Bot) -> None:
    seen = opsbot.command("health web staging").seen()
    assert "❌ `refused` " in seen and "connection refused" in seen
    assert "DNS failure: cannot resolve health.nowhere.invalid" in seen
    assert "timeout after 800 ms waiting for a response" in seen
    assert "body is not JSON (text/html: <html>Bad gateway</html>)" in seen
    assert ("U0DEV", "command.health", "ok") in opsbot.audit_actions()


def test_post_shows_the_answer_to_the_whole_channel(opsbot: Bot) -> None:
    reply = opsbot.command("health api production --post")
    assert reply.ephemeral_to is None and reply.channel == "C0OPS"


def test_an_unknown_service_suggests_the_closest_name(opsbot: Bot) -> None:
    assert "Unknown service `apii`. Did you mean `api`?" in opsbot.command("health apii").seen()
    assert ("U0DEV", "command.health", "not_found") in opsbot.audit_actions()


def test_a_service_without_checks_says_so(opsbot: Bot) -> None:
    assert "No health checks configured for api/staging" in opsbot.command("health api staging").seen()


def test_a_fleet_of_150_services_fits_one_message_with_the_failing_ones_in_full(
    emulator: SlackEmulator,
    pg_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    server: StubServer,
) -> None:
    def checks(i: int) -> dict[str, object]:
        path = "/health/redis" if i % 30 == 0 else "/health"
        # Generous thresholds: 150 checks at once on a busy machine must not read as "degraded" (not what is tested).
        return {
            "environments": {
                "production": {"health": [{"url": server.url(path), "warn_ms": 30000, "critical_ms": 30000, "timeout_ms": 30000}]}
            }
        }

    fleet = make_config(services={f"svc-{i:03d}": checks(i) for i in range(150)}, default_service=None)
    bot = Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=fleet)
    reply = bot.command("health all", timeout=20)
    seen = reply.seen()
    assert len(reply.blocks) <= 50
    assert "5 failing, 0 degraded, 145 healthy" in seen
    for i in (0, 30, 60, 90, 120):
        assert f"❌ *svc-{i:03d} · production*" in reply.all_text()
    assert "✅ 145 more targets healthy: svc-001/production, svc-002/production" in seen


@pytest.fixture
def watched_bot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    # Ticks are driven by hand here: the queue only records the successors they schedule.
    return Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=config,
        clock=FrozenClock(),
        jobs=FakeJobs(),
    )


def down_alert(bot: Bot) -> Posted:
    """Tick the api/production watch (its /health/redis always fails) until it is announced DOWN."""
    for _ in range(2):
        bot.services.health.watches.tick(Actor("opsbot", source="job"), {"service": "api", "environment": "production"})
        bot.services.adapters.clock.advance(minutes=1)  # type: ignore[attr-defined]
    [alert] = [m for m in bot.emulator.in_channel("C0ALERTS") if "DOWN" in m.text]
    return alert


def test_the_down_alert_carries_an_incident_button_whose_id_gives_the_alert_context(watched_bot: Bot) -> None:
    alert = down_alert(watched_bot)
    assert alert.text == "🔴 api production DOWN: /health/redis status 503 (expected 200) (2 failures in 5 min)"
    declare = next(b for b in alert.buttons() if b["text"]["text"] == "Declare incident")
    assert declare["action_id"] == "incident_declare_from_alert"
    context = watched_bot.services.health.alert_context(declare["value"])
    assert (context["service"], context["environment"], context["severity_hint"]) == ("api", "production", "P0")


def test_declare_incident_on_a_real_down_alert_declares_a_p0_for_the_service_from_the_prefilled_form(watched_bot: Bot) -> None:
    alert = down_alert(watched_bot)
    answer = watched_bot.click(alert, "Declare incident", "U0DEV")
    assert "The declare form is open." in answer[0]["text"]
    view = last_view(watched_bot)
    fields = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert fields["severity"]["initial_option"]["value"] == "P0" and fields["service"]["initial_option"]["value"] == "api"
    assert submit(watched_bot, view, "U0DEV") == {}
    declared = watched_bot.emulator.wait_for(
        lambda: [m for m in watched_bot.emulator.ephemerals("U0DEV") if "Declared" in m.seen()]
    )
    assert "Declared *INC-1* (P0)" in declared[0].seen()
    [channel] = incident_channels(watched_bot)
    declaration = posts(watched_bot, channel.id, "🚨 INCIDENT")[0].seen()
    assert "🚨 INCIDENT: api - api production DOWN: /health/redis status 503 (expected 200)" in declaration


def test_silence_is_refused_to_a_viewer_and_granted_to_a_deployer(watched_bot: Bot) -> None:
    alert = down_alert(watched_bot)
    refused = watched_bot.click(alert, "Silence 1h", "U0VIEWER")
    assert "needs the *deployer* role" in refused[0]["text"]
    granted = watched_bot.click(alert, "Silence 1h", "U0DEV")
    assert granted[0]["response_type"] == "in_channel"
    assert "@U0DEV silenced health alerts for *api production* until 15:02 UTC" in granted[0]["text"]
    actions = watched_bot.audit_actions()
    assert ("U0VIEWER", "click.health_silence", "denied") in actions
    assert ("U0DEV", "health.silenced", "ok") in actions and ("U0DEV", "click.health_silence", "ok") in actions
    assert "silenced by @U0DEV until 15:02 UTC" in watched_bot.command("health watches", user="U0VIEWER").seen()


def test_watches_list_shows_each_watch_level_and_reason(watched_bot: Bot) -> None:
    down_alert(watched_bot)
    seen = watched_bot.command("health watches", user="U0VIEWER").seen()
    assert "🔴 *api production* · DOWN since 14:01 UTC" in seen
    assert "/health/redis status 503 (expected 200)" in seen


def test_the_console_demo_shows_healthy_slow_and_failing_checks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'console.db'}", OPSBOT_CONFIG=str(ROOT / "opsbot.example.yml"))
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "-c", "/ops health api staging"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "✅ `/health`" in out
    assert "⚠️ `/health/db`" in out and "slow: " in out
    assert "❌ `/health/redis`" in out and "status 503 (expected 200)" in out
    assert "❌ `/health/queue`" in out and "timeout after 1500 ms waiting for a response" in out
    assert "version `1.4.2`" in out
