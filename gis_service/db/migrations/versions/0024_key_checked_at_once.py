"""The reference of an Idempotency-Key to its case checked at once, not at commit.

``case_idempotency.case_id_fkey`` was ``DEFERRABLE INITIALLY DEFERRED`` because
``report_case()`` claimed the key before the case existed. It now writes the case first
and claims its key after (cases/report.sql; a request that loses the claim to a concurrent
one with the same key removes the case it wrote), so the key can be checked when it is
written. A deferred check ran at commit, outside ``report_case()``'s generic plans, where
the check of a key against the partitioned ``cases`` was planned afresh for every report:
a tenth of the database's time a report (perf on the 1 M city, 2026-12-02).

Revision ID: 0024_key_checked_at_once
Revises: 0023_notify_keys
Create Date: 2026-12-02
"""

from alembic import op

revision = "0024_key_checked_at_once"
down_revision = "0023_notify_keys"
branch_labels = None
depends_on = None

KEY = "ALTER TABLE case_idempotency ALTER CONSTRAINT case_idempotency_case_id_fkey"


def upgrade() -> None:
    op.execute(f"{KEY} NOT DEFERRABLE")


def downgrade() -> None:
    op.execute(f"{KEY} DEFERRABLE INITIALLY DEFERRED")
