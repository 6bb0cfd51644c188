"""The district code in the keys of the cases and of every table that references a case, so
they distribute on Citus by district and stay co-located (issue 19 item 7; docs/scale.md
"What in our schema would stop Citus"; the placement of every table is
gis_service/db/distribution.py).

* ``district_of(code)`` — a unit code's county-level division (GB/T 2260): its first
  ``CODE_LENGTH[Level.district]`` characters (units/codes.py, the Python twin). Defined
  here, not in a .sql file that ``db migrate`` recreates, because a CHECK depends on it.
* ``district_code char(6) NOT NULL`` on ``cases`` (filled from ``district_of(unit_code)``
  and kept equal to it by ``cases_district_code_check``) and on every table that
  references a case, directly or through another such table (the *family*, found here
  from pg_constraint: the timeline, photos, locks, approvals, reminders, the outbox, the
  retry keys), filled from the parent row.
* Every primary key, unique constraint and unique index of the family — the month
  partitions' own unique indexes (``case_no``, ``public_token``) included — gets
  ``district_code`` appended: ``cases`` is keyed ``(id, district_code)``, so a lookup by
  id still uses the key's index and the partition key ``id`` stays in the key.
* Every foreign key inside the family becomes composite: ``(case_id, district_code)
  REFERENCES cases (id, district_code)``, ``cases.duplicate_of`` likewise, so a duplicate
  link and every child row stay in their case's district. Changing a case's district
  (its ``unit_code`` to another district's, or ``district_code``) is refused by the CHECK
  and the keys: a transfer makes a new case (docs/scale.md).
* The outbox trigger (migration 0014) copies each event's district.

Revision ID: 0020_district_keys
Revises: 0019_daily_rollups
Create Date: 2026-12-01
"""

from alembic import op

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

revision = "0020_district_keys"
down_revision = "0019_daily_rollups"
branch_labels = None
depends_on = None

ROOT = "cases"


def _district_of() -> str:
    from gis_service.units.codes import CODE_LENGTH, Level

    return f"""
        CREATE OR REPLACE FUNCTION district_of(p_code text)
        RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN left(p_code, {CODE_LENGTH[Level.district]})
        """


OUTBOX_ENQUEUE = """
    CREATE OR REPLACE FUNCTION notify_outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF coalesce(current_setting('gis.outbox', true), '') = 'off' THEN
            RETURN NULL;
        END IF;
        INSERT INTO notify_outbox (district_code, event_id, created_at)
        SELECT n.district_code, n.id, n.at FROM new_events n ORDER BY n.id;
        RETURN NULL;
    END $$
    """


def upgrade() -> None:
    conn = op.get_bind()
    op.execute(_district_of())
    family = family_of(conn, ROOT)

    # every foreign key inside the family goes, to come back composite
    drop_keys(family, execute=op.execute)

    # -- the column. cases: computed once from unit_code, then kept by a CHECK
    from_unit(ROOT, "unit_code", execute=op.execute)
    # the others from their parent row, parents first (notify_outbox reaches its event by
    # case_event.id, which no index leads with: a correlated lookup of 97,000 rows ran for
    # minutes)
    for table, fks in family.items():
        if table == ROOT:
            continue
        sources = [
            (parent, pcol, column) for _name, column, parent, pcol, _tail in fks if parent != table
        ]
        if table == "notify_outbox":
            # an event's row has no key to case_event (event_id): its district is the event's
            sources.append(("case_event", "id", "event_id"))
        from_parents(conn, table, sources, execute=op.execute)
        if table == "notify_outbox":
            op.execute(f"DELETE FROM notify_outbox WHERE done_at IS NOT NULL AND {COLUMN} IS NULL")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} SET NOT NULL")

    # -- every unique key with the district code appended
    rekey(conn, family, with_district=True, execute=op.execute)

    # -- the foreign keys back, composite
    composite_keys(family, execute=op.execute)
    op.execute(OUTBOX_ENQUEUE)


def downgrade() -> None:
    """The keys as they were: one-column foreign keys, unique keys without the district
    code, the column and ``district_of()`` dropped, the outbox trigger of 0014."""
    conn = op.get_bind()
    family = family_of(conn, ROOT, keyed=True)
    drop_keys(family, execute=op.execute)
    rekey(conn, family, with_district=False, execute=op.execute)
    op.execute("ALTER TABLE cases DROP CONSTRAINT cases_district_code_check")
    for table in family:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
    single_keys(family, execute=op.execute)
    op.execute(
        OUTBOX_ENQUEUE.replace(
            "(district_code, event_id, created_at)", "(event_id, created_at)"
        ).replace("SELECT n.district_code, n.id", "SELECT n.id")
    )
    op.execute("DROP FUNCTION district_of(text)")
