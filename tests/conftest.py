"""Fixtures: real Redis and PostgreSQL (never skipped; started for the run when none answers), SQLite, the Slack emulator, a wired bot."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from bot.adapters.sql.engine import upgrade
from bot.config import OpsConfig
from bot.console.slack_emulator import SlackEmulator
from tests.support import OPEN_BOTS, Bot, make_config, start_emulator

# tests.servers: throwaway Redis/PostgreSQL/Unleash when none answers, shared by xdist workers;
# tests.flagkit: flag fixtures (the application database, the real Unleash server).
pytest_plugins = ["tests.servers", "tests.flagkit"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_PG_URL
    if not url.startswith("postgres"):
        url = DEFAULT_PG_URL
    return url.replace("postgresql://", "postgresql+psycopg://", 1).replace("postgres://", "postgresql+psycopg://", 1)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards: tests and parallel runs never share keys."""
    prefix = f"opsbot-test:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    yield client
    client.close()


def _admin(url: str, statement: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


def _with_database(url: str, name: str) -> str:
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A database migrated once per session; each test gets a copy of it."""
    name = f"opsbot_tpl_{secrets.token_hex(4)}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    upgrade(_with_database(pg_admin_url, name))
    yield name
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    name = f"opsbot_t_{secrets.token_hex(5)}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _with_database(pg_admin_url, name)
    close_open_bots()  # before their database goes
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "opsbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def config() -> OpsConfig:
    return make_config()


@pytest.fixture
def emulator(config: OpsConfig) -> Iterator[SlackEmulator]:
    emulator = start_emulator(config)
    yield emulator
    emulator.stop()


@pytest.fixture
def opsbot(emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
    """The app on PostgreSQL and Redis, talking to the emulator."""
    return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)


@pytest.fixture(autouse=True)
def _close_bots() -> Iterator[None]:
    """Every Bot a test built is closed when it ends: no job thread outlives its test's database."""
    yield
    close_open_bots()


def close_open_bots() -> None:
    while OPEN_BOTS:
        OPEN_BOTS.pop().close()
