"""The case lock (issue 15 item 4): who is working on a case at the desk, so two
dispatchers never act on it at once. One row per locked case; a lock whose ``expires_at``
has passed counts as free (cases/locks.py), so nothing needs to sweep old rows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE case_lock (
            case_id      bigint PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
            user_id      integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            acquired_at  timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL,
            CHECK (expires_at > acquired_at)
        )
        """
    )
    op.execute("CREATE INDEX case_lock_user_idx ON case_lock (user_id)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS case_lock")
