"""The audit log refuses TRUNCATE too (PostgreSQL), and its head row refuses DELETE and TRUNCATE.

0001 made ``audit_log`` refuse UPDATE and DELETE row by row; ``TRUNCATE`` fires no row triggers, so it
emptied the log unrefused (``opsbot audit verify`` noticed, afterwards). A statement-level trigger refuses it.
SQLite has no TRUNCATE (its ``DELETE FROM`` without WHERE is refused by 0001's trigger).

Revision ID: 0007_audit_no_truncate
Revises: 0006_incident_messages
Create Date: 2026-11-29
"""

from alembic import op

revision = "0007_audit_no_truncate"
down_revision = "0006_incident_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION opsbot_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_removal BEFORE DELETE OR TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION opsbot_audit_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_removal ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete")
