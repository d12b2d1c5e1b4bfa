"""The SQL database: engines for SQLite and PostgreSQL, the shared metadata, and migrations."""

from __future__ import annotations

import ast
import functools
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from bot.domain.shared.errors import OpsError, Unavailable

if TYPE_CHECKING:  # alembic is imported where it is used: loading it is a tenth of `opsbot console`'s start-up
    from alembic.config import Config

log = logging.getLogger("opsbot.db")

T = TypeVar("T")
SQLITE_NEEDED = (3, 35, 0)  # UPDATE … RETURNING (SQLite's release notes, 3.35.0)
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite returns naive values, which are UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def normalize_url(url: str) -> str:
    """Accept the URL forms operators paste (``postgres://``, ``postgresql://``) and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(url: str) -> Engine:
    """An engine that serializes writers on SQLite and fails fast when PostgreSQL is gone."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < SQLITE_NEEDED:
            raise OpsError(
                f"opsbot needs SQLite {'.'.join(map(str, SQLITE_NEEDED))} or later (the outbox claims an effect with "
                f"UPDATE … RETURNING); this Python's SQLite is {sqlite3.sqlite_version}: use PostgreSQL, or a newer Python"
            )
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _serialize_sqlite(engine)
        return engine
    engine = sa.create_engine(url, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 3})
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle for longer than this is pinged before use (SELECT 1): a database that restarted, or a
# connection a proxy or firewall cut while it sat in the pool, is found there and replaced, not met by the user's
# command. One busy in the last second is used as it is: under load (100s of commands a second) a ping on every
# checkout (``pool_pre_ping``) was a round trip for each of the 10-20 checkouts a command makes (bench/ack_latency.py).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's "pessimistic disconnect handling" recipe with a custom ping (docs.sqlalchemy.org, "Dealing with
    Disconnects"): raising ``DisconnectionError`` in ``checkout`` makes the pool drop that connection and try another
    (up to three times), so a dead connection never reaches the caller."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _fresh(dbapi_connection: Any, record: Any) -> None:  # just made, or just used: known to work
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any driver error: the connection is not usable
            raise DisconnectionError(f"a pooled connection failed its ping ({type(exc).__name__})") from exc


def _serialize_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers the write lock, so two writers can both read the
    # chain head and then collide; BEGIN IMMEDIATE takes the lock up front (SQLAlchemy's recipe).
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A connection for single statements (``single_statements``) opens no transaction: one begun here would never
        # be committed, and closing the connection would roll its statements back.
        if not conn.get_execution_options().get(NO_BEGIN):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


NO_BEGIN = "opsbot_no_begin"  # an execution option: SQLite's begin hook leaves the driver to commit each statement


def single_statements(engine: Engine) -> Engine:
    """The engine, for connections whose every statement commits on its own (each is atomic by itself).

    PostgreSQL: ``isolation_level="AUTOCOMMIT"``. SQLite: its driver already commits each statement unless opsbot's
    begin hook opens a transaction (``_serialize_sqlite``), and ``NO_BEGIN`` keeps it from doing so; SQLAlchemy's
    AUTOCOMMIT there would change the driver's mode on the connection, which would go back to the pool changed.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{NO_BEGIN: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def guard_db(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a lost database into a typed Unavailable the user can read."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            raise Unavailable("The database", _reason(exc)) from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable("The database", "connection lost") from None
            raise

    return wrapper


# What the driver said → what a user may read. The driver's own text names hosts, ports, users and
# database names: it goes to the log, never to Slack.
REASONS = (
    ("connection refused", "connection refused"),
    ("could not connect", "connection refused"),
    ("timeout expired", "timed out"),
    ("timed out", "timed out"),
    ("server closed the connection", "connection lost"),
    ("connection reset", "connection lost"),
    ("terminating connection", "connection lost"),
    ("ssl syscall", "connection lost"),
    ("too many clients", "too many connections"),
    ("authentication failed", "the database refused opsbot's credentials"),
    ("does not exist", "the database was not found"),
    ("database is locked", "the database is busy"),
    ("no such table", "the schema is not migrated"),
    ("the database system is starting up", "the database is starting up"),
    ("the database system is shutting down", "the database is shutting down"),
    ("read-only", "the database is read-only"),
    ("already exists", "its tables exist, but its alembic_version does not say which migration they are at"),
)


def reason_of(exc: DBAPIError) -> str:
    """What a user may read of a driver's error (see ``REASONS``); the driver's own text goes to the log."""
    return _reason(exc)


def _reason(exc: DBAPIError) -> str:
    """A short reason a user may read: no host, port, user or database name (those go to the log)."""
    said = str(exc.orig).strip() if exc.orig else ""
    log.warning("database error: %s", said.splitlines()[0][:300] if said else type(exc).__name__)
    lowered = said.lower()
    return next((reason for phrase, reason in REASONS if phrase in lowered), "unavailable")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (default: the one head of the history).

    Raises ``sqlalchemy.exc.OperationalError`` when the database cannot be reached.
    """
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def pending_migrations(engine: Engine) -> set[str]:
    """Revision ids the database has not applied yet; empty when its schema is at head.

    Works from any starting point: an empty database, one at an older head of the history, or one
    at several branch heads at once (as databases migrated before 0004_merge_families are).
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    applied = {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()
    return {rev.revision for rev in script.walk_revisions()} - applied


_ASSIGNED = re.compile(r"^(revision|down_revision|depends_on)\b[^=\n]*=\s*(.+?)\s*$", re.M)


def head_revisions(versions: Path = MIGRATIONS / "versions") -> frozenset[str] | None:
    """The heads of the migration history (revision ids no other revision builds on), read from the version files'
    ``revision = …`` and ``down_revision = …`` lines without loading alembic. None when a file does not read that
    way or uses ``depends_on``: then only alembic can tell."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name == "__init__.py":
            continue
        found = dict(_ASSIGNED.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
            depends_on = ast.literal_eval(found.get("depends_on", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or depends_on is not None:
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else down or ())
    return frozenset(revisions - parents) or None


def schema_at_head(engine: Engine) -> bool:
    """Whether the database's ``alembic_version`` names exactly the history's heads: nothing to migrate. False when
    it cannot be told (no version table yet, an unreadable history, an unreachable database): ask alembic then."""
    heads = head_revisions()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return len(current) == len(heads) and set(current) == heads


@guard_db
def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
