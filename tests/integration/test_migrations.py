"""Migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import bot.adapters.sql.tables  # noqa: F401 - declares every table
from bot.adapters.sql.engine import create_db_engine, metadata, pending_migrations


def test_migrated_schema_matches_the_declared_tables(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert pending_migrations(engine) == set()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
