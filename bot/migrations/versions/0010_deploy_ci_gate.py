"""Deploys record their CI gate: its state (pending, green, failed), what CI said last, and when it was read.

Revision ID: 0010_deploy_ci_gate
Revises: 0009_incident_public_updates
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_deploy_ci_gate"
down_revision = "0009_incident_public_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deploys") as batch:
        batch.add_column(sa.Column("ci_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("ci_summary", sa.Text, nullable=True))
        batch.add_column(sa.Column("ci_checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("ci_checked_at")
        batch.drop_column("ci_summary")
        batch.drop_column("ci_state")
