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
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis_service.errors import Conflict, InvalidInput, NotFound
from gis_service.units.codes import HANDLING_LEVELS as CODE_HANDLING_LEVELS
from gis_service.vocabulary import CATEGORY_CODE_PATTERN

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.json")
HANDLING_LEVELS = tuple(lvl.value for lvl in CODE_HANDLING_LEVELS)
CODE = re.compile(CATEGORY_CODE_PATTERN)


def within(code: str, category: str) -> bool:
    """True if ``code`` is ``category`` or one of its sub-categories (a domain filter
    takes in its sub-categories: ``city`` matches ``city.road``). The rule every category
    filter uses; :func:`within_sql` is the same rule in SQL."""
    return code == category or code.startswith(category + ".")


def within_sql(column: str, category: str, tag: str = "f_cat") -> tuple[str, dict[str, Any]]:
    """SQL (with named parameters ``tag`` and ``tag_prefix``) true for the rows whose
    ``column`` is ``category`` or one of its sub-categories — :func:`within` in SQL."""
    return (
        f"({column} = :{tag} OR {column} LIKE :{tag}_prefix)",
        {tag: category, f"{tag}_prefix": category + ".%"},
    )


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
        raise InvalidInput(
            f"{where}: domains have plain codes, sub-categories 'domain.name' codes", field="code"
        )
    if parent and not code.startswith(parent + "."):
        raise InvalidInput(f"{where}: must start with its domain '{parent}.'", field="code")
    if code in seen:
        raise InvalidInput(f"{where}: duplicate code", field="code")
    seen.add(code)
    for key in ("name_zh", "name_en"):
        if not str(item.get(key, "")).strip():
            raise InvalidInput(f"{where}: {key} is required", field=key)
    hours = item.get("deadline_hours")
    if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
        raise InvalidInput(
            f"{where}: deadline_hours must be a positive whole number", field="deadline_hours"
        )
    if item.get("handling_level") not in HANDLING_LEVELS:
        raise InvalidInput(
            f"{where}: handling_level must be one of {', '.join(HANDLING_LEVELS)}",
            field="handling_level",
        )
    public = item.get("public", False)
    if not isinstance(public, bool):
        raise InvalidInput(f"{where}: public must be true or false, not {public!r}", field="public")
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


CATEGORY_COLUMNS = (
    "code, parent_code, name_zh, name_en, deadline_hours, handling_level, sort, public, active"
)
#: what an admin may change on a category (:func:`update_category`)
EDITABLE = ("name_zh", "name_en", "deadline_hours", "handling_level", "public", "active")


def get_category(conn: Connection, code: str) -> dict[str, Any]:
    """One category, active or not; 404 ``not_found``."""
    row = (
        conn.execute(
            text(f"SELECT {CATEGORY_COLUMNS} FROM case_category WHERE code = :c"), {"c": code}
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no category {code!r}")
    return dict(row)


def update_category(conn: Connection, code: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a category's names, deadline, handling level, public flag or activation
    (keys of :data:`EDITABLE`), checked by the taxonomy file's own rules (:func:`_row`,
    422 naming the field). Cases keep the deadline they were given; new ones take the new
    one. A domain can only be deactivated with its sub-categories (they go with it)."""
    current = get_category(conn, code)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{unknown[0]} cannot be changed here", field=unknown[0])
    active = changes.get("active", current["active"])
    if not isinstance(active, bool):
        raise InvalidInput(f"active must be true or false, not {active!r}", field="active")
    if active and current["parent_code"]:
        parent = get_category(conn, current["parent_code"])
        if not parent["active"]:
            raise InvalidInput(
                f"its domain {parent['code']} is inactive: activate the domain first",
                field="active",
            )
    item = {**current, **{k: v for k, v in changes.items() if k != "active"}}
    row = _row(Path("admin"), item, current["parent_code"], current["sort"], set())
    conn.execute(
        text(
            """
        UPDATE case_category SET name_zh = :name_zh, name_en = :name_en,
               deadline_hours = :deadline_hours, handling_level = :handling_level,
               public = :public, active = :active
         WHERE code = :code
        """
        ),
        {**row, "active": active},
    )
    if not active and current["parent_code"] is None:
        conn.execute(
            text("UPDATE case_category SET active = false WHERE parent_code = :c AND active"),
            {"c": code},
        )
    return get_category(conn, code)


def create_subcategory(conn: Connection, parent: str, item: dict[str, Any]) -> dict[str, Any]:
    """A new sub-category of the active domain ``parent``: ``code`` is ``parent.name``;
    deadline, handling level and public flag default to the domain's (as in the taxonomy
    file). Checked by the file's rules (:func:`_row`): 422 naming the field; an existing
    code is a 409 naming ``code``."""
    domain = (
        conn.execute(
            text(f"SELECT {CATEGORY_COLUMNS} FROM case_category WHERE code = :c"), {"c": parent}
        )
        .mappings()
        .first()
    )
    if domain is None or domain["parent_code"] is not None or not domain["active"]:
        raise InvalidInput(f"{parent!r} is not an active domain", field="parent_code")
    if not isinstance(item.get("code"), str) or not CODE.match(item["code"]):
        raise InvalidInput(
            f"code {item.get('code')!r}: lower-case letters, digits and _ after '{parent}.'",
            field="code",
        )
    full = {
        "deadline_hours": domain["deadline_hours"],
        "handling_level": domain["handling_level"],
        "public": domain["public"],
        **{k: v for k, v in item.items() if v is not None},
    }
    sort = conn.execute(
        text("SELECT coalesce(max(sort), :s) + 1 FROM case_category WHERE parent_code = :p"),
        {"p": parent, "s": domain["sort"]},
    ).scalar_one()
    row = _row(Path("admin"), full, parent, int(sort), set())
    if conn.execute(
        text("SELECT 1 FROM case_category WHERE code = :c"), {"c": row["code"]}
    ).first():
        raise Conflict(f"a category {row['code']!r} exists already", field="code")
    conn.execute(
        text(
            """
        INSERT INTO case_category (code, parent_code, name_zh, name_en, deadline_hours,
                                   handling_level, sort, public, active)
        VALUES (:code, :parent_code, :name_zh, :name_en, :deadline_hours,
                :handling_level, :sort, :public, true)
        """
        ),
        row,
    )
    return get_category(conn, row["code"])
