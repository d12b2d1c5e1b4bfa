"""The SQL unit of work: one connection and one transaction, with every repository and the outbox bound to it.

It satisfies each family's unit-of-work port (``ApprovalsUnitOfWork``, ``DeploysUnitOfWork``,
``IncidentsUnitOfWork``, ``FlagsUnitOfWork``, ``AlertsUnitOfWork``): a family sees only the repositories its port names.
On ``commit`` the transaction commits, the after-commit actions run, and the effects this unit of work
recorded are delivered at once; those that could not be are in ``pending`` and retried by `opsbot worker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Protocol

from sqlalchemy.engine import Connection, Engine, RootTransaction

from bot.adapters.sql.alert_groups import SqlAlertGroupRepository
from bot.adapters.sql.approvals import SqlApprovalRepository
from bot.adapters.sql.deploys import SqlDeployRepository
from bot.adapters.sql.engine import guard_db
from bot.adapters.sql.flag_history import SqlFlagHistoryRepository
from bot.adapters.sql.incidents import SqlIncidentRepository
from bot.adapters.sql.outbox import SqlOutbox
from bot.domain.shared.ports import Clock, Pending
from bot.render import Renderer

log = logging.getLogger("opsbot.uow")


class Deliverer(Protocol):
    """Delivers recorded effects right after their unit of work commits (``bot.adapters.outbox_delivery``)."""

    def deliver(self, ids: list[int]) -> list[Pending]: ...


@dataclass(frozen=True)
class EffectSettings:
    """How recorded effects are rendered and delivered: the renderer, the clock, their deadline, the deliverer."""

    renderer: Renderer
    clock: Clock
    deadline: timedelta
    delivery: Deliverer


class SqlUnitOfWork:
    """``with SqlUnitOfWork(engine, effects) as uow: …; uow.commit()``; leaving without commit rolls back.

    Without ``effects`` (tools and tests that only read or write rows) the outbox cannot be used.

    Raises ``Unavailable`` when the database cannot be reached (on entry, any statement, or commit).
    """

    def __init__(self, engine: Engine, effects: EffectSettings | None = None) -> None:
        self._engine = engine
        self._effects = effects
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._outbox: SqlOutbox | None = None
        self._after: list[Callable[[], None]] = []
        self._pending: list[Pending] = []

    @guard_db
    def __enter__(self) -> SqlUnitOfWork:
        self._conn = self._engine.connect()
        try:
            self._tx = self._conn.begin()
        except Exception:
            self._conn.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        except Exception:  # the connection is gone: closing it below returns it to the pool invalidated
            pass
        finally:
            self._conn.close()
            self._conn = self._tx = None

    @guard_db
    def _commit_transaction(self) -> None:
        assert self._tx is not None
        self._tx.commit()

    def commit(self) -> None:
        self._commit_transaction()
        for action in self._after:
            try:
                action()
            except Exception:  # the change is committed; what follows it must not undo the answer
                log.exception("an after-commit action failed")
        recorded = self._outbox.recorded if self._outbox is not None else []
        if recorded and self._effects is not None:
            try:
                self._pending = self._effects.delivery.deliver(recorded)
            except Exception:  # the database went away between commit and delivery: `opsbot worker` delivers them
                log.exception("could not deliver effects %s right after commit; the worker retries them", recorded)
                now = self._effects.clock.now()
                self._pending = [Pending("effect", str(i), "the database", "delivery deferred", now) for i in recorded]

    @property
    def pending(self) -> list[Pending]:
        return list(self._pending)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    @property
    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work in a `with` block")
        return self._conn

    @property
    def outbox(self) -> SqlOutbox:
        if self._outbox is None:
            e = self._effects
            if e is None:
                raise RuntimeError("this unit of work was built without effect settings: it cannot record effects")
            self._outbox = SqlOutbox(self._connection, e.renderer, e.clock, e.deadline)
        return self._outbox

    @property
    def approvals(self) -> SqlApprovalRepository:
        return SqlApprovalRepository(self._connection)

    @property
    def deploys(self) -> SqlDeployRepository:
        return SqlDeployRepository(self._connection)

    @property
    def incidents(self) -> SqlIncidentRepository:
        return SqlIncidentRepository(self._connection)

    @property
    def flag_history(self) -> SqlFlagHistoryRepository:
        return SqlFlagHistoryRepository(self._connection)

    @property
    def alert_groups(self) -> SqlAlertGroupRepository:
        return SqlAlertGroupRepository(self._connection)
