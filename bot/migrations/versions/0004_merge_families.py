"""Join the deploys, flags and incidents families into one history (no schema change).

The three families each branched from 0002_approvals; from here on there is one head, so
``opsbot db upgrade`` goes to "head" and a new revision has exactly one parent. A database at any
of the three old heads (or all of them) upgrades through this revision; it applies whichever of
the three it lacks first.

Revision ID: 0004_merge_families
Revises: 0003_deploys, 0003_flags, 0003_incidents
Create Date: 2026-11-25
"""

revision = "0004_merge_families"
down_revision = ("0003_deploys", "0003_flags", "0003_incidents")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
