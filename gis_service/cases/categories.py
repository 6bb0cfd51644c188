"""The case taxonomy: domains with sub-categories, deadlines and the usual handling level.

It is data, not code: the default (taxonomy.json, the seven key domains of the seed
articles) is loaded on first migration and `gis-service categories load FILE` replaces it.
Categories in use are deactivated rather than deleted, so old cases keep their names.

``"public": true`` marks a category whose cases the public may see (the Open311 public
view, rule in :mod:`gis_service.auth.scope`); sub-categories inherit their domain's flag
like its deadline, and a category that says nothing is private.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.errors import InvalidInput
from gis_service.units.codes import HANDLING_LEVELS as CODE_HANDLING_LEVELS

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.json")
HANDLING_LEVELS = tuple(lvl.value for lvl in CODE_HANDLING_LEVELS)


def read_taxonomy(path: Path) -> list[dict[str, Any]]:
    """Flatten a taxonomy file into rows, checking what the database would refuse."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not a readable JSON taxonomy ({exc})") from None
    domains = data.get("domains") if isinstance(data, dict) else None
    if not isinstance(domains, list) or not domains:
        raise InvalidInput(f'{path}: expected {{"domains": [...]}} with at least one domain')
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for d_sort, domain in enumerate(domains, 1):
        rows.append(_row(path, domain, None, d_sort * 100, seen))
        for c_sort, child in enumerate(domain.get("children") or [], 1):
            child = {
                "deadline_hours": domain.get("deadline_hours"),
                "handling_level": domain.get("handling_level"),
                "public": domain.get("public", False),
                **child,
            }
            rows.append(_row(path, child, domain["code"], d_sort * 100 + c_sort, seen))
    return rows


def _row(
    path: Path, item: dict[str, Any], parent: str | None, sort: int, seen: set[str]
) -> dict[str, Any]:
    code = str(item.get("code", ""))
    where = f"{path.name}: category {code or '(no code)'}"
    if not code or (parent is None) == ("." in code):
        raise InvalidInput(f"{where}: domains have plain codes, sub-categories 'domain.name' codes")
    if parent and not code.startswith(parent + "."):
        raise InvalidInput(f"{where}: must start with its domain '{parent}.'")
    if code in seen:
        raise InvalidInput(f"{where}: duplicate code")
    seen.add(code)
    for key in ("name_zh", "name_en"):
        if not str(item.get(key, "")).strip():
            raise InvalidInput(f"{where}: {key} is required")
    hours = item.get("deadline_hours")
    if not isinstance(hours, int) or hours <= 0:
        raise InvalidInput(f"{where}: deadline_hours must be a positive whole number")
    if item.get("handling_level") not in HANDLING_LEVELS:
        raise InvalidInput(f"{where}: handling_level must be one of {', '.join(HANDLING_LEVELS)}")
    public = item.get("public", False)
    if not isinstance(public, bool):
        raise InvalidInput(f"{where}: public must be true or false, not {public!r}")
    return {
        "code": code,
        "parent_code": parent,
        "name_zh": item["name_zh"],
        "name_en": item["name_en"],
        "deadline_hours": hours,
        "handling_level": item["handling_level"],
        "sort": sort,
        "public": public,
    }


def load_taxonomy(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Upsert the rows; categories missing from them are deactivated, never deleted. Only
    what differs is written, so loading the same taxonomy again changes no row (and adds
    nothing to the audit log)."""
    conn.execute(
        text("UPDATE case_category SET active = false WHERE active AND code <> ALL(:codes)"),
        {"codes": [r["code"] for r in rows]},
    )
    for row in sorted(rows, key=lambda r: r["parent_code"] is not None):
        conn.execute(
            text(
                """
            INSERT INTO case_category (code, parent_code, name_zh, name_en, deadline_hours,
                                       handling_level, sort, public, active)
            VALUES (:code, :parent_code, :name_zh, :name_en, :deadline_hours,
                    :handling_level, :sort, :public, true)
            ON CONFLICT (code) DO UPDATE SET
                parent_code = EXCLUDED.parent_code, name_zh = EXCLUDED.name_zh,
                name_en = EXCLUDED.name_en, deadline_hours = EXCLUDED.deadline_hours,
                handling_level = EXCLUDED.handling_level, sort = EXCLUDED.sort,
                public = EXCLUDED.public, active = true
            """
            ),
            row,
        )
    inactive = conn.execute(text("SELECT count(*) FROM case_category WHERE NOT active")).scalar()
    return {"active": len(rows), "inactive": int(inactive or 0)}


def seed_default(conn: Connection) -> bool:
    """Load the default taxonomy into an empty table (first migration)."""
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM case_category)")).scalar():
        return False
    load_taxonomy(conn, read_taxonomy(DEFAULT_TAXONOMY))
    return True


def list_categories(conn: Connection, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Domains with their children nested, in display order."""
    rows = (
        conn.execute(
            text(
                """
        SELECT code, parent_code, name_zh, name_en, deadline_hours, handling_level, public,
               active
          FROM case_category WHERE active OR :all ORDER BY sort, code
        """
            ),
            {"all": include_inactive},
        )
        .mappings()
        .all()
    )
    domains: dict[str, dict[str, Any]] = {}
    for r in rows:
        item = dict(r)
        if r["parent_code"] is None:
            domains[r["code"]] = {**item, "children": []}
        elif r["parent_code"] in domains:
            domains[r["parent_code"]]["children"].append(item)
    return list(domains.values())
