"""The SQL unit of work: one connection and one transaction, with every repository bound to it.

It satisfies each family's unit-of-work port (``ApprovalsUnitOfWork``, ``DeploysUnitOfWork``,
``IncidentsUnitOfWork``, ``FlagsUnitOfWork``): a family sees only the repositories its port names.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection, Engine, RootTransaction

from bot.adapters.sql.approvals import SqlApprovalRepository
from bot.adapters.sql.deploys import SqlDeployRepository
from bot.adapters.sql.engine import guard_db
from bot.adapters.sql.flag_history import SqlFlagHistoryRepository
from bot.adapters.sql.incidents import SqlIncidentRepository


class SqlUnitOfWork:
    """``with SqlUnitOfWork(engine) as uow: …; uow.commit()``; leaving without commit rolls back.

    Raises ``Unavailable`` when the database cannot be reached (on entry, any statement, or commit).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

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
    def commit(self) -> None:
        assert self._tx is not None
        self._tx.commit()

    @property
    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work in a `with` block")
        return self._conn

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
