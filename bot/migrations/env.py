"""Alembic environment: runs the migrations against the URL opsbot was given."""

from __future__ import annotations

from alembic import context

from bot.adapters.sql.engine import create_db_engine, metadata

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "alembic_config() sets sqlalchemy.url"
    engine = create_db_engine(url)
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
