"""Incidents and their timelines.

Revision ID: 0003_incidents
Revises: 0002_approvals
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_incidents"
down_revision = "0002_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("impact", sa.Text, nullable=False),
        sa.Column("eta", sa.Text, nullable=False),
        sa.Column("declared_by", sa.String(32), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commander", sa.String(32), nullable=False),
        sa.Column("comms", sa.String(32), nullable=True),
        sa.Column("scribe", sa.String(32), nullable=True),
        sa.Column("participants", sa.Text, nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("channel_id", name="uq_incidents_channel_id"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_timeline"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_incident_timeline_incident_id_incidents"),
        sa.UniqueConstraint("incident_id", "key", name="uq_incident_timeline_incident_id_key"),
    )
    op.create_index("ix_incident_timeline_incident_id", "incident_timeline", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_timeline")
    op.drop_table("incidents")
