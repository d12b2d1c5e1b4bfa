"""The suite's throwaway servers (tests/servers.py) start, answer and stop, so the path CI never needs keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.servers import (
    NotInstalled,
    listening,
    start_postgresql,
    start_redis,
    stop_server,
)


def test_a_throwaway_redis_answers_and_is_gone_once_stopped() -> None:
    started = start_redis("redis://127.0.0.1:1/0")
    try:
        client = redis.Redis.from_url(started.url, socket_connect_timeout=2)
        assert client.set("opsbot-test:throwaway", "1") and client.get("opsbot-test:throwaway") == b"1"
    finally:
        stop_server(started.stop)
    assert not listening(started.url, 6379)
    assert not Path(started.stop["dir"]).exists()


def test_a_throwaway_postgresql_answers_and_is_gone_once_stopped() -> None:
    started = start_postgresql("postgresql://postgres@127.0.0.1:1/test")
    try:
        engine = sa.create_engine(started.url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "postgres"
        engine.dispose()
    finally:
        stop_server(started.stop)
    assert not listening(started.url, 5432)
    assert not Path(started.stop["data"]).exists()


def test_without_redis_server_the_message_names_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server on it
    with pytest.raises(NotInstalled) as raised:
        start_redis("redis://:secret@127.0.0.1:1/0")
    assert str(raised.value) == (
        "Redis is not running at redis://:***@127.0.0.1:1/0 and redis-server is not installed: "
        "apt install redis-server (or set REDIS_URL)"
    )
