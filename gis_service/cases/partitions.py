"""Monthly partitions of the case history: making the coming months', listing them,
detaching old ones for the archive (docs/scale.md, "History that grows").

``cases`` is partitioned by RANGE (id) and ``case_event`` by RANGE (case_id) on the same
bounds: a case id carries the month it was reported in (migration 0018_case_partitions,
whose SQL functions — ``case_month``, ``case_first_id``, ``case_in_period`` — are the one
home of the month rule; this module asks them, never recomputes it). Partition names:
``cases_y2026m12`` and ``case_event_y2026m12``; the rows from before partitioning are
``cases_legacy`` / ``case_event_legacy``.

A month must have its partitions before a case is reported in it: ``gis-service db
migrate``, the server's start and ``gis-service partitions ensure`` make the current month
and ``AHEAD`` months after it (run ``ensure`` monthly, e.g. from a systemd timer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis_service.errors import Conflict, InvalidInput

TABLES: tuple[str, ...] = ("cases", "case_event")
"""The partitioned tables, parent first: ``case_event`` follows its case's month."""

KEYS: dict[str, str] = {"cases": "id", "case_event": "case_id"}
"""Each table's partition key: a case id."""

LOCAL_UNIQUE: dict[str, tuple[tuple[str, str], ...]] = {
    "cases": (
        ("case_no_key", "(case_no, district_code)"),
        ("public_token_key", "(public_token, district_code) WHERE public_token IS NOT NULL"),
    ),
}
"""Unique rules kept per partition (a unique index on a partitioned table must include the
partition key): a case number carries its local reporting date, hence its month; a rating
token is a random UUID. Each holds the district code, as every unique key of a table
distributed by district must (gis_service/db/distribution.py, migration 0020): a case
number begins with it anyway."""

AHEAD = 3
"""Months made ahead of the current one."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NAME = re.compile(r"^(cases|case_event)_(?:y(\d{4})m(\d{2})|legacy)$")


@dataclass(frozen=True)
class Partition:
    """One month of one table: ``month`` is ``YYYY-MM`` (``legacy`` for the rows from
    before partitioning), ``rows`` the planner's estimate (-1: never analysed)."""

    table: str
    name: str
    month: str
    attached: bool
    rows: int


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month); InvalidInput naming the value otherwise."""
    m = _MONTH.match(value or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise InvalidInput(
            f"month {value!r} is not a month YYYY-MM from 2000-01 on (e.g. 2025-01)",
            field="month",
        )
    return int(m.group(1)), int(m.group(2))


def month_index(conn: Connection, value: str) -> int:
    """The month number of ``YYYY-MM`` (migration 0018's ``case_month_of``)."""
    year, month = parse_month(value)
    return int(conn.execute(text("SELECT case_month_of(:y, :m)"), {"y": year, "m": month}).scalar())


def partition_name(table: str, label: str) -> str:
    """``cases`` + ``2026-12`` → ``cases_y2026m12``."""
    year, month = label.split("-")
    return f"{table}_y{year}m{month}"


def months_around(conn: Connection, ahead: int = AHEAD) -> range:
    """The current month (in the partitions' zone) and ``ahead`` after it."""
    now = int(conn.execute(text("SELECT case_month(now())")).scalar())
    return range(now, now + ahead + 1)


def months_between(conn: Connection, first, last) -> range:
    """The months from the one holding instant ``first`` to the one holding ``last``."""
    a, b = conn.execute(
        text("SELECT case_month(:a), case_month(:b)"), {"a": first, "b": last}
    ).one()
    return range(int(a), int(b) + 1)


def ensure(
    conn: Connection,
    months: range,
    local_unique: dict[str, tuple[tuple[str, str], ...]] = LOCAL_UNIQUE,
) -> list[str]:
    """Make the partitions of ``months`` (month numbers) that do not exist, with their
    per-partition unique indexes (``local_unique``: a migration passes the ones of its own
    revision); returns the names made. Idempotent."""
    made: list[str] = []
    for m in months:
        label, lo, hi = conn.execute(
            text("SELECT case_month_label(:m), case_first_id(:m), case_first_id(:m + 1)"),
            {"m": m},
        ).one()
        for table in TABLES:
            name = partition_name(table, label)
            if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
                continue
            conn.execute(
                text(
                    f"CREATE TABLE {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ({int(lo)}) TO ({int(hi)})"
                )
            )
            for suffix, columns in local_unique.get(table, ()):
                conn.execute(text(f"CREATE UNIQUE INDEX {name}_{suffix} ON {name} {columns}"))
            made.append(name)
    return made


def listing(conn: Connection) -> list[Partition]:
    """Every month table, attached or detached, oldest first."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname, c.relispartition, c.reltuples::bigint
              FROM pg_class c
             WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
               AND c.relname ~ '^(cases|case_event)_(y[0-9]{4}m[0-9]{2}|legacy)$'
            """
        )
    ).all()
    out = []
    for name, attached, est in rows:
        m = _NAME.match(name)
        month = f"{m.group(2)}-{m.group(3)}" if m.group(2) else "legacy"
        out.append(Partition(m.group(1), name, month, bool(attached), int(est)))
    return sorted(out, key=lambda p: (p.month != "legacy", p.month, TABLES.index(p.table)))


def _blockers(conn: Connection, lo: int, hi: int) -> list[str]:
    """Rows outside the month tables that reference cases with ids in [lo, hi): a
    detached partition would leave them dangling."""
    fks = conn.execute(
        text(
            """
            SELECT conrelid::regclass::text, a.attname
              FROM pg_constraint c
              CROSS JOIN LATERAL unnest(c.conkey, c.confkey) k (col, ref)
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
             WHERE c.contype = 'f' AND c.confrelid = 'cases'::regclass
               AND conparentid = 0
               AND k.ref = (SELECT attnum FROM pg_attribute
                             WHERE attrelid = 'cases'::regclass AND attname = 'id')
             ORDER BY 1
            """
        )
    ).all()
    found = []
    for table, column in fks:
        if table in TABLES or table == "case_idempotency":
            continue
        n = conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {column} >= :lo AND {column} < :hi"),
            {"lo": lo, "hi": hi},
        ).scalar()
        if n:
            found.append(f"{table}.{column}: {n} rows")
    # a kept case that duplicates a case of the detached months
    n = conn.execute(
        text(
            "SELECT count(*) FROM cases WHERE duplicate_of >= :lo AND duplicate_of < :hi "
            "AND NOT (id >= :lo AND id < :hi)"
        ),
        {"lo": lo, "hi": hi},
    ).scalar()
    if n:
        found.append(f"cases.duplicate_of (later cases): {n} rows")
    return found


def detach_before(conn: Connection, month: str) -> list[str]:
    """Detach every attached month table before ``month`` (``YYYY-MM``), timelines first,
    and the legacy tables if all their rows are older. The tables stay in the database,
    queryable by name, for ``pg_dump -t`` to archive and ``DROP TABLE`` after; their
    foreign keys to ``cases`` are dropped (the kept history no longer holds them). Idempotency
    keys of those cases are deleted (a retry after months is not a retry).

    Raises InvalidInput for a bad month and Conflict, naming the tables and row counts,
    when rows outside the month tables (photos, approvals, reminders, duplicates) still
    reference those cases — nothing is detached then."""
    limit = month_index(conn, month)
    chosen = []
    for p in listing(conn):
        if not p.attached:
            continue
        if p.month == "legacy":
            last = conn.execute(
                text("SELECT max(case_month(reported_at)) FROM cases_legacy")
            ).scalar()
            if last is not None and last >= limit:
                continue
        elif month_index(conn, p.month) >= limit:
            continue
        chosen.append(p)
    if not chosen:
        return []
    lo = 1 if any(p.month == "legacy" for p in chosen) else None
    months = [month_index(conn, p.month) for p in chosen if p.month != "legacy"]
    if lo is None:
        lo = int(conn.execute(text("SELECT case_first_id(:m)"), {"m": min(months)}).scalar())
    hi = int(conn.execute(text("SELECT case_first_id(:m)"), {"m": limit}).scalar())
    blockers = _blockers(conn, lo, hi)
    if blockers:
        raise Conflict(
            f"cannot detach the months before {month}: rows elsewhere still reference "
            f"their cases ({'; '.join(blockers)})"
        )
    conn.execute(
        text("DELETE FROM case_idempotency WHERE case_id >= :lo AND case_id < :hi"),
        {"lo": lo, "hi": hi},
    )
    done = []
    for table in reversed(TABLES):  # the timeline references its cases: detach it first
        for p in chosen:
            if p.table == table:
                conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {p.name}"))
                # the archived month stands alone: its keys to the kept history go
                for (fk,) in conn.execute(
                    text(
                        "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                        "AND conrelid = CAST(:t AS regclass) AND confrelid = 'cases'::regclass"
                    ),
                    {"t": p.name},
                ).all():
                    conn.execute(text(f'ALTER TABLE {p.name} DROP CONSTRAINT "{fk}"'))
                done.append(p.name)
    return done


def period_sql(
    case_id: str, start: str | None, end: str | None, *, end_inclusive: bool = False
) -> str:
    """The id-range twin of a reporting period, for a WHERE clause beside the period's
    own ``reported_at`` terms: ``case_in_period(<case_id>, <start>, <end>)`` (migration
    0018), which the planner inlines into id bounds and prunes the month partitions with.

    ``case_id`` is the SQL of a case id (``c.id``, ``e.case_id``); ``start`` and ``end``
    SQL expressions of instants (timestamptz) — the period ``[start, end)``, or
    ``[start, end]`` with ``end_inclusive`` — None for an open side. Selects a superset of
    the period's cases (whole months): the ``reported_at`` terms stay the exact filter."""
    lo = f"CAST({start} AS timestamptz)" if start else "NULL"
    hi = "NULL"
    if end:
        hi = f"CAST({end} AS timestamptz)"
        if end_inclusive:
            hi = f"({hi} + interval '1 microsecond')"
    return f"case_in_period({case_id}, {lo}, {hi})"


def local_days_sql(first: str, last: str, tz: str) -> tuple[str, str]:
    """The instants ``[start, end)`` of the local days ``first`` to ``last`` (SQL of
    dates, both included) in zone ``tz`` (SQL of an IANA name): for :func:`period_sql`
    beside a ``(reported_at AT TIME ZONE tz)::date BETWEEN first AND last`` filter."""
    return (
        f"CAST({first} AS date)::timestamp AT TIME ZONE {tz}",
        f"(CAST({last} AS date) + 1)::timestamp AT TIME ZONE {tz}",
    )
