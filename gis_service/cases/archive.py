"""The rows that go with a detached month: every row of a non-partitioned table that
references one of the month's cases — directly (photos, approvals, case locks, reminders,
retry keys) or through another such row (a reminder's outbox entries) — moved into the
``archive`` schema in the transaction that detaches the month, and moved back when it is
attached again (cases/partitions.py, docs/scale.md "History that grows").

Which tables: the foreign keys in ``pg_constraint``, walked from ``cases`` and
``case_event`` outwards, never a typed list — a table that starts referencing a case is
archived with its month from then on. Where: ``archive.<table>_<suffix>`` beside the
month's ``cases_<suffix>`` / ``case_event_<suffix>`` (suffix ``y2025m01``, or ``legacy``),
made ``(LIKE <table>)`` — the same columns, no keys — so the detached month stands alone
for ``pg_dump -t 'cases_y2025m01' -t 'case_event_y2025m01' -t 'archive.*_y2025m01'``.

Rows are copied by column *name* taken from the catalogue at run time (``SELECT *`` into a
table made ``LIKE`` the source at that moment; back into the live table by the names the
two share), so a column added by a later migration costs nothing: the archived rows come
back with that column's default. Photo files on disk are not moved: an archived photo's
``sha256`` still names its file (cases/photos.py ``path_for``), which stays where it is
(content-addressed, it may be shared with a kept photo; it is served again after
the month is attached).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

SCHEMA = "archive"
"""The schema that holds the archived rows of detached months."""


@dataclass(frozen=True)
class Reference:
    """A foreign key ``table(columns) → parent(parent_columns)``."""

    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def references(conn: Connection, partitioned: tuple[str, ...]) -> list[Reference]:
    """Every foreign key that points, directly or through other tables, at one of the
    ``partitioned`` tables (``cases``, ``case_event``), from tables outside them — parents'
    keys before their children's (breadth first from the partitioned tables). A table's
    keys to itself are left out (its rows move together)."""
    rows = conn.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
                   ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                          ORDER BY k.i),
                   ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                           JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                          ORDER BY k.i)
              FROM pg_constraint c
             WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid <> c.confrelid
               AND c.connamespace = current_schema()::regnamespace
             ORDER BY 1, 2, c.conname
            """
        )
    ).all()
    reached = list(partitioned)
    out: list[Reference] = []
    frontier = list(partitioned)
    while frontier:
        nxt: list[str] = []
        for table, parent, cols, pcols in rows:
            if parent in frontier and table not in partitioned:
                out.append(Reference(table, tuple(cols), parent, tuple(pcols)))
                if table not in reached:
                    reached.append(table)
                    nxt.append(table)
        frontier = nxt
    return out


def tables(refs: list[Reference]) -> list[str]:
    """The tables holding referencing rows, parents before children."""
    seen: list[str] = []
    for r in refs:
        if r.table not in seen:
            seen.append(r.table)
    # a table reached early but also referencing a later one moves after it
    order: list[str] = []

    def visit(t: str, path: tuple[str, ...] = ()) -> None:
        if t in order or t in path:
            return
        for r in refs:
            if r.table == t and r.parent in seen:
                visit(r.parent, (*path, t))
        order.append(t)

    for t in seen:
        visit(t)
    return order


def archive_name(table: str, suffix: str) -> str:
    """``case_photo`` + ``y2025m01`` → ``archive.case_photo_y2025m01``."""
    return f"{SCHEMA}.{_q(f'{table}_{suffix}')}"


def _condition(refs: list[Reference], table: str, source: dict[str, str]) -> str:
    """The rows of ``table`` that reference a row being archived: any of its keys into a
    table whose month rows are in ``source`` (parent → SQL of the rows' relation)."""
    terms = []
    for r in refs:
        if r.table != table or r.parent not in source:
            continue
        cols = ", ".join(_q(c) for c in r.columns)
        pcols = ", ".join(_q(c) for c in r.parent_columns)
        terms.append(f"({cols}) IN (SELECT {pcols} FROM {source[r.parent]})")
    return " OR ".join(terms) or "false"


def move_out(
    conn: Connection, suffix: str, partitions: dict[str, str], refs: list[Reference]
) -> dict[str, int]:
    """Move the rows that reference the month's rows into ``archive.<table>_<suffix>``,
    in the caller's transaction. ``partitions`` maps each partitioned table to its month
    table (``cases`` → ``cases_y2025m01``), still attached. Copies parents first (a child's
    rows are found through its parent's archived rows), then deletes children first (no
    key is broken half-way, no ON DELETE CASCADE removes a row before it is copied).
    Returns rows moved per table (tables with none get no archive table)."""
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    source = {t: _q(name) for t, name in partitions.items()}
    order = tables(refs)
    moved: dict[str, int] = {}
    conditions: dict[str, str] = {}
    for table in order:
        cond = _condition(refs, table, source)
        target = archive_name(table, suffix)
        conn.execute(text(f"CREATE TABLE {target} (LIKE {_q(table)})"))
        n = conn.execute(
            text(f"INSERT INTO {target} SELECT * FROM {_q(table)} WHERE {cond}")
        ).rowcount
        source[table] = target
        conditions[table] = cond
        moved[table] = n
    for table in reversed(order):
        if moved[table]:
            conn.execute(text(f"DELETE FROM {_q(table)} WHERE {conditions[table]}"))
        else:
            conn.execute(text(f"DROP TABLE {archive_name(table, suffix)}"))
    return {t: n for t, n in moved.items() if n}


def archived(conn: Connection, suffix: str) -> list[str]:
    """The live tables that have archived rows for ``suffix``."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = to_regnamespace(:s) AND c.relkind = 'r'
               AND right(c.relname, length(:x) + 1) = '_' || :x
            """
        ),
        {"s": SCHEMA, "x": suffix},
    ).all()
    return [name[: -len(suffix) - 1] for (name,) in rows]


def move_back(conn: Connection, suffix: str, refs: list[Reference]) -> dict[str, int]:
    """Put the archived rows of ``suffix`` back into their live tables, parents first,
    and drop the archive tables; in the caller's transaction, after the month's partitions
    are attached again. Columns by the names both tables have (identity columns keep their
    archived values). Returns rows moved back per table."""
    have = archived(conn, suffix)
    order = [t for t in tables(refs) if t in have] + sorted(
        t for t in have if t not in tables(refs)
    )
    back: dict[str, int] = {}
    for table in order:
        target = archive_name(table, suffix)
        cols = conn.execute(
            text(
                """
                SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                  FROM pg_attribute a
                 WHERE a.attrelid = to_regclass(:live) AND a.attnum > 0
                   AND NOT a.attisdropped AND a.attgenerated = ''
                   AND EXISTS (SELECT 1 FROM pg_attribute b
                                WHERE b.attrelid = to_regclass(:arch) AND b.attname = a.attname
                                  AND b.attnum > 0 AND NOT b.attisdropped)
                """
            ),
            {"live": _q(table), "arch": target},
        ).scalar_one()
        back[table] = conn.execute(
            text(
                f"INSERT INTO {_q(table)} ({cols}) OVERRIDING SYSTEM VALUE "
                f"SELECT {cols} FROM {target}"
            )
        ).rowcount
        conn.execute(text(f"DROP TABLE {target}"))
    return back
