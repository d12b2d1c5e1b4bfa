"""Incidents and their timelines in SQL; every change runs under a lock on the incident's row."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.adapters.sql.engine import guard_db, metadata
from bot.domain.shared.errors import NotFound
from bot.domain.incidents.model import FrozenLock, Incident, Kind, Status, TimelineEntry

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("services", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("impact", sa.Text, nullable=False),
    sa.Column("eta", sa.Text, nullable=False),
    sa.Column("declared_by", sa.String(32), nullable=False),
    sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("commander", sa.String(32), nullable=False),
    sa.Column("comms", sa.String(32), nullable=True),
    sa.Column("scribe", sa.String(32), nullable=True),
    sa.Column("participants", sa.Text, nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=True, unique=True),
    sa.Column("channel_name", sa.String(80), nullable=False),
    sa.Column("status_ts", sa.String(32), nullable=True),
    sa.Column("summary_channel", sa.String(32), nullable=True),
    sa.Column("summary_ts", sa.String(32), nullable=True),
    sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_update_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reminder_seq", sa.Integer, nullable=False),
    sa.Column("reminded_seq", sa.Integer, nullable=False),
    sa.Column("escalation_level", sa.Integer, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(32), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("postmortem", sa.Text, nullable=True),
    sa.Column("frozen", sa.Text, nullable=False),
)
incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=True),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.UniqueConstraint("incident_id", "key"),
)

JSON_COLUMNS = {"services", "participants", "frozen"}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _incident(row: Any) -> Incident:
    values = dict(row._mapping)
    for name in ("declared_at", "last_update_at", "next_update_at", "acknowledged_at", "resolved_at"):
        values[name] = _utc(values[name])
    values["services"] = tuple(json.loads(values["services"]))
    values["participants"] = tuple(json.loads(values["participants"]))
    values["frozen"] = tuple(FrozenLock(**lock) for lock in json.loads(values["frozen"]))
    values["status"] = Status(values["status"])
    values["channel_id"] = values["channel_id"] or ""
    return Incident(**values)


def _row(incident: Incident) -> dict[str, Any]:
    values = {name: getattr(incident, name) for name in incidents.c.keys() if name != "id"}
    values["status"] = incident.status.value
    values["services"] = json.dumps(list(incident.services))
    values["participants"] = json.dumps(list(incident.participants))
    values["frozen"] = json.dumps([asdict(lock) for lock in incident.frozen])
    values["channel_id"] = incident.channel_id or None  # NULL until the channel exists: unique only once set
    values["channel_name"] = incident.channel_name[:80]
    return values


def _entry(row: Any) -> TimelineEntry:
    return TimelineEntry(row.incident_id, _utc(row.at), Kind(row.kind), row.actor, row.text, row.link, row.key,  # type: ignore[arg-type]
                         json.loads(row.data))


class SqlIncidentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @guard_db
    def create(self, incident: Incident) -> Incident:
        with self._engine.begin() as conn:
            result = conn.execute(incidents.insert().values(**_row(incident)))
            new_id = result.inserted_primary_key[0]  # type: ignore[index]
        return replace(incident, id=int(new_id))

    @guard_db
    def discard(self, incident_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(incident_timeline.delete().where(incident_timeline.c.incident_id == incident_id))
            conn.execute(incidents.delete().where(incidents.c.id == incident_id))

    @guard_db
    def get(self, incident_id: int) -> Incident | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
        return None if row is None else _incident(row)

    @guard_db
    def by_channel(self, channel_id: str) -> Incident | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(incidents).where(incidents.c.channel_id == channel_id)).first()
        return None if row is None else _incident(row)

    @guard_db
    def open_incidents(self) -> list[Incident]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(incidents).where(incidents.c.status != Status.RESOLVED.value).order_by(incidents.c.id))
            return [_incident(row) for row in rows]

    @guard_db
    def change(self, incident_id: int, change: Callable[[Incident], Incident]) -> tuple[Incident, Incident]:
        with self._engine.begin() as conn:
            # The row lock serializes changes to one incident (SQLite: BEGIN IMMEDIATE does).
            row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id).with_for_update()).first()
            if row is None:
                raise NotFound("incident", str(incident_id))
            before = _incident(row)
            after = change(before)
            if after != before:
                conn.execute(incidents.update().where(incidents.c.id == incident_id).values(**_row(after)))
            return before, after

    @guard_db
    def append(self, entry: TimelineEntry) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(incident_timeline.insert().values(
                    incident_id=entry.incident_id, at=entry.at, kind=entry.kind.value, actor=entry.actor[:64], text=entry.text,
                    link=entry.link, key=entry.key[:200] if entry.key else None, data=json.dumps(entry.data),
                ))
        except IntegrityError:
            return False  # this key is already on the timeline (an event retry, a second reaction)
        return True

    @guard_db
    def timeline(self, incident_id: int) -> list[TimelineEntry]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(incident_timeline).where(incident_timeline.c.incident_id == incident_id)
                                .order_by(incident_timeline.c.at, incident_timeline.c.id))
            return [_entry(row) for row in rows]
