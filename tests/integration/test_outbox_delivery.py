"""The outbox's delivery calls, on SQLite and PostgreSQL: single statements in autocommit, one connection per batch.

A post records its message key before its effect is marked delivered, in two statements: a process that dies between
them leaves a key, and the retry edits that message instead of posting a twin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from pytest_mock import MockerFixture

from bot.adapters.sql import outbox as outbox_sql
from bot.adapters.sql.engine import PING_AFTER_IDLE_SECONDS
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.deploy_kit import ServiceDouble, deploy_config, services_double, state_dir  # noqa: F401 - fixtures
from tests.faults import TcpProxy, pg_proxy  # noqa: F401 - fixtures
from tests.support import Bot


@pytest.fixture
def config(state_dir: Path, services_double: ServiceDouble) -> OpsConfig:
    return deploy_config(state_dir, services_double.base_url)


@pytest.fixture
def bot(emulator: SlackEmulator, db_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    return Bot(emulator=emulator, db_url=db_url, redis_client=redis_client, prefix=redis_prefix, config=config)


def requests_posted(bot: Bot) -> list[str]:
    return [m.seen() for m in bot.emulator.in_channel("C0DEPLOYS") if "Approval needed" in m.seen()]


def effect_states(bot: Bot) -> list[tuple[str, str, int]]:
    engine = sa.create_engine(bot.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT kind, state, attempts FROM outbox WHERE kind = 'slack.post' AND key LIKE 'approval:%' ORDER BY id"
                )
            )
            return [(r.kind, r.state, r.attempts) for r in rows]
    finally:
        engine.dispose()


def test_a_post_whose_process_died_after_its_key_was_recorded_is_edited_on_retry_never_posted_twice(
    bot: Bot, mocker: MockerFixture
) -> None:
    # The statement that marks the effect delivered fails, as if the process died right after the key was recorded.
    mocker.patch.object(outbox_sql, "FINISHED", sa.text("UPDATE outbox SET no_such_column = 1 WHERE id = :effect_id"))
    reply = bot.command("deploy v1.2.3 to production", user="U0DEV").seen()
    mocker.stopall()
    assert "Requested" in reply
    [posted] = requests_posted(bot)
    assert effect_states(bot) == [("slack.post", "pending", 1)]

    engine = sa.create_engine(bot.settings.database_url)
    with engine.begin() as conn:  # its claim runs out (60 s later)
        conn.execute(sa.text("UPDATE outbox SET claimed_until = NULL"))
    engine.dispose()
    bot.services.delivery.drain()  # what `opsbot worker` does every second

    [again] = requests_posted(bot)
    assert again == posted
    [message] = [m for m in bot.emulator.in_channel("C0DEPLOYS") if "Approval needed" in m.seen()]
    assert message.edits == 1  # the retry edited the message its key names
    assert effect_states(bot) == [("slack.post", "delivered", 2)]


def test_a_batch_that_loses_its_connection_midway_leaves_the_rest_for_the_worker(bot: Bot, mocker: MockerFixture) -> None:
    """The first statement of a batch fails: the command is answered, and nothing is posted twice once it is delivered."""
    mocker.patch.object(outbox_sql, "GET_MANY", sa.text("SELECT * FROM no_such_table WHERE 1 = :effect_ids"))
    reply = bot.command("deploy v1.2.3 to production", user="U0DEV").seen()
    mocker.stopall()
    assert "Requested" in reply and requests_posted(bot) == []
    assert effect_states(bot) == [("slack.post", "pending", 0)]
    bot.services.delivery.drain()
    assert len(requests_posted(bot)) == 1
    assert effect_states(bot) == [("slack.post", "delivered", 1)]


def test_a_connection_cut_while_slack_takes_the_post_is_replaced_and_the_delivery_recorded(
    emulator: SlackEmulator,
    pg_url: str,
    pg_proxy: TcpProxy,
    redis_client: redis.Redis,
    redis_prefix: str,
    config: OpsConfig,
) -> None:
    """The batch's connection sits idle while Slack answers; PostgreSQL's side of it is cut meanwhile: the next call
    pings it, takes a fresh one, and records the post, so the worker has nothing left to do."""
    bot = Bot(emulator=emulator, db_url=pg_proxy.url_for(pg_url), redis_client=redis_client, prefix=redis_prefix, config=config)
    original = emulator.handle

    def slow_post_and_cut(path: str, headers: dict[str, str], raw: str) -> Any:
        if path.endswith("/chat.postMessage") and "Approval needed" in raw:
            pg_proxy.cut()  # every open connection to PostgreSQL dies; new ones are let through
            pg_proxy.restore()
            time.sleep(PING_AFTER_IDLE_SECONDS + 0.3)
        return original(path, headers, raw)

    emulator.handle = slow_post_and_cut  # type: ignore[method-assign]
    reply = bot.command("deploy v1.2.3 to production", user="U0DEV", timeout=15).seen()
    assert "Requested" in reply and "waiting" not in reply.lower().split("requested", 1)[0]
    assert len(requests_posted(bot)) == 1
    assert effect_states(bot) == [("slack.post", "delivered", 1)]
