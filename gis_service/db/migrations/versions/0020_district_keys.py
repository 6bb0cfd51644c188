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

import re

from alembic import op
from sqlalchemy import text

revision = "0020_district_keys"
down_revision = "0019_daily_rollups"
branch_labels = None
depends_on = None

COLUMN = "district_code"
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


def _family(conn, keyed: bool = False) -> dict[str, list[tuple[str, str, str, str, str]]]:
    """Table -> its foreign keys to the family ``(name, column, parent, parent column,
    the definition's tail: ON DELETE …, DEFERRABLE …)``, parents before children:
    ``cases`` and every table that references one of them. ``keyed``: the keys are
    composite already (``(column, district_code)``, for the downgrade)."""
    fks = conn.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.conname, c.confrelid::regclass::text,
                   a.attname, fa.attname, cardinality(c.conkey), pg_get_constraintdef(c.oid)
              FROM pg_constraint c
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
              JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
             WHERE c.contype = 'f' AND c.conparentid = 0
               AND c.connamespace = current_schema()::regnamespace
             ORDER BY 1, 2
            """
        )
    ).all()
    family: dict[str, list[tuple[str, str, str, str, str]]] = {ROOT: []}
    grew = True
    while grew:
        grew = False
        for table, name, parent, column, parent_column, n, ddl in fks:
            if parent not in family or any(f[0] == name for f in family.get(table, [])):
                continue
            if n != (2 if keyed else 1):
                raise RuntimeError(f"{table}.{name} has {n} columns: key it by hand")
            tail = re.sub(r"^FOREIGN KEY \([^)]*\) REFERENCES [^(]+\([^)]*\)", "", ddl)
            family.setdefault(table, []).append((name, column, parent, parent_column, tail))
            grew = True
    return family


def _unique_keys(conn, table: str) -> list[tuple[str, str, str | None, list[str], str | None]]:
    """The unique keys of ``table`` and of its partitions that are their own (not a
    partitioned parent's): (relation, name, constraint type or None for a bare index,
    columns, predicate)."""
    rows = conn.execute(
        text(
            """
            SELECT r.relname, i.relname, con.contype,
                   (SELECT array_agg(a.attname ORDER BY k.n)
                      FROM unnest(x.indkey::int2[]) WITH ORDINALITY k (attnum, n)
                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum),
                   x.indnatts, pg_get_expr(x.indpred, x.indrelid)
              FROM (SELECT CAST(:t AS regclass) AS relid, 0 AS level
                    UNION SELECT relid, level FROM pg_partition_tree(CAST(:t AS regclass))) t
              JOIN pg_index x ON x.indrelid = t.relid AND x.indisunique
              JOIN pg_class r ON r.oid = x.indrelid
              JOIN pg_class i ON i.oid = x.indexrelid
              LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid
                   AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u')
             WHERE NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = x.indexrelid)
             ORDER BY t.level, 1, 2
            """
        ),
        {"t": table},
    ).all()
    out = []
    for rel, name, contype, columns, natts, pred in rows:
        if columns is None or len(columns) != natts:
            raise RuntimeError(f"unique index {name} on {rel} has expressions: key it by hand")
        out.append((rel, name, contype, list(columns), pred))
    return out


def _rekey(conn, family, *, with_district: bool) -> None:
    """Every unique key (constraint or bare index) of the family's tables and partitions
    remade with the district code appended (``with_district``) or taken out."""
    for table in family:
        for rel, name, contype, columns, pred in _unique_keys(conn, table):
            if (COLUMN in columns) == with_district:
                continue
            keep = [c for c in columns if c != COLUMN]
            cols = ", ".join([*keep, COLUMN] if with_district else keep)
            if contype:
                kind = "PRIMARY KEY" if contype == "p" else "UNIQUE"
                op.execute(f'ALTER TABLE {rel} DROP CONSTRAINT "{name}"')
                op.execute(f'ALTER TABLE {rel} ADD CONSTRAINT "{name}" {kind} ({cols})')
            else:
                op.execute(f'DROP INDEX "{name}"')
                where = f" WHERE {pred}" if pred else ""
                op.execute(f'CREATE UNIQUE INDEX "{name}" ON {rel} ({cols}){where}')


def upgrade() -> None:
    conn = op.get_bind()
    op.execute(_district_of())
    family = _family(conn)

    # every foreign key inside the family goes, to come back composite
    for table, fks in family.items():
        for name, *_ in fks:
            op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    # -- the column. cases: computed once from unit_code (no row trigger fires), then kept
    op.execute(
        f"ALTER TABLE {ROOT} ADD COLUMN {COLUMN} char(6) "
        f"GENERATED ALWAYS AS (district_of(unit_code)) STORED"
    )
    op.execute(f"ALTER TABLE {ROOT} ALTER COLUMN {COLUMN} DROP EXPRESSION")
    op.execute(f"ALTER TABLE {ROOT} ALTER COLUMN {COLUMN} SET NOT NULL")
    op.execute(
        f"ALTER TABLE {ROOT} ADD CONSTRAINT cases_district_code_check "
        f"CHECK ({COLUMN} = district_of(unit_code))"
    )
    # the others from their parent row, parents first: one joined UPDATE per parent (a
    # correlated lookup per row would probe every month's index; notify_outbox reaches its
    # event by case_event.id, which no index leads with: 97,000 rows ran for minutes)
    for table, fks in family.items():
        if table == ROOT:
            continue
        op.execute(f"ALTER TABLE {table} ADD COLUMN {COLUMN} char(6)")
        sources = [
            (parent, pcol, column) for _name, column, parent, pcol, _tail in fks if parent != table
        ]
        if table == "notify_outbox":
            # an event's row has no key to case_event (event_id): its district is the event's
            sources.append(("case_event", "id", "event_id"))
        # filling a column is no change of the row (case_event is append-only, migration
        # 0002): the table's own enabled triggers are off for these statements
        triggers = (
            conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                    "AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY 1"
                ),
                {"t": table},
            )
            .scalars()
            .all()
        )
        for name in triggers:
            op.execute(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"')
        for parent, pcol, column in sources:
            op.execute(
                f"UPDATE {table} t SET {COLUMN} = p.{COLUMN} FROM {parent} p "
                f"WHERE p.{pcol} = t.{column} AND t.{COLUMN} IS NULL"
            )
        for name in triggers:
            op.execute(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"')
        if table == "notify_outbox":
            op.execute(f"DELETE FROM notify_outbox WHERE done_at IS NOT NULL AND {COLUMN} IS NULL")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} SET NOT NULL")

    # -- every unique key with the district code appended
    _rekey(conn, family, with_district=True)

    # -- the foreign keys back, composite
    for table, fks in family.items():
        for name, column, parent, pcol, tail in fks:
            op.execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}, {COLUMN}) '
                f"REFERENCES {parent} ({pcol}, {COLUMN}){tail}"
            )
    op.execute(OUTBOX_ENQUEUE)


def downgrade() -> None:
    """The keys as they were: one-column foreign keys, unique keys without the district
    code, the column and ``district_of()`` dropped, the outbox trigger of 0014."""
    conn = op.get_bind()
    family = _family(conn, keyed=True)
    for table, fks in family.items():
        for name, *_ in fks:
            op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    _rekey(conn, family, with_district=False)
    op.execute("ALTER TABLE cases DROP CONSTRAINT cases_district_code_check")
    for table in family:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {COLUMN}")
    for table, fks in family.items():
        for name, column, parent, pcol, tail in fks:
            op.execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}) '
                f"REFERENCES {parent} ({pcol}){tail}"
            )
    op.execute(
        OUTBOX_ENQUEUE.replace(
            "(district_code, event_id, created_at)", "(event_id, created_at)"
        ).replace("SELECT n.district_code, n.id", "SELECT n.id")
    )
    op.execute("DROP FUNCTION district_of(text)")
