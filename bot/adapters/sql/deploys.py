"""Deploy records and ad-hoc freezes in SQL. State changes are compare-and-set updates on the row."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.adapters.sql.engine import guard_db, metadata
from bot.domain.deploys.ports import HOLDS_LOCK, RAN, Deploy, DeployKind, DeployState, Freeze

deploys = sa.Table(
    "deploys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("environment", sa.String(64), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("previous_version", sa.String(128), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("requester", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("hotfix", sa.Boolean, nullable=False),
    sa.Column("approval_id", sa.String(32), nullable=True),
    sa.Column("approvers", sa.Text, nullable=False),
    sa.Column("lock_name", sa.String(200), nullable=False),
    sa.Column("lock_token", sa.String(64), nullable=True),
    sa.Column("lock_fence", sa.BigInteger, nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("output_tail", sa.Text, nullable=True),
    sa.Column("rollback_of", sa.String(16), nullable=True),
    sa.Column("rolled_back_by", sa.String(16), nullable=True),
    sa.Index("ix_deploys_service_environment", "service", "environment"),
)
deploy_freezes = sa.Table(
    "deploy_freezes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

TIMES = ("requested_at", "approved_at", "started_at", "finished_at")


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _deploy(row: Any) -> Deploy:
    data = dict(row._mapping)
    data.update({key: _utc(data[key]) for key in TIMES})
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
    for key in ("detail", "output_tail"):
        if isinstance(values.get(key), str):
            values[key] = values[key][:4000]
    return values


def _freeze(row: Any) -> Freeze:
    return Freeze(row.id, row.scope, row.target, row.reason, row.created_by, _utc(row.created_at), _utc(row.ends_at))  # type: ignore[arg-type]


class SqlDeployStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @guard_db
    def create(self, deploy: Deploy) -> None:
        values = _columns({**deploy.__dict__})
        with self._engine.begin() as conn:
            conn.execute(deploys.insert().values(**values))

    @guard_db
    def get(self, deploy_id: str) -> Deploy | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id[:16])).first()
        return None if row is None else _deploy(row)

    @guard_db
    def transition(self, deploy_id: str, allowed: frozenset[DeployState], to: DeployState, **changes: Any) -> Deploy | None:
        with self._engine.begin() as conn:
            result = conn.execute(
                deploys.update()
                .where(deploys.c.id == deploy_id, deploys.c.state.in_([s.value for s in allowed]))
                .values(**_columns({**changes, "state": to}))
            )
            if result.rowcount != 1:
                return None
            return _deploy(conn.execute(sa.select(deploys).where(deploys.c.id == deploy_id)).one())

    @guard_db
    def update(self, deploy_id: str, **changes: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(deploys.update().where(deploys.c.id == deploy_id).values(**_columns(changes)))

    @guard_db
    def history(self, service: str | None, environment: str | None, limit: int) -> list[Deploy]:
        query = sa.select(deploys).order_by(deploys.c.requested_at.desc(), deploys.c.id).limit(limit)
        if service:
            query = query.where(deploys.c.service == service)
        if environment:
            query = query.where(deploys.c.environment == environment)
        with self._engine.connect() as conn:
            return [_deploy(row) for row in conn.execute(query)]

    @guard_db
    def last_ran(self, service: str, environment: str) -> Deploy | None:
        query = (sa.select(deploys)
                 .where(deploys.c.service == service, deploys.c.environment == environment,
                        deploys.c.state.in_([s.value for s in RAN]), deploys.c.started_at.is_not(None))
                 .order_by(deploys.c.started_at.desc()).limit(1))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def last_good(self, service: str, environment: str, *, before: datetime, other_than: str) -> Deploy | None:
        query = (sa.select(deploys)
                 .where(deploys.c.service == service, deploys.c.environment == environment,
                        deploys.c.state == DeployState.SUCCEEDED.value, deploys.c.started_at < before,
                        deploys.c.version != other_than)
                 .order_by(deploys.c.started_at.desc()).limit(1))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _deploy(row)

    @guard_db
    def abandon_older(self, lock_name: str, fence: int, now: datetime) -> list[Deploy]:
        live = [s.value for s in HOLDS_LOCK]
        stale = sa.and_(deploys.c.lock_name == lock_name, deploys.c.state.in_(live), deploys.c.lock_fence < fence)
        with self._engine.begin() as conn:
            ids = [row.id for row in conn.execute(sa.select(deploys.c.id).where(stale))]
            if not ids:
                return []
            conn.execute(deploys.update().where(stale, deploys.c.id.in_(ids)).values(
                state=DeployState.LOCK_LOST.value, finished_at=now,
                detail="its deploy lock expired or was broken before it recorded a result",
            ))
            return [_deploy(row) for row in conn.execute(sa.select(deploys).where(deploys.c.id.in_(ids)))]

    @guard_db
    def add_freeze(self, scope: str, target: str, reason: str, created_by: str, created_at: datetime, ends_at: datetime) -> Freeze:
        with self._engine.begin() as conn:
            result = conn.execute(deploy_freezes.insert().values(
                scope=scope, target=target, reason=reason, created_by=created_by, created_at=created_at, ends_at=ends_at,
            ))
            new_id = result.inserted_primary_key[0]  # type: ignore[index]
            return _freeze(conn.execute(sa.select(deploy_freezes).where(deploy_freezes.c.id == new_id)).one())

    @guard_db
    def active_freezes(self, now: datetime) -> list[Freeze]:
        query = sa.select(deploy_freezes).where(deploy_freezes.c.ends_at > now).order_by(deploy_freezes.c.ends_at)
        with self._engine.connect() as conn:
            return [_freeze(row) for row in conn.execute(query)]

    @guard_db
    def lift_freezes(self, scope: str, target: str, now: datetime) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(deploy_freezes.update().where(
                deploy_freezes.c.scope == scope, deploy_freezes.c.target == target, deploy_freezes.c.ends_at > now,
            ).values(ends_at=now))
            return int(result.rowcount)
