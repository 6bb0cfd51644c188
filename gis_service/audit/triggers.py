"""The triggers that write the audit log, made from the list in tables.py.

``gis-service db migrate`` calls :func:`sync` after the migrations (like
db/vocabulary_checks.py): the functions are created or replaced and the triggers brought to
:data:`~gis_service.audit.tables.AUDITED` (missing or changed ones made, unlisted ones
dropped), so adding a table to the list needs no migration. The table itself and its
append-only rule are migration 0007.

Who and from where come from transaction-local settings the service sets when a
transaction begins (actor.py): ``gis.actor``, ``gis.actor_id``, ``gis.address``,
``gis.request_id``. A change made without them (psql, a script) is still recorded, as
``db:<database role>`` from the connection's client address (``local`` over a socket).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text

from gis_service.audit.tables import AUDITED, BULK_KEYS, REDACTED, Audited

#: the functions this module makes; a trigger calling one of them is an audit trigger
#: (audit_log's own append-only trigger is the migration's and is left alone)
FUNCTIONS = ("audit_row", "audit_statement", "audit_actor", "audit_address")

FUNCTIONS_SQL = f"""
CREATE OR REPLACE FUNCTION audit_actor() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('gis.actor', true), ''), 'db:' || session_user)
$$;

CREATE OR REPLACE FUNCTION audit_address() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('gis.address', true), ''),
                    host(inet_client_addr()), 'local')
$$;

-- One row: arguments (key column, redacted columns, ignored columns, watched columns).
CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key_column text := TG_ARGV[0];
    redacted   text[] := TG_ARGV[1]::text[];
    ignored    text[] := TG_ARGV[2]::text[];
    watched    text[] := TG_ARGV[3]::text[];
    before     jsonb;
    after      jsonb;
    diff       text[];
    col        text;
BEGIN
    IF TG_OP <> 'INSERT' THEN before := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN after := to_jsonb(NEW); END IF;
    IF cardinality(watched) > 0 THEN
        before := (SELECT jsonb_object_agg(k, v) FROM jsonb_each(before) e (k, v)
                    WHERE k = ANY (watched || key_column));
        after := (SELECT jsonb_object_agg(k, v) FROM jsonb_each(after) e (k, v)
                   WHERE k = ANY (watched || key_column));
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(k ORDER BY k) INTO diff FROM jsonb_each(after) e (k, v)
         WHERE v IS DISTINCT FROM before -> k AND k <> ALL (ignored);
        IF diff IS NULL THEN
            RETURN NULL;  -- nothing but bookkeeping changed
        END IF;
    END IF;
    FOREACH col IN ARRAY redacted LOOP
        IF before -> col IS NOT NULL AND before -> col <> 'null' THEN
            before := jsonb_set(before, ARRAY[col], to_jsonb('{REDACTED}'::text));
        END IF;
        IF after -> col IS NOT NULL AND after -> col <> 'null' THEN
            after := jsonb_set(after, ARRAY[col], to_jsonb('{REDACTED}'::text));
        END IF;
    END LOOP;
    INSERT INTO audit_log (actor, actor_id, address, request_id, table_name, operation,
                           target, changed, old, new)
    VALUES (audit_actor(), nullif(current_setting('gis.actor_id', true), '')::integer,
            audit_address(), nullif(current_setting('gis.request_id', true), ''),
            -- a month partition's row is the partitioned table's (cases/partitions.py)
            (SELECT relname FROM pg_class
              WHERE oid = coalesce(pg_partition_root(TG_RELID), TG_RELID)),
            TG_OP, coalesce(after, before) ->> key_column, diff, before, after);
    RETURN NULL;
END $$;

-- One statement on a bulk table: its row count and the first keys (argument: the key
-- column). The transition tables are old_rows / new_rows.
CREATE OR REPLACE FUNCTION audit_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key_column text := TG_ARGV[0];
    source     text := CASE TG_OP WHEN 'DELETE' THEN 'old_rows' ELSE 'new_rows' END;
    n          bigint;
    keys       jsonb;
BEGIN
    IF TG_OP <> 'TRUNCATE' THEN
        EXECUTE format(
            'SELECT count(*), (SELECT jsonb_agg(k) FROM (SELECT %1$I::text AS k FROM %2$I '
            'ORDER BY 1 LIMIT {BULK_KEYS}) s) FROM %2$I', key_column, source)
           INTO n, keys;
        IF n = 0 THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO audit_log (actor, actor_id, address, request_id, table_name, operation,
                           rows, old, new)
    VALUES (audit_actor(), nullif(current_setting('gis.actor_id', true), '')::integer,
            audit_address(), nullif(current_setting('gis.request_id', true), ''),
            TG_TABLE_NAME, TG_OP, n,
            CASE WHEN TG_OP = 'DELETE' THEN jsonb_build_object('keys', keys) END,
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN jsonb_build_object('keys', keys) END);
    RETURN NULL;
END $$;
"""


def _array(values: tuple[str, ...]) -> str:
    """A text[] literal as a trigger argument: '{a,b}'."""
    return "'{" + ",".join(values) + "}'"


def trigger_sql(a: Audited) -> list[str]:
    """The CREATE TRIGGER statements for one audited table."""
    if a.bulk:
        key = f"'{a.key}'"
        return [
            f"CREATE TRIGGER audit_insert AFTER INSERT ON {a.table} "
            "REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_statement({key})",
            f"CREATE TRIGGER audit_update AFTER UPDATE ON {a.table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_statement({key})",
            f"CREATE TRIGGER audit_delete AFTER DELETE ON {a.table} "
            "REFERENCING OLD TABLE AS old_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_statement({key})",
            f"CREATE TRIGGER audit_truncate AFTER TRUNCATE ON {a.table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_statement({key})",
        ]
    args = ", ".join([f"'{a.key}'", _array(a.redact), _array(a.ignore), _array(a.columns)])
    if a.columns:
        # a watched column changing from a value already set (a deadline being set on
        # acceptance is the workflow's, recorded in the case timeline)
        when = " OR ".join(
            f"(OLD.{c} IS NOT NULL AND OLD.{c} IS DISTINCT FROM NEW.{c})" for c in a.columns
        )
        return [
            f"CREATE TRIGGER audit_row AFTER UPDATE OF {', '.join(a.columns)} ON {a.table} "
            f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION audit_row({args})"
        ]
    return [
        f"CREATE TRIGGER audit_row AFTER INSERT OR UPDATE OR DELETE ON {a.table} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_row({args})"
    ]


def _present(conn: Connection) -> dict[tuple[str, str], str | None]:
    """(table, trigger) → the fingerprint its comment holds, for every audit trigger."""
    rows = conn.execute(
        text(
            "SELECT t.tgrelid::regclass::text, t.tgname, obj_description(t.oid, 'pg_trigger') "
            "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND t.tgparentid = 0 "
            "AND p.proname = ANY(:functions)"
        ),
        {"functions": list(FUNCTIONS)},
    ).all()
    return {(table, name): comment for table, name, comment in rows}


def _drop_triggers(conn: Connection, which: set[tuple[str, str]] | None = None) -> None:
    for table, name in which if which is not None else set(_present(conn)):
        conn.execute(text(f'DROP TRIGGER IF EXISTS "{name}" ON {table}'))


def wanted() -> dict[tuple[str, str], str]:
    """(table, trigger) → its CREATE TRIGGER statement, for every table in the list."""
    out = {}
    for audited in AUDITED:
        for statement in trigger_sql(audited):
            name = statement.split()[2]
            out[(audited.table, name)] = statement
    return out


def _fingerprint(statement: str) -> str:
    return "audit " + hashlib.sha256(statement.encode("utf-8")).hexdigest()[:16]


def sync(conn: Connection) -> list[str]:
    """Create or replace the audit functions, and bring the triggers to the list (inside
    the caller's transaction): a trigger is remade only when its statement changed (each
    carries its statement's fingerprint as its comment), so a migrate that changes
    nothing takes no lock on the audited tables. Returns the triggers (re)made."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        # the raw DB-API cursor: no parameter markers, so format()'s %1$I stays as written
        cursor.execute(FUNCTIONS_SQL)
    finally:
        cursor.close()
    want = wanted()
    present = _present(conn)
    stale = {
        k for k, comment in present.items() if k not in want or comment != _fingerprint(want[k])
    }
    _drop_triggers(conn, stale)
    made = []
    for (table, name), statement in want.items():
        if (table, name) in present and (table, name) not in stale:
            continue
        conn.execute(text(statement))
        conn.execute(text(f"COMMENT ON TRIGGER {name} ON {table} IS '{_fingerprint(statement)}'"))
        made.append(f"{table}.{name}")
    return made


def drop_all(conn: Connection) -> None:
    """Drop the triggers and their functions (the migration's downgrade)."""
    _drop_triggers(conn)
    for name in FUNCTIONS:
        conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


def triggers_present(conn: Connection) -> dict[str, set[str]]:
    """table → names of the audit triggers it has (the tests' check)."""
    rows = conn.execute(
        text(
            "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND t.tgparentid = 0 "
            "AND p.proname IN ('audit_row', 'audit_statement')"
        )
    ).all()
    out: dict[str, set[str]] = {}
    for table, name in rows:
        out.setdefault(table, set()).add(name)
    return out
