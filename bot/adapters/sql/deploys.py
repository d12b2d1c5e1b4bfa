"""Deploy records and ad-hoc freezes in SQL, inside a unit of work. State changes are compare-and-set updates on the row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, utc, utc_or_none
from bot.adapters.sql.tables import deploy_freezes, deploys
from bot.domain.deploys.model import LIVE, RAN, Deploy, DeployKind, DeployState, Freeze
from bot.domain.deploys.ports import TargetBusy

TIMES = ("requested_at", "approved_at", "started_at", "finished_at", "heartbeat_at", "provider_started_at", "ci_checked_at")


def _deploy(row: Any) -> Deploy:
    data = dict(row._mapping)
    data.update({key: utc_or_none(data[key]) for key in TIMES})
    data["kind"] = DeployKind(data["kind"])
    data["state"] = DeployState(data["state"])
    data["approvers"] = json.loads(data["approvers"])
    return Deploy(**data)


def _columns(changes: dict[str, Any]) -> dict[str, Any]:
    values = dict(changes)
    if "approvers" in values:
        values["approvers"] = json.dumps(list(values["approvers"]))
    for key in ("state", "kind"):
        if key in values:
            values[key] = str(values[key].value)
    for key in ("detail", "output_tail", "ci_summary"):
        if isinstance(values.get(key), str):
            values[key] = values[key][:4000]
    return values


def _freeze(row: Any) -> Freeze:
    return Freeze(row.id, row.scope, row.target, row.reason, row.created_by, utc(row.created_at), utc(row.ends_at))


class SqlDeployRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @guard_db
    def create(self, deploy: Deploy) -> None:
        values = _columns({**deploy.__dict__})
        try:
            with self._conn.begin_nested():
                self._conn.execute(deploys.insert().values(**values))
        except IntegrityError:
            # uq_deploys_live_target: another deploy of this target is not over (it slipped in at the same moment).
            raise TargetBusy(deploy.service, deploy.environment, self.live(deploy.service, deploy.environment)) from None

    @guard_db
    def live(self, service: str, environment: str) -> Deploy | None:
        query = sa.select(deploys).where(
            deploys.c.service == service, deploys.c.environment == environment, deploys.c.state.in_([s.value for s in LIVE])
        )
        row = self._conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def beat(self, deploy_id: str, at: datetime) -> Deploy | None:
        """Record a running deploy's heartbeat; the row as it is now (None when it is no longer running)."""
        self._conn.execute(
            deploys.update()
            .where(deploys.c.id == deploy_id, deploys.c.state == DeployState.RUNNING.value)
            .values(heartbeat_at=at)
        )
        row = self._conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id)).first()
        return None if row is None or row.state != DeployState.RUNNING.value else _deploy(row)

    @guard_db
    def stale_runs(self, before: datetime) -> list[Deploy]:
        """Running deploys whose last heartbeat (or start) is older than ``before``: nothing is running them."""
        last_sign = sa.func.coalesce(deploys.c.heartbeat_at, deploys.c.started_at, deploys.c.approved_at)
        query = sa.select(deploys).where(deploys.c.state == DeployState.RUNNING.value, last_sign < before).order_by(deploys.c.id)
        return [_deploy(row) for row in self._conn.execute(query)]

    @guard_db
    def waiting_to_start(self, before: datetime) -> list[Deploy]:
        """Approved deploys that have not started since before ``before``."""
        query = sa.select(deploys).where(deploys.c.state == DeployState.APPROVED.value, deploys.c.approved_at < before)
        return [_deploy(row) for row in self._conn.execute(query.order_by(deploys.c.id))]

    @guard_db
    def finished_since(self, since: datetime) -> list[Deploy]:
        """Deploys and rollbacks that ended after ``since`` (their locks may still need releasing)."""
        query = sa.select(deploys).where(
            deploys.c.state.not_in([s.value for s in LIVE]), deploys.c.finished_at >= since, deploys.c.lock_token.is_not(None)
        )
        return [_deploy(row) for row in self._conn.execute(query.order_by(deploys.c.id))]

    @guard_db
    def get(self, deploy_id: str) -> Deploy | None:
        row = self._conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id[:16])).first()
        return None if row is None else _deploy(row)

    @guard_db
    def waiting_for_ci(self) -> list[Deploy]:
        query = sa.select(deploys).where(
            deploys.c.state.in_([DeployState.REQUESTED.value, DeployState.APPROVED.value]), deploys.c.ci_state == "pending"
        )
        return [_deploy(row) for row in self._conn.execute(query.order_by(deploys.c.requested_at))]

    @guard_db
    def transition(self, deploy_id: str, allowed: frozenset[DeployState], to: DeployState, **changes: Any) -> Deploy | None:
        result = self._conn.execute(
            deploys.update()
            .where(deploys.c.id == deploy_id, deploys.c.state.in_([s.value for s in allowed]))
            .values(**_columns({**changes, "state": to}))
        )
        if result.rowcount != 1:
            return None
        return _deploy(self._conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id)).one())

    @guard_db
    def claim_provider_start(self, deploy_id: str, run_started_at: datetime, at: datetime) -> bool:
        result = self._conn.execute(
            deploys.update()
            .where(
                deploys.c.id == deploy_id,
                deploys.c.state == DeployState.RUNNING.value,
                deploys.c.started_at == run_started_at,
                deploys.c.provider_started_at.is_(None),
            )
            .values(provider_started_at=at)
        )
        return result.rowcount == 1

    @guard_db
    def requeue_unstarted(self, deploy_id: str) -> Deploy | None:
        result = self._conn.execute(
            deploys.update()
            .where(
                deploys.c.id == deploy_id,
                deploys.c.state == DeployState.RUNNING.value,
                deploys.c.provider_started_at.is_(None),
            )
            .values(state=DeployState.APPROVED.value, heartbeat_at=None)
        )
        if result.rowcount != 1:
            return None
        return _deploy(self._conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id)).one())

    @guard_db
    def update(self, deploy_id: str, **changes: Any) -> None:
        self._conn.execute(deploys.update().where(deploys.c.id == deploy_id).values(**_columns(changes)))

    @guard_db
    def history(self, service: str | None, environment: str | None, limit: int) -> list[Deploy]:
        query = sa.select(deploys).order_by(deploys.c.requested_at.desc(), deploys.c.id).limit(limit)
        if service:
            query = query.where(deploys.c.service == service)
        if environment:
            query = query.where(deploys.c.environment == environment)
        return [_deploy(row) for row in self._conn.execute(query)]

    @guard_db
    def last_ran(self, service: str, environment: str) -> Deploy | None:
        query = (
            sa.select(deploys)
            .where(
                deploys.c.service == service,
                deploys.c.environment == environment,
                deploys.c.state.in_([s.value for s in RAN]),
                deploys.c.started_at.is_not(None),
            )
            .order_by(deploys.c.started_at.desc())
            .limit(1)
        )
        row = self._conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def last_of_version(self, service: str, environment: str, version: str) -> Deploy | None:
        query = (
            sa.select(deploys)
            .where(
                deploys.c.service == service,
                deploys.c.environment == environment,
                deploys.c.version == version,
                deploys.c.started_at.is_not(None),
            )
            .order_by(deploys.c.started_at.desc(), deploys.c.id)
            .limit(1)
        )
        row = self._conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def last_good(self, service: str, environment: str, *, before: datetime, other_than: str) -> Deploy | None:
        query = (
            sa.select(deploys)
            .where(
                deploys.c.service == service,
                deploys.c.environment == environment,
                deploys.c.state == DeployState.SUCCEEDED.value,
                deploys.c.started_at < before,
                deploys.c.version != other_than,
            )
            .order_by(deploys.c.started_at.desc())
            .limit(1)
        )
        row = self._conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def abandon_older(self, lock_name: str, fence: int, now: datetime) -> list[Deploy]:
        # A running deploy is never abandoned this way: its run (or the reconciler) ends it.
        live = [DeployState.REQUESTED.value, DeployState.APPROVED.value]
        stale = sa.and_(deploys.c.lock_name == lock_name, deploys.c.state.in_(live), deploys.c.lock_fence < fence)
        ids = [row.id for row in self._conn.execute(sa.select(deploys.c.id).where(stale))]
        if not ids:
            return []
        self._conn.execute(
            deploys.update()
            .where(stale, deploys.c.id.in_(ids))
            .values(
                state=DeployState.LOCK_LOST.value,
                finished_at=now,
                detail="its deploy lock expired or was broken before it recorded a result",
            )
        )
        return [_deploy(row) for row in self._conn.execute(sa.select(deploys).where(deploys.c.id.in_(ids)))]

    @guard_db
    def add_freeze(
        self, scope: str, target: str, reason: str, created_by: str, created_at: datetime, ends_at: datetime
    ) -> Freeze:
        result = self._conn.execute(
            deploy_freezes.insert().values(
                scope=scope,
                target=target,
                reason=reason,
                created_by=created_by,
                created_at=created_at,
                ends_at=ends_at,
            )
        )
        new_id = result.inserted_primary_key[0]  # type: ignore[index]
        return _freeze(self._conn.execute(sa.select(deploy_freezes).where(deploy_freezes.c.id == new_id)).one())

    @guard_db
    def active_freezes(self, now: datetime) -> list[Freeze]:
        query = sa.select(deploy_freezes).where(deploy_freezes.c.ends_at > now).order_by(deploy_freezes.c.ends_at)
        return [_freeze(row) for row in self._conn.execute(query)]

    @guard_db
    def lift_freezes(self, scope: str, target: str, now: datetime) -> int:
        result = self._conn.execute(
            deploy_freezes.update()
            .where(
                deploy_freezes.c.scope == scope,
                deploy_freezes.c.target == target,
                deploy_freezes.c.ends_at > now,
            )
            .values(ends_at=now)
        )
        return int(result.rowcount)
