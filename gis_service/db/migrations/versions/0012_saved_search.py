"""Saved searches (issue 15 item 6): a desk user's named views of the case queue.

``saved_search`` keeps, per user, a name and the desk's URL query string (tab and the
queue's filters, validated against them when saved: gis_service/desk/saved_searches.py).
A name is unique per user; deleting the account deletes its searches. Not audited: a
view grants nothing and shows nothing the queue would not (gis_service/audit/tables.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE saved_search (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id     integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
            -- the desk's URL query string without '?', e.g. tab=overdue&team_id=3
            query       text NOT NULL CHECK (length(query) <= 2000),
            created_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (user_id, name)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE saved_search")
