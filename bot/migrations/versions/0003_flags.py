"""Feature flags: opsbot's history of flag changes, and one head row per flag and environment (the lock).

Revision ID: 0003_flags
Revises: 0002_approvals
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_flags"
down_revision = "0002_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_changes",
        sa.Column("seq", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("flag", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column("before_enabled", sa.Boolean, nullable=True),
        sa.Column("before_killed", sa.Boolean, nullable=True),
        sa.Column("before_rollout", sa.Integer, nullable=True),
        sa.Column("after_enabled", sa.Boolean, nullable=False),
        sa.Column("after_killed", sa.Boolean, nullable=False),
        sa.Column("after_rollout", sa.Integer, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_channel", sa.String(32), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_flag_changes"),
        sa.UniqueConstraint("id", name="uq_flag_changes_id"),
    )
    op.create_index("ix_flag_changes_provider_flag", "flag_changes", ["provider", "flag"])
    op.create_table(
        "flag_heads",
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("flag", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("change_id", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("provider", "flag", "environment", name="pk_flag_heads"),
    )


def downgrade() -> None:
    op.drop_table("flag_heads")
    op.drop_index("ix_flag_changes_provider_flag", table_name="flag_changes")
    op.drop_table("flag_changes")
