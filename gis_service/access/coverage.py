"""Figures per unit from building_access: the one-kilometre reach, its gaps, and the
completeness of the quarter-hour living circle. SQL, since it is grouping by unit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.auth.scope import require_role, units_inside
from gis_service.units.codes import CODE_LENGTH, HANDLING_LEVELS, LEVELS, Level

DEFINITION = (
    "walking distance = straight access leg from the building's representative point to "
    "the nearest point of the walking network + shortest path along the network (streets "
    "entered and left part-way) + straight egress leg to the service point; buildings "
    "farther than 300 m from every street are measured in a straight line (method "
    "'euclidean'); distances beyond 3 km are not searched (null)"
)
GROUP_LEVELS = tuple(lvl.value for lvl in LEVELS if lvl in HANDLING_LEVELS)
#: the one rule of a one-kilometre gap: a building no party organisation reaches within
#: ``:max_m`` metres (``b`` is building_access); :func:`gaps` and the OGC ``gaps``
#: collection (ogc/collections.py) use it
GAP_CONDITION = "(b.party_m IS NULL OR b.party_m > :max_m)"
#: the roles that read figures about residents (access/routes.py, the OGC gaps)
FIGURE_READERS = (Role.planner, Role.supervisor, Role.admin)


def require_figure_reader(principal: Principal) -> None:
    """403 unless the viewer reads figures about residents (:data:`FIGURE_READERS`)."""
    require_role(principal, *FIGURE_READERS, what="figures about residents")


def _scope(principal: Principal, unit: str | None, column: str) -> tuple[str, dict]:
    where, params = units_inside(principal, column)
    if unit:
        where += f" AND {column} LIKE :unit_prefix"
        params["unit_prefix"] = unit + "%"
    return where, params


def _meta(conn: Connection, versions: list[int]) -> dict[str, Any]:
    at = conn.execute(text("SELECT max(computed_at) FROM building_access")).scalar()
    return {
        "versions": {"network": versions[0], "points": versions[1], "units": versions[2]},
        "computed_at": at.isoformat() if at else None,
        "definition": DEFINITION,
    }


def reach(
    conn: Connection,
    principal: Principal,
    versions: list[int],
    *,
    level: str,
    max_m: float,
    unit: str | None,
) -> dict[str, Any]:
    where, params = _scope(principal, unit, "u.code")
    rows = conn.execute(
        text(f"""
        SELECT u.code, u.name, count(*) AS buildings,
               sum(b.population) AS population,
               coalesce(sum(b.population) FILTER (WHERE b.party_m <= :max_m), 0) AS covered,
               count(*) FILTER (WHERE b.party_m IS NULL OR b.party_m > :max_m)
                   AS uncovered_buildings,
               coalesce(sum(b.population) FILTER (WHERE b.party_m IS NULL
                                                   OR b.party_m > :max_m), 0)
                   AS uncovered_population,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY b.party_m) AS median_m,
               max(b.party_m) AS max_m,
               count(*) FILTER (WHERE b.method = 'euclidean') AS straight_line_buildings
        FROM admin_unit u
        JOIN building_access b ON left(b.unit_code, :len) = u.code
        WHERE u.level = :level AND {where}
        GROUP BY u.code, u.name ORDER BY u.code
    """),
        {"max_m": max_m, "len": CODE_LENGTH[Level(level)], "level": level, **params},
    )
    units = []
    for r in rows.mappings():
        pop = int(r["population"] or 0)
        units.append(
            {
                "code": r["code"],
                "name": r["name"],
                "buildings": r["buildings"],
                "population": pop,
                "covered_population": int(r["covered"]),
                "covered_share": round(r["covered"] / pop, 4) if pop else None,
                "uncovered_buildings": r["uncovered_buildings"],
                "uncovered_population": int(r["uncovered_population"]),
                "median_distance_m": _round(r["median_m"]),
                "max_distance_m": _round(r["max_m"]),
                "straight_line_buildings": r["straight_line_buildings"],
            }
        )
    pop = sum(u["population"] for u in units)
    covered = sum(u["covered_population"] for u in units)
    return {
        "level": level,
        "max_m": max_m,
        "units": units,
        "total": {
            "population": pop,
            "covered_population": covered,
            "covered_share": round(covered / pop, 4) if pop else None,
            "uncovered_buildings": sum(u["uncovered_buildings"] for u in units),
            "uncovered_population": pop - covered,
        },
        **_meta(conn, versions),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 1)


def gaps(
    conn: Connection, principal: Principal, versions: list[int], *, max_m: float, unit: str | None
) -> dict[str, Any]:
    where, params = _scope(principal, unit, "b.unit_code")
    rows = conn.execute(
        text(f"""
        SELECT b.unit_code, u.name, b.population, b.party_m, b.method, b.leg_m,
               sp.name AS nearest_name, sp.kind AS nearest_kind,
               ST_AsGeoJSON(u.geom, 7)::json AS geometry,
               ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat
        FROM building_access b
        JOIN admin_unit u ON u.code = b.unit_code
        LEFT JOIN service_point sp ON sp.id = b.party_point_id
        WHERE {GAP_CONDITION} AND {where}
        ORDER BY b.population DESC, b.unit_code
    """),
        {"max_m": max_m, **params},
    )
    features = [
        {
            "type": "Feature",
            "id": r["unit_code"],
            "geometry": r["geometry"],
            "properties": {
                "unit_code": r["unit_code"],
                "name": r["name"],
                "population": r["population"],
                "distance_m": _round(r["party_m"]),
                "method": r["method"],
                "nearest_party": r["nearest_name"],
                "nearest_kind": r["nearest_kind"],
                "point": [round(r["lon"], 7), round(r["lat"], 7)],
            },
        }
        for r in rows.mappings()
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "max_m": max_m,
        "numberMatched": len(features),
        "uncovered_population": sum(f["properties"]["population"] for f in features),
        **_meta(conn, versions),
    }


def living_circle(
    conn: Connection,
    principal: Principal,
    versions: list[int],
    *,
    level: str,
    within_m: float,
    unit: str | None,
) -> dict[str, Any]:
    cats = (
        conn.execute(text("SELECT code, name_zh, name_en FROM living_category ORDER BY sort"))
        .mappings()
        .all()
    )
    codes = [c["code"] for c in cats]
    if level == "building":
        where, params = _scope(principal, unit, "b.unit_code")
        rows = conn.execute(
            text(f"""
            SELECT b.unit_code AS code, u.name, b.population, b.category_m
            FROM building_access b JOIN admin_unit u ON u.code = b.unit_code
            WHERE {where} ORDER BY b.unit_code"""),
            params,
        ).mappings()
        units = []
        for r in rows:
            dist = r["category_m"]
            within = [c for c in codes if dist.get(c) is not None and dist[c] <= within_m]
            units.append(
                {
                    "code": r["code"],
                    "name": r["name"],
                    "population": r["population"],
                    "within": within,
                    "missing": [c for c in codes if c not in within],
                    "complete": len(within) == len(codes),
                    "distance_m": dist,
                }
            )
        return {
            "level": level,
            "within_m": within_m,
            "categories": [dict(c) for c in cats],
            "units": units,
            **_meta(conn, versions),
        }
    where, params = _scope(principal, unit, "u.code")
    rows = (
        conn.execute(
            text(f"""
        WITH b AS (
            SELECT left(unit_code, :len) AS code, population,
                   ARRAY(SELECT c FROM unnest(CAST(:cats AS text[])) c
                         WHERE (category_m ->> c)::float8 <= :within_m) AS within
            FROM building_access)
        SELECT u.code, u.name, sum(b.population) AS population,
               coalesce(sum(b.population) FILTER (WHERE cardinality(b.within) = :ncat), 0)
                   AS complete
        FROM admin_unit u
        JOIN b ON b.code = u.code
        WHERE u.level = :level AND {where}
        GROUP BY u.code, u.name ORDER BY u.code
    """),
            {
                "len": CODE_LENGTH[Level(level)],
                "cats": codes,
                "within_m": within_m,
                "ncat": len(codes),
                "level": level,
                **params,
            },
        )
        .mappings()
        .all()
    )
    per_cat = conn.execute(
        text(f"""
        SELECT left(b.unit_code, :len) AS code, c AS category,
               coalesce(sum(b.population) FILTER (
                   WHERE (b.category_m ->> c)::float8 <= :within_m), 0) AS covered
        FROM building_access b CROSS JOIN unnest(CAST(:cats AS text[])) c
        JOIN admin_unit u ON u.code = left(b.unit_code, :len)
        WHERE {where}
        GROUP BY 1, 2
    """),
        {"len": CODE_LENGTH[Level(level)], "cats": codes, "within_m": within_m, **params},
    ).all()
    covered: dict[str, dict[str, int]] = {}
    for code, cat, n in per_cat:
        covered.setdefault(code, {})[cat] = int(n)
    names = {c["code"]: c for c in cats}
    units = []
    for r in rows:
        pop = int(r["population"] or 0)
        cov = covered.get(r["code"], {})
        share = {c: (round(cov.get(c, 0) / pop, 4) if pop else None) for c in codes}
        missing = {c: pop - cov.get(c, 0) for c in codes}
        worst = max(codes, key=lambda c: missing[c]) if pop else None
        units.append(
            {
                "code": r["code"],
                "name": r["name"],
                "population": pop,
                "complete_population": int(r["complete"]),
                "complete_share": round(r["complete"] / pop, 4) if pop else None,
                "category_share": share,
                "most_missing": None
                if worst is None or missing[worst] == 0
                else {
                    "category": worst,
                    "name_zh": names[worst]["name_zh"],
                    "name_en": names[worst]["name_en"],
                    "population_missing": missing[worst],
                },
            }
        )
    return {
        "level": level,
        "within_m": within_m,
        "categories": [dict(c) for c in cats],
        "units": units,
        **_meta(conn, versions),
    }
