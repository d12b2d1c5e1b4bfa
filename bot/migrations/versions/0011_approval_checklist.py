"""Checklists on approval requests (environments.<env>.checklist) and each approver's ticks.

Revision ID: 0011_approval_checklist
Revises: 0010_deploy_ci_gate
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_approval_checklist"
down_revision = "0010_deploy_ci_gate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("checklist", sa.Text, nullable=True))
    op.create_table(
        "approval_checklist_ticks",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("voter", sa.String(32), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approval_checklist_ticks"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["approval_requests.id"], name="fk_approval_checklist_ticks_request_id_approval_requests"
        ),
        sa.UniqueConstraint("request_id", "voter", "item", name="uq_approval_checklist_ticks_request_id_voter_item"),
    )
    op.create_index("ix_approval_checklist_ticks_request_id", "approval_checklist_ticks", ["request_id"])


def downgrade() -> None:
    op.drop_table("approval_checklist_ticks")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("checklist")
