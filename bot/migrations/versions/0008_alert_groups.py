"""Alertmanager's alert groups: one row per groupKey, its Slack message kept by the outbox (docs/alerts.md).

Revision ID: 0008_alert_groups
Revises: 0007_audit_no_truncate
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_alert_groups"
down_revision = "0007_audit_no_truncate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("episode", sa.Integer, nullable=False),
        sa.Column("notifications", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("silence_id", sa.String(64), nullable=True),
        sa.Column("silenced_by", sa.String(32), nullable=True),
        sa.Column("silenced_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_groups"),
        sa.UniqueConstraint("key_hash", name="uq_alert_groups_key_hash"),
    )


def downgrade() -> None:
    op.drop_table("alert_groups")
