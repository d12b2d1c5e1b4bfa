"""Incidents through the outbox: their messages known by key, their declarations marked finished.

Incidents declared before opsbot recorded effects in an outbox kept their status message and summary as
``status_ts`` / ``summary_ts``; later edits, pins and unpins now go through the outbox by key
(``incident:<id>:status``, ``incident:<id>:summary``), so those messages are entered in ``slack_messages``
under their keys. Their "declared" timeline entries get the key ``declared``, which tells the reconciler a
declaration's steps are recorded (it finishes declarations without one). No schema change.

Revision ID: 0006_incident_messages
Revises: 0005_durable_operations
Create Date: 2026-11-29
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006_incident_messages"
down_revision = "0005_durable_operations"
branch_labels = None
depends_on = None

incidents = sa.table(
    "incidents",
    sa.column("id"),
    sa.column("channel_id"),
    sa.column("status_ts"),
    sa.column("summary_channel"),
    sa.column("summary_ts"),
)
timeline = sa.table("incident_timeline", sa.column("incident_id"), sa.column("kind"), sa.column("key"))
messages = sa.table("slack_messages", sa.column("key"), sa.column("channel"), sa.column("ts"), sa.column("posted_at"))


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    known = {row.key for row in conn.execute(sa.select(messages.c.key))}
    rows = []
    for incident in conn.execute(sa.select(incidents)):
        for key, channel, ts in (
            (f"incident:{incident.id}:status", incident.channel_id, incident.status_ts),
            (f"incident:{incident.id}:summary", incident.summary_channel, incident.summary_ts),
        ):
            if channel and ts and key not in known:
                rows.append({"key": key, "channel": channel, "ts": ts, "posted_at": now})
    if rows:
        conn.execute(messages.insert(), rows)
    conn.execute(timeline.update().where(timeline.c.kind == "declared", timeline.c.key.is_(None)).values(key="declared"))


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(timeline.update().where(timeline.c.kind == "declared", timeline.c.key == "declared").values(key=None))
    conn.execute(messages.delete().where(messages.c.key.like("incident:%")))
