"""Alertmanager's alert groups in SQL, inside a unit of work; notifications of one group lock its row first."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.adapters.sql.engine import guard_db, utc, utc_or_none
from bot.adapters.sql.tables import alert_groups
from bot.domain.alerts.model import Alert, AlertGroup, GroupStatus, Silence


def key_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


def _alert(data: dict[str, Any]) -> Alert:
    ends = data.get("ends_at")
    return Alert(
        status=GroupStatus(data["status"]),
        labels=data["labels"],
        annotations=data["annotations"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        ends_at=datetime.fromisoformat(ends) if ends else None,
        fingerprint=data["fingerprint"],
        generator_url=data.get("generator_url", ""),
    )


def _group(row: Any) -> AlertGroup:
    data = json.loads(row.data)
    silence = None
    if row.silence_id and row.silenced_by and row.silenced_until is not None:
        silence = Silence(row.silence_id, row.silenced_by, utc(row.silenced_until))
    return AlertGroup(
        id=row.id,
        group_key=row.group_key,
        receiver=row.receiver,
        status=GroupStatus(row.status),
        group_labels=data["group_labels"],
        common_labels=data["common_labels"],
        common_annotations=data["common_annotations"],
        external_url=data["external_url"],
        alerts=tuple(_alert(a) for a in data["alerts"]),
        truncated_alerts=int(data.get("truncated_alerts", 0)),
        first_seen_at=utc(row.first_seen_at),
        updated_at=utc(row.updated_at),
        episode=row.episode,
        notifications=row.notifications,
        silence=silence,
        resolved_at=utc_or_none(row.resolved_at),
    )


def _row(group: AlertGroup) -> dict[str, Any]:
    data = {
        "group_labels": group.group_labels,
        "common_labels": group.common_labels,
        "common_annotations": group.common_annotations,
        "external_url": group.external_url,
        "truncated_alerts": group.truncated_alerts,
        "alerts": [
            {
                "status": a.status.value,
                "labels": a.labels,
                "annotations": a.annotations,
                "starts_at": a.starts_at.isoformat(),
                "ends_at": a.ends_at.isoformat() if a.ends_at else None,
                "fingerprint": a.fingerprint,
                "generator_url": a.generator_url,
            }
            for a in group.alerts
        ],
    }
    silence = group.silence
    return {
        "key_hash": key_hash(group.group_key),
        "group_key": group.group_key,
        "receiver": group.receiver[:200],
        "status": group.status.value,
        "episode": group.episode,
        "notifications": group.notifications,
        "data": json.dumps(data),
        "first_seen_at": group.first_seen_at,
        "updated_at": group.updated_at,
        "resolved_at": group.resolved_at,
        "silence_id": silence.id[:64] if silence else None,
        "silenced_by": silence.by[:32] if silence else None,
        "silenced_until": silence.until if silence else None,
    }


class SqlAlertGroupRepository:
    """The ``AlertGroupRepository`` port on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @guard_db
    def get(self, group_id: str) -> AlertGroup | None:
        row = self._conn.execute(sa.select(alert_groups).where(alert_groups.c.id == group_id)).first()
        return None if row is None else _group(row)

    @guard_db
    def get_for_update(self, group_id: str) -> AlertGroup | None:
        query = sa.select(alert_groups).where(alert_groups.c.id == group_id).with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _group(row)

    @guard_db
    def by_key_for_update(self, group_key: str) -> AlertGroup | None:
        query = sa.select(alert_groups).where(alert_groups.c.key_hash == key_hash(group_key)).with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _group(row)

    @guard_db
    def add(self, group: AlertGroup) -> None:
        # ON CONFLICT DO NOTHING: a concurrent first notification of the same group waits for the other's commit,
        # then inserts nothing (a plain INSERT would fail the transaction on PostgreSQL).
        values = {"id": group.id, **_row(group)}
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        self._conn.execute(insert(alert_groups).values(**values).on_conflict_do_nothing(index_elements=["key_hash"]))

    @guard_db
    def save(self, group: AlertGroup) -> None:
        self._conn.execute(alert_groups.update().where(alert_groups.c.id == group.id).values(**_row(group)))
