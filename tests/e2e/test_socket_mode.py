"""`opsbot socket` end to end: a real process, a real websocket, a Socket Mode server double on loopback.

The double (tests/socket_mode_double.py) answers as Slack does: ``hello`` first, envelopes to ack by ``envelope_id``
within 3 s, ``disconnect`` before it closes a connection, events delivered again when their ack did not arrive.
The Web API (``apps.connections.open`` included) is the Slack emulator; Redis and PostgreSQL are the real ones.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import redis

from bot.config import OpsConfig
from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from tests.faults import TcpProxy, pg_proxy, proxied_environment, redis_proxy  # noqa: F401 - fixtures
from tests.socket_mode_double import ACK_WITHIN_SECONDS, SocketModeDouble
from tests.support import Bot, eventually


@pytest.fixture
def double() -> Iterator[SocketModeDouble]:
    server = SocketModeDouble().start()
    yield server
    server.stop()


@pytest.fixture
def bot(
    emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, redis_url: str, config: OpsConfig
) -> Bot:
    return Bot(
        emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config, redis_url=redis_url
    )


@contextlib.contextmanager
def socket_process(
    bot: Bot, double: SocketModeDouble, tmp_path: Path, *, redis: TcpProxy | None = None, database: TcpProxy | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`opsbot socket` connected to ``double``, sharing ``bot``'s stores (through the proxies when given)."""
    bot.emulator.socket_mode_url = double.url
    env = proxied_environment(bot.environment(tmp_path / "opsbot.yml"), redis=redis, database=database)
    env["SLACK_APP_TOKEN"] = bot.emulator.app_token
    log = (tmp_path / "socket.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "socket"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            double.wait_connected(1, timeout=60)
        except AssertionError:
            raise AssertionError((tmp_path / "socket.log").read_text()) from None
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def slash(bot: Bot, text: str, user: str = "U0DEV") -> tuple[dict[str, Any], str]:
    url = bot.emulator.response_url("C0OPS", user)
    body = payloads.slash_command(text, user_id=user, channel_id="C0OPS", response_url=url, trigger_id=bot.emulator.trigger_id())
    return dict(parse_qsl(body)), url


def reaction(event_id: str) -> dict[str, Any]:
    event = {
        "type": "reaction_added",
        "user": "U0DEV",
        "reaction": "pushpin",
        "item": {"type": "message", "channel": "C0NOTANINCIDENT", "ts": "1700000000.000100"},
        "item_user": "U0DEV",
        "event_ts": "1700000001.000200",
    }
    return dict(json.loads(payloads.event_callback(event, event_id=event_id)))


def reactions_audited(bot: Bot) -> list[tuple[str, str, str]]:
    return [row for row in bot.audit_actions() if row[1] == "event.reaction_added"]


def test_commands_are_acked_once_within_three_seconds_and_answered(bot: Bot, double: SocketModeDouble, tmp_path: Path) -> None:
    with socket_process(bot, double, tmp_path):
        for text, expected in [("help", "opsbot help"), ("locks", "No locks are held"), ("deploy", "Name the version to deploy")]:
            payload, url = slash(bot, text)
            envelope_id = double.send("slash_commands", payload)
            delivery = double.wait_ack(envelope_id)
            assert delivery.acked_at is not None and delivery.acked_at - delivery.sent_at < ACK_WITHIN_SECONDS
            assert expected in bot.reply_to(url, timeout=10).seen()
            assert len(double.deliveries[envelope_id].acks) == 1
        assert double.unknown == []  # nothing but acks came back


def test_a_button_click_arrives_as_an_interactive_envelope(bot: Bot, double: SocketModeDouble, tmp_path: Path) -> None:
    with socket_process(bot, double, tmp_path):
        payload, url = slash(bot, 'lock api staging --reason "load test"', user="U0DEV2")
        double.wait_ack(double.send("slash_commands", payload))
        assert "load test" in bot.reply_to(url, timeout=10).seen()
        payload, url = slash(bot, 'lock api staging --reason "mine"')
        double.wait_ack(double.send("slash_commands", payload))
        refused = bot.reply_to(url, timeout=10)
        button = next(b for b in refused.buttons() if b["text"]["text"] == "Notify me when free")
        click_url = bot.emulator.response_url("C0OPS", "U0DEV", refused.ts)
        body = payloads.block_action(
            user_id="U0DEV", channel_id="C0OPS", message_ts=refused.ts, action=button, response_url=click_url, is_ephemeral=True
        )
        envelope_id = double.send("interactive", json.loads(dict(parse_qsl(body))["payload"]))
        assert len(double.wait_ack(envelope_id).acks) == 1
        answered = bot.emulator.wait_for(lambda: bot.emulator.responses(click_url), timeout=10)
        assert "is free (number 1 in line)" in str(answered[-1].args.get("text"))


def test_an_event_delivered_twice_is_handled_once(bot: Bot, double: SocketModeDouble, tmp_path: Path) -> None:
    with socket_process(bot, double, tmp_path):
        first = double.send("events_api", reaction("Ev0TWICE"))
        double.wait_ack(first)
        eventually(lambda: reactions_audited(bot), timeout=10)
        again = double.send("events_api", reaction("Ev0TWICE"), retry_attempt=1, retry_reason="timeout")
        double.wait_ack(again)  # acked, so Slack stops retrying ...
        other = double.send("events_api", reaction("Ev0OTHER"))
        double.wait_ack(other)
        eventually(lambda: len(reactions_audited(bot)) == 2, timeout=10)  # ... and handled once: one row per event_id


def test_refresh_requested_reconnects_and_commands_work_on_the_new_connection(
    bot: Bot, double: SocketModeDouble, tmp_path: Path
) -> None:
    with socket_process(bot, double, tmp_path):
        double.disconnect("refresh_requested")
        double.wait_connected(2, timeout=20)
        assert len(bot.emulator.calls_to("apps.connections.open")) == 2
        payload, url = slash(bot, "help")
        envelope_id = double.send("slash_commands", payload)
        assert double.deliveries[envelope_id].connection == 2
        double.wait_ack(envelope_id)
        assert "opsbot help" in bot.reply_to(url, timeout=10).seen()


def test_a_dropped_socket_reconnects_and_an_event_it_cut_off_is_handled_once(
    bot: Bot, double: SocketModeDouble, tmp_path: Path
) -> None:
    with socket_process(bot, double, tmp_path) as process:
        double.drop()
        double.wait_connected(2, timeout=45)  # the client notices and opens a new connection (apps.connections.open)
        assert len(bot.emulator.calls_to("apps.connections.open")) == 2

        # An event whose connection dies at once: acked before the cut, or delivered again on the next connection.
        double.send("events_api", reaction("Ev0CUT"))
        double.drop()
        double.wait_connected(3, timeout=45)
        eventually(lambda: any(d.acks for d in double.event_deliveries("Ev0CUT")), timeout=30)
        eventually(lambda: reactions_audited(bot), timeout=10)
        time.sleep(ACK_WITHIN_SECONDS + 1)  # any redelivery the double still owes has gone out by now
        assert len(reactions_audited(bot)) == 1, double.event_deliveries("Ev0CUT")
        assert process.poll() is None


def test_redis_or_the_database_cut_gets_the_same_answers_as_over_http(
    bot: Bot, double: SocketModeDouble, tmp_path: Path, redis_proxy: TcpProxy, pg_proxy: TcpProxy
) -> None:
    with socket_process(bot, double, tmp_path, redis=redis_proxy, database=pg_proxy) as process:
        with pg_proxy.down():
            payload, url = slash(bot, "deploy v2.0.0 to staging")
            assert len(double.wait_ack(double.send("slash_commands", payload)).acks) == 1
            reply = bot.reply_to(url, timeout=20).seen()
        assert "The database is unreachable right now; nothing was changed." in reply and "127.0.0.1" not in reply
        with redis_proxy.down():
            payload, url = slash(bot, 'lock api staging --reason "x"')
            assert len(double.wait_ack(double.send("slash_commands", payload)).acks) == 1
            reply = bot.reply_to(url, timeout=20).seen()
        assert "Redis is unreachable right now; nothing was changed." in reply
        payload, url = slash(bot, 'lock api staging --reason "back"')  # both are back: it works again
        double.wait_ack(double.send("slash_commands", payload))
        assert "back" in bot.reply_to(url, timeout=20).seen()
        assert process.poll() is None
