"""The "what changed" read (``RecentChanges``): deploys and rollbacks that started, and flag changes opsbot made,
of some services since a moment; one short read-only connection, nothing locked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.adapters.sql.deploys import _deploy
from bot.adapters.sql.engine import guard_db
from bot.adapters.sql.flag_history import _change
from bot.adapters.sql.tables import deploys, flag_changes
from bot.config import OpsConfig
from bot.domain.deploys.model import Deploy, DeployKind
from bot.domain.flags.changes import service_of
from bot.domain.flags.model import FlagChange
from bot.domain.shared.changes import RecentChange

FLAG_ROWS = 500  # flag changes read per look (of every service; those of the asked services are kept)


class SqlRecentChanges:
    def __init__(self, engine: Engine, config: OpsConfig) -> None:
        self._engine = engine
        self._config = config

    @guard_db
    def of(self, services: Sequence[str], since: datetime, limit: int) -> list[RecentChange]:
        wanted = set(services)
        if not wanted:
            return []
        ran = (
            sa.select(deploys)
            .where(deploys.c.service.in_(sorted(wanted)), deploys.c.started_at >= since)
            .order_by(deploys.c.started_at.desc(), deploys.c.id)
            .limit(limit)
        )
        flagged = sa.select(flag_changes).where(flag_changes.c.at >= since).order_by(flag_changes.c.seq.desc()).limit(FLAG_ROWS)
        with self._engine.connect() as conn:
            changes = [_of_deploy(_deploy(row)) for row in conn.execute(ran)]
            for row in conn.execute(flagged):
                flag = _change(row)
                service = service_of(self._config, flag.flag)
                if service in wanted:
                    changes.append(_of_flag(flag, service))
        changes.sort(key=lambda c: c.at, reverse=True)
        return changes[:limit]


def _of_deploy(deploy: Deploy) -> RecentChange:
    assert deploy.started_at is not None  # the query asks for started ones
    was = f" (was {deploy.previous_version})" if deploy.previous_version else ""
    return RecentChange(
        kind="rollback" if deploy.kind is DeployKind.ROLLBACK else "deploy",
        service=deploy.service,
        environment=deploy.environment,
        at=deploy.started_at,
        actor=deploy.requester,
        ref=deploy.id,
        state=deploy.state.value,
        summary=f"{deploy.version}{was}",
        reason=deploy.reason,
    )


def _of_flag(change: FlagChange, service: str) -> RecentChange:
    return RecentChange(
        kind="flag",
        service=service,
        environment=change.environment,
        at=change.at,
        actor=change.actor,
        ref=change.id,
        state=change.action,
        summary=(f"rollout of {change.flag} changed" if change.action == "rollout" else f"{change.flag} {change.verb}")
        + f", now {change.after.label}",
        reason=change.reason,
    )
