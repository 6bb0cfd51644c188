"""Queries over the unit hierarchy: locate a point, list, and read one unit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal
from gis_service.auth.scope import roster_filter
from gis_service.errors import InvalidInput, NotFound
from gis_service.geo.geojson import feature_collection
from gis_service.units import codes
from gis_service.units.codes import CODE_LENGTH, LEVELS, Level

# The unit that holds the point by the one location rule (locate_unit(), units/locate.sql:
# deepest first, then the smallest code, boundaries included), then its ancestors by
# primary key, read off the code's prefixes (the code scheme guarantees them).
LOCATE_SQL = text(
    """
    SELECT a.code, a.level, a.name, a.parent_code, a.population, a.households
      FROM locate_unit(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) hit
      JOIN admin_unit a ON a.code = ANY (unit_prefixes(hit))
     ORDER BY length(a.code)
    """
)

UNIT_PROPERTIES = """json_build_object(
    'code', code, 'level', level, 'name', name, 'parent_code', parent_code,
    'population', population, 'households', households, 'area_m2', round(area_m2::numeric))"""


def locate_point(conn: Connection, lon: float, lat: float) -> list[dict[str, Any]]:
    """The chain of units a WGS-84 point belongs to, district first (the unit
    ``locate_unit()`` picks and its ancestors); empty if no unit holds it."""
    return [dict(r._mapping) for r in conn.execute(LOCATE_SQL, {"lon": lon, "lat": lat})]


def list_units(
    conn: Connection,
    *,
    level: Level | None,
    parent: str | None,
    bbox: tuple[float, float, float, float] | None,
    q: str | None,
    limit: int,
    offset: int,
    geometry: bool,
) -> dict[str, Any]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if level is not None:
        where.append("level = :level")
        params["level"] = level.value
    if parent is not None:
        _check_code(parent, "parent")
        where.append("parent_code = :parent")
        params["parent"] = parent
    if bbox is not None:
        where.append("geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    if q:
        where.append("name LIKE :q")
        params["q"] = f"%{q}%"
    return feature_collection(
        conn,
        source="admin_unit",
        where=where,
        params=params,
        id_expr="code",
        properties=UNIT_PROPERTIES,
        order_by="code",
        limit=limit,
        offset=offset,
        geometry=geometry,
    )


def _check_code(code: str, field: str) -> None:
    try:
        codes.validate(code)
    except codes.CodeError as exc:
        raise InvalidInput(str(exc), field=field) from None


def get_unit(
    conn: Connection, viewer: Principal, code: str, geometry: bool = True
) -> dict[str, Any]:
    """One unit as a Feature, with its ancestors, child counts and the roster entries the
    viewer may read (auth/scope.py ``roster_filter``)."""
    _check_code(code, "code")
    fc = feature_collection(
        conn,
        source="admin_unit",
        where=["code = :code"],
        params={"code": code},
        id_expr="code",
        properties=UNIT_PROPERTIES,
        order_by="code",
        limit=1,
        offset=0,
        geometry=geometry,
    )
    if not fc["features"]:
        raise NotFound(f"no unit with code {code}")
    feature = fc["features"][0]
    props = feature["properties"]
    prefixes = [code[: CODE_LENGTH[lvl]] for lvl in LEVELS if CODE_LENGTH[lvl] < len(code)]
    props["ancestors"] = [
        dict(r._mapping)
        for r in conn.execute(
            text(
                "SELECT code, level, name FROM admin_unit WHERE code = ANY(:c) "
                "ORDER BY length(code)"
            ),
            {"c": prefixes},
        )
    ]
    props["children"] = {
        r.level: r.n
        for r in conn.execute(
            text(
                "SELECT level, count(*) AS n FROM admin_unit WHERE parent_code = :c GROUP BY level"
            ),
            {"c": code},
        )
    }
    props["roster"] = roster(conn, viewer, code)
    return feature


def roster(conn: Connection, viewer: Principal, code: str) -> list[dict[str, Any]]:
    """The unit's people (role, name, phone) that the viewer may read, in roster order."""
    cond, params = roster_filter(viewer, "s.unit_code", "s.role")
    return [
        dict(r._mapping)
        for r in conn.execute(
            text(
                "SELECT s.role, s.name, s.phone, s.photo_url FROM unit_staff s "
                f"WHERE s.unit_code = :c AND {cond} ORDER BY s.sort, s.id"
            ),
            {"c": code, **params},
        )
    ]
