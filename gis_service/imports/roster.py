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
from gis_service.errors import ImportRejected, InvalidInput, NotFound
from gis_service.imports.fields import MAX_NAME_CHARS, MAX_SMALLINT, Cells
from gis_service.imports.problems import Problems
from gis_service.imports.report import ImportReport
from gis_service.settings import Settings, get_settings
from gis_service.vocabulary import STAFF_ROLES

ROLES = STAFF_ROLES
REQUIRED = ("unit_code", "role", "name")
INSERT_STAFF = text(
    "INSERT INTO unit_staff (unit_code, role, name, phone, sort) "
    "VALUES (:unit_code, :role, :name, :phone, :sort) RETURNING id"
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
        clean.append(check_row(seq, r, problems))
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


def check_row(seq: int, r: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """One roster entry read by the roster's rules: the role from ``STAFF_ROLES``, text
    cells (``fields.text_value``), a sort key that is a whole number up to 32,767, a unit
    code and a name. Each broken rule is added to ``problems`` naming its field; the
    clean row is returned (``seq`` kept to label later problems)."""
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
    return {
        "seq": seq,
        "unit_code": unit,
        "role": role,
        "name": name,
        "phone": phone,
        "sort": sort or 0,
    }


STAFF_COLUMNS = "id, unit_code, role, name, phone, sort"


def list_staff(conn: Connection, unit_code: str) -> list[dict[str, Any]]:
    """The whole roster of one unit in roster order (an admin's view; the scoped read is
    units/service.py ``roster``)."""
    return [
        dict(r)
        for r in conn.execute(
            text(f"SELECT {STAFF_COLUMNS} FROM unit_staff WHERE unit_code = :c ORDER BY sort, id"),
            {"c": unit_code},
        ).mappings()
    ]


def save_staff(
    conn: Connection, entry: dict[str, Any], staff_id: int | None = None
) -> dict[str, Any]:
    """Add one roster entry (``staff_id`` None) or replace one, under the same rules as
    the file import (:func:`check_row`, the unknown unit, the table's CHECK constraints):
    the first broken rule is a 422 ``invalid_input`` naming its field (``problems`` lists
    them all); nothing is written. 404 for an unknown ``staff_id``."""
    problems = Problems()
    row = check_row(1, entry, problems)
    if (
        not problems.items
        and not conn.execute(
            text("SELECT 1 FROM admin_unit WHERE code = :c"), {"c": row["unit_code"]}
        ).first()
    ):
        problems.add(1, f"unknown unit {row['unit_code']}", field="unit_code")
    _refuse(problems)
    if staff_id is not None:
        if not conn.execute(
            text("SELECT 1 FROM unit_staff WHERE id = :id"), {"id": staff_id}
        ).first():
            raise NotFound(f"no roster entry with id {staff_id}")
        row["id"] = staff_id
    statement = (
        INSERT_STAFF
        if staff_id is None
        else text(
            "UPDATE unit_staff SET unit_code = :unit_code, role = :role, name = :name, "
            "phone = :phone, sort = :sort WHERE id = :id"
        )
    )
    new_id = _insert_checked(conn, row, problems, statement)
    _refuse(problems)
    return dict(
        conn.execute(
            text(f"SELECT {STAFF_COLUMNS} FROM unit_staff WHERE id = :id"),
            {"id": staff_id if staff_id is not None else new_id},
        )
        .mappings()
        .one()
    )


def remove_staff(conn: Connection, staff_id: int) -> dict[str, Any]:
    """Remove one roster entry and return what it was; 404 for an unknown id."""
    row = (
        conn.execute(
            text(f"DELETE FROM unit_staff WHERE id = :id RETURNING {STAFF_COLUMNS}"),
            {"id": staff_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no roster entry with id {staff_id}")
    return dict(row)


def _refuse(problems: Problems) -> None:
    if problems.items:
        first = problems.items[0]
        raise InvalidInput(first["problem"], field=first.get("field"), problems=problems.items)


def _insert_checked(
    conn: Connection, row: dict[str, Any], problems: Problems, statement=INSERT_STAFF
) -> int | None:
    """Insert one roster row; a CHECK constraint the row breaks becomes its problem.

    The table's constraints (migration 0001) are the rule; PostgreSQL names the broken one
    ``unit_staff_<column>_check``, which gives the field.
    """
    try:
        with conn.begin_nested():
            result = conn.execute(statement, row)
            return result.scalar() if result.returns_rows else None
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        column = constraint.removeprefix("unit_staff_").removesuffix("_check") or None
        value = row.get(column) if column else None
        what = f"{column} {value!r}" if column else "the row"
        problems.add(
            row["seq"], f"{what} is refused by the table's rule {constraint}", field=column
        )
