"""The district code in the keys of the grid walks, so they distribute on Citus by district
co-located with the cases (issue 19 item 7; docs/scale.md "What in our schema would stop
Citus", item 3; the placement of every table is gis_service/db/distribution.py).

* ``district_code char(6) NOT NULL`` on ``walk`` and ``walk_day``, computed from their
  ``grid_code`` with ``district_of()`` (migration 0020) and kept equal to it by a CHECK (a
  grid lies in one district); on ``walk_chunk``, ``walk_point`` and ``walk_visit`` (the
  tables that reference a walk, found from pg_constraint) filled from their walk.
* Every unique key of these tables gets ``district_code`` appended (``walk (id,
  district_code)``, the retry key, the one running walk per worker and district, each
  child's key); every foreign key to a walk becomes composite, and so does the case's:
  ``cases (walk_id, district_code) REFERENCES walk (id, district_code)`` — a problem
  reported during a walk lies in the walk's district (report_case() refuses one across
  the border with 422 ``walk_id``). A case linked across a border before this migration
  (an account whose jurisdiction spans districts) keeps the link in ``attrs.walk_id``.
* The one running walk per worker, which no per-district index can hold across shards,
  is kept by starting a walk under a lock on the worker's account row (walks/store.py).

The helpers that read the keys from the catalog are 0020's (gis_service/db/district_keys.py).

Revision ID: 0022_walk_keys
Revises: 0021_rollup_tiers
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy import text

from gis_service.db.district_keys import (
    COLUMN,
    composite_keys,
    drop_keys,
    from_parents,
    from_unit,
    rekey,
    single_keys,
)
from gis_service.db.district_keys import family as family_of

revision = "0022_walk_keys"
down_revision = "0021_rollup_tiers"
branch_labels = None
depends_on = None

ROOT = "walk"
#: tables whose district is their grid's (the CHECK keeps it so)
BY_GRID = ("walk", "walk_day")


def _case_fk(conn) -> str:
    name = conn.execute(
        text(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 "
            "AND conrelid = 'cases'::regclass AND confrelid = 'walk'::regclass"
        )
    ).scalar_one()
    return str(name)


def upgrade() -> None:
    conn = op.get_bind()
    members = family_of(conn, ROOT, outside={"cases"})
    case_fk = _case_fk(conn)
    op.execute(f'ALTER TABLE cases DROP CONSTRAINT "{case_fk}"')
    drop_keys(members, execute=op.execute)

    # -- the column: computed once from the grid, then kept by a CHECK; the others from
    # their walk
    for table in BY_GRID:
        from_unit(table, "grid_code", execute=op.execute)
    for table, fks in members.items():
        if table == ROOT:
            continue
        sources = [(parent, pcol, column) for _name, column, parent, pcol, _tail in fks]
        from_parents(conn, table, sources, execute=op.execute)
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} SET NOT NULL")

    # -- a case linked to a walk of another district keeps the link in its attributes
    op.execute(
        f"""
        UPDATE cases c SET attrs = c.attrs || jsonb_build_object('walk_id', c.walk_id),
                           walk_id = NULL
          FROM walk w
         WHERE c.walk_id IS NOT NULL AND w.id = c.walk_id AND w.{COLUMN} <> c.{COLUMN}
        """
    )

    # -- every unique key with the district code appended; the keys back, composite
    rekey(conn, [*members, "walk_day"], with_district=True, execute=op.execute)
    composite_keys(members, execute=op.execute)
    op.execute(
        f'ALTER TABLE cases ADD CONSTRAINT "{case_fk}" FOREIGN KEY (walk_id, {COLUMN}) '
        f"REFERENCES walk (id, {COLUMN})"
    )


def downgrade() -> None:
    """The keys of 0017: one-column keys to the walk, unique keys without the district."""
    conn = op.get_bind()
    members = family_of(conn, ROOT, keyed=True, outside={"cases"})
    case_fk = _case_fk(conn)
    op.execute(f'ALTER TABLE cases DROP CONSTRAINT "{case_fk}"')
    drop_keys(members, execute=op.execute)
    rekey(conn, [*members, "walk_day"], with_district=False, execute=op.execute)
    for table in BY_GRID:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_district_code_check")
    for table in [*members, "walk_day"]:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
    single_keys(members, execute=op.execute)
    op.execute(
        f'ALTER TABLE cases ADD CONSTRAINT "{case_fk}" FOREIGN KEY (walk_id) REFERENCES walk (id)'
    )
