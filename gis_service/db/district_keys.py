"""Putting the district code into a table family's keys, read from the catalog: the
migrations that key tables by district for Citus (0020_district_keys: the cases and every
table that references one; 0022_walk_keys: the walks) share these, so the rule "every
unique key holds the distribution column, every key inside the family is composite"
(gis_service/db/distribution.py) is written once.

Each function takes the migration's connection; DDL goes through ``execute`` (alembic's
``op.execute`` in a migration)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from sqlalchemy import Connection, text

#: the distribution column (distribution.DISTRICT; repeated here so that a migration
#: imports nothing that may change after it)
COLUMN = "district_code"

#: (constraint name, column, parent table, parent column, the definition's tail:
#: ON DELETE …, DEFERRABLE …)
ForeignKey = tuple[str, str, str, str, str]


def family(
    conn: Connection, root: str, *, keyed: bool = False, outside: Collection[str] = ()
) -> dict[str, list[ForeignKey]]:
    """Table -> its foreign keys into the family, parents before children: ``root`` and
    every table that references a member, however indirectly, except ``outside`` (tables
    keyed already, whose own key to the family a migration makes by hand). ``keyed``: the
    keys are composite already (``(column, district_code)``, for a downgrade); a key of
    another width is refused (RuntimeError): key it by hand."""
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
    members: dict[str, list[ForeignKey]] = {root: []}
    grew = True
    while grew:
        grew = False
        for table, name, parent, column, parent_column, n, ddl in fks:
            if parent not in members or table in outside:
                continue
            if any(f[0] == name for f in members.get(table, [])):
                continue
            if n != (2 if keyed else 1):
                raise RuntimeError(f"{table}.{name} has {n} columns: key it by hand")
            tail = re.sub(r"^FOREIGN KEY \([^)]*\) REFERENCES [^(]+\([^)]*\)", "", ddl)
            members.setdefault(table, []).append((name, column, parent, parent_column, tail))
            grew = True
    return members


def unique_keys(
    conn: Connection, table: str
) -> list[tuple[str, str, str | None, list[str], str | None]]:
    """The unique keys of ``table`` and of its partitions that are their own (not a
    partitioned parent's): (relation, name, constraint type or None for a bare index,
    columns, predicate). A key on an expression is refused (RuntimeError)."""
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


def rekey(
    conn: Connection,
    tables: Collection[str],
    *,
    with_district: bool,
    execute: Callable[[str], object],
) -> None:
    """Every unique key (constraint or bare index, partial ones with their predicate) of
    ``tables`` and their partitions remade with the district code appended
    (``with_district``) or taken out."""
    for table in tables:
        for rel, name, contype, columns, pred in unique_keys(conn, table):
            if (COLUMN in columns) == with_district:
                continue
            keep = [c for c in columns if c != COLUMN]
            cols = ", ".join([*keep, COLUMN] if with_district else keep)
            if contype:
                kind = "PRIMARY KEY" if contype == "p" else "UNIQUE"
                execute(f'ALTER TABLE {rel} DROP CONSTRAINT "{name}"')
                execute(f'ALTER TABLE {rel} ADD CONSTRAINT "{name}" {kind} ({cols})')
            else:
                execute(f'DROP INDEX "{name}"')
                where = f" WHERE {pred}" if pred else ""
                execute(f'CREATE UNIQUE INDEX "{name}" ON {rel} ({cols}){where}')


def enabled_triggers(conn: Connection, table: str) -> list[str]:
    """The table's own enabled triggers (a migration filling a column turns them off: the
    fill is no change of the row)."""
    return list(
        conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                "AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY 1"
            ),
            {"t": table},
        ).scalars()
    )


def from_unit(table: str, unit_column: str, *, execute: Callable[[str], object]) -> None:
    """``district_code`` on ``table`` computed once from ``unit_column`` with
    ``district_of()`` (a generated column, so no row trigger fires), then a plain column
    kept equal to it by the CHECK ``{table}_district_code_check``: Citus routes a write by
    the distribution column's value in the statement, which a generated column lacks."""
    execute(
        f"ALTER TABLE {table} ADD COLUMN {COLUMN} char(6) "
        f"GENERATED ALWAYS AS (district_of({unit_column})) STORED"
    )
    execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} DROP EXPRESSION")
    execute(f"ALTER TABLE {table} ALTER COLUMN {COLUMN} SET NOT NULL")
    execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_district_code_check "
        f"CHECK ({COLUMN} = district_of({unit_column}))"
    )


def from_parents(
    conn: Connection,
    table: str,
    sources: Collection[tuple[str, str, str]],
    *,
    execute: Callable[[str], object],
    also: Collection[str] = (),
) -> None:
    """``district_code`` added to ``table`` (nullable) and filled from each source
    ``(parent, parent column, column)`` in turn — one joined UPDATE per parent, for rows
    still without one (a correlated lookup per row would probe every month's index) —
    then by the ``also`` statements. Filling a column is no change of the row (case_event
    is append-only, migration 0002): the table's own enabled triggers are off meanwhile.
    The caller makes the column NOT NULL once it has dealt with what is left."""
    execute(f"ALTER TABLE {table} ADD COLUMN {COLUMN} char(6)")
    triggers = enabled_triggers(conn, table)
    for name in triggers:
        execute(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"')
    for parent, pcol, column in sources:
        execute(
            f"UPDATE {table} t SET {COLUMN} = p.{COLUMN} FROM {parent} p "
            f"WHERE p.{pcol} = t.{column} AND t.{COLUMN} IS NULL"
        )
    for statement in also:
        execute(statement)
    for name in triggers:
        execute(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"')


def drop_keys(members: dict[str, list[ForeignKey]], *, execute: Callable[[str], object]) -> None:
    """The family's foreign keys dropped (before their keys are remade)."""
    for table, fks in members.items():
        for name, *_ in fks:
            execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def composite_keys(
    members: dict[str, list[ForeignKey]], *, execute: Callable[[str], object]
) -> None:
    """The family's foreign keys (re)made composite: ``(column, district_code)
    REFERENCES parent (parent column, district_code)``, with their tails."""
    for table, fks in members.items():
        for name, column, parent, pcol, tail in fks:
            execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}, {COLUMN}) '
                f"REFERENCES {parent} ({pcol}, {COLUMN}){tail}"
            )


def single_keys(members: dict[str, list[ForeignKey]], *, execute: Callable[[str], object]) -> None:
    """The family's foreign keys made again on their one column (a downgrade)."""
    for table, fks in members.items():
        for name, column, parent, pcol, tail in fks:
            execute(
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" FOREIGN KEY ({column}) '
                f"REFERENCES {parent} ({pcol}){tail}"
            )
