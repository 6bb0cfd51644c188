"""Roster import: who is responsible for each grid (the card posted at building entrances).

The file replaces the roster of every unit it names, in one transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import text

from gis_service.db.engine import transaction
from gis_service.errors import ImportRejected
from gis_service.imports.boundaries import Problems
from gis_service.imports.fields import text_value
from gis_service.imports.report import ImportReport
from gis_service.settings import Settings, get_settings
from gis_service.vocabulary import STAFF_ROLES

ROLES = STAFF_ROLES
REQUIRED = ("unit_code", "role", "name")


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
    settings = settings or get_settings()
    report = ImportReport(kind="roster", file=filename, features=len(rows))
    problems = Problems()
    clean = []
    for seq, r in enumerate(rows, start=1):
        role = text_value(r.get("role"))
        name = text_value(r.get("name"))
        unit = text_value(r.get("unit_code"))
        if role not in ROLES:
            problems.add(seq, f"role {role!r} is not one of {list(ROLES)}")
        if not name or not unit:
            problems.add(seq, "needs unit_code and name")
        clean.append(
            {
                "seq": seq,
                "unit_code": unit,
                "role": role,
                "name": name,
                "phone": text_value(r.get("phone")),
                "sort": int(text_value(r.get("sort")) or 0),
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
                problems.add(c["seq"], f"unknown unit {c['unit_code']}")
        problems.raise_if_any(filename)
        conn.execute(
            text("DELETE FROM unit_staff WHERE unit_code = ANY(:codes)"), {"codes": list(units)}
        )
        conn.execute(
            text(
                "INSERT INTO unit_staff (unit_code, role, name, phone, sort) "
                "VALUES (:unit_code, :role, :name, :phone, :sort)"
            ),
            clean,
        )
    report.inserted = len(clean)
    return report
