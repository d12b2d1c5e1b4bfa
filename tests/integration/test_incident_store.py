"""The SQL incident store on SQLite and PostgreSQL: round trips, row-locked changes, idempotent timeline keys."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from bot.adapters.sql.engine import create_db_engine, metadata
from bot.adapters.sql.tables import incident_timeline, incidents
from bot.adapters.sql.unit_of_work import SqlUnitOfWork
from bot.domain.incidents.model import FrozenLock, Incident, Kind, Status, TimelineEntry
from bot.domain.shared.errors import Conflict, NotFound
from tests.support import autocommit


class SqlIncidentStore:
    """The incident repository as the incidents family uses it: each read or write in a unit of work of its own,
    and a change decided under the row's lock (the family's ``common.change``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = autocommit(engine, "incidents")

    def change(self, incident_id: int, rule: Callable[[Incident], Incident]) -> tuple[Incident, Incident]:
        with SqlUnitOfWork(self.engine) as uow:
            before = uow.incidents.get_for_update(incident_id)
            if before is None:
                raise NotFound("incident", str(incident_id))
            after = rule(before)
            if after != before:
                uow.incidents.save(after)
            uow.commit()
        return before, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reads, name)


NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def new_incident(**changes: object) -> Incident:
    base = Incident(
        0,
        "Checkout errors",
        "P1",
        ("api", "web"),
        Status.INVESTIGATING,
        "5% fail",
        "U0DEV",
        NOW,
        "U0DEV",
        participants=("U0DEV",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(db_url: str) -> SqlIncidentStore:
    return SqlIncidentStore(create_db_engine(db_url))


def test_an_incident_round_trips_with_every_field(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())
    assert created.id > 0
    full = replace(
        created,
        channel_id="C1",
        channel_name="inc-20261123-checkout-errors",
        status_ts="1.1",
        summary_channel="C0INC",
        summary_ts="2.2",
        comms="U0DEV2",
        next_update_at=NOW + timedelta(minutes=30),
        reminder_seq=3,
        acknowledged_at=NOW,
        acknowledged_by="U0DEV2",
        frozen=(
            FrozenLock("deploy/api/production", "tok", 7),
            FrozenLock("deploy/web/production", "tok2", 8, "U0DEV", "r-1a2b3c4d"),
        ),
    )
    store.change(created.id, lambda _: full)
    assert store.get(created.id) == full
    assert store.by_channel("C1") == full
    assert [i.id for i in store.open_incidents()] == [created.id]
    store.change(created.id, lambda i: replace(i, status=Status.RESOLVED, resolved_at=NOW + timedelta(hours=1)))
    assert store.open_incidents() == []


def test_freeze_leases_recorded_before_rollbacks_could_take_them_over_still_read(db_url: str) -> None:
    engine = create_db_engine(db_url)
    created = SqlIncidentStore(engine).create(new_incident())
    with engine.begin() as conn:
        conn.execute(incidents.update().values(frozen='[{"name": "deploy/api/production", "token": "tok", "fence": 7}]'))
    (lock,) = SqlIncidentStore(engine).get(created.id).frozen  # type: ignore[union-attr]
    assert lock == FrozenLock("deploy/api/production", "tok", 7, holder="", lent_to=None)


def test_concurrent_changes_to_one_incident_are_serialized(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: store.change(created.id, lambda i: replace(i, reminder_seq=i.reminder_seq + 1)), range(20)))
    assert store.get(created.id).reminder_seq == 20  # type: ignore[union-attr]


def test_a_refused_change_changes_nothing(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())

    def refuse(_: Incident) -> Incident:
        raise Conflict("no")

    with pytest.raises(Conflict):
        store.change(created.id, refuse)
    assert store.get(created.id) == created


def test_a_timeline_key_is_recorded_once_and_entries_come_back_in_order(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())
    later = TimelineEntry(
        created.id, NOW + timedelta(minutes=5), Kind.NOTE, "U0DEV", "Rolled back", "https://x", key="message:C1:1.1"
    )
    assert store.append(later)
    assert not store.append(replace(later, actor="U0DEV2"))
    assert store.append(TimelineEntry(created.id, NOW, Kind.DECLARED, "U0DEV", "declared"))
    assert store.append(TimelineEntry(created.id, NOW, Kind.UPDATE, "U0DEV", "no key, twice"))
    assert store.append(TimelineEntry(created.id, NOW, Kind.UPDATE, "U0DEV", "no key, twice"))
    assert [(e.kind.value, e.actor) for e in store.timeline(created.id)] == [
        ("declared", "U0DEV"),
        ("update", "U0DEV"),
        ("update", "U0DEV"),
        ("note", "U0DEV"),
    ]


def test_a_discarded_declaration_leaves_nothing(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())
    store.append(TimelineEntry(created.id, NOW, Kind.DECLARED, "U0DEV", "declared"))
    store.discard(created.id)
    assert store.get(created.id) is None and store.timeline(created.id) == []


def test_the_tables_match_the_migration(db_url: str) -> None:
    engine = create_db_engine(db_url)
    ours = sa.MetaData()
    for table in (incidents, incident_timeline):
        table.to_metadata(ours)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, ours) if _about_ours(d)]
    assert diff == []
    assert {"incidents", "incident_timeline"} <= set(metadata.tables)


def _about_ours(diff: object) -> bool:
    """Differences on our two tables (the migrated database holds every family's tables)."""
    text = repr(diff)
    return "incident" in text and not (isinstance(diff, tuple) and diff[0] == "remove_table")
