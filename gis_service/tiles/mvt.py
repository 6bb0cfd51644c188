"""Mapbox Vector Tiles (ST_AsMVT) of units, cases, service points and the basemap.

Every layer is selected by the tile's envelope grown by the buffer (features just outside
the tile still draw their part inside it: no seams), clipped and quantised by
ST_AsMVTGeom, and simplified per zoom (a tolerance of half a tile pixel). Cases come from
the in-memory Morton index (tiles/caseindex.py); a tile that would hold more than
MAX_POINTS of them, or any tile below POINT_ZOOM, carries counts per 64-pixel cell
instead, each feature marked ``aggregated`` and a ``meta`` layer saying how many cases
the tile holds: nothing is dropped silently.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gis_service.auth.principal import Principal, Role
from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.errors import Forbidden, InvalidInput
from gis_service.stats.cube import LEVEL_LENGTHS, STATUSES
from gis_service.tiles.caseindex import BITS, CaseIndex

EXTENT = 4096
BUFFER = 256  # tile units on each side: 1/16 of a tile
MARGIN = BUFFER / EXTENT
MAX_POINTS = 5000
POINT_ZOOM = 14
CELL_PX = 64
WORLD_M = 2 * np.pi * 6378137.0


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= 22:
        raise InvalidInput(f"zoom {z} is outside 0–22", field="z")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise InvalidInput(f"tile {z}/{x}/{y} does not exist at zoom {z}", field="x")


def tolerance_m(z: int) -> float:
    """Half a tile pixel (of 4096) in Web Mercator metres: finer detail cannot show."""
    return WORLD_M / (2 ** z) / EXTENT / 2


ENVELOPE = """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                      ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)
                          AS area)
"""


def unit_level_for(z: int) -> str:
    return "subdistrict" if z < 12 else "community" if z < 14 else "grid"


def units_tile(conn: Connection, principal: Principal, z: int, x: int, y: int, level: str,
               figures: dict[str, dict[str, Any]]) -> bytes:
    """Unit polygons of one level with their resolution figures (from the cube)."""
    where, params = principal.unit_filter("u.code")
    codes = list(figures)
    get = lambda k: [figures[c].get(k) for c in codes]  # noqa: E731
    sql = ENVELOPE + f"""
        SELECT ST_AsMVT(t, 'units', {EXTENT}, 'geom') FROM (
            SELECT u.code, u.name, u.level, u.parent_code AS parent, u.population,
                   s.reported, s.accepted, s.closed, s.overdue_now,
                   s.resolution_rate, s.on_time_rate, s.rework_rate, s.satisfaction_rate,
                   ST_AsMVTGeom(ST_Simplify(ST_Transform(u.geom, 3857), :tol), b.env,
                                {EXTENT}, {BUFFER}, true) AS geom
            FROM admin_unit u CROSS JOIN b
            LEFT JOIN unnest(CAST(:codes AS text[]), CAST(:reported AS int[]),
                             CAST(:accepted AS int[]), CAST(:closed AS int[]),
                             CAST(:overdue AS int[]), CAST(:rate AS float8[]),
                             CAST(:on_time AS float8[]), CAST(:rework AS float8[]),
                             CAST(:satisfaction AS float8[]))
                 AS s(code, reported, accepted, closed, overdue_now, resolution_rate,
                      on_time_rate, rework_rate, satisfaction_rate) ON s.code = u.code
            WHERE u.level = :level AND u.geom && b.area AND {where}
        ) t WHERE t.geom IS NOT NULL"""
    return conn.execute(text(sql), {
        "z": z, "x": x, "y": y, "margin": MARGIN, "tol": tolerance_m(z), "level": level,
        "codes": codes, "reported": get("reported"), "accepted": get("accepted"),
        "closed": get("closed"), "overdue": get("overdue_now"),
        "rate": get("resolution_rate"), "on_time": get("on_time_rate"),
        "rework": get("rework_rate"), "satisfaction": get("satisfaction_rate"), **params,
    }).scalar_one().tobytes()


def points_tile(conn: Connection, z: int, x: int, y: int, kind: str | None,
                category: str | None) -> bytes:
    from gis_service.service_points.service import kind_filter

    terms, params = kind_filter(kind, category, "p")
    sql = ENVELOPE + f"""
        SELECT ST_AsMVT(t, 'service_points', {EXTENT}, 'geom', 'id') FROM (
            SELECT p.id, p.name, p.kind, array_to_string(p.categories, ',') AS categories,
                   p.address, p.phone,
                   ST_AsMVTGeom(ST_Transform(p.geom, 3857), b.env, {EXTENT}, {BUFFER}, true)
                       AS geom
            FROM service_point p CROSS JOIN b
            WHERE p.geom && b.area {''.join(' AND ' + t for t in terms)}
        ) t WHERE t.geom IS NOT NULL"""
    return conn.execute(text(sql), {"z": z, "x": x, "y": y, "margin": MARGIN,
                                    **params}).scalar_one().tobytes()


def basemap_tile(conn: Connection, z: int, x: int, y: int) -> bytes:
    """Our own basemap: streets (walking network), unit boundaries, buildings at z ≥ 15."""
    boundary_levels = ["district", "subdistrict"] + (["community"] if z >= 13 else []) \
        + (["grid"] if z >= 15 else [])
    sql = ENVELOPE + f"""
        SELECT
          (SELECT coalesce(ST_AsMVT(s, 'streets', {EXTENT}, 'geom'), '') FROM (
              SELECT e.kind, e.name,
                     ST_AsMVTGeom(ST_Simplify(ST_Transform(e.geom, 3857), :tol), b.env,
                                  {EXTENT}, {BUFFER}, true) AS geom
              FROM walk_edge e CROSS JOIN b
              WHERE e.geom && b.area AND (:z >= 14 OR e.kind NOT IN
                    ('footway', 'path', 'steps', 'lane', 'service', 'corridor', 'track'))
          ) s WHERE s.geom IS NOT NULL)
          ||
          (SELECT coalesce(ST_AsMVT(u, 'boundaries', {EXTENT}, 'geom'), '') FROM (
              SELECT a.code, a.name, a.level,
                     ST_AsMVTGeom(ST_Boundary(ST_Simplify(ST_Transform(a.geom, 3857), :tol)),
                                  b.env, {EXTENT}, {BUFFER}, true) AS geom
              FROM admin_unit a CROSS JOIN b
              WHERE a.level = ANY(:levels) AND a.geom && b.area
          ) u WHERE u.geom IS NOT NULL)
          ||
          (SELECT coalesce(ST_AsMVT(h, 'buildings', {EXTENT}, 'geom'), '') FROM (
              SELECT a.code, a.name,
                     ST_AsMVTGeom(ST_Transform(a.geom, 3857), b.env, {EXTENT}, {BUFFER}, true)
                         AS geom
              FROM admin_unit a CROSS JOIN b
              WHERE :z >= 15 AND a.level = 'building' AND a.geom && b.area
          ) h WHERE h.geom IS NOT NULL)"""
    return conn.execute(text(sql), {"z": z, "x": x, "y": y, "margin": MARGIN,
                                    "tol": tolerance_m(z), "levels": boundary_levels}
                        ).scalar_one().tobytes()


# ------------------------------------------------------------------------- cases

def _scope_rows(index: CaseIndex, principal: Principal, rows: np.ndarray) -> np.ndarray:
    """The rows the principal may see (jurisdiction by unit code prefix)."""
    if principal.unrestricted:
        return rows
    if principal.role is Role.team_member:
        raise Forbidden("the case map is for grid workers, supervisors and admins; a team "
                        "member sees the team's cases in the task list")
    principal.require_case_reader()
    facts = index._facts
    keep = np.zeros(len(rows), bool)
    for scope in principal.scopes:
        level = next((lvl for lvl, n in LEVEL_LENGTHS.items() if n == len(scope)), None)
        if level is None:  # a building scope: the grid above it is the finest we index
            level, scope = "grid", scope[:LEVEL_LENGTHS["grid"]]
        j = facts.codes[level].get(scope)
        if j is not None:
            keep |= facts.levels[level][rows] == j
    return rows[keep]


def cases_tile(conn: Connection, index: CaseIndex, principal: Principal, z: int, x: int,
               y: int, *, status: str | None = None, category: str | None = None,
               open_only: bool = False, overdue_only: bool = False) -> bytes:
    facts = index.facts()
    found = index.in_tile(z, x, y, MARGIN)
    rows = _scope_rows(index, principal, found.rows)
    keep = np.ones(len(rows), bool)
    if status:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        keep &= facts.status[rows] == STATUSES.index(status)
    open_codes = np.array([STATUSES.index(s) for s in OPEN_STATUSES])
    is_open = np.isin(facts.status[rows], open_codes)
    if open_only:
        keep &= is_open
    if category:
        cats = [i for i, c in enumerate(facts.categories)
                if c == category or c.startswith(category + ".")]
        keep &= np.isin(facts.category[rows], cats)
    if overdue_only:
        keep &= is_open & (facts.deadline[rows] < time.time())
    rows, is_open = rows[keep], is_open[keep]
    size = float(1 << (BITS - z))
    px = (index._wx[rows].astype(np.float64) - x * size) / size * EXTENT
    py = (index._wy[rows].astype(np.float64) - y * size) / size * EXTENT
    overdue = is_open & (facts.deadline[rows] < time.time())
    if z >= POINT_ZOOM and len(rows) <= MAX_POINTS:
        return _points_mvt(conn, facts, rows, px, py, overdue)
    return _cells_mvt(conn, px, py, is_open, overdue)


def _points_mvt(conn: Connection, facts, rows, px, py, overdue) -> bytes:
    from datetime import date, timedelta

    days = facts.day[rows]
    reported = [(date(2000, 1, 1) + timedelta(days=int(d))).isoformat() for d in days]
    return conn.execute(text(f"""
        SELECT coalesce(ST_AsMVT(t, 'cases', {EXTENT}, 'geom', 'id'), '') FROM (
            SELECT id, status, category, reported, overdue,
                   ST_Point(round(px), round(py)) AS geom
            FROM unnest(CAST(:ids AS bigint[]), CAST(:status AS text[]),
                        CAST(:category AS text[]), CAST(:reported AS text[]),
                        CAST(:overdue AS boolean[]), CAST(:px AS float8[]),
                        CAST(:py AS float8[]))
                 AS u(id, status, category, reported, overdue, px, py)) t"""), {
        "ids": facts.ids[rows].tolist(),
        "status": [STATUSES[s] for s in facts.status[rows].tolist()],
        "category": [facts.categories[c] for c in facts.category[rows].tolist()],
        "reported": reported, "overdue": overdue.tolist(),
        "px": px.tolist(), "py": py.tolist()}).scalar_one().tobytes()


def _cells_mvt(conn: Connection, px, py, is_open, overdue) -> bytes:
    """Counts per 64-pixel cell, at the cases' mean position, marked aggregated."""
    lo = -BUFFER // CELL_PX
    n = EXTENT // CELL_PX - 2 * lo
    cx = np.clip((px // CELL_PX).astype(np.int64) - lo, 0, n - 1)
    cy = np.clip((py // CELL_PX).astype(np.int64) - lo, 0, n - 1)
    cell = cx * n + cy
    count = np.bincount(cell, minlength=n * n)
    used = np.nonzero(count)[0]
    mx = np.bincount(cell, px, n * n)[used] / count[used]
    my = np.bincount(cell, py, n * n)[used] / count[used]
    open_n = np.bincount(cell, is_open.astype(float), n * n)[used]
    over_n = np.bincount(cell, overdue.astype(float), n * n)[used]
    inside = (px >= 0) & (px < EXTENT) & (py >= 0) & (py < EXTENT)
    return conn.execute(text(f"""
        SELECT coalesce((SELECT ST_AsMVT(t, 'cases', {EXTENT}, 'geom') FROM (
            SELECT count, open, overdue, true AS aggregated, {CELL_PX} AS cell_px,
                   ST_Point(round(px), round(py)) AS geom
            FROM unnest(CAST(:count AS int[]), CAST(:open AS int[]),
                        CAST(:overdue AS int[]), CAST(:px AS float8[]),
                        CAST(:py AS float8[])) AS u(count, open, overdue, px, py)) t), '')
          || (SELECT ST_AsMVT(m, 'meta', {EXTENT}, 'geom') FROM (
            SELECT true AS aggregated, :total AS cases, :cells AS cells,
                   {CELL_PX} AS cell_px, ST_Point({EXTENT // 2}, {EXTENT // 2}) AS geom) m)
        """), {"count": count[used].tolist(), "open": open_n.astype(int).tolist(),
               "overdue": over_n.astype(int).tolist(), "px": mx.tolist(), "py": my.tolist(),
               "total": int(inside.sum()), "cells": len(used)}).scalar_one().tobytes()
