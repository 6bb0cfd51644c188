"""The admin pages (issue 15 item 7): service points can be closed and reopened (a closed
point keeps its row, its history and its id, but no reader counts it: the one predicate is
``service_points.service.OPEN``), and a session can be ended because its account was
deactivated or changed by an admin (``auth_session.revoked_why``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE service_point ADD COLUMN closed_at timestamptz")
    op.execute(
        "ALTER TABLE auth_session DROP CONSTRAINT IF EXISTS auth_session_revoked_why_check, "
        "ADD CONSTRAINT auth_session_revoked_why_check "
        "CHECK (revoked_why IN ('sign_out', 'reuse', 'account_changed'))"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE auth_session SET revoked_why = 'sign_out' WHERE revoked_why = 'account_changed'"
    )
    op.execute(
        "ALTER TABLE auth_session DROP CONSTRAINT IF EXISTS auth_session_revoked_why_check, "
        "ADD CONSTRAINT auth_session_revoked_why_check "
        "CHECK (revoked_why IN ('sign_out', 'reuse'))"
    )
    op.execute("DELETE FROM service_point WHERE closed_at IS NOT NULL")
    op.execute("ALTER TABLE service_point DROP COLUMN closed_at")
