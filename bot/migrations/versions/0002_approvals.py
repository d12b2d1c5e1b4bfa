"""Approval requests and their votes (one vote per approver per request).

Revision ID: 0002_approvals
Revises: 0001_audit_log
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_approvals"
down_revision = "0001_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("requester", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("require_admin", sa.Boolean, nullable=False),
        sa.Column("admin_self_approval", sa.Boolean, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approval_requests"),
    )
    op.create_index("ix_approval_requests_state", "approval_requests", ["state"])
    op.create_table(
        "approval_votes",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("voter", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_admin", sa.Boolean, nullable=False),
        sa.Column("self_approval", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approval_votes"),
        sa.ForeignKeyConstraint(["request_id"], ["approval_requests.id"], name="fk_approval_votes_request_id_approval_requests"),
        sa.UniqueConstraint("request_id", "voter", name="uq_approval_votes_request_id_voter"),
    )
    op.create_index("ix_approval_votes_request_id", "approval_votes", ["request_id"])


def downgrade() -> None:
    op.drop_table("approval_votes")
    op.drop_table("approval_requests")
