"""The `sql` flag provider against a real application database, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.adapters.flag_providers.sql import SqlFlagProvider
from bot.config import SqlFlagProvider as SqlFlagConfig
from bot.domain.flags.model import FlagState
from bot.domain.shared.errors import OpsError, Unavailable
from tests.flagkit import create_flag_table, flag_row

ROWS = {
    "checkout.new-flow": (True, False, 30),
    "search.semantic": (True, False, None),
    "payments.3ds": (False, False, 0),
}


def provider_for(url: str, **settings: object) -> SqlFlagProvider:
    config = SqlFlagConfig.model_validate(
        {"type": "sql", "databases": {"production": {"url": url}}, "timeout_seconds": 1, **settings}
    )
    return SqlFlagProvider(config)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_reads_the_runbook_table_with_nulls_as_no_percentage(app_db_url: str) -> None:
    create_flag_table(app_db_url, ROWS)
    flags = provider_for(app_db_url)
    assert flags.state("checkout.new-flow", "production") == FlagState(True, False, 30)
    assert flags.state("search.semantic", "production") == FlagState(True, False, None)
    assert flags.state("nope", "production") is None
    assert flags.names("production") == ["checkout.new-flow", "payments.3ds", "search.semantic"]
    assert list(flags.list_flags(["production"], "CHECK", 10)) == ["checkout.new-flow"]


def test_compare_and_set_writes_only_what_changed_when_the_row_is_as_read(app_db_url: str) -> None:
    create_flag_table(app_db_url, ROWS)
    flags = provider_for(app_db_url)
    assert flags.compare_and_set("checkout.new-flow", "production", FlagState(True, False, 30), FlagState(True, True, 30))
    assert flag_row(app_db_url, "checkout.new-flow") == (True, True, 30)


def test_compare_and_set_refuses_a_stale_read_and_leaves_the_row_alone(app_db_url: str) -> None:
    create_flag_table(app_db_url, ROWS)
    flags = provider_for(app_db_url)
    engine = sa.create_engine(app_db_url)
    with engine.begin() as conn:  # someone runs the runbook's SQL by hand meanwhile
        conn.execute(sa.text("UPDATE feature_flags SET rollout_percentage = 50 WHERE name = 'checkout.new-flow'"))
    engine.dispose()
    assert not flags.compare_and_set("checkout.new-flow", "production", FlagState(True, False, 30), FlagState(True, False, 40))
    assert flag_row(app_db_url, "checkout.new-flow") == (True, False, 50)


def test_names_with_sql_and_shell_syntax_are_only_ever_parameters(app_db_url: str) -> None:
    evil = "o'brien\"; DROP TABLE feature_flags; --$(rm -rf /)"
    create_flag_table(app_db_url, {evil: (True, False, 10), "other": (True, False, 10)})
    flags = provider_for(app_db_url)
    assert flags.state(evil, "production") == FlagState(True, False, 10)
    assert flags.compare_and_set(evil, "production", FlagState(True, False, 10), FlagState(True, True, 10))
    assert flags.list_flags(["production"], "%", 10) == {}  # a LIKE wildcard in a filter is a literal
    assert flag_row(app_db_url, evil) == (True, True, 10) and flag_row(app_db_url, "other") == (True, False, 10)


def test_table_and_column_names_come_from_the_config(app_db_url: str) -> None:
    ddl = "CREATE TABLE toggles (flag_key VARCHAR(100) PRIMARY KEY, is_on BOOLEAN NOT NULL, killed BOOLEAN NOT NULL, pct INTEGER)"
    create_flag_table(app_db_url, {"checkout": (True, False, 5)}, ddl=ddl, table="toggles")
    flags = provider_for(
        app_db_url,
        table="toggles",
        columns={"name": "flag_key", "enabled": "is_on", "kill_switch": "killed", "rollout_percentage": "pct"},
    )
    assert flags.compare_and_set("checkout", "production", FlagState(True, False, 5), FlagState(True, False, 15))
    engine = sa.create_engine(app_db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pct FROM toggles WHERE flag_key = 'checkout'")).scalar_one() == 15
    engine.dispose()


def test_url_from_an_environment_variable_that_is_not_set_is_reported_by_name() -> None:
    config = SqlFlagConfig.model_validate({"type": "sql", "databases": {"production": {"url_env": "OPSBOT_TEST_FLAGS_UNSET"}}})
    with pytest.raises(Unavailable, match="OPSBOT_TEST_FLAGS_UNSET is not set"):
        SqlFlagProvider(config, environ={}).state("x", "production")


def test_url_from_an_environment_variable(app_db_url: str) -> None:
    create_flag_table(app_db_url, ROWS)
    config = SqlFlagConfig.model_validate({"type": "sql", "databases": {"production": {"url_env": "APP_DB"}}})
    assert SqlFlagProvider(config, environ={"APP_DB": app_db_url}).state("payments.3ds", "production") == FlagState(
        False, False, 0
    )


def test_unreachable_postgresql_is_unavailable() -> None:
    flags = provider_for(f"postgresql://postgres@127.0.0.1:{closed_port()}/app")
    with pytest.raises(Unavailable, match="The production flag database is unreachable"):
        flags.state("x", "production")


def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    flags = provider_for(f"sqlite:///{tmp_path / 'missing-dir' / 'app.db'}")
    with pytest.raises(Unavailable):
        flags.state("x", "production")


def test_missing_table_is_a_plain_error_naming_it(app_db_url: str) -> None:
    sa.create_engine(app_db_url).connect().close()
    with pytest.raises(OpsError, match="flag table cannot be used"):
        provider_for(app_db_url).state("x", "production")


def test_a_row_locked_by_the_application_times_out_and_nothing_changes(app_db_url: str) -> None:
    create_flag_table(app_db_url, ROWS)
    flags = provider_for(app_db_url)
    engine = sa.create_engine(app_db_url, connect_args={"timeout": 0} if app_db_url.startswith("sqlite") else {})
    holding, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.connect() as conn:
            if app_db_url.startswith("sqlite"):
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                conn.begin()
                conn.execute(sa.text("SELECT * FROM feature_flags WHERE name = 'checkout.new-flow' FOR UPDATE"))
            holding.set()
            release.wait(10)
            conn.rollback()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    holding.wait(5)
    try:  # without the timeout, the write would wait for the holder and then succeed
        with pytest.raises(Unavailable, match="production flag database"):
            flags.compare_and_set("checkout.new-flow", "production", FlagState(True, False, 30), FlagState(True, True, 30))
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert flag_row(app_db_url, "checkout.new-flow") == (True, False, 30)


def test_demo_seeding_creates_and_fills_the_table_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    flags = provider_for(url, seed_demo_flags=True)
    assert "checkout.new-flow" in flags.names("production")
    flags.compare_and_set(
        "checkout.new-flow", "production", flags.state("checkout.new-flow", "production"), FlagState(True, True, 30)
    )  # type: ignore[arg-type]
    again = provider_for(url, seed_demo_flags=True)
    assert again.state("checkout.new-flow", "production") == FlagState(True, True, 30)
