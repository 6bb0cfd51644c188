"""Keep the database's word-list constraints and indexes equal to the Python vocabulary.

The migrations render CHECK constraints and partial-index predicates from
gis_service/vocabulary.py when they create them; a later change to a word list in its
Python home reaches an existing database here, on every ``gis-service db migrate``, with
no new migration: each constraint or index whose words differ from Python's is dropped
and made again (a CHECK is validated against the rows, so removing a word that rows
still use fails, naming the constraint).
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from gis_service.vocabulary import sql_constants

# (table, column, placeholder of vocabulary.sql_constants()): CHECK (column IN list).
CHECKS: tuple[tuple[str, str, str], ...] = (
    ("admin_unit", "level", "levels"),
    ("unit_staff", "role", "staff_roles"),
    ("team", "kind", "team_kinds"),
    ("app_user", "role", "account_roles"),
    ("case_category", "handling_level", "handling_levels"),
    ("cases", "status", "statuses"),
    ("cases", "priority", "priorities"),
    ("cases", "handling_level", "handling_levels"),
    ("cases", "parked_from", "parkable_statuses"),
    ("approval", "kind", "approval_kinds"),
    ("approval", "state", "approval_states"),
    ("case_template", "action", "template_actions"),
)
# Partial indexes of cases whose predicate is "status IN list": name → (placeholder, DDL).
INDEXES: dict[str, tuple[str, str]] = {
    "cases_open_geom_idx": (
        "open_statuses",
        "CREATE INDEX cases_open_geom_idx ON cases USING gist (geom) WHERE status IN {}",
    ),
    "cases_open_idx": (
        "deadline_statuses",
        "CREATE INDEX cases_open_idx ON cases (deadline_at) WHERE status IN {}",
    ),
}
_WORD = re.compile(r"'([^']*)'::text")


def words(sql_list: str) -> set[str]:
    """The words of an SQL list literal ``('a', 'b')``."""
    return set(re.findall(r"'([^']*)'", sql_list))


def sync(conn: Connection) -> list[str]:
    """Remake every constraint and index whose words differ from the vocabulary; returns
    what was remade (inside the caller's transaction)."""
    constants = sql_constants()
    remade = []
    for table, column, name in CHECKS:
        want = words(constants[name])
        rows = conn.execute(
            text(
                """
            SELECT c.conname, pg_get_constraintdef(c.oid) AS definition
              FROM pg_constraint c JOIN pg_attribute a
                ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'c'
               AND cardinality(c.conkey) = 1 AND a.attname = :c
            """
            ),
            {"t": table, "c": column},
        ).all()
        lists = [(r.conname, set(_WORD.findall(r.definition))) for r in rows]
        lists = [(n, found) for n, found in lists if found]
        if any(found == want for _, found in lists):
            continue
        for constraint, _ in lists:
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"'))
        constraint = f"{table}_{column}_check"
        conn.execute(
            text(
                f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" '
                f"CHECK ({column} IN {constants[name]})"
            )
        )
        remade.append(constraint)
    for index, (name, ddl) in INDEXES.items():
        predicate = conn.execute(
            text(
                "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                "WHERE i.indexrelid = to_regclass(:i)"
            ),
            {"i": index},
        ).scalar()
        if predicate is not None and set(_WORD.findall(predicate)) == words(constants[name]):
            continue
        conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
        conn.execute(text(ddl.format(constants[name])))
        remade.append(index)
    return remade
