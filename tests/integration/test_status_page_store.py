"""What the status page reads from the SQL incident store, on SQLite and PostgreSQL: public texts and recent resolutions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.domain.incidents.model import Kind, Status, TimelineEntry
from tests.integration.test_incident_store import NOW, SqlIncidentStore, new_incident, store  # noqa: F401 - fixture


def test_a_timeline_entry_keeps_its_public_text_apart_from_its_internal_text(store: SqlIncidentStore) -> None:
    created = store.create(new_incident())
    store.append(
        TimelineEntry(
            created.id, NOW, Kind.UPDATE, "U0DEV", "identified: internal", data={"status": "identified"}, public="We found it."
        )
    )
    store.append(TimelineEntry(created.id, NOW, Kind.NOTE, "U0DEV", "a note"))
    entries = store.timeline(created.id)
    assert [(e.text, e.public, e.data) for e in entries] == [
        ("identified: internal", "We found it.", {"status": "identified"}),
        ("a note", "", {}),
    ]


def test_resolved_since_lists_incidents_resolved_from_then_latest_first(store: SqlIncidentStore) -> None:
    early, late, still_open = (store.create(new_incident(title=t)) for t in ("early", "late", "open"))
    store.change(early.id, lambda i: replace(i, status=Status.RESOLVED, resolved_at=NOW - timedelta(hours=30)))
    store.change(late.id, lambda i: replace(i, status=Status.RESOLVED, resolved_at=NOW - timedelta(hours=1)))
    assert [i.title for i in store.resolved_since(NOW - timedelta(hours=24))] == ["late"]
    assert [i.title for i in store.resolved_since(NOW - timedelta(hours=48))] == ["late", "early"]
    assert store.get(still_open.id).is_open
