"""Durable operations: the outbox, the message keys delivered to Slack, leases, and deploys the database keeps apart.

- ``outbox``: side effects (Slack posts and edits, jobs) recorded in the transaction of the change that
  implies them and delivered after it, retried until delivered; ``slack_messages``: which message a key
  became, so a second delivery edits it instead of posting a twin; ``leases``: one reconciler at a time.
- ``deploys`` gains the run's heartbeat, when its provider started and which process runs it, and a
  requested cancel; and a partial unique index: at most one deploy or rollback per service and environment
  that is not over. Rows that earlier faults left ``running`` (nothing was running them any more) would
  break that index: they are settled first as ``unknown``, each with an audit row, for an admin to settle
  (`/ops deploy settle`).

Revision ID: 0005_durable_operations
Revises: 0004_merge_families
Create Date: 2026-11-29
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005_durable_operations"
down_revision = "0004_merge_families"
branch_labels = None
depends_on = None

LIVE = "state IN ('requested', 'approved', 'running')"
SETTLED = "its run was left unfinished by a fault before opsbot kept deploys apart in the database; settle it by hand"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("target", sa.String(100), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_key", "outbox", ["key"])
    op.create_index("ix_outbox_stream", "outbox", ["stream"])
    op.create_index("ix_outbox_state", "outbox", ["state"])
    op.create_table(
        "slack_messages",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_slack_messages"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    with op.batch_alter_table("deploys") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("provider_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("provider_process", sa.String(200), nullable=True))
        batch.add_column(sa.Column("cancel_requested_by", sa.String(32), nullable=True))
    _settle_running()
    op.create_index(
        "uq_deploys_live_target",
        "deploys",
        ["service", "environment"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def _settle_running() -> None:
    """Mark ``unknown`` what no run can finish any more, and say so in the audit log (in this transaction)."""
    from bot.adapters.sql.audit import append_in, content
    from bot.domain.shared.ports import AuditEntry

    conn = op.get_bind()
    deploys = sa.table(
        "deploys",
        sa.column("id"),
        sa.column("kind"),
        sa.column("service"),
        sa.column("environment"),
        sa.column("version"),
        sa.column("state"),
        sa.column("finished_at"),
        sa.column("detail"),
    )
    now = datetime.now(UTC)
    stuck = conn.execute(sa.select(deploys).where(deploys.c.state == "running")).fetchall()
    for row in stuck:
        conn.execute(deploys.update().where(deploys.c.id == row.id).values(state="unknown", finished_at=now, detail=SETTLED))
        entry = AuditEntry(
            actor="opsbot",
            action=f"{row.kind}.unknown",
            outcome="unknown",
            target=f"{row.service}/{row.environment}",
            params={"deploy": row.id, "kind": row.kind, "version": row.version, "by": "migration 0005_durable_operations"},
            error=SETTLED,
            source="migration",
            service=row.service,
            environment=row.environment,
        )
        append_in(conn, content(entry, now))


def downgrade() -> None:
    op.drop_index("uq_deploys_live_target", table_name="deploys")
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("cancel_requested_by")
        batch.drop_column("provider_process")
        batch.drop_column("provider_started_at")
        batch.drop_column("heartbeat_at")
    op.drop_table("leases")
    op.drop_table("slack_messages")
    op.drop_table("outbox")
