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

from gis_service.auth.principal import Principal
from gis_service.auth.scope import case_mask, require_case_reader, scope_key, units_visible
from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.errors import InvalidInput
from gis_service.stats.cube import STATUSES
from gis_service.tiles import encode
from gis_service.tiles.caseindex import BITS, CaseIndex, IndexState
from gis_service.units.codes import Level

EXTENT = 4096
BUFFER = 256  # tile units on each side: 1/16 of a tile
MARGIN = BUFFER / EXTENT
MAX_POINTS = 5000
POINT_ZOOM = 14
CELL_PX = 64
CELL_ZOOM = 6  # 64 cells per tile side: 2^6
WORLD_M = 2 * np.pi * 6378137.0


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= 22:
        raise InvalidInput(f"zoom {z} is outside 0–22", field="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"tile {z}/{x}/{y} does not exist at zoom {z}", field="x")


def tolerance_m(z: int) -> float:
    """Half a tile pixel (of 4096) in Web Mercator metres: finer detail cannot show."""
    return WORLD_M / (2**z) / EXTENT / 2


ENVELOPE = """
    WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                      ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)
                          AS area)
"""


def unit_level_for(z: int) -> str:
    return "subdistrict" if z < 12 else "community" if z < 14 else "grid"


def units_tile(
    conn: Connection,
    principal: Principal,
    z: int,
    x: int,
    y: int,
    level: str,
    figures: dict[str, dict[str, Any]],
) -> bytes:
    """Unit polygons of one level with their resolution figures (from the cube)."""
    where, params = units_visible(principal, "u.code")
    # only the figures of the units in this tile travel to the query (all 571 grids'
    # figures as arrays cost 15–25 ms; the tile's dozen, nothing)
    codes = [
        c
        for c in conn.execute(
            text(
                ENVELOPE
                + f"""
        SELECT u.code FROM admin_unit u CROSS JOIN b
        WHERE u.level = :level AND u.geom && b.area AND {where}"""
            ),
            {"z": z, "x": x, "y": y, "margin": MARGIN, "level": level, **params},
        ).scalars()
        if c in figures
    ]
    get = lambda k: [figures[c].get(k) for c in codes]  # noqa: E731
    sql = (
        ENVELOPE
        + f"""
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
    )
    return (
        conn.execute(
            text(sql),
            {
                "z": z,
                "x": x,
                "y": y,
                "margin": MARGIN,
                "tol": tolerance_m(z),
                "level": level,
                "codes": codes,
                "reported": get("reported"),
                "accepted": get("accepted"),
                "closed": get("closed"),
                "overdue": get("overdue_now"),
                "rate": get("resolution_rate"),
                "on_time": get("on_time_rate"),
                "rework": get("rework_rate"),
                "satisfaction": get("satisfaction_rate"),
                **params,
            },
        )
        .scalar_one()
        .tobytes()
    )


def points_tile(
    conn: Connection, z: int, x: int, y: int, kind: str | None, category: str | None
) -> bytes:
    from gis_service.service_points.service import kind_filter

    terms, params = kind_filter(kind, category, "p")
    sql = (
        ENVELOPE
        + f"""
        SELECT ST_AsMVT(t, 'service_points', {EXTENT}, 'geom', 'id') FROM (
            SELECT p.id, p.name, p.kind, array_to_string(p.categories, ',') AS categories,
                   p.address, p.phone,
                   ST_AsMVTGeom(ST_Transform(p.geom, 3857), b.env, {EXTENT}, {BUFFER}, true)
                       AS geom
            FROM service_point p CROSS JOIN b
            WHERE p.geom && b.area {"".join(" AND " + t for t in terms)}
        ) t WHERE t.geom IS NOT NULL"""
    )
    return (
        conn.execute(text(sql), {"z": z, "x": x, "y": y, "margin": MARGIN, **params})
        .scalar_one()
        .tobytes()
    )


def basemap_tile(conn: Connection, z: int, x: int, y: int) -> bytes:
    """Our own basemap: streets (walking network), unit boundaries, buildings at z ≥ 15."""
    boundary_levels = (
        [Level.district.value, Level.subdistrict.value]
        + (["community"] if z >= 13 else [])
        + (["grid"] if z >= 15 else [])
    )
    sql = (
        ENVELOPE
        + f"""
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
    )
    return (
        conn.execute(
            text(sql),
            {
                "z": z,
                "x": x,
                "y": y,
                "margin": MARGIN,
                "tol": tolerance_m(z),
                "levels": boundary_levels,
            },
        )
        .scalar_one()
        .tobytes()
    )


# ------------------------------------------------------------------------- cases


def _masks(
    conn: Connection,
    facts,
    principal: Principal,
    rows: np.ndarray,
    status: str | None,
    category: str | None,
    open_only: bool,
    overdue_only: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, open, overdue) for the given rows."""
    require_case_reader(principal)
    keep = case_mask(conn, principal, facts, rows)
    now = time.time()
    st = facts.status_now(now, rows)  # a parked case past its review is back (case_status)
    keep &= st != STATUSES.index("duplicate")
    if status:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        keep &= st == STATUSES.index(status)
    is_open = np.isin(st, [STATUSES.index(s) for s in OPEN_STATUSES])
    overdue = facts.overdue_now(now, rows, st)  # the one rule (case_overdue)
    if open_only:
        keep &= is_open
    if overdue_only:
        keep &= overdue
    if category:
        cats = [
            i
            for i, c in enumerate(facts.categories)
            if c == category or c.startswith(category + ".")
        ]
        keep &= np.isin(facts.category[rows], cats)
    return keep, is_open, overdue


def cases_tile(
    conn: Connection,
    state: IndexState,
    principal: Principal,
    z: int,
    x: int,
    y: int,
    *,
    status: str | None = None,
    category: str | None = None,
    open_only: bool = False,
    overdue_only: bool = False,
) -> bytes:
    """Cases of one tile. Counts per 64-pixel cell come from prefix sums over the
    Morton-sorted cases (each cell is one key range), so a crowded tile costs the same
    as an empty one; only a tile that will show single cases touches their rows. Read
    from one ``state`` of the index (``CaseIndex.state()``) throughout."""
    facts = state.facts
    filters = (scope_key(principal), status, category, open_only, overdue_only)
    sums = state.cached_sums(filters)
    if sums is None:
        everything = np.arange(len(facts.ids))
        sums = state.sums(
            filters,
            *_masks(conn, facts, principal, everything, status, category, open_only, overdue_only),
        )
    zc = z + CELL_ZOOM
    per = 1 << CELL_ZOOM
    ring = BUFFER * per // EXTENT
    cx, cy = np.meshgrid(
        np.arange(x * per - ring, (x + 1) * per + ring),
        np.arange(y * per - ring, (y + 1) * per + ring),
        indexing="ij",
    )
    cx, cy = cx.ravel(), cy.ravel()
    ok = (cx >= 0) & (cy >= 0) & (cx < (1 << zc)) & (cy < (1 << zc))
    cx, cy = cx[ok], cy[ok]
    start, end = state.cell_ranges(zc, cx, cy)
    count = sums.count[end] - sums.count[start]
    # cases reported since the last sort: few, filtered and binned one by one
    tail = state.tail
    t_open = t_over = np.zeros(0, bool)
    if len(tail):
        keep, t_open, t_over = _masks(
            conn, facts, principal, tail, status, category, open_only, overdue_only
        )
        tail, t_open, t_over = tail[keep], t_open[keep], t_over[keep]
    size = float(1 << (BITS - z))
    total = int(count.sum()) + len(tail)
    if z >= POINT_ZOOM and total <= MAX_POINTS:
        rows = state.rows_between(start[count > 0], end[count > 0])
        keep, _is_open, overdue = _masks(
            conn, facts, principal, rows, status, category, open_only, overdue_only
        )
        rows = np.concatenate([rows[keep], tail])
        overdue = np.concatenate([overdue[keep], t_over])
        px = (state.wx[rows].astype(np.float64) - x * size) / size * EXTENT
        py = (state.wy[rows].astype(np.float64) - y * size) / size * EXTENT
        inside = (px >= -BUFFER) & (px < EXTENT + BUFFER) & (py >= -BUFFER) & (py < EXTENT + BUFFER)
        return _points_mvt(conn, facts, rows[inside], px[inside], py[inside], overdue[inside])
    used = count > 0
    n = count[used].astype(np.float64)
    s, e = start[used], end[used]
    mx = (sums.x[e] - sums.x[s]) / n
    my = (sums.y[e] - sums.y[s]) / n
    open_n = sums.open[e] - sums.open[s]
    over_n = sums.overdue[e] - sums.overdue[s]
    if len(tail):  # fold the tail into the cells it falls in (or new ones)
        tx = state.wx[tail] >> np.uint64(BITS - zc)
        ty = state.wy[tail] >> np.uint64(BITS - zc)
        cells = {
            (int(a), int(b)): i for i, (a, b) in enumerate(zip(cx[used], cy[used], strict=True))
        }
        n, mx, my = list(n), list(mx), list(my)
        open_n, over_n = list(open_n), list(over_n)
        for r, a, b, o, v in zip(
            tail.tolist(), tx.tolist(), ty.tolist(), t_open.tolist(), t_over.tolist(), strict=True
        ):
            i = cells.get((a, b))
            if i is None:
                cells[(a, b)] = i = len(n)
                n.append(0.0), mx.append(0.0), my.append(0.0)
                open_n.append(0.0), over_n.append(0.0)
            w = n[i]
            mx[i] = (mx[i] * w + float(state.wx[r])) / (w + 1)
            my[i] = (my[i] * w + float(state.wy[r])) / (w + 1)
            n[i], open_n[i], over_n[i] = w + 1, open_n[i] + o, over_n[i] + v
        n, mx, my = np.asarray(n), np.asarray(mx), np.asarray(my)
        open_n, over_n = np.asarray(open_n), np.asarray(over_n)
    px = (mx - x * size) / size * EXTENT
    py = (my - y * size) / size * EXTENT
    inside = (px >= 0) & (px < EXTENT) & (py >= 0) & (py < EXTENT)
    return _cells_mvt(conn, px, py, n, open_n, over_n, int(n[inside].sum()))


def _points_mvt(conn: Connection, facts, rows, px, py, overdue) -> bytes:
    """Single cases: id, status, category and overdue flag (the rest is one click away)."""
    return encode.point_layer(
        "cases",
        px,
        py,
        props={
            "case_id": facts.ids[rows],
            "status": np.asarray(STATUSES, dtype=object)[facts.status_now(time.time(), rows)],
            "category": np.asarray(facts.categories, dtype=object)[facts.category[rows]],
            "overdue": np.asarray(overdue, bool),
        },
    )


def _cells_mvt(conn: Connection, px, py, count, open_n, over_n, total: int) -> bytes:
    """Counts per 64-pixel cell at the cases' mean position, each marked aggregated, and a
    ``meta`` layer with how many cases the tile holds."""
    n = len(count)
    cells = encode.point_layer(
        "cases",
        px,
        py,
        props={
            "count": np.asarray(count).astype(np.int64),
            "open": np.asarray(open_n).astype(np.int64),
            "overdue": np.asarray(over_n).astype(np.int64),
            "aggregated": np.ones(n, bool),
            "cell_px": np.full(n, CELL_PX, np.int64),
        },
    )
    meta = encode.point_layer(
        "meta",
        np.array([EXTENT / 2]),
        np.array([EXTENT / 2]),
        props={
            "aggregated": np.array([True]),
            "cases": np.array([total], np.int64),
            "cells": np.array([n], np.int64),
            "cell_px": np.array([CELL_PX], np.int64),
        },
    )
    return cells + meta


def pick_case(
    conn: Connection,
    index: CaseIndex,
    principal: Principal,
    lon: float,
    lat: float,
    z: int,
    *,
    radius_px: float = 8.0,
    status: str | None = None,
    category: str | None = None,
    open_only: bool = False,
    overdue_only: bool = False,
) -> int | None:
    """The case drawn nearest a click (within ``radius_px`` screen pixels at zoom z), by the
    same filters and jurisdiction as the tiles; None if nothing is that close."""
    from gis_service.tiles.caseindex import world_xy

    state = index.state()  # one version throughout
    facts = state.facts
    wx, wy = (int(v[0]) for v in world_xy(np.array([lon]), np.array([lat])))
    zc = min(z + 5, BITS)  # cells of 8 screen pixels (tiles are 256 px wide)
    shift = BITS - zc
    cx, cy = wx >> shift, wy >> shift
    gx, gy = np.meshgrid(np.arange(cx - 1, cx + 2), np.arange(cy - 1, cy + 2), indexing="ij")
    # the cell and its neighbours that exist: at the world's edge (lon -180, lat ±85) a
    # neighbour would be cell -1 or 2^zc, which the unsigned keys would wrap around
    inside = (gx >= 0) & (gx < 1 << zc) & (gy >= 0) & (gy < 1 << zc)
    start, end = state.cell_ranges(zc, gx[inside], gy[inside])
    rows = np.concatenate([state.rows_between(start, end), state.tail])
    if len(rows) == 0:
        return None
    keep = _masks(conn, facts, principal, rows, status, category, open_only, overdue_only)[0]
    rows = rows[keep]
    if len(rows) == 0:
        return None
    per_px = float(1 << (BITS - z)) / 256.0
    d = (
        np.hypot(state.wx[rows].astype(np.float64) - wx, state.wy[rows].astype(np.float64) - wy)
        / per_px
    )
    best = int(np.argmin(d))
    return int(facts.ids[rows[best]]) if d[best] <= radius_px else None
