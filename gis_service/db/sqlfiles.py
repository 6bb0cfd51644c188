"""The SQL functions that live beside their domain's Python, (re)created on every migrate.

Rules that run inside PostgreSQL for speed (locating a point, reporting a case) are kept
in ``.sql`` files of their domain, not in migrations: ``gis-service db migrate`` renders
them (``{{name}}`` placeholders from gis_service/vocabulary.py) and runs them after the
Alembic upgrade, in one transaction, so changing a rule needs no new migration. Every
overload of a function a file defines is dropped first, so a changed argument list never
leaves the old function behind.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Connection, text

from gis_service.vocabulary import render

PACKAGE = Path(__file__).resolve().parents[1]
# In dependency order: report.sql calls locate.sql's and sessions.sql's functions.
SQL_FILES: tuple[Path, ...] = (
    PACKAGE / "auth" / "sessions.sql",
    PACKAGE / "units" / "locate.sql",
    PACKAGE / "cases" / "report.sql",
    PACKAGE / "walks" / "walks.sql",
    PACKAGE / "stats" / "rollup.sql",  # after report.sql: calls case_on_time() and others
)
_FUNCTION = re.compile(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+([a-z_][a-z0-9_]*)\s*\(", re.I)


def rendered(path: Path) -> str:
    """The file's SQL with its placeholders filled."""
    return render(path.read_text(encoding="utf-8"), source=str(path.relative_to(PACKAGE)))


def function_names() -> list[str]:
    """Names of the functions the files define, in file order."""
    return [
        name for path in SQL_FILES for name in _FUNCTION.findall(path.read_text(encoding="utf-8"))
    ]


def drop_all(conn: Connection) -> None:
    """Drop every overload of every function the files define. Not CASCADE: an object
    that came to depend on one (a view, say) makes migrate fail, naming it, rather than
    vanish."""
    rows = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname = ANY(:names)"
        ),
        {"names": function_names()},
    ).scalars()
    for signature in list(rows):
        conn.execute(text(f"DROP FUNCTION IF EXISTS {signature}"))


def apply(conn: Connection) -> None:
    """Drop and create the files' functions (inside the caller's transaction)."""
    drop_all(conn)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for path in SQL_FILES:
            # the raw DB-API cursor: no parameter markers, so format('%s') stays as written
            cursor.execute(rendered(path))
    finally:
        cursor.close()
