"""The PostgreSQL client programs (pg_dump, pg_restore, pg_basebackup, pg_verifybackup) and
how they reach the database: the same server and user as the app (Settings), passed in
libpq's environment variables so a password never shows in the process list (PostgreSQL
docs §34.15, "Environment Variables")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg2
from psycopg2.extensions import parse_dsn

from gis_service.backup.manifest import BackupError
from gis_service.db import cluster
from gis_service.settings import Settings


def program(name: str) -> Path:
    """A client program from the same PostgreSQL installation as the local cluster (Debian
    keeps them off PATH); pg_dump must be at least as new as the server it dumps."""
    path = cluster.pg_bindir() / name
    if not path.exists():
        raise BackupError(f"{name} not found next to pg_ctl in {path.parent}")
    return path


def libpq_env(settings: Settings, dbname: str | None = None) -> dict[str, str]:
    """PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (and PGTARGETSESSIONATTRS) for the
    app's database (or ``dbname`` on the same server). The URL is read by libpq's own
    parser (``psycopg2.extensions.parse_dsn``), so a cluster's several hosts
    (``h1:p1,h2:p2``, docs/scale.md) reach pg_dump and pg_restore as the lists libpq takes,
    with the URL's ``target_session_attrs`` (read-write: the primary)."""
    params = parse_dsn(settings.libpq_url)
    env = {**os.environ}
    for var, value in (
        ("PGHOST", params.get("host") or "127.0.0.1"),
        ("PGPORT", params.get("port") or "5432"),
        ("PGUSER", params.get("user") or ""),
        ("PGPASSWORD", params.get("password") or ""),
        ("PGDATABASE", dbname or params.get("dbname") or ""),
        ("PGTARGETSESSIONATTRS", params.get("target_session_attrs") or ""),
    ):
        if value:
            env[var] = value
        else:
            env.pop(var, None)
    return env


def connect(settings: Settings, dbname: str | None = None):
    """A psycopg2 connection to the app's server (the primary of a cluster), to ``dbname``
    (default: the app's)."""
    env = libpq_env(settings, dbname)
    return psycopg2.connect(
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env.get("PGUSER"),
        password=env.get("PGPASSWORD"),
        dbname=env.get("PGDATABASE"),
        target_session_attrs=env.get("PGTARGETSESSIONATTRS", "any"),
        connect_timeout=10,
    )


def run(cmd: list[str | Path], what: str, env: dict[str, str] | None = None) -> str:
    """Run a client program; a failure raises BackupError with its last lines of stderr."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
        raise BackupError(f"{what} failed (exit {done.returncode}): " + " | ".join(tail))
    return done.stdout


# The tables that hold the app's data: ordinary and partitioned tables outside the system
# schemas that no extension owns (PostGIS's spatial_ref_sys and topology tables are the
# extension's; pg_dump writes them with the extension). A database with none is empty.
USER_TABLES_SQL = """
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')
     ORDER BY 1
"""


def row_counts(cur) -> dict[str, int]:
    """Exact row counts of the user tables, as the cursor's transaction sees them."""
    cur.execute(USER_TABLES_SQL)
    tables = [r[0] for r in cur.fetchall()]
    counts: dict[str, int] = {}
    for table in tables:
        cur.execute(f"SELECT count(*) FROM {table}")  # quoted by format('%I.%I') above
        counts[table] = cur.fetchone()[0]
    return counts


def alembic_revision(cur) -> str | None:
    """The schema's Alembic revision (db/migrate.py), None for an unmigrated database."""
    cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    return row[0] if row else None
