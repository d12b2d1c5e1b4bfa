"""The audit log in SQL: append-only, each row hashed over its content and the previous row's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.adapters.sql.engine import guard_db
from bot.adapters.sql.tables import audit_head, audit_log
from bot.domain.shared.ports import AuditEntry, AuditQuery, AuditRecord, Clock

GENESIS = "0" * 64


CONTENT = (
    "at",
    "actor",
    "action",
    "outcome",
    "target",
    "service",
    "environment",
    "params",
    "error",
    "channel",
    "request_id",
    "source",
)


def utc_text(moment: datetime) -> str:
    """The one text form of a time that goes into a hash (naive values from SQLite are UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_hash(row: dict[str, Any]) -> str:
    """sha256 of the row's content in one canonical JSON form."""
    content = {key: (utc_text(row[key]) if key == "at" else row[key]) for key in CONTENT}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, content: str, seq: int) -> str:
    """The row's hash: its content's hash linked to the previous row's hash and its place in the chain.

    PostgreSQL computes the same with ``sha256(prev || content || seq)`` inside the append statement.
    """
    return hashlib.sha256(f"{prev_hash}{content}{seq}".encode("ascii")).hexdigest()


def row_hash(row: dict[str, Any]) -> str:
    return chain_hash(row["prev_hash"], content_hash(row), row["seq"])


# One statement takes the head's row lock, moves it, and inserts the row: the lock is held only while
# PostgreSQL runs it and commits, never across client round trips (a busy client would hold everyone up).
PG_APPEND = sa.text("""
WITH old AS (
    SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE
), new AS (
    UPDATE audit_head SET seq = old.seq + 1,
        hash = encode(sha256(convert_to(old.hash || :content_hash || (old.seq + 1)::text, 'UTF8')), 'hex')
    FROM old WHERE audit_head.id = 1
    RETURNING audit_head.seq, audit_head.hash, old.hash AS prev_hash
)
INSERT INTO audit_log (seq, at, actor, action, outcome, target, service, environment, params, error, channel,
                       request_id, source, prev_hash, hash)
SELECT new.seq, :at, :actor, :action, :outcome, :target, :service, :environment, :params, :error, :channel,
       :request_id, :source, new.prev_hash, new.hash
FROM new
RETURNING seq, prev_hash, hash
""")


def content(entry: AuditEntry, at: datetime) -> dict[str, Any]:
    """The columns an entry is stored (and hashed) as, at ``at``."""
    return {
        "at": at.astimezone(UTC),
        "actor": _clip(entry.actor, 64),
        "action": _clip(entry.action, 100),
        "outcome": _clip(entry.outcome, 32),
        "target": _clip(entry.target, 200),
        "service": _clip(entry.service, 64),
        "environment": _clip(entry.environment, 64),
        "params": json.dumps(entry.params, sort_keys=True, ensure_ascii=False, default=str),
        "error": _clip(entry.error, 4000),
        "channel": _clip(entry.channel, 32),
        "request_id": _clip(entry.request_id, 128),
        "source": _clip(entry.source, 16),
    }


def _clip(value: str | None, size: int) -> str | None:
    """``value`` cut to ``size`` characters; a NUL (which PostgreSQL's text refuses) shown as ␀, so that text a
    user typed never keeps an audit row, and the reply behind it, from being written."""
    if value is None:
        return None
    value = value.replace("\x00", "\u2400")
    return value if len(value) <= size else value[: size - 1] + "…"


def append_in(conn: Connection, row: dict[str, Any]) -> AuditRecord:
    """Append ``row`` (an entry's content, see ``SqlAuditLog.content``) inside the caller's transaction.

    The head row is locked until that transaction ends (``FOR UPDATE`` on PostgreSQL; SQLite's
    BEGIN IMMEDIATE), so use it where appends are rare: migrations settling old rows.
    """
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()).one()
    row = {**row, "seq": head.seq + 1, "prev_hash": head.hash}
    row["hash"] = row_hash(row)
    conn.execute(audit_log.insert().values(**row))
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=row["seq"], hash=row["hash"]))
    return _record(row)


class SqlAuditLog:
    """Appends are serialized on the chain head, so concurrent writers keep one unbroken chain."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        # The append statement is atomic on its own; autocommit ends the head's lock with it.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._clock = clock

    @guard_db
    def record(self, entry: AuditEntry) -> AuditRecord:
        row = content(entry, self._clock.now())
        if self._engine.dialect.name == "postgresql":
            with self._autocommit.connect() as conn:
                appended = conn.execute(PG_APPEND, {**row, "content_hash": content_hash(row)}).one()
            row.update(seq=appended.seq, prev_hash=appended.prev_hash, hash=appended.hash)
            return _record(row)
        with self._engine.begin() as conn:
            # SQLite: BEGIN IMMEDIATE already holds the database's write lock for this transaction.
            return append_in(conn, row)

    @guard_db
    def head(self) -> tuple[int, str]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        return int(row.seq), str(row.hash)

    @guard_db
    def query(self, query: AuditQuery) -> list[AuditRecord]:
        stmt = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(query.limit)
        if query.service:
            stmt = stmt.where(audit_log.c.service == query.service)
        if query.actor:
            stmt = stmt.where(audit_log.c.actor == query.actor)
        if query.since:
            stmt = stmt.where(audit_log.c.at >= query.since)
        if query.before_seq:
            stmt = stmt.where(audit_log.c.seq < query.before_seq)
        if query.action_prefix:
            stmt = stmt.where(audit_log.c.action.startswith(query.action_prefix, autoescape=True))
        with self._engine.connect() as conn:
            return [_record(dict(r._mapping)) for r in conn.execute(stmt)]

    def rows(self, batch: int = 1000, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """Every row in chain order, as stored (only rows with ``seq <= upto`` when given)."""
        last = 0
        while True:
            stmt = sa.select(audit_log).where(audit_log.c.seq > last)
            if upto is not None:
                stmt = stmt.where(audit_log.c.seq <= upto)
            with self._engine.connect() as conn:
                chunk = [dict(r._mapping) for r in conn.execute(stmt.order_by(audit_log.c.seq).limit(batch))]
            if not chunk:
                return
            yield from chunk
            last = chunk[-1]["seq"]

    @guard_db
    def verify(self, anchor: tuple[int, str] | None = None) -> Verification:
        """Walk the chain up to the head as it was when the walk began; name the first row that breaks it.

        opsbot keeps writing while an operator verifies: rows appended after the head was read are left for
        the next verification (the walk reads in batches, not in one long transaction that would hold up
        writers). A row that the head does not count (inserted past it by hand) breaks the chain.

        ``anchor`` = (row, hash) of a head published earlier (`channels.audit`, `opsbot audit anchor`): the chain
        must still reach that row with that hash, or it was cut (and its head moved back) or rewritten below it.
        """
        with self._engine.connect() as conn:
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        expected_seq, previous, count = 1, GENESIS, 0
        for row in self.rows(upto=head.seq):
            if row["seq"] != expected_seq:
                return Verification(
                    False, count, expected_seq, f"row {expected_seq} is missing (next row is {row['seq']})", previous
                )
            if row_hash(row) != row["hash"]:
                return Verification(
                    False, count, row["seq"], f"row {row['seq']} was altered (its content no longer matches its hash)", previous
                )
            if row["prev_hash"] != previous:
                seq = row["seq"]
                if seq == 1:
                    return Verification(False, 0, 1, "row 1 was altered (it does not start the chain)", previous)
                # Row seq-1 matches its own hash, yet row seq was chained to another hash: row seq-1 was rewritten
                # and re-hashed after row seq was written. The tampered row is seq-1, not the one after it.
                return Verification(
                    False,
                    count - 1,
                    seq - 1,
                    f"row {seq - 1} was altered and re-hashed by hand (row {seq} was chained to a different row {seq - 1})",
                    previous,
                )
            previous, expected_seq, count = row["hash"], expected_seq + 1, count + 1
        if (head.seq, head.hash) != (count, previous):
            return Verification(
                False,
                count,
                count + 1,
                f"the chain ends at row {count} but the head says row {head.seq}: rows were removed from the end",
                previous,
            )
        # One statement, one snapshot: an append moves the head in the statement that inserts its row.
        with self._engine.connect() as conn:
            now_head, last_seq = conn.execute(
                sa.select(
                    sa.select(audit_head.c.seq).where(audit_head.c.id == 1).scalar_subquery(),
                    sa.select(sa.func.max(audit_log.c.seq)).scalar_subquery(),
                )
            ).one()
        if last_seq is not None and last_seq > now_head:
            return Verification(
                False,
                count,
                now_head + 1,
                f"row {now_head + 1} is past the head (row {now_head}): rows were added outside opsbot",
                previous,
            )
        if anchor is not None:
            broken = self._against(anchor, count, previous)
            if broken is not None:
                return broken
        return Verification(True, count, None, "intact", previous)

    def _against(self, anchor: tuple[int, str], count: int, head_hash: str) -> Verification | None:
        seq, published = anchor
        if seq > count:
            return Verification(
                False,
                count,
                count + 1,
                f"the chain ends at row {count}, below the published head (row {seq}): rows were cut and the head moved back",
                head_hash,
            )
        if seq == 0:
            return None
        with self._engine.connect() as conn:
            stored = conn.execute(sa.select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar_one()
        if stored != published:
            return Verification(
                False,
                seq - 1,
                seq,
                f"row {seq} is not the row that was published (its hash is {stored[:12]}…, the anchor says "
                f"{published[:12]}…): the chain was rewritten at or below row {seq}",
                head_hash,
            )
        return None


@dataclass(frozen=True)
class Verification:
    ok: bool
    rows: int
    first_bad_seq: int | None
    reason: str
    head_hash: str


def _record(row: dict[str, Any]) -> AuditRecord:
    at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
    entry = AuditEntry(
        actor=row["actor"],
        action=row["action"],
        outcome=row["outcome"],
        target=row["target"],
        params=json.loads(row["params"]),
        error=row["error"],
        channel=row["channel"],
        request_id=row["request_id"],
        source=row["source"],
        service=row["service"],
        environment=row["environment"],
    )
    return AuditRecord(seq=row["seq"], at=at, entry=entry, prev_hash=row["prev_hash"], hash=row["hash"])


EXPORT_FIELDS = ("seq", *CONTENT, "prev_hash", "hash")


def export_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (utc_text(row[key]) if key == "at" else row[key]) for key in EXPORT_FIELDS}
