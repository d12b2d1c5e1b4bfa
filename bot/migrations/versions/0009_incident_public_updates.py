"""Incident timeline entries carry a public text: what the public status page shows of an update.

Revision ID: 0009_incident_public_updates
Revises: 0008_alert_groups
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_incident_public_updates"
down_revision = "0008_alert_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident_timeline") as batch:
        batch.add_column(sa.Column("public_text", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident_timeline") as batch:
        batch.drop_column("public_text")
