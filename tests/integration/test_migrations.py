"""Migrations build exactly the tables the code declares, on SQLite and PostgreSQL, along one history."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import bot.adapters.sql.tables  # noqa: F401 - declares every table
from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import (
    alembic_config,
    create_db_engine,
    head_revisions,
    metadata,
    pending_migrations,
    schema_at_head,
    upgrade,
)
from bot.adapters.sql.tables import deploys, incident_timeline, incidents, slack_messages
from bot.domain.shared.ports import AuditEntry, SystemClock
from tests.conftest import _admin, _with_database

OLD_HEADS = ("0003_deploys", "0003_flags", "0003_incidents")  # the three families before 0004_merge_families
SCRIPT = ScriptDirectory.from_config(alembic_config("sqlite://"))
HEAD = SCRIPT.get_current_head()
AFTER_MERGE = {rev.revision for rev in SCRIPT.iterate_revisions(HEAD, "0004_merge_families")} - {"0004_merge_families"}


def schema_diff(url: str) -> list[object]:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return list(diff)


def current_heads(url: str) -> set[str]:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads


def test_migrated_schema_matches_the_declared_tables(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert pending_migrations(engine) == set()
    assert schema_diff(db_url) == []


def test_the_history_has_exactly_one_head() -> None:
    assert SCRIPT.get_heads() == [HEAD]
    assert "0005_durable_operations" in AFTER_MERGE


def test_the_heads_read_from_the_version_files_are_alembics_heads() -> None:
    assert head_revisions() == set(SCRIPT.get_heads()) == {HEAD}


def test_a_version_file_that_does_not_read_as_expected_leaves_the_heads_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "0001_a.py").write_text('revision = "0001_a"\ndown_revision = None\n', encoding="utf-8")
    (tmp_path / "0002_b.py").write_text('revision: str = "0002_b"\ndown_revision: str | None = "0001_a"\n', encoding="utf-8")
    assert head_revisions(tmp_path) == {"0002_b"}

    (tmp_path / "0003_c.py").write_text('revision = make_id()\ndown_revision = "0002_b"\n', encoding="utf-8")
    assert head_revisions(tmp_path) is None


def test_the_schema_is_at_head_only_once_every_migration_is_applied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    assert not schema_at_head(create_db_engine(url))  # no alembic_version table yet
    for head in OLD_HEADS:
        upgrade(url, head)
    assert not schema_at_head(create_db_engine(url))

    upgrade(url)

    assert schema_at_head(create_db_engine(url))
    with create_db_engine(url).begin() as conn:  # a database migrated by a newer opsbot than this one
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    assert not schema_at_head(create_db_engine(url))


def test_an_empty_database_has_every_revision_pending(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    pending = pending_migrations(engine)
    assert {"0001_audit_log", "0002_approvals", *OLD_HEADS, "0004_merge_families"} <= pending


def test_a_database_at_the_three_old_heads_upgrades_to_the_one_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before-merge.db'}"
    for head in OLD_HEADS:
        upgrade(url, head)
    assert current_heads(url) == set(OLD_HEADS)
    assert pending_migrations(create_db_engine(url)) == {"0004_merge_families", *AFTER_MERGE}

    upgrade(url)

    assert current_heads(url) == {HEAD}
    assert pending_migrations(create_db_engine(url)) == set()
    assert schema_diff(url) == []


def test_a_database_at_one_old_head_gets_the_other_families_on_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deploys-only.db'}"
    upgrade(url, "0003_deploys")
    assert pending_migrations(create_db_engine(url)) == {"0003_flags", "0003_incidents", "0004_merge_families", *AFTER_MERGE}

    upgrade(url)

    assert current_heads(url) == {HEAD}
    assert schema_diff(url) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = f"opsbot_mig_{secrets.token_hex(5)}"
    _admin(admin, f'CREATE DATABASE "{name}"')
    yield _with_database(admin, name)
    _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_deploys_that_faults_left_running_are_settled_unknown_and_audited_before_the_exclusion(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0004_merge_families")
    engine = create_db_engine(empty_db_url)
    row = {
        "kind": "deploy",
        "service": "api",
        "environment": "production",
        "requester": "U0DEV",
        "reason": "r",
        "hotfix": False,
        "approvers": "[]",
        "lock_name": "deploy/api/production",
        "requested_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    with engine.begin() as conn:  # two runs of one target left "running": the new unique index would refuse them
        conn.execute(
            deploys.insert(),
            [
                {**row, "id": "d-00000001", "version": "v1", "state": "running"},
                {**row, "id": "d-00000002", "version": "v2", "state": "running"},
                {**row, "id": "d-00000003", "version": "v0", "state": "succeeded"},
            ],
        )
    SqlAuditLog(engine, SystemClock()).record(AuditEntry(actor="U0DEV", action="deploy.requested", outcome="ok"))

    upgrade(empty_db_url)

    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(deploys.c.id, deploys.c.state)).all())
    assert states == {"d-00000001": "unknown", "d-00000002": "unknown", "d-00000003": "succeeded"}
    audit = SqlAuditLog(engine, SystemClock())
    assert [(r["action"], r["outcome"], r["source"]) for r in audit.rows()][1:] == [
        ("deploy.unknown", "unknown", "migration")
    ] * 2
    assert audit.verify().ok
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            deploys.insert(),
            [
                {**row, "id": "d-00000004", "version": "v3", "state": "requested"},
                {**row, "id": "d-00000005", "version": "v4", "state": "approved"},
            ],
        )
    engine.dispose()


def test_incidents_declared_before_the_outbox_keep_their_messages_and_are_not_declared_again(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0005_durable_operations")
    engine = create_db_engine(empty_db_url)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    incident = {
        "title": "Checkout errors",
        "severity": "P1",
        "services": "[]",
        "status": "investigating",
        "impact": "",
        "eta": "",
        "declared_by": "U0DEV",
        "declared_at": at,
        "commander": "U0DEV",
        "participants": "[]",
        "channel_name": "inc-1",
        "reminder_seq": 1,
        "reminded_seq": 0,
        "escalation_level": 0,
        "frozen": "[]",
    }
    with engine.begin() as conn:
        conn.execute(
            incidents.insert(),
            [
                {**incident, "id": 1, "channel_id": "C1", "status_ts": "1.1", "summary_channel": "C0INC", "summary_ts": "2.2"},
                {**incident, "id": 2, "channel_id": "C2", "status_ts": None, "summary_channel": None, "summary_ts": None},
            ],
        )
        entry = {"at": at, "kind": "declared", "actor": "U0DEV", "text": "P1 declared", "data": "{}"}
        conn.execute(incident_timeline.insert(), [{**entry, "incident_id": 1}, {**entry, "incident_id": 2}])

    upgrade(empty_db_url)

    with engine.connect() as conn:
        messages = {row.key: (row.channel, row.ts) for row in conn.execute(sa.select(slack_messages))}
        keys = conn.execute(sa.select(incident_timeline.c.incident_id, incident_timeline.c.key)).all()
    assert messages == {"incident:1:status": ("C1", "1.1"), "incident:1:summary": ("C0INC", "2.2")}
    assert sorted(keys) == [(1, "declared"), (2, "declared")]
    engine.dispose()
