"""Cases and their timelines partitioned by month (issue 19 item 4; docs/scale.md
"History that grows").

Design: a case id carries its reporting month — ``id = month << 40 | n`` where ``month`` is
the month of ``reported_at`` in the service's zone counted from 2000-01 (= 1) and ``n``
comes from ``cases_id_seq``. ``cases`` is partitioned by RANGE (id) and ``case_event`` by
RANGE (case_id) on the same bounds, so one month of cases and its timeline live in
``cases_yYYYYmMM`` / ``case_event_yYYYYmMM``; the primary key stays ``(id)`` and every
foreign key to ``cases (id)`` stays as it was. ``case_in_period(id, from, to)`` turns a
reporting period into an id range the planner prunes with.

Existing rows keep their ids (below ``1 << 40``, "month 0") and become the ``*_legacy``
partitions (attached, not copied); ``case_in_period`` includes them only for periods that
overlap their months. Unique rules that cannot include the partition key:

* ``idempotency_key`` moves to ``case_idempotency`` (key → case id, one row per key), so
  a retried report is recognised across partitions;
* ``case_no`` and ``public_token`` are unique per partition: a case number carries its
  local reporting date (so its month), and a rating token is a random UUID.

The month functions are the layout's: defined here (the zone is fixed at this migration,
from ``GIS_TIMEZONE``), not in the .sql files that ``db migrate`` recreates, because the
id default and a CHECK constraint depend on them.

Revision ID: 0018_case_partitions
Revises: 0017_walks
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy import text

revision = "0018_case_partitions"
down_revision = "0017_walks"
branch_labels = None
depends_on = None

MONTH_BITS = 40
LEGACY = ("cases", "case_event")


def _functions(zone: str, legacy: tuple[int, int] | None) -> list[str]:
    """The layout's functions; ``legacy`` is the (first, last) month of the legacy rows."""
    q = zone.replace("'", "''")
    legacy_arm = (
        f"""
           OR (p_id < case_first_id(1)
               AND (p_from IS NULL OR case_month(p_from) <= {legacy[1]})
               AND (p_to IS NULL OR case_month_before(p_to) >= {legacy[0]}))"""
        if legacy
        else ""
    )
    return [
        # months counted from 2000-01 (= 1); month 0 is the legacy ids'
        """
        CREATE OR REPLACE FUNCTION case_month_of(p_year integer, p_month integer)
        RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN (p_year - 2000) * 12 + p_month
        """,
        """
        CREATE OR REPLACE FUNCTION case_month_label(p_month integer)
        RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN to_char(make_date(2000 + (p_month - 1) / 12, (p_month - 1) % 12 + 1, 1),
                       'YYYY-MM')
        """,
        f"""
        CREATE OR REPLACE FUNCTION case_month(p_at timestamptz)
        RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN case_month_of(extract(year FROM p_at AT TIME ZONE '{q}')::integer,
                             extract(month FROM p_at AT TIME ZONE '{q}')::integer)
        """,
        # the month of the last instant before p_at: a period's exclusive end
        f"""
        CREATE OR REPLACE FUNCTION case_month_before(p_at timestamptz)
        RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN case_month_of(
            extract(year FROM (p_at AT TIME ZONE '{q}') - interval '1 microsecond')::integer,
            extract(month FROM (p_at AT TIME ZONE '{q}') - interval '1 microsecond')::integer)
        """,
        f"""
        CREATE OR REPLACE FUNCTION case_month_start(p_month integer)
        RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN make_timestamp(2000 + (p_month - 1) / 12, (p_month - 1) % 12 + 1, 1, 0, 0, 0)
               AT TIME ZONE '{q}'
        """,
        f"""
        CREATE OR REPLACE FUNCTION case_first_id(p_month integer)
        RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN p_month::bigint << {MONTH_BITS}
        """,
        f"""
        CREATE OR REPLACE FUNCTION case_id_month(p_id bigint)
        RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN (p_id >> {MONTH_BITS})::integer
        """,
        # Cases reported in [p_from, p_to) (NULL: open) have ids in the months this names:
        # a plain SQL expression the planner inlines, so partition pruning sees id bounds.
        f"""
        CREATE OR REPLACE FUNCTION case_in_period(
            p_id bigint, p_from timestamptz, p_to timestamptz)
        RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT (p_id >= case_first_id(coalesce(case_month(p_from), 1))
                    AND p_id < case_first_id(coalesce(case_month_before(p_to), 8191) + 1)){
            legacy_arm
        }
        $$
        """,
    ]


NEW_ID = f"""
    CREATE OR REPLACE FUNCTION case_new_id(p_at timestamptz)
    RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
    RETURN case_first_id(case_month(p_at))
           + nextval('cases_id_seq') % (1::bigint << {MONTH_BITS})
    """


def _zone() -> str:
    from gis_service.settings import get_settings
    from gis_service.timezone import zone_name

    return zone_name(get_settings())


def _fks_to(conn, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of every foreign key that references one of ``tables``
    or that one of them holds."""
    rows = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' "
            "AND (confrelid = ANY(CAST(:t AS regclass[])) "
            "OR conrelid = ANY(CAST(:t AS regclass[]))) "
            "ORDER BY 1, 2"
        ),
        {"t": list(tables)},
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _legacy_name(table: str, name: str) -> str:
    return f"{table}_legacy{name.removeprefix(table)}"


def upgrade() -> None:
    from gis_service.cases import partitions
    from gis_service.db import sqlfiles

    conn = op.get_bind()
    # the .sql functions take the cases row type: recreated by `db migrate` at head
    sqlfiles.drop_all(conn)
    legacy_ids = conn.execute(text("SELECT max(id) FROM cases")).scalar()
    if legacy_ids is not None and legacy_ids >= 1 << MONTH_BITS:
        raise RuntimeError(
            f"case id {legacy_ids} is not below 2^{MONTH_BITS}: the legacy partition cannot hold it"
        )
    zone = _zone()
    for ddl in _functions(zone, None):
        op.execute(ddl)
    legacy = None
    if legacy_ids is not None:
        span = conn.execute(
            text("SELECT case_month(min(reported_at)), case_month(max(reported_at)) FROM cases")
        ).one()
        legacy = (int(span[0]), int(span[1]))
    for ddl in _functions(zone, legacy):
        op.execute(ddl)

    fks = _fks_to(conn, LEGACY)
    for table, name, _ in fks:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    triggers: list[tuple[str, str, str]] = []
    for table in LEGACY:
        for name, ddl in conn.execute(
            text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
            ),
            {"t": table},
        ).all():
            triggers.append((table, name, ddl))
            op.execute(f'DROP TRIGGER "{name}" ON {table}')
    indexes = {
        t: conn.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid), x.indisunique "
                "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary"
            ),
            {"t": t},
        ).all()
        for t in LEGACY
    }

    # -- cases: the old table becomes the legacy partition
    op.execute("ALTER TABLE cases ALTER COLUMN id DROP IDENTITY IF EXISTS")
    op.execute("ALTER TABLE cases RENAME TO cases_legacy")
    op.execute("ALTER TABLE cases_legacy RENAME CONSTRAINT cases_pkey TO cases_legacy_pkey")
    op.execute(
        "CREATE TABLE cases (LIKE cases_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (id)"
    )
    op.execute("CREATE SEQUENCE cases_id_seq OWNED BY cases.id")
    if legacy_ids is not None:
        op.execute(f"SELECT setval('cases_id_seq', {legacy_ids})")
    op.execute(NEW_ID)
    op.execute("ALTER TABLE cases ALTER COLUMN id SET DEFAULT case_new_id(now())")
    op.execute("ALTER TABLE cases ADD PRIMARY KEY (id)")
    # -- the timeline follows its case
    op.execute("ALTER TABLE case_event ALTER COLUMN id DROP IDENTITY IF EXISTS")
    op.execute("ALTER TABLE case_event RENAME TO case_event_legacy")
    op.execute("ALTER TABLE case_event_legacy DROP CONSTRAINT case_event_pkey")
    op.execute(
        "CREATE TABLE case_event (LIKE case_event_legacy INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) "
        "PARTITION BY RANGE (case_id)"
    )
    legacy_events = conn.execute(text("SELECT max(id) FROM case_event_legacy")).scalar()
    op.execute("CREATE SEQUENCE case_event_id_seq OWNED BY case_event.id")
    if legacy_events is not None:
        op.execute(f"SELECT setval('case_event_id_seq', {legacy_events})")
    op.execute("ALTER TABLE case_event ALTER COLUMN id SET DEFAULT nextval('case_event_id_seq')")
    op.execute("ALTER TABLE case_event ADD PRIMARY KEY (case_id, id)")

    # indexes on the parents (their names): the legacy tables' own, renamed, are attached
    # to them when the tables are, not rebuilt. Unique ones stay the legacy table's own.
    for table, rows in indexes.items():
        for name, ddl, unique in rows:
            if unique:
                continue
            op.execute(f'ALTER INDEX "{name}" RENAME TO "{_legacy_name(table, name)}"')
            op.execute(ddl)
    # the idempotency keys, unique across every month
    op.execute(
        """
        CREATE TABLE case_idempotency (
            idempotency_key  text PRIMARY KEY,
            case_id          bigint NOT NULL
        )
        """
    )
    op.execute(
        "INSERT INTO case_idempotency SELECT idempotency_key, id FROM cases_legacy "
        "WHERE idempotency_key IS NOT NULL"
    )
    op.execute("ALTER TABLE cases_legacy DROP CONSTRAINT IF EXISTS cases_idempotency_key_key")
    if legacy_ids is not None:
        # a legacy row's months: the CHECK makes case_in_period's legacy arm exact
        op.execute(
            "ALTER TABLE cases_legacy ADD CONSTRAINT cases_legacy_month_check CHECK "
            f"(case_month(reported_at) BETWEEN {legacy[0]} AND {legacy[1]})"
        )
        first = 1 << MONTH_BITS
        op.execute(
            f"ALTER TABLE cases ATTACH PARTITION cases_legacy FOR VALUES FROM (1) TO ({first})"
        )
        op.execute(
            f"ALTER TABLE case_event ATTACH PARTITION case_event_legacy "
            f"FOR VALUES FROM (1) TO ({first})"
        )
    else:
        op.execute("DROP TABLE cases_legacy")
        op.execute("DROP TABLE case_event_legacy")
    # a case's id names the month it was reported in (month 0: the legacy ids)
    op.execute(
        "ALTER TABLE cases ADD CONSTRAINT cases_id_month_check "
        "CHECK (case_id_month(id) IN (0, case_month(reported_at)))"
    )
    for _table, _name, ddl in triggers:
        op.execute(ddl)
    for table, name, ddl in fks:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
    op.execute(
        "ALTER TABLE case_idempotency ADD CONSTRAINT case_idempotency_case_id_fkey "
        "FOREIGN KEY (case_id) REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED"
    )
    # the per-partition unique indexes as of this revision (0020 adds the district code)
    unique = {
        "cases": (
            ("case_no_key", "(case_no)"),
            ("public_token_key", "(public_token) WHERE public_token IS NOT NULL"),
        )
    }
    partitions.ensure(conn, partitions.months_around(conn), unique)


def downgrade() -> None:
    raise RuntimeError(
        "0018_case_partitions cannot be undone in place: case ids now carry their month "
        "and the history is split by month. Restore the backup taken before the upgrade "
        "(gis-service backup), or dump the data and load it into a database at 0017_walks."
    )
