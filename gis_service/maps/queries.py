"""What the map pages read besides statistics and tiles: vocabularies for their forms and
the date of the data they show. The routes call these; they hold no SQL themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import units_inside


def case_domains(conn: Connection) -> list[dict]:
    """Top-level case categories (code, name_zh, name_en), by code."""
    return [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT code, name_zh, name_en FROM case_category WHERE parent_code IS NULL "
                "ORDER BY code"
            )
        ).mappings()
    ]


def living_categories(conn: Connection, lang: str) -> list[tuple[str, str]]:
    """The six living-circle categories as (code, name in ``lang``), in their order."""
    return [
        (r[0], r[1] if lang == "zh" else r[2])
        for r in conn.execute(
            text("SELECT code, name_zh, name_en FROM living_category ORDER BY sort")
        )
    ]


def access_computed_at(conn: Connection) -> datetime | None:
    """When the walking distances of buildings were last computed (timestamptz)."""
    return conn.execute(text("SELECT max(computed_at) FROM building_access")).scalar()


def grid_workers(conn: Connection, principal: Principal, unit: str) -> list[tuple[int, str]]:
    """(id, name) of the grid workers of the grids inside ``unit`` and the viewer's
    jurisdiction (auth/scope.py ``units_inside`` over their one grid)."""
    inside, params = units_inside(principal, "u.scopes[1]")
    return [
        (int(r[0]), f"{r[1]} ({r[2]})")
        for r in conn.execute(
            text(
                "SELECT u.id, coalesce(u.display_name, u.username), u.scopes[1] FROM app_user u "
                "WHERE u.role = :role AND cardinality(u.scopes) = 1 AND u.scopes[1] LIKE :unit "
                f"AND {inside} ORDER BY u.scopes[1], u.id"
            ),
            {**params, "role": Role.grid_worker.value, "unit": unit + "%"},
        )
    ]
