"""Roster import: who is responsible for each grid (the card posted at building entrances).

The file replaces the roster of every unit it names, in one transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis_service.db.engine import transaction
from gis_service.errors import ImportRejected
from gis_service.imports.fields import MAX_NAME_CHARS, MAX_SMALLINT, Cells
from gis_service.imports.problems import Problems
from gis_service.imports.report import ImportReport
from gis_service.settings import Settings, get_settings
from gis_service.vocabulary import STAFF_ROLES

ROLES = STAFF_ROLES
REQUIRED = ("unit_code", "role", "name")
INSERT_STAFF = text(
    "INSERT INTO unit_staff (unit_code, role, name, phone, sort) "
    "VALUES (:unit_code, :role, :name, :phone, :sort)"
)


def read_roster(path: Path) -> list[dict[str, Any]]:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportRejected(f"{path.name}: text is neither UTF-8 nor GB18030")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ImportRejected(
            f"{path.name}: missing columns {missing}; need {list(REQUIRED)}"
            " (and optionally phone, sort)"
        )
    return df.to_dict("records")


def replace_roster(
    rows: list[dict[str, Any]], *, filename: str, settings: Settings | None = None
) -> ImportReport:
    """Replace the roster of every unit the rows name, in one transaction.

    Rows are ``{"unit_code", "role", "name", "phone"?, "sort"?}`` as read by
    ``read_roster`` (feature n = data row n of the file). Every problem — a role not in
    ``ROLES``, bad text (``fields.text_value``), a sort key that is not a whole number up
    to 32,767, an unknown unit, a value the ``unit_staff`` table's CHECK constraints refuse
    (the phone pattern) — is listed per row with its field, and nothing is written:
    ImportRejected (HTTP 422).
    """
    settings = settings or get_settings()
    report = ImportReport(kind="roster", file=filename, features=len(rows))
    problems = Problems()
    clean = []
    for seq, r in enumerate(rows, start=1):
        cells = Cells(seq, problems)
        role = cells.text("role", r.get("role"))
        name = cells.text("name", r.get("name"), MAX_NAME_CHARS)
        unit = cells.text("unit_code", r.get("unit_code"))
        phone = cells.text("phone", r.get("phone"))
        sort = cells.count("sort", r.get("sort"), MAX_SMALLINT)
        if "role" not in cells.bad and role not in ROLES:
            problems.add(seq, f"role {role!r} is not one of {list(ROLES)}", field="role")
        for column, value in (("unit_code", unit), ("name", name)):
            if value is None and column not in cells.bad:
                problems.add(seq, f"needs {column}", field=column)
        clean.append(
            {
                "seq": seq,
                "unit_code": unit,
                "role": role,
                "name": name,
                "phone": phone,
                "sort": sort or 0,
            }
        )
    problems.raise_if_any(filename)
    with transaction(settings) as conn:
        units = {c["unit_code"] for c in clean}
        known = {
            row[0]
            for row in conn.execute(
                text("SELECT code FROM admin_unit WHERE code = ANY(:codes)"), {"codes": list(units)}
            )
        }
        for c in clean:
            if c["unit_code"] not in known:
                problems.add(c["seq"], f"unknown unit {c['unit_code']}", field="unit_code")
        problems.raise_if_any(filename)
        conn.execute(
            text("DELETE FROM unit_staff WHERE unit_code = ANY(:codes)"), {"codes": list(units)}
        )
        for c in clean:
            _insert_checked(conn, c, problems)
        problems.raise_if_any(filename)
    report.inserted = len(clean)
    return report


def _insert_checked(conn: Connection, row: dict[str, Any], problems: Problems) -> None:
    """Insert one roster row; a CHECK constraint the row breaks becomes its problem.

    The table's constraints (migration 0001) are the rule; PostgreSQL names the broken one
    ``unit_staff_<column>_check``, which gives the field.
    """
    try:
        with conn.begin_nested():
            conn.execute(INSERT_STAFF, row)
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        column = constraint.removeprefix("unit_staff_").removesuffix("_check") or None
        value = row.get(column) if column else None
        what = f"{column} {value!r}" if column else "the row"
        problems.add(
            row["seq"], f"{what} is refused by the table's rule {constraint}", field=column
        )
