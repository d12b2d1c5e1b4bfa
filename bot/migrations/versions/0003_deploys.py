"""Deploys and rollbacks (state, times, requester, approvers, lock lease) and ad-hoc freezes.

Revision ID: 0003_deploys
Revises: 0002_approvals
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_deploys"
down_revision = "0002_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("previous_version", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("hotfix", sa.Boolean, nullable=False),
        sa.Column("approval_id", sa.String(32), nullable=True),
        sa.Column("approvers", sa.Text, nullable=False),
        sa.Column("lock_name", sa.String(200), nullable=False),
        sa.Column("lock_token", sa.String(64), nullable=True),
        sa.Column("lock_fence", sa.BigInteger, nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("output_tail", sa.Text, nullable=True),
        sa.Column("rollback_of", sa.String(16), nullable=True),
        sa.Column("rolled_back_by", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deploys"),
    )
    op.create_index("ix_deploys_service_environment", "deploys", ["service", "environment"])
    op.create_index("ix_deploys_state", "deploys", ["state"])
    op.create_table(
        "deploy_freezes",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deploy_freezes"),
    )
    op.create_index("ix_deploy_freezes_ends_at", "deploy_freezes", ["ends_at"])


def downgrade() -> None:
    op.drop_table("deploy_freezes")
    op.drop_table("deploys")
