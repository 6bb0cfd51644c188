"""Export jobs (issue 16 item 3): a large export written in the background, polled by its
status URL and downloaded once done.

``export_job`` keeps what was asked (``kind``, ``format``, the query string), whose it is
(``owner``: ``user:<id>``, or the viewer's scope key for the anonymous public view —
gis_service/exports/jobs.py), its progress (``rows_written`` of ``rows_total``) and the
file's name under ``var_dir/exports`` until ``expires_at``. Not audited: a job changes no
data and shows nothing its owner could not read directly (gis_service/audit/tables.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE export_job (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            owner         text NOT NULL,
            kind          text NOT NULL,
            format        text NOT NULL,
            query         text NOT NULL DEFAULT '' CHECK (length(query) <= 4000),
            status        text NOT NULL DEFAULT 'queued'
                              CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
            rows_total    bigint,
            rows_written  bigint NOT NULL DEFAULT 0,
            filename      text,
            bytes         bigint,
            error         jsonb,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            finished_at   timestamptz,
            expires_at    timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX export_job_expires_idx ON export_job (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE export_job")
