"""Moving a test case back in time as if it had been reported then.

A case id carries the month it was reported in and ``cases`` is partitioned by it
(gis_service/cases/partitions.py, migration 0018_case_partitions): a test that wants an
older case cannot just change ``reported_at`` — the database refuses a reporting time
outside the id's month. ``reported_at`` gives the case the id and the number it would
have had, moves it (and every row that references it) to that month's partition and sets
the time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from gis_service.cases import numbers, partitions
from gis_service.db.engine import transaction
from gis_service.settings import Settings
from gis_service.timezone import zone_name


def _references(conn: Connection) -> list[tuple[str, str]]:
    """(table, column) of every foreign key to cases (on partitioned tables, the parent's)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            text(
                """
                SELECT c.conrelid::regclass::text, a.attname
                  FROM pg_constraint c
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                 WHERE c.contype = 'f' AND c.confrelid = 'cases'::regclass
                   AND c.conparentid = 0
                """
            )
        )
    ]


def reported_at(settings: Settings, case_id: int, at: datetime | str) -> int:
    """Make case ``case_id`` reported at ``at`` (an instant, or SQL text such as
    ``now() - interval '7 hours'``); returns its id, which changes when the month does.
    Test-only: runs with triggers and foreign-key checks off (session_replication_role),
    updating every reference itself."""
    when = text("SELECT " + at) if isinstance(at, str) else None
    with transaction(settings) as conn:
        moment = conn.execute(when).scalar() if when is not None else at
        new = conn.execute(
            text(
                "SELECT case_first_id(case_month(:t)) "
                "+ (CAST(:i AS bigint) - case_first_id(case_id_month(:i)))"
            ),
            {"t": moment, "i": case_id},
        ).scalar_one()
        # its number carries the new local date too (cases/numbers.py)
        number = conn.execute(
            text("SELECT case_no FROM cases WHERE id = :i"), {"i": case_id}
        ).scalar_one()
        day = conn.execute(
            text("SELECT (CAST(:t AS timestamptz) AT TIME ZONE :tz)::date"),
            {"t": moment, "tz": zone_name(settings)},
        ).scalar_one()
        values = {"n": new, "t": moment, "i": case_id, "no": numbers.with_day(number, day)}
        if new == case_id:
            conn.execute(
                text("UPDATE cases SET reported_at = :t, case_no = :no WHERE id = :i"), values
            )
            return case_id
        partitions.ensure(conn, partitions.months_between(conn, moment, moment))
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE cases SET id = :n, reported_at = :t, case_no = :no WHERE id = :i"), values
        )
        for table, column in _references(conn):
            conn.execute(
                text(f"UPDATE {table} SET {column} = :n WHERE {column} = :i"),
                {"n": new, "i": case_id},
            )
    return new
