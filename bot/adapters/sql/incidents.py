"""Incidents and their timelines in SQL, inside a unit of work; a change locks the incident's row first."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, utc, utc_or_none
from bot.adapters.sql.tables import incident_timeline, incidents
from bot.domain.incidents.model import FrozenLock, Incident, Kind, Status, TimelineEntry

JSON_COLUMNS = {"services", "participants", "frozen"}


def _incident(row: Any) -> Incident:
    values = dict(row._mapping)
    for name in ("declared_at", "last_update_at", "next_update_at", "acknowledged_at", "resolved_at"):
        values[name] = utc_or_none(values[name])
    values["services"] = tuple(json.loads(values["services"]))
    values["participants"] = tuple(json.loads(values["participants"]))
    values["frozen"] = tuple(FrozenLock(**lock) for lock in json.loads(values["frozen"]))
    values["status"] = Status(values["status"])
    values["channel_id"] = values["channel_id"] or ""
    return Incident(**values)


def _row(incident: Incident) -> dict[str, Any]:
    names = [column.name for column in incidents.columns if column.name != "id"]
    values = {name: getattr(incident, name) for name in names}
    values["status"] = incident.status.value
    values["services"] = json.dumps(list(incident.services))
    values["participants"] = json.dumps(list(incident.participants))
    values["frozen"] = json.dumps([asdict(lock) for lock in incident.frozen])
    values["channel_id"] = incident.channel_id or None  # NULL until the channel exists: unique only once set
    values["channel_name"] = incident.channel_name[:80]
    return values


def _entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        row.incident_id,
        utc(row.at),
        Kind(row.kind),
        row.actor,
        row.text,
        row.link,
        row.key,
        json.loads(row.data),
        row.public_text or "",
    )


class SqlIncidentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @guard_db
    def create(self, incident: Incident) -> Incident:
        result = self._conn.execute(incidents.insert().values(**_row(incident)))
        new_id = result.inserted_primary_key[0]  # type: ignore[index]
        return replace(incident, id=int(new_id))

    @guard_db
    def discard(self, incident_id: int) -> None:
        self._conn.execute(incident_timeline.delete().where(incident_timeline.c.incident_id == incident_id))
        self._conn.execute(incidents.delete().where(incidents.c.id == incident_id))

    @guard_db
    def get(self, incident_id: int) -> Incident | None:
        row = self._conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
        return None if row is None else _incident(row)

    @guard_db
    def get_for_update(self, incident_id: int) -> Incident | None:
        # The row lock serializes changes to one incident (SQLite: BEGIN IMMEDIATE does).
        row = self._conn.execute(sa.select(incidents).where(incidents.c.id == incident_id).with_for_update()).first()
        return None if row is None else _incident(row)

    @guard_db
    def save(self, incident: Incident) -> None:
        self._conn.execute(incidents.update().where(incidents.c.id == incident.id).values(**_row(incident)))

    @guard_db
    def by_channel(self, channel_id: str) -> Incident | None:
        row = self._conn.execute(sa.select(incidents).where(incidents.c.channel_id == channel_id)).first()
        return None if row is None else _incident(row)

    @guard_db
    def open_incidents(self) -> list[Incident]:
        rows = self._conn.execute(
            sa.select(incidents).where(incidents.c.status != Status.RESOLVED.value).order_by(incidents.c.id)
        )
        return [_incident(row) for row in rows]

    @guard_db
    def resolved_since(self, since: datetime) -> list[Incident]:
        rows = self._conn.execute(
            sa.select(incidents)
            .where(incidents.c.status == Status.RESOLVED.value, incidents.c.resolved_at >= since)
            .order_by(incidents.c.resolved_at.desc(), incidents.c.id.desc())
        )
        return [_incident(row) for row in rows]

    @guard_db
    def append(self, entry: TimelineEntry) -> bool:
        values = dict(
            incident_id=entry.incident_id,
            at=entry.at,
            kind=entry.kind.value,
            actor=entry.actor[:64],
            text=entry.text,
            link=entry.link,
            key=entry.key[:200] if entry.key else None,
            data=json.dumps(entry.data),
            public_text=entry.public or None,
        )
        try:
            # A savepoint: a duplicate key must not abort the rest of the unit of work (PostgreSQL would).
            with self._conn.begin_nested():
                self._conn.execute(incident_timeline.insert().values(**values))
        except IntegrityError:
            return False  # this key is already on the timeline (an event retry, a second reaction)
        return True

    @guard_db
    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        rows = self._conn.execute(
            sa.select(incident_timeline)
            .where(incident_timeline.c.incident_id == incident_id)
            .order_by(incident_timeline.c.at, incident_timeline.c.id)
        )
        return [_entry(row) for row in rows]
