"""Rules out of migrations: the report path's SQL functions move to .sql files of their
domain (units/locate.sql, cases/report.sql), which `gis-service db migrate` (re)creates
after the migrations; reports keep a fingerprint of their payload beside the
Idempotency-Key, so a key reused for another payload is refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from gis_service.db import sqlfiles

    # The versions migration 0002 created; db/sqlfiles.py creates the current ones.
    sqlfiles.drop_all(op.get_bind())
    # sha256 (hex) of the canonical request (cases/report.py: fingerprint()); NULL for
    # cases reported before it existed or without a key.
    op.execute("ALTER TABLE cases ADD COLUMN idempotency_fingerprint text")


def downgrade() -> None:
    from gis_service.db import sqlfiles

    sqlfiles.drop_all(op.get_bind())
    op.execute("ALTER TABLE cases DROP COLUMN IF EXISTS idempotency_fingerprint")
