"""Migrations build exactly the tables the code declares, on SQLite and PostgreSQL, along one history."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import bot.wiring  # noqa: F401 - imports every adapter, so every table is declared
from bot.adapters.db import (
    alembic_config,
    create_db_engine,
    metadata,
    pending_migrations,
    upgrade,
)

OLD_HEADS = ("0003_deploys", "0003_flags", "0003_incidents")  # the three families before 0004_merge_families


def schema_diff(url: str) -> list[object]:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return list(diff)


def current_heads(url: str) -> set[str]:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads


def test_migrated_schema_matches_the_declared_tables(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert pending_migrations(engine) == set()
    assert schema_diff(db_url) == []


def test_the_history_has_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == ["0004_merge_families"]


def test_an_empty_database_has_every_revision_pending(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    pending = pending_migrations(engine)
    assert {"0001_audit_log", "0002_approvals", *OLD_HEADS, "0004_merge_families"} <= pending


def test_a_database_at_the_three_old_heads_upgrades_to_the_one_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before-merge.db'}"
    for head in OLD_HEADS:
        upgrade(url, head)
    assert current_heads(url) == set(OLD_HEADS)
    assert pending_migrations(create_db_engine(url)) == {"0004_merge_families"}

    upgrade(url)

    assert current_heads(url) == {"0004_merge_families"}
    assert pending_migrations(create_db_engine(url)) == set()
    assert schema_diff(url) == []


def test_a_database_at_one_old_head_gets_the_other_families_on_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deploys-only.db'}"
    upgrade(url, "0003_deploys")
    assert pending_migrations(create_db_engine(url)) == {"0003_flags", "0003_incidents", "0004_merge_families"}

    upgrade(url)

    assert current_heads(url) == {"0004_merge_families"}
    assert schema_diff(url) == []
