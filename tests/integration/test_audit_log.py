"""The audit log on SQLite and PostgreSQL: one unbroken hash chain, tampering named by row."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_mock import MockerFixture

from bot.adapters.sql.audit import SqlAuditLog, row_hash
from bot.adapters.sql.engine import create_db_engine, normalize_url
from bot.adapters.sql.tables import audit_log as audit_log_table
from bot.domain.shared.errors import Unavailable
from bot.domain.shared.ports import AuditEntry, AuditQuery
from tests.support import FrozenClock

WRITER = """
import sys
from bot.adapters.sql.audit import SqlAuditLog
from bot.adapters.sql.engine import create_db_engine
from bot.domain.shared.ports import AuditEntry, SystemClock
log = SqlAuditLog(create_db_engine(sys.argv[1]), SystemClock())
for i in range(int(sys.argv[3])):
    log.record(AuditEntry(actor=sys.argv[2], action="command.locks", outcome="ok", params={"i": i}))
"""


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def audit_log(db_url: str, clock: FrozenClock) -> SqlAuditLog:
    return SqlAuditLog(create_db_engine(db_url), clock)


def entry(actor: str = "U0DEV", action: str = "command.lock", service: str | None = "api", **kw: object) -> AuditEntry:
    return AuditEntry(
        actor=actor,
        action=action,
        outcome="ok",
        target="api/production",
        service=service,
        environment="production",
        params={"reason": "d\u00e9ploiement 🚀", "n": 1},
        **kw,
    )  # type: ignore[arg-type]


def tamper(db_url: str, statement: str) -> None:
    """What someone with database access could do, bypassing the append-only guard."""
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(sa.text(statement))
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(sa.text(statement))


def test_entries_chain_and_verify(audit_log: SqlAuditLog, clock: FrozenClock) -> None:
    for i in range(5):
        audit_log.record(entry(actor=f"U0DEV{i}"))
        clock.advance(seconds=1)
    result = audit_log.verify()
    assert result.ok and result.rows == 5
    records = audit_log.query(AuditQuery(limit=10))
    assert [r.seq for r in records] == [5, 4, 3, 2, 1]
    assert records[0].prev_hash == records[1].hash
    assert records[0].entry.params == {"reason": "d\u00e9ploiement 🚀", "n": 1}


def test_an_altered_row_is_named(audit_log: SqlAuditLog, db_url: str) -> None:
    for _ in range(4):
        audit_log.record(entry())
    tamper(db_url, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
    result = audit_log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "row 3 was altered" in result.reason


def test_a_deleted_row_is_named(audit_log: SqlAuditLog, db_url: str) -> None:
    for _ in range(4):
        audit_log.record(entry())
    tamper(db_url, "DELETE FROM audit_log WHERE seq = 2")
    result = audit_log.verify()
    assert not result.ok and result.first_bad_seq == 2 and "row 2 is missing" in result.reason


def test_rows_cut_from_the_end_are_noticed(audit_log: SqlAuditLog, db_url: str) -> None:
    for _ in range(4):
        audit_log.record(entry())
    tamper(db_url, "DELETE FROM audit_log WHERE seq = 4")
    result = audit_log.verify()
    assert not result.ok and "removed from the end" in result.reason


def test_rows_added_past_the_head_are_noticed(audit_log: SqlAuditLog, db_url: str) -> None:
    for _ in range(3):
        audit_log.record(entry())
    engine = create_db_engine(db_url)
    with engine.begin() as conn:  # a well-formed row, linked and hashed, but inserted by hand
        last = dict(conn.execute(sa.select(audit_log_table).where(audit_log_table.c.seq == 3)).one()._mapping)
        forged = {**last, "seq": 4, "prev_hash": last["hash"], "outcome": "ok"}
        forged["hash"] = row_hash(forged)
        conn.execute(audit_log_table.insert().values(**forged))
    result = audit_log.verify()
    assert not result.ok and result.first_bad_seq == 4 and "rows were added outside opsbot" in result.reason


def test_a_verification_while_opsbot_writes_says_intact(audit_log: SqlAuditLog, mocker: MockerFixture) -> None:
    for _ in range(3):
        audit_log.record(entry())
    walk = SqlAuditLog.rows

    def rows_while_a_command_is_audited(self: SqlAuditLog, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from walk(self, *args, **kwargs)
        self.record(entry(actor="U0OTHER"))  # written between the walk and the end of the verification

    mocker.patch.object(SqlAuditLog, "rows", rows_while_a_command_is_audited)
    result = audit_log.verify()
    assert result.ok and result.rows == 3
    mocker.stopall()
    assert audit_log.verify().rows == 4  # the next verification covers it


def test_a_row_altered_and_re_hashed_by_hand_is_named_not_the_row_after_it(audit_log: SqlAuditLog, db_url: str) -> None:
    for _ in range(7):
        audit_log.record(entry())
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        row5 = dict(conn.execute(sa.select(audit_log_table).where(audit_log_table.c.seq == 5)).one()._mapping)
    forged = {**row5, "outcome": "denied"}
    forged["hash"] = row_hash(forged)  # consistent with its new content
    tamper(db_url, f"UPDATE audit_log SET outcome = 'denied', hash = '{forged['hash']}' WHERE seq = 5")
    result = audit_log.verify()
    assert not result.ok and result.first_bad_seq == 5 and result.rows == 4
    assert result.reason == "row 5 was altered and re-hashed by hand (row 6 was chained to a different row 5)"


def test_truncate_is_refused_on_postgresql(audit_log: SqlAuditLog, db_url: str) -> None:
    audit_log.record(entry())
    engine = create_db_engine(db_url)
    statements = ["DELETE FROM audit_head"]
    if engine.dialect.name == "postgresql":
        statements += ["TRUNCATE audit_log", "TRUNCATE audit_head"]  # SQLite has no TRUNCATE
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert audit_log.verify().ok and audit_log.verify().rows == 1


def test_the_table_refuses_updates_and_deletes(audit_log: SqlAuditLog, db_url: str) -> None:
    audit_log.record(entry())
    engine = create_db_engine(db_url)
    for statement in ("UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_filters_by_service_actor_time_and_action(audit_log: SqlAuditLog, clock: FrozenClock) -> None:
    audit_log.record(entry(actor="U0OLD"))
    clock.advance(hours=3)
    audit_log.record(entry(actor="U0DEV", action="command.unlock"))
    audit_log.record(entry(actor="U0DEV", service="web"))
    since = clock.now() - timedelta(hours=1)
    assert [r.entry.actor for r in audit_log.query(AuditQuery(since=since))] == ["U0DEV", "U0DEV"]
    assert [r.entry.service for r in audit_log.query(AuditQuery(service="web"))] == ["web"]
    assert [r.entry.action for r in audit_log.query(AuditQuery(action_prefix="command.unl"))] == ["command.unlock"]
    assert [r.seq for r in audit_log.query(AuditQuery(before_seq=3, limit=1))] == [2]


def test_two_processes_writing_at_once_keep_one_unbroken_chain(audit_log: SqlAuditLog, db_url: str) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, normalize_url(db_url), f"U0W{i}", "40"]) for i in range(2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    result = audit_log.verify()
    assert result.ok, result.reason
    assert result.rows == 80


def test_database_gone_is_unavailable(clock: FrozenClock) -> None:
    log = SqlAuditLog(create_db_engine("postgresql://postgres@127.0.0.1:1/nope"), clock)
    with pytest.raises(Unavailable, match="The database is unreachable") as raised:
        log.record(entry())
    # what a user reads names no host, port, user or database: those are the operator's, in the log
    assert raised.value.message == "The database is unreachable right now; nothing was changed. (connection refused)"


def test_export_and_verify_from_the_command_line(audit_log: SqlAuditLog, db_url: str, tmp_path: Path) -> None:
    audit_log.record(entry())
    audit_log.record(entry(actor="U0ADMIN"))
    env = {"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=60)

    lines = run("audit", "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["actor"] for line in lines] == ["U0DEV", "U0ADMIN"]
    csv_out = run("audit", "export", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("seq,at,actor,action") and len(csv_out) == 3
    verified = run("audit", "verify")
    assert verified.returncode == 0 and "audit chain intact: 2 rows" in verified.stdout
    tamper(db_url, "UPDATE audit_log SET actor = 'U0MALLORY' WHERE seq = 1")
    broken = run("audit", "verify")
    assert broken.returncode == 1 and "BROKEN at row 1" in broken.stdout


def test_a_nul_in_an_entry_is_stored_visibly_and_the_chain_holds(audit_log: SqlAuditLog) -> None:
    """PostgreSQL's text refuses NUL bytes; an error quoting what a user typed must still be written."""
    record = audit_log.record(entry(error="Could not read `a\x00b`"))
    assert record.entry.error == "Could not read `a\u2400b`"
    assert audit_log.query(AuditQuery(limit=1))[0].entry.error == "Could not read `a\u2400b`"
    assert audit_log.verify().ok
