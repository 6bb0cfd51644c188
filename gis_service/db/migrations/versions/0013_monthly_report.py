"""Monthly reports (issue 16 item 4): the versions of a unit's report for a month.

``monthly_report`` keeps one row per version: the unit and month, its number (1, 2, …
per unit and month), draft or sent, who made and sent it and when, the frozen figures
(jsonb, gis_service/reports/figures.py), the case ids behind each figure (drill-down
keys → ids), the PDF as made or as sent (bytes and their SHA-256), the reason of a
correction and the previous sent version it corrects.

A sent version is immutable: a trigger refuses UPDATE and DELETE of a row whose status
is 'sent' (SQLSTATE GSRPT, answered 409 by reports/versions.py), so the PDF can be given
back byte for byte later. Not audited: versions are append-only evidence themselves
(gis_service/audit/tables.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE monthly_report (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            unit_code     text NOT NULL,
            -- the month's first day (a calendar month in the district's time)
            month         date NOT NULL CHECK (extract(day FROM month) = 1),
            version       integer NOT NULL CHECK (version >= 1),
            status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent')),
            lang          text NOT NULL DEFAULT 'zh' CHECK (lang IN ('zh', 'en')),
            created_by    integer REFERENCES app_user (id) ON DELETE SET NULL,
            created_by_name text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            sent_by       integer REFERENCES app_user (id) ON DELETE SET NULL,
            sent_by_name  text,
            sent_at       timestamptz,
            figures       jsonb NOT NULL,
            case_ids      jsonb NOT NULL,
            pdf           bytea NOT NULL,
            pdf_sha256    text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
            reason        text CHECK (reason IS NULL OR length(btrim(reason)) BETWEEN 1 AND 2000),
            previous_id   bigint REFERENCES monthly_report (id),
            UNIQUE (unit_code, month, version),
            CHECK ((status = 'sent') = (sent_at IS NOT NULL AND sent_by_name IS NOT NULL))
        );
        CREATE INDEX monthly_report_unit ON monthly_report (unit_code text_pattern_ops, month);

        CREATE FUNCTION monthly_report_frozen() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'monthly report % (version % of % %) was sent and is frozen',
                OLD.id, OLD.version, OLD.unit_code, to_char(OLD.month, 'YYYY-MM')
                USING ERRCODE = 'GSRPT',
                      HINT = 'make a corrected version instead';
        END $$;
        CREATE TRIGGER monthly_report_frozen
            BEFORE UPDATE OR DELETE ON monthly_report
            FOR EACH ROW WHEN (OLD.status = 'sent')
            EXECUTE FUNCTION monthly_report_frozen();
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE monthly_report; DROP FUNCTION monthly_report_frozen();")
