"""The runbook's flag table, ``feature_flags(name, enabled, kill_switch, rollout_percentage)``, in any SQLAlchemy database.

Each environment's table lives in that environment's application database, named in the ops
config by an environment variable (``url_env``) or, when it holds no secret, by URL. Table and
column names come from the config (validated as plain identifiers and quoted by SQLAlchemy);
every value is a bound parameter. A change is one conditional UPDATE: it writes only if the row
still holds the values we read (compare-and-set), so nobody's change is overwritten unseen.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from bot.adapters.sql.engine import normalize_url
from bot.config import SqlFlagProvider as SqlFlagConfig
from bot.domain.flags.model import FlagState
from bot.domain.shared.errors import OpsError, Unavailable

NAMES_LIMIT = 5000
DEMO_FLAGS = {
    # name: (enabled, kill_switch, rollout_percentage) in staging, then in every other environment
    "checkout.new-flow": ((True, False, 100), (True, False, 30)),
    "search.semantic": ((True, False, 100), (True, False, 10)),
    "payments.3ds-v2": ((True, False, 100), (False, False, 0)),
    "recommendations.carousel": ((True, False, 100), (True, False, 100)),
}


class SqlFlagProvider:
    """Flags in SQL tables, one database per environment; engines are made on first use."""

    kind = "sql"
    kill_switch = True

    def __init__(self, config: SqlFlagConfig, environ: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._environ = environ if environ is not None else os.environ
        self._engines: dict[tuple[str, str], Engine] = {}
        c = config.columns
        self._table = sa.table(
            config.table,
            sa.column(c.name, sa.String),
            sa.column(c.enabled, sa.Boolean),
            sa.column(c.kill_switch, sa.Boolean),
            sa.column(c.rollout_percentage, sa.Integer),
            schema=config.table_schema,
        )
        self._cols = (
            self._table.c[c.name],
            self._table.c[c.enabled],
            self._table.c[c.kill_switch],
            self._table.c[c.rollout_percentage],
        )

    # ----- reading -----
    def state(self, name: str, environment: str) -> FlagState | None:
        name_col = self._cols[0]
        with self._connect(environment) as conn:
            row = conn.execute(sa.select(*self._cols).where(name_col == name)).first()
        return None if row is None else _state(row)

    def names(self, environment: str) -> list[str]:
        name_col = self._cols[0]
        with self._connect(environment) as conn:
            return [r[0] for r in conn.execute(sa.select(name_col).order_by(name_col).limit(NAMES_LIMIT))]

    def list_flags(self, environments: list[str], contains: str | None, limit: int) -> dict[str, dict[str, FlagState]]:
        name_col = self._cols[0]
        stmt = sa.select(*self._cols).order_by(name_col).limit(limit)
        if contains:
            stmt = stmt.where(sa.func.lower(name_col).contains(contains.lower(), autoescape=True))
        found: dict[str, dict[str, FlagState]] = {}
        for env in environments:
            with self._connect(env) as conn:
                for row in conn.execute(stmt):
                    found.setdefault(row[0], {})[env] = _state(row)
        return {name: found[name] for name in sorted(found)[:limit]}

    # ----- writing -----
    def compare_and_set(self, name: str, environment: str, expected: FlagState, new: FlagState) -> bool:
        name_col, enabled, killed, rollout = self._cols
        changes: dict[str, Any] = {}
        if new.enabled != expected.enabled:
            changes[enabled.name] = new.enabled
        if new.killed != expected.killed:
            changes[killed.name] = new.killed
        if new.rollout != expected.rollout:
            changes[rollout.name] = new.rollout
        # NULLs read as off / not killed / no percentage: compare them the same way here.
        still = [
            name_col == name,
            sa.func.coalesce(enabled, False) == expected.enabled,
            sa.func.coalesce(killed, False) == expected.killed,
            rollout.is_not_distinct_from(expected.rollout),
        ]
        with self._connect(environment, write=True) as conn:
            if not changes:
                return conn.execute(sa.select(name_col).where(*still)).first() is not None
            result = conn.execute(sa.update(self._table).where(*still).values(**changes))
            return result.rowcount > 0

    # ----- plumbing -----
    @contextlib.contextmanager
    def _connect(self, environment: str, write: bool = False) -> Iterator[sa.Connection]:
        engine = self._engine(environment)
        try:
            with engine.begin() if write else engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise _translate(exc, environment) from None
        except SQLAlchemyError as exc:
            raise OpsError(f"The {environment} flag table cannot be used: {_first_line(exc)}") from None

    def _engine(self, environment: str) -> Engine:
        database = self._config.databases.get(environment)
        if database is None:
            raise OpsError(f"No flag database is configured for `{environment}` (flags.provider.databases).")
        url = database.url or self._environ.get(database.url_env or "", "")
        if not url:
            raise Unavailable(f"The {environment} flag database", f"the environment variable {database.url_env} is not set")
        key = (environment, url)
        if key not in self._engines:
            self._engines[key] = self._create_engine(url, environment)
        return self._engines[key]

    def _create_engine(self, url: str, environment: str) -> Engine:
        seconds = self._config.timeout_seconds
        try:
            url = normalize_url(url)
            if url.startswith("sqlite"):
                engine = sa.create_engine(url, connect_args={"timeout": seconds, "check_same_thread": False})
            else:
                ms = int(seconds * 1000)
                # A locked row or a slow server must not hold a kill hostage: give up after the timeout.
                options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
                engine = sa.create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=2,
                    max_overflow=4,
                    connect_args={"connect_timeout": max(1, math.ceil(seconds)), "options": options},
                )
        except (ArgumentError, ImportError, ValueError) as exc:
            raise OpsError(f"The {environment} flag database URL is not usable: {_first_line(exc)}") from None
        if self._config.seed_demo_flags:
            self._seed(engine, environment)
        return engine

    def _seed(self, engine: Engine, environment: str) -> None:
        """The console demo's flags: create the table when missing and fill it when empty (explicitly configured)."""
        c = self._config.columns
        demo = sa.Table(
            self._config.table,
            sa.MetaData(schema=self._config.table_schema),
            sa.Column(c.name, sa.String(100), primary_key=True),
            sa.Column(c.enabled, sa.Boolean, nullable=False, default=False),
            sa.Column(c.kill_switch, sa.Boolean, nullable=False, default=False),
            sa.Column(c.rollout_percentage, sa.Integer, nullable=True, default=100),
        )
        try:
            with engine.begin() as conn:
                demo.create(conn, checkfirst=True)
                if conn.execute(sa.select(sa.func.count()).select_from(demo)).scalar_one() == 0:
                    pick = 0 if environment == "staging" else 1
                    conn.execute(
                        demo.insert(),
                        [
                            {
                                c.name: name,
                                c.enabled: values[pick][0],
                                c.kill_switch: values[pick][1],
                                c.rollout_percentage: values[pick][2],
                            }
                            for name, values in DEMO_FLAGS.items()
                        ],
                    )
        except DBAPIError as exc:
            raise _translate(exc, environment) from None


def _state(row: Any) -> FlagState:
    _, enabled, killed, rollout = row
    return FlagState(enabled=bool(enabled), killed=bool(killed), rollout=None if rollout is None else int(rollout))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:160]


def _translate(exc: DBAPIError, environment: str) -> OpsError:
    """Connection trouble and timeouts are Unavailable; a missing table or column is a plain error naming it."""
    reason = _first_line(exc)
    if isinstance(exc, sa.exc.ProgrammingError) or "no such table" in reason or "no such column" in reason:
        return OpsError(f"The {environment} flag table cannot be used: {reason}")
    return Unavailable(f"The {environment} flag database", reason)
