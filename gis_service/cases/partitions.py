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
from gis_service.settings import Settings
from gis_service.timezone import zone_name

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


def _bounds(conn: Connection, month: str) -> tuple[int, int]:
    """The id range ``[lo, hi)`` of a month label (``legacy``: the ids before month 1)."""
    if month == "legacy":
        return 1, int(conn.execute(text("SELECT case_first_id(1)")).scalar_one())
    m = month_index(conn, month)
    lo, hi = conn.execute(text("SELECT case_first_id(:m), case_first_id(:m + 1)"), {"m": m}).one()
    return int(lo), int(hi)


def _suffix(p: Partition) -> str:
    """``cases_y2025m01`` → ``y2025m01``; ``cases_legacy`` → ``legacy``."""
    return p.name.removeprefix(p.table + "_")


def _refusals(conn: Connection, settings: Settings, limit: str, lo: int, hi: int) -> list[str]:
    """Why the cases with ids in ``[lo, hi)`` — the months before ``limit`` — cannot leave
    the live history: the month ``limit`` is inside the roll-up's recent window (its days
    are not folded: stats/rollup.py), cases still open (the cube and the desk hold them),
    or later cases marked as their duplicates (a key the archive cannot take along)."""
    from gis_service.cases.workflow import OPEN_STATUSES
    from gis_service.stats import rollup

    found = []
    boundary = rollup.boundary(settings)
    starts = conn.execute(
        text("SELECT (case_month_start(:m) AT TIME ZONE :tz)::date"),
        {"m": month_index(conn, limit), "tz": zone_name(settings)},
    ).scalar_one()
    if starts > boundary:
        found.append(
            f"{limit} is inside the statistics' recent window (days from "
            f"{boundary.isoformat()} on, stats_recent_days={settings.stats_recent_days}): "
            f"--before {boundary.strftime('%Y-%m')} at the latest"
        )
    n = conn.execute(
        text("SELECT count(*) FROM cases WHERE id >= :lo AND id < :hi AND status = ANY(:open)"),
        {"lo": lo, "hi": hi, "open": [str(s) for s in OPEN_STATUSES]},
    ).scalar_one()
    if n:
        found.append(f"{n} cases still open ({', '.join(OPEN_STATUSES)})")
    n = conn.execute(
        text(
            "SELECT count(*) FROM cases WHERE duplicate_of >= :lo AND duplicate_of < :hi "
            "AND NOT (id >= :lo AND id < :hi)"
        ),
        {"lo": lo, "hi": hi},
    ).scalar_one()
    if n:
        found.append(f"cases.duplicate_of: {n} later cases are duplicates of theirs")
    return found


def detach_before(conn: Connection, month: str, settings: Settings) -> list[str]:
    """Detach every attached month before ``month`` (``YYYY-MM``) from the live history,
    with the legacy tables if all their rows are older, in the caller's transaction. For
    each month: the rows of other tables that reference its cases (photos, approvals,
    locks, reminders and their outbox, retry keys — found from the foreign keys) move to
    ``archive.<table>_<suffix>`` (cases/archive.py), then ``case_event_<suffix>`` and
    ``cases_<suffix>`` are detached and their keys to the kept history dropped. The month
    stands alone: queryable by name, ``pg_dump -t`` to archive, ``attach`` to bring back.
    The roll-up is folded first, so the statistics keep counting the detached days
    (stats/rollup.py; a detach neither adds to nor takes from it). Returns the tables
    detached and made, ``archive.`` ones with their row counts (``archive.x_y2025m01 (3)``).

    Raises InvalidInput for a bad month, Conflict naming every reason when ``month`` is
    inside the roll-up's recent window, a chosen month still has open cases, or later
    cases are duplicates of its cases — nothing is changed then."""
    from gis_service.cases import archive
    from gis_service.stats import rollup

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
    lo = min((_bounds(conn, p.month)[0] for p in chosen), default=None)
    hi = _bounds(conn, month)[0]
    refusals = _refusals(conn, settings, month, hi if lo is None else lo, hi)
    if refusals:
        raise Conflict(f"cannot detach the months before {month}: {'; '.join(refusals)}")
    if not chosen:
        return []
    rollup.fold(conn, settings)
    refs = archive.references(conn, TABLES)
    done = []
    for suffix in dict.fromkeys(_suffix(p) for p in chosen):
        month_tables = {p.table: p.name for p in chosen if _suffix(p) == suffix}
        for table, n in archive.move_out(conn, suffix, month_tables, refs).items():
            done.append(f"{archive.archive_name(table, suffix)} ({n})")
        for table in reversed(TABLES):  # the timeline references its cases: detach it first
            if table not in month_tables:
                continue
            name = month_tables[table]
            conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
            # the archived month stands alone: its keys to the kept history go
            for (fk,) in conn.execute(
                text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                    "AND conrelid = CAST(:t AS regclass) AND confrelid = 'cases'::regclass"
                ),
                {"t": name},
            ).all():
                conn.execute(text(f'ALTER TABLE {name} DROP CONSTRAINT "{fk}"'))
            done.append(name)
    return done


def attach(conn: Connection, month: str) -> list[str]:
    """Attach the detached month ``month`` (``YYYY-MM`` or ``legacy``) again, in the
    caller's transaction: ``cases_<suffix>`` then ``case_event_<suffix>`` (PostgreSQL
    checks their rows against the month's id range and every key of the parents), then the
    archived rows of other tables back into them (cases/archive.py), parents first, and the
    archive tables dropped. Returns the tables attached and the rows moved back
    (``case_photo (3)``).

    Raises InvalidInput for a bad month or a month with no tables (never made, or dropped
    after archiving), Conflict when it is attached."""
    from gis_service.cases import archive

    if month != "legacy":
        parse_month(month)
    tables = {p.table: p for p in listing(conn) if p.month == month}
    if "cases" not in tables:
        name = "cases_legacy" if month == "legacy" else partition_name("cases", month)
        raise InvalidInput(
            f"month {month} has no table {name} (never made, or dropped after archiving): "
            "`gis-service partitions list` shows the months there are",
            field="month",
        )
    if tables["cases"].attached:
        raise Conflict(f"month {month} is attached already ({tables['cases'].name})")
    lo, hi = _bounds(conn, month)
    done = []
    for table in TABLES:  # the cases first: the timeline's key references them
        p = tables.get(table)
        if p is None or p.attached:
            continue
        conn.execute(
            text(f"ALTER TABLE {table} ATTACH PARTITION {p.name} FOR VALUES FROM ({lo}) TO ({hi})")
        )
        done.append(p.name)
    refs = archive.references(conn, TABLES)
    for table, n in archive.move_back(conn, _suffix(tables["cases"]), refs).items():
        done.append(f"{table} ({n})")
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
