"""The public status page over HTTP, served by the real WSGI app on real Redis and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.console.slack_emulator import SlackEmulator
from bot.domain.health.rules import Level
from tests.e2e.incident_helpers import BotFactory, declare, last_view, posts, submit
from tests.e2e.test_http_server import serving as served_by_gunicorn
from tests.faults import TcpProxy, pg_proxy, redis_proxy  # noqa: F401 - fixtures
from tests.status_kit import (
    PUBLIC_TEXT,
    RESOLVED_TEXT,
    SECRET,
    START,
    TITLE,
    fixed_clock,
    published_state,
    serving,
    set_watch,
    status_config,
)
from tests.support import USERS, Bot, make_config


@pytest.fixture
def bot_with(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str) -> BotFactory:
    def make(**changes: Any) -> Bot:
        return Bot(
            emulator=emulator,
            db_url=pg_url,
            redis_client=redis_client,
            prefix=redis_prefix,
            config=make_config(**changes),
            clock=fixed_clock(),
        )

    return make


def test_the_page_is_off_unless_enabled(opsbot: Bot) -> None:
    with serving(opsbot) as base:
        assert httpx.get(base + "/status").status_code == 404
        assert httpx.get(base + "/status.json").status_code == 404
        assert httpx.get(base + "/healthz").status_code == 200


def test_the_page_shows_service_states_and_only_the_public_update(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config())
    published_state(bot)
    with serving(bot) as base:
        page = httpx.get(base + "/status")
        document = httpx.get(base + "/status.json")
        head = httpx.head(base + "/status")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert document.status_code == 200 and document.headers["access-control-allow-origin"] == "*"
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == page.headers["content-length"]
    data = document.json()
    assert data["title"] == TITLE and data["overall"] == "degraded" and data["complete"] is True
    assert data["services"] == [
        {"name": "api", "state": "degraded", "since": "2026-11-23T13:40:00Z"},
        {"name": "web", "state": "operational", "since": "2026-11-21T14:00:00Z"},
        {"name": "worker", "state": "unknown", "since": None},
    ]
    assert data["incidents"] == [
        {
            "ref": "INC-1",
            "services": ["api"],
            "started_at": "2026-11-23T14:00:00Z",
            "resolved_at": None,
            "status": "identified",
            "updates": [{"at": "2026-11-23T14:00:00Z", "status": "identified", "text": PUBLIC_TEXT}],
        }
    ]
    assert data["recently_resolved"] == [
        {
            "ref": "INC-2",
            "services": ["web"],
            "started_at": "2026-11-23T14:00:00Z",
            "resolved_at": "2026-11-23T14:00:00Z",
            "status": "resolved",
            "updates": [{"at": "2026-11-23T14:00:00Z", "status": "resolved", "text": RESOLVED_TEXT}],
        }
    ]
    html = page.text
    assert PUBLIC_TEXT in html and "Degraded performance" in html and "Some services are degraded" in html
    assert "Recently resolved" in html and RESOLVED_TEXT in html
    assert '<time datetime="2026-11-23T13:40:00Z">2026-11-23 13:40 UTC</time>' in html


def test_nothing_internal_reaches_the_page(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config())
    published_state(bot)
    bot.command("incident role INC-1 comms @U0APPROVER1", user="U0DEV")
    channel = next(c for c in bot.emulator.channels.values() if c.name.startswith("inc-"))
    with serving(bot) as base:
        shown = httpx.get(base + "/status").text + httpx.get(base + "/status.json").text
    assert PUBLIC_TEXT in shown and RESOLVED_TEXT in shown  # the page did render both incidents
    assert SECRET not in shown and SECRET.lower() not in shown.lower()
    for user, name in USERS.items():
        assert user not in shown and f"@{name}" not in shown, user
    assert channel.name not in shown and channel.id not in shown
    assert "P1" not in shown  # severity is internal too


def test_an_incident_without_a_public_update_is_not_published(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config())
    channel = declare(bot, f'P1 {SECRET} --service api --impact "{SECRET}"')
    bot.command(f'incident update identified "{SECRET}" --next 30m', channel=channel.id)
    with serving(bot) as base:
        data = httpx.get(base + "/status.json").json()
        html = httpx.get(base + "/status").text
    assert data["incidents"] == [] and "No open incidents." in html and SECRET not in html


def test_a_resolved_incident_stays_listed_for_show_resolved_hours(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config(show_resolved_hours=2))
    channel = declare(bot, "P1 Checkout errors --service api --impact x")
    reply = bot.command('incident update resolved "Rolled back" --public "Checkout works again."', channel=channel.id)
    assert "is resolved" in reply.seen(), reply.seen()
    with serving(bot) as base:
        data = httpx.get(base + "/status.json").json()
    assert data["incidents"] == [] and [i["updates"][0]["text"] for i in data["recently_resolved"]] == ["Checkout works again."]
    bot.services.adapters.clock.advance(hours=2, seconds=1)  # type: ignore[attr-defined]
    with serving(bot) as base:
        data = httpx.get(base + "/status.json").json()
        html = httpx.get(base + "/status").text
    assert data["recently_resolved"] == [] and "Recently resolved" not in html


def test_the_update_form_takes_a_public_text(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config())
    channel = declare(bot, "P1 Checkout errors --service api")
    bot.command("incident update", channel=channel.id)
    view = last_view(bot)
    assert any(b.get("block_id") == "public" for b in view["blocks"])
    answer = submit(
        bot, view, "U0DEV", status="identified", impact="x", current_status="internal", next_update="30m", public="Hi <@U0DEV>"
    )
    assert answer["response_action"] == "errors" and "names a person" in answer["errors"]["public"]
    fields = {"status": "identified", "impact": "x", "current_status": "internal", "next_update": "30m"}
    assert submit(bot, view, "U0DEV", **fields, public="We found the cause and are fixing it.") == {}
    update = bot.emulator.wait_for(lambda: posts(bot, channel.id, "Incident Update"))[0].seen()
    assert "Public update (status page)" in update and "We found the cause and are fixing it." in update
    with serving(bot) as base:
        data = httpx.get(base + "/status.json").json()
    assert [u["text"] for u in data["incidents"][0]["updates"]] == ["We found the cause and are fixing it."]


def test_a_public_text_naming_a_person_is_refused(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config())
    channel = declare(bot, "P1 Checkout errors --service api --impact x")
    reply = bot.command('incident update identified "internal" --next 30m --public "Ask <@U0DEV|dave>"', channel=channel.id)
    assert "`--public`: the public text names a person, channel or group" in reply.seen()
    assert posts(bot, channel.id, "Incident Update") == []


def test_an_outage_shows_as_outage_and_environments_can_be_narrowed(bot_with: BotFactory) -> None:
    bot = bot_with(**status_config(services=["api"], environments=["staging"]))
    set_watch(bot, "api", "production", Level.DOWN, START - timedelta(minutes=5))
    with serving(bot) as base:
        assert httpx.get(base + "/status.json").json()["services"] == [{"name": "api", "state": "unknown", "since": None}]
    bot = bot_with(**status_config(services=["api"]))
    with serving(bot) as base:
        data = httpx.get(base + "/status.json").json()
    assert data["services"] == [{"name": "api", "state": "outage", "since": "2026-11-23T13:55:00Z"}]
    assert data["overall"] == "outage" and data["headline"] == "Some services are down"


def test_the_page_answers_while_redis_is_down(
    emulator: SlackEmulator, pg_url: str, redis_url: str, redis_proxy: TcpProxy, redis_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_proxy.url_for(redis_url), decode_responses=True, socket_timeout=2)
    bot = Bot(emulator=emulator, db_url=pg_url, redis_client=client, prefix=redis_prefix, config=make_config(**status_config()))
    with serving(bot) as base, redis_proxy.down():
        page = httpx.get(base + "/status", timeout=30)
        data = httpx.get(base + "/status.json", timeout=30).json()
    assert page.status_code == 200 and "Service states cannot be read right now" in page.text
    assert data["complete"] is False and {s["state"] for s in data["services"]} == {"unknown"}


def test_the_page_answers_while_the_database_is_down(
    emulator: SlackEmulator, pg_url: str, pg_proxy: TcpProxy, redis_client: redis.Redis, redis_prefix: str
) -> None:
    bot = Bot(
        emulator=emulator,
        db_url=pg_proxy.url_for(pg_url),
        redis_client=redis_client,
        prefix=redis_prefix,
        config=make_config(**status_config()),
        clock=fixed_clock(),
    )
    set_watch(bot, "api", "production", Level.WARNING, START)
    with serving(bot) as base, pg_proxy.down():
        page = httpx.get(base + "/status", timeout=30)
        data = httpx.get(base + "/status.json", timeout=30).json()
    assert page.status_code == 200 and "Incidents cannot be read right now" in page.text
    assert data["complete"] is False and data["incidents"] == []
    assert data["services"][0] == {"name": "api", "state": "degraded", "since": "2026-11-23T14:00:00Z"}


def test_opsbot_serve_answers_the_page_under_gunicorn(
    emulator: SlackEmulator, pg_url: str, redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    bot = Bot(
        emulator=emulator,
        db_url=pg_url,
        redis_client=redis_client,
        prefix=redis_prefix,
        config=make_config(**status_config()),
        clock=fixed_clock(),
    )
    published_state(bot)
    with served_by_gunicorn(bot, tmp_path, REDIS_URL=redis_url) as base:
        page = httpx.get(base + "/status", timeout=10)
        data = httpx.get(base + "/status.json", timeout=10).json()
    assert page.status_code == 200 and PUBLIC_TEXT in page.text and SECRET not in page.text
    assert data["services"][0] == {"name": "api", "state": "degraded", "since": "2026-11-23T13:40:00Z"}
