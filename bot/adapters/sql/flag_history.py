"""opsbot's record of flag changes, in its own database; one head row per flag and environment is the lock.

``record_change`` locks the head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes
writers with BEGIN IMMEDIATE) for the whole read-decide-write, so two opsbot users changing the
same flag at once take turns and the later one sees the earlier one's change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from bot.adapters.sql.engine import guard_db, metadata
from bot.domain.shared.errors import OpsError
from bot.domain.flags.ports import Apply, FlagChange, FlagState

flag_changes = sa.Table(
    "flag_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(16), nullable=False, unique=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("flag", sa.String(100), nullable=False),
    sa.Column("environment", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("approved_by", sa.Text, nullable=False),
    sa.Column("before_enabled", sa.Boolean, nullable=True),
    sa.Column("before_killed", sa.Boolean, nullable=True),
    sa.Column("before_rollout", sa.Integer, nullable=True),
    sa.Column("after_enabled", sa.Boolean, nullable=False),
    sa.Column("after_killed", sa.Boolean, nullable=False),
    sa.Column("after_rollout", sa.Integer, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_channel", sa.String(32), nullable=True),
    sa.Column("message_ts", sa.String(32), nullable=True),
    sa.Index("ix_flag_changes_provider_flag", "provider", "flag"),
)
flag_heads = sa.Table(
    "flag_heads",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("flag", sa.String(100), primary_key=True),
    sa.Column("environment", sa.String(64), primary_key=True),
    sa.Column("change_id", sa.String(16), nullable=True),
)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _change(row: Any) -> FlagChange:
    before = None
    if row.before_enabled is not None:
        before = FlagState(bool(row.before_enabled), bool(row.before_killed), row.before_rollout)
    return FlagChange(
        id=row.id, provider=row.provider, flag=row.flag, environment=row.environment, action=row.action,
        actor=row.actor, reason=row.reason, before=before,
        after=FlagState(bool(row.after_enabled), bool(row.after_killed), row.after_rollout), at=_utc(row.at),
        approved_by=tuple(v for v in row.approved_by.split(",") if v),
        message_channel=row.message_channel, message_ts=row.message_ts,
    )


def _values(change: FlagChange) -> dict[str, Any]:
    before = change.before
    return {
        "id": change.id, "provider": change.provider, "flag": change.flag, "environment": change.environment,
        "action": change.action, "actor": change.actor, "reason": change.reason, "approved_by": ",".join(change.approved_by),
        "before_enabled": before.enabled if before else None, "before_killed": before.killed if before else None,
        "before_rollout": before.rollout if before else None, "after_enabled": change.after.enabled,
        "after_killed": change.after.killed, "after_rollout": change.after.rollout, "at": change.at,
        "message_channel": change.message_channel, "message_ts": change.message_ts,
    }


class SqlFlagHistory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @guard_db
    def record_change(self, provider: str, flag: str, environment: str, apply: Apply) -> FlagChange | None:
        key = {"provider": provider, "flag": flag, "environment": environment}
        with self._engine.begin() as conn:
            self._ensure_head(conn, key)
            head = conn.execute(
                sa.select(flag_heads.c.change_id).where(*(flag_heads.c[k] == v for k, v in key.items())).with_for_update()
            ).one()
            last = self._get(conn, head.change_id) if head.change_id else None
            change = apply(last)
            if change is None:
                return None
            try:
                conn.execute(flag_changes.insert().values(**_values(change)))
                conn.execute(flag_heads.update().where(*(flag_heads.c[k] == v for k, v in key.items())).values(change_id=change.id))
            except DBAPIError as exc:
                # The provider already has the change: say so rather than "nothing was changed".
                raise OpsError(f"The change to `{flag}` in `{environment}` was made, but opsbot's database could not record it "
                               f"({str(exc.orig).strip().splitlines()[0][:120] if exc.orig else type(exc).__name__}).") from None
            return change

    @staticmethod
    def _ensure_head(conn: Connection, key: dict[str, str]) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(flag_heads).values(**key, change_id=None).on_conflict_do_nothing())

    @staticmethod
    def _get(conn: Connection, change_id: str) -> FlagChange | None:
        row = conn.execute(sa.select(flag_changes).where(flag_changes.c.id == change_id)).first()
        return None if row is None else _change(row)

    @guard_db
    def latest(self, provider: str, flags: Iterable[str]) -> dict[tuple[str, str], FlagChange]:
        names = list(flags)
        if not names:
            return {}
        stmt = (sa.select(flag_changes).join(flag_heads, flag_heads.c.change_id == flag_changes.c.id)
                .where(flag_heads.c.provider == provider, flag_heads.c.flag.in_(names)))
        with self._engine.connect() as conn:
            return {(r.flag, r.environment): _change(r) for r in conn.execute(stmt)}

    @guard_db
    def recent(self, provider: str, flag: str, limit: int = 5) -> list[FlagChange]:
        stmt = (sa.select(flag_changes).where(flag_changes.c.provider == provider, flag_changes.c.flag == flag)
                .order_by(flag_changes.c.seq.desc()).limit(limit))
        with self._engine.connect() as conn:
            return [_change(r) for r in conn.execute(stmt)]

    @guard_db
    def get(self, change_id: str) -> FlagChange | None:
        with self._engine.connect() as conn:
            return self._get(conn, change_id)

    @guard_db
    def attach_message(self, change_id: str, channel: str, ts: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(flag_changes.update().where(flag_changes.c.id == change_id).values(message_channel=channel, message_ts=ts))
