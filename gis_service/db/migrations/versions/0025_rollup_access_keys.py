"""The district code in the keys of the statistics' roll-up and of the buildings' walking
access, so both distribute on Citus by district co-located with the cases (issue 19 item
7; docs/scale.md "What in our schema would stop Citus", item 5; the placement of every
table is gis_service/db/distribution.py).

* ``case_rollup``: every tier's unit prefix is at least a district's code (0021: depths 6,
  9, 12, 14), so a roll-up row lies in one district. The roll-up trigger on ``cases``
  writes these rows from the shard that holds the case, which Citus allows only for
  co-located rows.
* ``building_access``: a building's code begins with its district's; the access
  computations run per district (docs/scale.md, "What each query becomes").

Both get ``district_code char(6) NOT NULL``, computed from ``unit_code`` with
``district_of()`` and kept equal to it by a CHECK; their primary keys get it appended.
The writers fill it (stats/rollup.sql ``case_rollup_add``, access/reach.py's COPY). The
helpers are 0020's (gis_service/db/district_keys.py).

Revision ID: 0025_rollup_access_keys
Revises: 0024_key_checked_at_once
Create Date: 2026-12-02
"""

from alembic import op

from gis_service.db.district_keys import COLUMN, from_unit, rekey

revision = "0025_rollup_access_keys"
down_revision = "0024_key_checked_at_once"
branch_labels = None
depends_on = None

TABLES = ("case_rollup", "building_access")


def upgrade() -> None:
    for table in TABLES:
        from_unit(table, "unit_code", execute=op.execute)
    rekey(op.get_bind(), TABLES, with_district=True, execute=op.execute)


def downgrade() -> None:
    rekey(op.get_bind(), TABLES, with_district=False, execute=op.execute)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
