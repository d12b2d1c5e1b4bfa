"""Leases in SQL: one holder at a time for a name ("reconciler"), for a while, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db
from bot.adapters.sql.tables import leases
from bot.domain.shared.ports import Clock


class SqlLeases:
    """``take(name, holder, seconds)``: True while ``holder`` holds ``name``; a lease not renewed runs out."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    @guard_db
    def take(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew ``name`` for ``seconds`` if it is free, ran out, or is already ``holder``'s."""
        now = self._clock.now()
        until = now + timedelta(seconds=seconds)
        with self._engine.begin() as conn:
            taken = conn.execute(
                leases.update()
                .where(leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.expires_at < now))
                .values(holder=holder, expires_at=until)
            )
            if taken.rowcount == 1:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(leases.insert().values(name=name, holder=holder, expires_at=until))
            except IntegrityError:
                return False  # someone else holds it
        return True

    @guard_db
    def give_up(self, name: str, holder: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))
