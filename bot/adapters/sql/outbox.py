"""The outbox in SQL: effects recorded inside a unit of work, and the queries that deliver them after it.

``SqlOutbox`` is the ``Outbox`` port on one connection: it renders a message when it is recorded (so
delivery needs no domain code) and inserts a row per effect. ``OutboxTable`` is what delivery uses:
claim an effect, record that it was delivered (and which Slack message a key became), schedule a retry,
give up at the deadline; and what operators use (`opsbot outbox list|retry|drop`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.adapters.sql.engine import PING_AFTER_IDLE_SECONDS, guard_db, single_statements, utc, utc_or_none
from bot.adapters.sql.tables import outbox, slack_messages
from bot.domain.shared.ports import Clock, Message, MessageRef
from bot.render import Renderer

PENDING, DELIVERED, FAILED, DROPPED, SUPERSEDED = "pending", "delivered", "failed", "dropped", "superseded"
SLACK_KINDS = ("slack.post", "slack.update", "slack.dm", "slack.pin", "slack.unpin")
CLAIM_SECONDS = 60  # a deliverer that died holding a claim lets go after this


@dataclass(frozen=True)
class Effect:
    """One recorded effect, as delivery and operators see it."""

    id: int
    kind: str
    key: str
    stream: str
    target: str | None
    payload: dict[str, Any]
    run_at: datetime | None
    origin: str
    state: str
    attempts: int
    next_attempt_at: datetime
    deadline_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def _effect(row: Any) -> Effect:
    return Effect(
        id=row.id,
        kind=row.kind,
        key=row.key,
        stream=row.stream,
        target=row.target,
        payload=json.loads(row.payload),
        run_at=utc_or_none(row.run_at),
        origin=row.origin,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=utc(row.next_attempt_at),
        deadline_at=utc(row.deadline_at),
        created_at=utc(row.created_at),
        delivered_at=utc_or_none(row.delivered_at),
        last_error=row.last_error,
    )


RECORD = outbox.insert()  # built once (see the delivery statements below); the values come as parameters


class SqlOutbox:
    """The ``Outbox`` port inside one unit of work; ``recorded`` lists the ids it added, for delivery after commit."""

    def __init__(self, conn: Connection, renderer: Renderer, clock: Clock, deadline: timedelta) -> None:
        self._conn = conn
        self._renderer = renderer
        self._clock = clock
        self._deadline = deadline
        self.recorded: list[int] = []

    def post(self, channel: str, message: Message, *, key: str, origin: str) -> None:
        self._add("slack.post", key, f"slack:{channel}", channel, self._renderer.render(message), origin)

    def update(self, key: str, message: Message, *, origin: str) -> None:
        self._add("slack.update", key, self._stream_of(key), None, self._renderer.render(message), origin)

    def dm(self, user: str, message: Message, *, key: str, origin: str) -> None:
        self._add("slack.dm", key, f"slack:{user}", user, self._renderer.render(message), origin)

    def pin(self, key: str, *, origin: str) -> None:
        self._add("slack.pin", key, self._stream_of(key), None, {}, origin)

    def unpin(self, key: str, *, origin: str) -> None:
        self._add("slack.unpin", key, self._stream_of(key), None, {}, origin)

    def submit(self, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        self._add("job.submit", key, f"job:{key}", name, payload, origin)

    def schedule(self, at: datetime, name: str, payload: dict[str, Any], *, key: str, origin: str) -> None:
        self._add("job.schedule", key, f"job:{key}", name, payload, origin, run_at=at)

    def cancel_job(self, key: str, *, origin: str) -> None:
        self._add("job.cancel", key, f"job:{key}", None, {}, origin)

    def page(self, event: dict[str, Any], *, key: str, origin: str) -> None:
        self._add("pager.event", key, f"pager:{event.get('dedup_key', key)}", None, event, origin)

    @guard_db
    def waiting(self, key: str) -> bool:
        query = sa.select(outbox.c.id).where(outbox.c.key == key, outbox.c.state == PENDING).limit(1)
        return self._conn.execute(query).first() is not None

    @guard_db
    def failed(self, key: str) -> str | None:
        query = sa.select(outbox.c.state, outbox.c.last_error).where(outbox.c.key == key).order_by(outbox.c.id.desc()).limit(1)
        row = self._conn.execute(query).first()
        return (row.last_error or "it was not delivered") if row is not None and row.state == FAILED else None

    @guard_db
    def posted(self, key: str) -> MessageRef | None:
        row = self._conn.execute(sa.select(slack_messages).where(slack_messages.c.key == key)).first()
        return None if row is None else MessageRef(row.channel, row.ts)

    @guard_db
    def _stream_of(self, key: str) -> str:
        """An edit, pin or unpin follows its message's post: the post's stream (its channel)."""
        posted = self._conn.execute(sa.select(slack_messages.c.channel).where(slack_messages.c.key == key)).first()
        if posted is not None:
            return f"slack:{posted.channel}"
        recorded = self._conn.execute(
            sa.select(outbox.c.stream)
            .where(outbox.c.key == key, outbox.c.kind.in_(("slack.post", "slack.dm")))
            .order_by(outbox.c.id)
        ).first()
        return str(recorded.stream) if recorded is not None else f"slack-key:{key}"

    @guard_db
    def _add(
        self,
        kind: str,
        key: str,
        stream: str,
        target: str | None,
        payload: dict[str, Any],
        origin: str,
        *,
        run_at: datetime | None = None,
    ) -> None:
        now = self._clock.now()
        result = self._conn.execute(
            RECORD,
            {
                "kind": kind,
                "key": key[:200],
                "stream": stream[:200],
                "target": target,
                "payload": json.dumps(payload, default=str),
                "run_at": run_at,
                "origin": origin[:200],
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "deadline_at": now + self._deadline,
                "created_at": now,
            },
        )
        self.recorded.append(int(result.inserted_primary_key[0]))  # type: ignore[index]


# Delivery's statements, built once: building a statement is most of what a short one costs in Python (coercion
# and its cache key, which SQLAlchemy memoizes on the statement object). Bind names differ from column names, which
# SQLAlchemy reserves in UPDATE … VALUES.
_FREE = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < sa.bindparam("now"))
GET = sa.select(outbox).where(outbox.c.id == sa.bindparam("effect_id"))
GET_MANY = sa.select(outbox).where(outbox.c.id.in_(sa.bindparam("effect_ids", expanding=True))).order_by(outbox.c.id)
BLOCKED_BY = (
    sa.select(outbox)
    .where(outbox.c.stream == sa.bindparam("stream_of"), outbox.c.id < sa.bindparam("effect_id"), outbox.c.state == PENDING)
    .order_by(outbox.c.id)
    .limit(1)
)
# The claim counts the attempt now, not when it ends: a deliverer that dies mid-attempt (the post may have reached
# Slack) leaves a count that makes the next one look the message up before posting. RETURNING reads the row back in
# the same statement (PostgreSQL; SQLite since 3.35).
CLAIM = (
    outbox.update()
    .where(
        outbox.c.id == sa.bindparam("effect_id"),
        outbox.c.state == PENDING,
        outbox.c.next_attempt_at <= sa.bindparam("now"),
        _FREE,
    )
    .values(claimed_until=sa.bindparam("until"), attempts=outbox.c.attempts + 1)
    .returning(*outbox.c)
)
LATER_UPDATE = (
    sa.select(outbox.c.id)
    .where(
        outbox.c.key == sa.bindparam("key_of"),
        outbox.c.kind == "slack.update",
        outbox.c.id > sa.bindparam("effect_id"),
        outbox.c.state == PENDING,
    )
    .limit(1)
)
MESSAGE = sa.select(slack_messages.c.channel, slack_messages.c.ts).where(slack_messages.c.key == sa.bindparam("key_of"))
FINISHED = (
    outbox.update()
    .where(outbox.c.id == sa.bindparam("effect_id"))
    .values(state=sa.bindparam("new_state"), delivered_at=sa.bindparam("at"), claimed_until=None, last_error=None)
)
_MESSAGE_ROW: dict[str, Any] = {
    "key": sa.bindparam("key_of"),
    "channel": sa.bindparam("channel_of"),
    "ts": sa.bindparam("ts_of"),
    "posted_at": sa.bindparam("at"),
}
# A message's key is recorded once: the first post's (channel, ts) stays, whoever records it again.
REMEMBER_MESSAGE = {
    "postgresql": postgresql.insert(slack_messages).values(_MESSAGE_ROW).on_conflict_do_nothing(index_elements=["key"]),
    "sqlite": sqlite.insert(slack_messages).values(_MESSAGE_ROW).on_conflict_do_nothing(index_elements=["key"]),
}


class OutboxTable:
    """Delivery's and operators' side of the outbox: each call is its own short transaction.

    Delivery's calls are single statements on a connection in autocommit (each is atomic on its own; a posted
    message's key is recorded before its effect is marked delivered, so a crash between the two leaves a key that
    makes the next attempt edit, never post a twin). Inside ``batch()`` they share one pooled connection, which spares
    a pool checkout and reset per call (bench/ack_latency.py).
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._autocommit = single_statements(engine)
        self._clock = clock
        self._bound = threading.local()
        self._remember = REMEMBER_MESSAGE[engine.dialect.name]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Delivery calls made by this thread inside the block share one connection (nested blocks reuse it)."""
        if getattr(self._bound, "active", False):
            yield
            return
        self._bound.active, self._bound.conn, self._bound.used = True, None, 0.0
        try:
            yield
        finally:
            conn, self._bound.active, self._bound.conn = self._bound.conn, False, None
            if conn is not None:
                conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if not getattr(self._bound, "active", False):
            with self._autocommit.connect() as conn:
                yield conn
            return
        bound = self._batch_connection()
        try:
            yield bound
        except BaseException:
            self._bound.conn = None  # a failed statement may have broken it: the batch's later calls take fresh ones
            bound.close()
            raise
        finally:
            self._bound.used = time.monotonic()

    def _batch_connection(self) -> Connection:
        """The batch's connection; one that sat idle (a Slack call, a retry's wait) is pinged first, as the pool pings
        an idle connection at checkout, and replaced when the ping fails."""
        bound: Connection | None = self._bound.conn
        if bound is not None and time.monotonic() - self._bound.used > PING_AFTER_IDLE_SECONDS:
            dbapi = bound.connection.dbapi_connection
            try:
                if dbapi is None:
                    raise ConnectionError("no DBAPI connection")
                self._engine.dialect.do_ping(dbapi)
            except Exception:  # any driver error: that connection is gone; the pool gives a fresh one
                bound.invalidate()
                bound.close()
                bound = None
        if bound is None:
            bound = self._bound.conn = self._autocommit.connect()
        return bound

    @guard_db
    def get(self, effect_id: int) -> Effect | None:
        with self._connection() as conn:
            row = conn.execute(GET, {"effect_id": effect_id}).first()
        return None if row is None else _effect(row)

    @guard_db
    def get_many(self, ids: list[int]) -> list[Effect]:
        """The effects of ``ids`` that exist, in id order (the order they were recorded)."""
        if not ids:
            return []
        with self._connection() as conn:
            return [_effect(row) for row in conn.execute(GET_MANY, {"effect_ids": list(ids)})]

    @guard_db
    def pending_summary(self) -> tuple[int, datetime | None]:
        """How many effects wait for delivery, and when the oldest of them was recorded (None when none wait)."""
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.state == PENDING)
        with self._engine.connect() as conn:
            count, oldest = conn.execute(query).one()
        return int(count), utc_or_none(oldest)

    @guard_db
    def due(self, limit: int = 100) -> list[Effect]:
        """Pending effects whose next attempt is due, each the oldest pending one of its stream, oldest first."""
        now = self._clock.now()
        older = sa.alias(outbox, "older")
        blocked = (
            sa.select(older.c.id)
            .where(older.c.stream == outbox.c.stream, older.c.id < outbox.c.id, older.c.state == PENDING)
            .exists()
        )
        query = (
            sa.select(outbox)
            .where(outbox.c.state == PENDING, outbox.c.next_attempt_at <= now, ~blocked)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_effect(row) for row in conn.execute(query)]

    @guard_db
    def blocked_by(self, effect: Effect) -> Effect | None:
        """The oldest effect recorded before ``effect`` in its stream that is still pending, if any."""
        with self._connection() as conn:
            row = conn.execute(BLOCKED_BY, {"stream_of": effect.stream, "effect_id": effect.id}).first()
        return None if row is None else _effect(row)

    @guard_db
    def claim(self, effect_id: int) -> Effect | None:
        """Take ``effect_id`` for delivery (for ``CLAIM_SECONDS``): its row as it is now, or None.

        None when it is no longer pending, another deliverer holds it, or its next attempt is not due yet. The
        row is read back by the claim itself, so a deliverer never acts on a copy read before another deliverer's
        attempt (whose ``attempts`` would say no earlier attempt may have reached Slack).
        """
        now = self._clock.now()
        with self._connection() as conn:
            row = conn.execute(
                CLAIM, {"effect_id": effect_id, "now": now, "until": now + timedelta(seconds=CLAIM_SECONDS)}
            ).first()
        return None if row is None else _effect(row)

    @guard_db
    def later_update(self, effect: Effect) -> bool:
        """Whether a newer edit of the same message waits behind ``effect`` (then ``effect`` need not be delivered)."""
        with self._connection() as conn:
            return conn.execute(LATER_UPDATE, {"key_of": effect.key, "effect_id": effect.id}).first() is not None

    @guard_db
    def message(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of the Slack message ``key`` became, once posted."""
        with self._connection() as conn:
            row = conn.execute(MESSAGE, {"key_of": key}).first()
        return None if row is None else (row.channel, row.ts)

    @guard_db
    def delivered(self, effect_id: int, *, posted: tuple[str, str, str] | None = None, state: str = DELIVERED) -> None:
        """Record the effect done (or ``superseded``); ``posted`` = (key, channel, ts) of the message it created."""
        now = self._clock.now()
        with self._connection() as conn:
            if posted is not None:  # first: a crash before the next statement leaves a key, so a retry edits
                key, channel, ts = posted
                conn.execute(self._remember, {"key_of": key, "channel_of": channel, "ts_of": ts, "at": now})
            conn.execute(FINISHED, {"effect_id": effect_id, "new_state": state, "at": now})

    @guard_db
    def retry_at(self, effect_id: int, at: datetime, error: str, *, did_nothing: bool = False) -> None:
        """Try again at ``at``. ``did_nothing``: the answer says the attempt changed nothing (Slack's 429), so it is
        not counted: it neither grows the backoff nor suggests an earlier post to look for."""
        attempts = outbox.c.attempts - 1 if did_nothing else outbox.c.attempts
        with self._engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == effect_id)
                .values(next_attempt_at=at, claimed_until=None, last_error=error[:2000], attempts=attempts)
            )

    @guard_db
    def failed(self, effect_id: int, error: str) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == effect_id)
                .values(state=FAILED, delivered_at=now, claimed_until=None, last_error=error[:2000])
            )

    @guard_db
    def release(self, effect_id: int) -> None:
        """Give a claimed effect back untried (it was blocked behind an older one)."""
        with self._engine.begin() as conn:
            conn.execute(
                outbox.update().where(outbox.c.id == effect_id).values(claimed_until=None, attempts=outbox.c.attempts - 1)
            )

    # ----- operators -----
    @guard_db
    def listing(self, states: tuple[str, ...] = (PENDING, FAILED), limit: int = 50) -> list[Effect]:
        query = sa.select(outbox).where(outbox.c.state.in_(states)).order_by(outbox.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_effect(row) for row in conn.execute(query)]

    @guard_db
    def requeue(self, effect_id: int) -> bool:
        """A failed (or dropped) effect goes back to pending, with a fresh deadline, for another try now."""
        now = self._clock.now()
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(outbox.c.created_at, outbox.c.deadline_at).where(outbox.c.id == effect_id)).first()
            if row is None:
                return False
            span = utc(row.deadline_at) - utc(row.created_at)
            result = conn.execute(
                outbox.update()
                .where(outbox.c.id == effect_id, outbox.c.state.in_((FAILED, DROPPED, PENDING)))
                .values(state=PENDING, next_attempt_at=now, deadline_at=now + span, claimed_until=None)
            )
        return result.rowcount == 1

    @guard_db
    def drop(self, effect_id: int) -> bool:
        """Give up on a pending or failed effect on purpose (it will never be delivered)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                outbox.update()
                .where(outbox.c.id == effect_id, outbox.c.state.in_((PENDING, FAILED)))
                .values(state=DROPPED, claimed_until=None, delivered_at=self._clock.now())
            )
        return result.rowcount == 1

    @guard_db
    def purge(self, older_than: datetime) -> int:
        """Forget delivered, superseded and dropped effects finished before ``older_than``; how many."""
        with self._engine.begin() as conn:
            result = conn.execute(
                outbox.delete().where(outbox.c.state.in_((DELIVERED, SUPERSEDED, DROPPED)), outbox.c.delivered_at < older_than)
            )
        return int(result.rowcount)

    def undelivered_of(self, ids: list[int]) -> list[Effect]:
        """Those of ``ids`` still pending or failed, in order."""
        return [effect for effect in self.get_many(ids) if effect.state in (PENDING, FAILED)]
