"""The public view (Open311 reads without an api_key): which categories the public may see,
and which photos a supervisor has published.

``case_category.public`` is data from the taxonomy file (``"public": true``), read by
``gis-service categories load``; a database migrated from an older revision takes the
flags of the default taxonomy for the codes it names (a taxonomy loaded from another
file keeps every category private until it is loaded again with its flags).
``case_photo.published_at`` is set by ``POST /api/v1/cases/{id}/photos/{pid}/publish``.
The rule that reads both lives in ``gis_service/auth/scope.py``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE case_category ADD COLUMN public boolean NOT NULL DEFAULT false")
    op.execute(
        "ALTER TABLE case_photo ADD COLUMN published_at timestamptz, "
        "ADD COLUMN published_by integer REFERENCES app_user (id)"
    )
    from gis_service.cases.categories import DEFAULT_TAXONOMY, read_taxonomy

    public = [r["code"] for r in read_taxonomy(DEFAULT_TAXONOMY) if r["public"]]
    op.get_bind().execute(
        text("UPDATE case_category SET public = true WHERE code = ANY(:codes)"),
        {"codes": public},
    )


def downgrade() -> None:
    op.execute("ALTER TABLE case_photo DROP COLUMN published_by, DROP COLUMN published_at")
    op.execute("ALTER TABLE case_category DROP COLUMN public")
