"""opsbot's record of flag changes, in its own database, inside a unit of work; one head row per flag and environment is the lock.

``lock_head`` locks the head row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes writers
with BEGIN IMMEDIATE) until the unit of work ends, so two opsbot users changing the same flag at
once take turns and the later one sees the earlier one's change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.adapters.sql.engine import guard_db, utc
from bot.adapters.sql.tables import flag_changes, flag_heads
from bot.domain.flags.model import FlagChange, FlagState


def _change(row: Any) -> FlagChange:
    before = None
    if row.before_enabled is not None:
        before = FlagState(bool(row.before_enabled), bool(row.before_killed), row.before_rollout)
    return FlagChange(
        id=row.id,
        provider=row.provider,
        flag=row.flag,
        environment=row.environment,
        action=row.action,
        actor=row.actor,
        reason=row.reason,
        before=before,
        after=FlagState(bool(row.after_enabled), bool(row.after_killed), row.after_rollout),
        at=utc(row.at),
        approved_by=tuple(v for v in row.approved_by.split(",") if v),
        message_channel=row.message_channel,
        message_ts=row.message_ts,
    )


def _values(change: FlagChange) -> dict[str, Any]:
    before = change.before
    return {
        "id": change.id,
        "provider": change.provider,
        "flag": change.flag,
        "environment": change.environment,
        "action": change.action,
        "actor": change.actor,
        "reason": change.reason,
        "approved_by": ",".join(change.approved_by),
        "before_enabled": before.enabled if before else None,
        "before_killed": before.killed if before else None,
        "before_rollout": before.rollout if before else None,
        "after_enabled": change.after.enabled,
        "after_killed": change.after.killed,
        "after_rollout": change.after.rollout,
        "at": change.at,
        "message_channel": change.message_channel,
        "message_ts": change.message_ts,
    }


class SqlFlagHistoryRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @guard_db
    def lock_head(self, provider: str, flag: str, environment: str) -> FlagChange | None:
        key = {"provider": provider, "flag": flag, "environment": environment}
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        self._conn.execute(dialect.insert(flag_heads).values(**key, change_id=None).on_conflict_do_nothing())
        head = self._conn.execute(
            sa.select(flag_heads.c.change_id).where(*(flag_heads.c[k] == v for k, v in key.items())).with_for_update()
        ).one()
        return self.get(head.change_id) if head.change_id else None

    @guard_db
    def add(self, change: FlagChange) -> None:
        key = {"provider": change.provider, "flag": change.flag, "environment": change.environment}
        self._conn.execute(flag_changes.insert().values(**_values(change)))
        self._conn.execute(flag_heads.update().where(*(flag_heads.c[k] == v for k, v in key.items())).values(change_id=change.id))

    @guard_db
    def latest(self, provider: str, flags: Iterable[str]) -> dict[tuple[str, str], FlagChange]:
        names = list(flags)
        if not names:
            return {}
        stmt = (
            sa.select(flag_changes)
            .join(flag_heads, flag_heads.c.change_id == flag_changes.c.id)
            .where(flag_heads.c.provider == provider, flag_heads.c.flag.in_(names))
        )
        return {(r.flag, r.environment): _change(r) for r in self._conn.execute(stmt)}

    @guard_db
    def recent(self, provider: str, flag: str, limit: int = 5) -> list[FlagChange]:
        stmt = (
            sa.select(flag_changes)
            .where(flag_changes.c.provider == provider, flag_changes.c.flag == flag)
            .order_by(flag_changes.c.seq.desc())
            .limit(limit)
        )
        return [_change(r) for r in self._conn.execute(stmt)]

    @guard_db
    def get(self, change_id: str) -> FlagChange | None:
        row = self._conn.execute(sa.select(flag_changes).where(flag_changes.c.id == change_id)).first()
        return None if row is None else _change(row)

    @guard_db
    def attach_message(self, change_id: str, channel: str, ts: str) -> None:
        self._conn.execute(
            flag_changes.update().where(flag_changes.c.id == change_id).values(message_channel=channel, message_ts=ts)
        )
