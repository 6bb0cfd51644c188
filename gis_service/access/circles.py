"""Quarter-hour service circles of every service point, cached in PostGIS, and their
unions per category and per kind.

A circle is stale when the network has changed since it was drawn or its point has moved;
a deleted point takes its circle with it (ON DELETE CASCADE). Only stale circles are
redrawn, so editing one point costs one isochrone, not a thousand. Unions are redrawn
when any circle or any point's kind or categories change (the points version).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, text

from gis_service.access.engine import AccessEngine
from gis_service.access.isochrone import coordinate_decimals, shaped
from gis_service.access.reach import QUARTER_HOUR_M, current_versions
from gis_service.access.service import DEFAULT_WALK_OFF_M
from gis_service.imports.report import Progress, no_progress
from gis_service.service_points.service import kind_filter, open_point

#: the stored outline is traced on this grid (an API isochrone may ask for finer)
CIRCLE_RESOLUTION_M = 8.0
#: unions cover a whole district: a slightly coarser grid keeps them under a second each
UNION_RESOLUTION_M = 10.0


@dataclass
class CircleRun:
    drawn: int
    kept: int
    unions: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.drawn:,} service circles drawn, {self.kept:,} still current, "
            f"{self.unions:,} unions in {self.seconds:.1f} s"
        )


def stale_points(conn: Connection, network_version: int) -> list[tuple[int, float, float]]:
    return [
        tuple(r)
        for r in conn.execute(
            text(f"""
        SELECT p.id, ST_X(p.geom), ST_Y(p.geom) FROM service_point p
        LEFT JOIN service_circle c ON c.point_id = p.id
        WHERE {open_point("p")} AND (c.point_id IS NULL OR c.network_version <> :v
           OR NOT ST_Equals(c.point_geom, p.geom) OR c.distance_m <> :d)
        ORDER BY p.id"""),
            {"v": network_version, "d": QUARTER_HOUR_M},
        )
    ]


def stale_count(conn: Connection) -> int:
    return len(stale_points(conn, current_versions(conn)[0]))


def _ewkt(engine: AccessEngine, poly: MultiPolygon, cell: float) -> str:
    """WGS-84 EWKT of a projected outline traced on ``cell`` metres, generalized as every
    isochrone answer is by default (isochrone.shaped: within one cell, topology kept, rings
    under a cell dropped; the trace has a vertex at every cell it crosses)."""
    inv = engine.graph.projection.inverse
    poly = shaped(poly, cell)

    def back(xy: np.ndarray) -> np.ndarray:
        lon, lat = inv.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    geom = shapely.transform(poly, back)
    if not isinstance(geom, MultiPolygon):
        geom = MultiPolygon([p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"])
    return "SRID=4326;" + shapely.to_wkt(geom, rounding_precision=7, trim=True)


def refresh(conn: Connection, engine: AccessEngine, progress: Progress = no_progress) -> CircleRun:
    """Redraw the stale circles and, if anything changed, the unions (one transaction)."""
    t0 = time.perf_counter()
    conn.execute(text("SELECT pg_advisory_xact_lock(5410106)"))
    versions = current_versions(conn)
    todo = stale_points(conn, versions[0])
    total = conn.execute(
        text(f"SELECT count(*) FROM service_point WHERE {open_point()}")
    ).scalar_one()
    buf = io.StringIO()
    for i, (pid, lon, lat) in enumerate(todo):
        if i % 50 == 0:
            progress(f"service circles {i:,}/{len(todo):,}")
        c = engine.isochrones(lon, lat, [QUARTER_HOUR_M], DEFAULT_WALK_OFF_M, CIRCLE_RESOLUTION_M)[
            0
        ]
        outline = _ewkt(engine, c.polygon, CIRCLE_RESOLUTION_M)
        buf.write(
            f"{pid}\t{QUARTER_HOUR_M}\t{DEFAULT_WALK_OFF_M}\t{c.method}\t"
            f"SRID=4326;POINT({lon!r} {lat!r})\t{versions[0]}\t{outline}\n"
        )
    if todo:
        ids = [t[0] for t in todo]
        conn.execute(text("DELETE FROM service_circle WHERE point_id = ANY(:ids)"), {"ids": ids})
        buf.seek(0)
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert(
                "COPY service_circle (point_id, distance_m, walk_off_m, method, "
                "point_geom, network_version, geom) FROM STDIN",
                buf,
            )
    unions = _refresh_unions(conn, engine, versions, progress)
    return CircleRun(len(todo), total - len(todo), unions, time.perf_counter() - t0)


def unions_current(conn: Connection) -> bool:
    stamp = current_versions(conn)[:2]
    return bool(
        conn.execute(
            text("SELECT bool_and(versions = CAST(:v AS bigint[])) FROM circle_union"), {"v": stamp}
        ).scalar()
    )


def _refresh_unions(
    conn: Connection, engine: AccessEngine, versions: list[int], progress: Progress
) -> int:
    stamp = [versions[0], versions[1]]
    if unions_current(conn):
        return 0
    progress("unions per category and per kind")
    conn.execute(text("DELETE FROM circle_union"))
    rows = conn.execute(
        text(
            f"SELECT kind, categories, ST_X(geom), ST_Y(geom) FROM service_point "
            f"WHERE {open_point()}"
        )
    ).all()
    groups: dict[str, list[tuple[float, float]]] = {}
    for kind, cats, lon, lat in rows:
        groups.setdefault(f"kind:{kind}", []).append((lon, lat))
        for c in cats:
            groups.setdefault(f"category:{c}", []).append((lon, lat))
    for key, pts in sorted(groups.items()):
        xy = np.asarray(pts)
        poly = engine.union_polygon(
            xy[:, 0], xy[:, 1], QUARTER_HOUR_M, DEFAULT_WALK_OFF_M, UNION_RESOLUTION_M
        )
        conn.execute(
            text(
                "INSERT INTO circle_union (key, versions, point_count, area_m2, geom) VALUES "
                "(:k, CAST(:v AS bigint[]), :n, :a, ST_GeomFromEWKT(:g))"
            ),
            {
                "k": key,
                "v": stamp,
                "n": len(pts),
                "a": float(poly.area),
                "g": _ewkt(engine, poly, UNION_RESOLUTION_M),
            },
        )
    return len(groups)


def circles_geojson(
    conn: Connection, *, category: str | None, kind: str | None, union: bool
) -> str:
    """The FeatureCollection as text, assembled by PostgreSQL: a district's union has
    ~140,000 vertices, and parsing and re-serialising them in Python took seconds."""
    # written with the decimals their grid has (isochrone.coordinate_decimals), as the
    # isochrone answers are
    params: dict = {
        "d": QUARTER_HOUR_M,
        "dec": coordinate_decimals(UNION_RESOLUTION_M if union else CIRCLE_RESOLUTION_M),
    }
    if union:
        keys = [
            k
            for k in (
                f"category:{category}" if category else None,
                f"kind:{kind}" if kind else None,
            )
            if k
        ]
        where = "key = ANY(:keys)" if keys else "TRUE"
        params["keys"] = keys
        sql = f"""
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object(
                       'type', 'Feature', 'id', key,
                       'geometry', ST_AsGeoJSON(geom, :dec)::json,
                       'properties', json_build_object(
                           'key', key, 'group', split_part(key, ':', 1),
                           'code', split_part(key, ':', 2), 'points', point_count,
                           'area_m2', round(area_m2::numeric, 1), 'distance_m', :d,
                           'computed_at', computed_at)) ORDER BY key), '[]'))::text
            FROM circle_union WHERE {where}"""
    else:
        terms, more = kind_filter(kind, category, "p")
        where = ["TRUE", *terms]
        params.update(more)
        sql = f"""
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object(
                       'type', 'Feature', 'id', p.id,
                       'geometry', ST_AsGeoJSON(c.geom, :dec)::json,
                       'properties', json_build_object(
                           'point_id', p.id, 'name', p.name, 'kind', p.kind,
                           'categories', p.categories, 'method', c.method,
                           'distance_m', c.distance_m,
                           'area_m2', round(ST_Area(c.geom::geography)::numeric, 1)))
                       ORDER BY p.id), '[]'))::text
            FROM service_point p JOIN service_circle c ON c.point_id = p.id
            WHERE {" AND ".join(where)}"""
    return conn.execute(text(sql), params).scalar_one()
