"""Answers of the access API as GeoJSON-ready dicts: isochrones and the nearest service.

An isochrone's geometries are mostly written already (orjson.Fragment: the GeoJSON
geometry's JSON text, which orjson.dumps — routes._json — writes as it is); read one back
with orjson.loads(orjson.dumps(geometry))."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import MultiPolygon, mapping
from sqlalchemy import Connection, text

from gis_service.access import _band
from gis_service.access.bounds import check_grid
from gis_service.access.engine import MAX_ACCESS_M, AccessEngine
from gis_service.access.isochrone import (
    MIN_RING_CELLS,
    Contour,
    Rings,
    as_lines,
    coordinate_decimals,
    default_tolerance,
    ragged,
    rings_area,
    shaped,
    simplified_rings,
)
from gis_service.errors import InvalidInput, NotFound, OutsideCoverage
from gis_service.service_points.service import check_vocab, kind_filter

#: GB 50180-2018's quarter-hour life circle: 15 minutes at 4 km/h ≈ 1,000 m
DEFAULT_SPEED_KMH = 4.0
#: the bounds a request's walking time and speed must keep (routes, exports and the CLI)
MAX_WALK_MINUTES = 45.0
MAX_SPEED_KMH = 20.0
DEFAULT_WALK_OFF_M = 50.0
#: the coarsest outline generalization asked for (Valhalla has no bound; a kilometre is
#: already coarser than the widest isochrone the minutes allow is useful)
MAX_GENERALIZE_M = 1000.0
#: farther than this from every street of the walking network a point is outside the
#: ground the network covers: no isochrone is drawn there (a circle would pretend data)
COVERAGE_M = 20_000.0


def metres(minutes: float, speed_kmh: float) -> float:
    return minutes * speed_kmh * 1000.0 / 60.0


def wgs84_geojson(engine: AccessEngine, geom, decimals: int = 7) -> dict[str, Any]:
    """Projected geometry → GeoJSON geometry in WGS-84, rounded to ``decimals`` of a
    degree (7: ≈ 1 cm)."""
    return geojson_geometry(shapely.transform(geom, _to_wgs84(engine)), decimals)


def wgs84_outline(engine: AccessEngine, poly: MultiPolygon, decimals: int) -> MultiPolygon:
    """A projected outline in WGS-84 with its coordinates rounded to ``decimals`` of a
    degree, and still valid: where rounding pinched a ring (a few hundredths of the
    outlines), GEOS snap-rounds it to the same grid instead (``set_precision``)."""
    if poly.is_empty:
        return MultiPolygon()
    xy, ring_at, part_at = ragged(poly)
    lonlat = _to_wgs84(engine)(xy)
    offsets = (ring_at, part_at, np.array([0, len(part_at) - 1]))
    rounded = shapely.from_ragged_array(_MULTIPOLYGON, np.round(lonlat, decimals), offsets)[0]
    if shapely.is_valid(rounded):
        return rounded
    wgs = shapely.from_ragged_array(_MULTIPOLYGON, lonlat, offsets)[0]
    snapped = shapely.set_precision(wgs, 10.0**-decimals)
    if isinstance(snapped, MultiPolygon):
        return snapped
    return MultiPolygon([p for p in shapely.get_parts(snapped) if p.geom_type == "Polygon"])


def _to_wgs84(engine: AccessEngine):
    inv = engine.graph.projection.inverse

    def back(xy: np.ndarray) -> np.ndarray:
        lon, lat = inv.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return back


def geojson_geometry(geom, decimals: int) -> dict[str, Any]:
    """A GeoJSON geometry dict of a shapely geometry, coordinates rounded to ``decimals``.
    Lines and polygons go through one array: one rounding and one ``tolist`` (shapely's
    ``mapping`` walked every vertex in Python)."""
    kind = shapely.get_type_id(geom)
    if kind not in _NESTING:
        return mapping(shapely.transform(geom, lambda xy: np.round(xy, decimals)))
    if kind == 6 and not geom.is_empty:  # the outlines: without to_ragged_array's overhead
        coords, ring_at, part_at = ragged(geom)
        offsets = (ring_at, part_at, np.array([0, len(part_at) - 1]))
    else:
        _, coords, offsets = shapely.to_ragged_array([geom])
    nested: list = np.round(coords, decimals).tolist() if len(coords) else []
    # innermost first: points → lines/rings → polygons; the last level is the one geometry
    for level in offsets[:-1]:
        nested = [nested[a:b] for a, b in itertools.pairwise(level.tolist())]
    return {"type": _NESTING[kind], "coordinates": nested}


_MULTIPOLYGON = shapely.GeometryType.MULTIPOLYGON
#: GEOS type id → GeoJSON type of the geometries written through one array
_NESTING = {1: "LineString", 3: "Polygon", 5: "MultiLineString", 6: "MultiPolygon"}


def isochrone(
    engine: AccessEngine,
    lon: float,
    lat: float,
    minutes: list[float],
    speed_kmh: float = DEFAULT_SPEED_KMH,
    walk_off_m: float = DEFAULT_WALK_OFF_M,
    resolution_m: float | None = None,
    max_access_m: float = MAX_ACCESS_M,
    *,
    generalize: float | None = None,
    polygons: bool = True,
    denoise: float = 0.0,
) -> dict[str, Any]:
    """Walking isochrones from (lon, lat) WGS-84 for each of ``minutes`` at ``speed_kmh``,
    as a GeoJSON FeatureCollection of WGS-84 polygons (``polygons=False``: their rings as
    MultiLineStrings). Outline options, Valhalla's names (docs/access.md):
    ``generalize`` tolerance in metres, as Douglas–Peucker's (default: one grid cell; 0:
    the trace as it is), ``denoise`` 0..1 drops rings smaller than that share of the
    largest. Coordinates are written to isochrone.coordinate_decimals of the grid; a
    geometry is a dict or, the usual case, an orjson.Fragment of the same JSON (_written).

    Errors: 422 invalid_input without minutes, 422 analysis_too_large when
    ``resolution_m`` (metres) would need a raster of more than ``access/bounds.py:
    MAX_GRID_CELLS`` cells, 422 outside_coverage farther than ``COVERAGE_M`` from every
    street."""
    if not minutes:
        raise InvalidInput("minutes: give at least one contour, e.g. minutes=5,10,15")
    minutes = sorted(set(minutes))
    distances = [metres(m, speed_kmh) for m in minutes]
    if resolution_m is not None:  # the default resolution always draws 256 × 256 cells
        check_grid(max(distances), walk_off_m, resolution_m)
    xy = engine.project(lon, lat)
    origin = engine.snap_projected(*xy)
    leg = float(origin.leg[0])
    if not leg <= COVERAGE_M:  # also NaN/inf from a projection far from its centre
        raise OutsideCoverage(
            f"lon={lon}, lat={lat} is not within {COVERAGE_M / 1000:g} km of any street of the "
            "walking network: there is no data to draw an isochrone from",
            field="lon",
        )
    contours = engine.isochrones(
        lon, lat, distances, walk_off_m, resolution_m, max_access_m, origin=origin, xy=xy
    )
    tolerances = [
        # a circle (method euclidean) is exact: only an asked generalization applies
        (default_tolerance(c.resolution_m) if generalize is None else generalize) or 0.0
        for c in contours
    ]
    written = _written(engine, contours, tolerances, denoise, polygons)
    features = []
    for m, c, tolerance, fast in zip(minutes, contours, tolerances, written, strict=True):
        if fast is not None:
            geometry, area = fast
        else:
            outline = shaped(c.polygon, c.resolution_m, tolerance, denoise)
            decimals = coordinate_decimals(c.resolution_m)
            answer = wgs84_outline(engine, outline, decimals)
            geometry = geojson_geometry(answer if polygons else as_lines(answer), decimals)
            area = float(outline.area)
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "minutes": m,
                    "distance_m": round(c.distance_m, 1),
                    "method": c.method,
                    "walk_off_m": walk_off_m if c.method == "network" else 0.0,
                    "resolution_m": round(c.resolution_m, 2),
                    "generalize_m": round(tolerance, 2),
                    "denoise": denoise,
                    "speed_kmh": speed_kmh,
                    "area_m2": round(area, 1),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "origin": {
            "lon": lon,
            "lat": lat,
            "access_m": round(float(origin.leg[0]), 1),
            "max_access_m": max_access_m,
        },
        "network_version": engine.version,
    }


def _written(
    engine: AccessEngine,
    contours: list[Contour],
    tolerances: list[float],
    denoise: float,
    polygons: bool,
) -> list[tuple[orjson.Fragment, float] | None]:
    """The usual contours' GeoJSON geometries the fast way, as (the geometry's JSON text,
    the outline's projected area in m²), None for each contour that takes GEOS's way
    (isochrone.shaped, wgs84_outline, geojson_geometry): a circle, ``denoise``, nothing
    traced, a long ring that generalizing would collapse, or an outline that rounding to
    degrees might make invalid. The fast way is the same outline with the same rules —
    the trace's ragged arrays generalized by isochrone.simplified_rings (the rings under
    MIN_RING_CELLS dropped), every contour turned to degrees by one call of pyproj,
    rounded to coordinate_decimals and written by _band.encode, whose exact check of the
    rounded rings stands in for GEOS's is_valid — without the shapely geometries between
    (generalizing, WGS-84 and GeoJSON of a 5/10/15 answer on the demo: 1.5 → 0.45 ms CPU,
    2026-12-01, benchmarks/RESULTS.md). Unlike GEOS's way it checks the generalized
    outline only once, after rounding: what it writes is valid either way, and a crossing
    that generalizing made and rounding kept sends the contour GEOS's way."""
    todo: list[tuple[int, Rings]] = []
    areas: dict[int, float] = {}
    for i, (c, tolerance) in enumerate(zip(contours, tolerances, strict=True)):
        if c.rings is None or denoise > 0 or len(c.rings[2]) < 2:
            continue
        rings = c.rings
        if tolerance > 0:
            floor = MIN_RING_CELLS * c.resolution_m**2
            rings, collapsed, areas[i] = simplified_rings(rings, tolerance, floor)
            if collapsed or len(rings[2]) < 2:
                continue
        else:
            areas[i] = rings_area(rings)
        todo.append((i, rings))
    out: list[tuple[orjson.Fragment, float] | None] = [None] * len(contours)
    if not todo:
        return out
    lonlat = _to_wgs84(engine)(np.concatenate([r[0] for _, r in todo]))
    at = 0
    kind = b"MultiPolygon" if polygons else b"MultiLineString"
    for i, (coords, ring_at, part_at) in todo:
        text = _band.encode(
            lonlat[at : at + len(coords)],
            ring_at,
            part_at,
            coordinate_decimals(contours[i].resolution_m),
            not polygons,
        )
        at += len(coords)
        if text is not None:
            geometry = b'{"type":"' + kind + b'","coordinates":' + text + b"}"
            out[i] = (orjson.Fragment(geometry), areas[i])
    return out


def _points(conn: Connection, kind: str | None, category: str | None) -> list[dict]:
    where, params = kind_filter(kind, category)
    rows = conn.execute(
        text(
            f"SELECT id, name, kind, categories, ST_X(geom) AS lon, ST_Y(geom) AS lat, address "
            f"FROM service_point WHERE {' AND '.join(['TRUE', *where])} ORDER BY id"
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def nearest(
    conn: Connection,
    engine: AccessEngine,
    lon: float,
    lat: float,
    *,
    kind: str | None,
    category: str | None,
    max_m: float,
    with_path: bool,
    max_access_m: float = MAX_ACCESS_M,
) -> dict[str, Any]:
    check_vocab(conn, kind, category)
    points = _points(conn, kind, category)
    what = " and ".join(
        x for x in (f"kind {kind}" if kind else "", f"category {category}" if category else "") if x
    )
    if not points:
        raise NotFound(f"no service point of {what or 'any kind'} exists")
    plon = np.array([p["lon"] for p in points])
    plat = np.array([p["lat"] for p in points])
    targets = engine.snap(plon, plat)
    origin = engine.snap(lon, lat)
    x, y = engine.project(lon, lat)
    px, py = engine.project(plon, plat)
    found = None
    if float(origin.leg[0]) > max_access_m:
        method = "euclidean"
        dist = np.hypot(px - x, py - y)
    else:
        method = "network"
        found = engine.search(origin, max_m)
        dist = found.distance_to(targets.edge, targets.frac) + targets.leg
    best = int(np.argmin(dist))
    if not np.isfinite(dist[best]) or dist[best] > max_m:
        raise NotFound(
            f"no service point of {what or 'any kind'} within {max_m:,.0f} m walk",
            max_m=max_m,
            method=method,
        )
    p = points[best]
    out: dict[str, Any] = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
        "properties": {
            "id": p["id"],
            "name": p["name"],
            "kind": p["kind"],
            "categories": list(p["categories"]),
            "address": p["address"],
            "distance_m": round(float(dist[best]), 1),
            "method": method,
            "access_m": round(float(origin.leg[0]), 1),
            "egress_m": round(float(targets.leg[best]), 1),
            "straight_m": round(float(np.hypot(px[best] - x, py[best] - y)), 1),
        },
        "network_version": engine.version,
    }
    if with_path:
        if found is None:
            line = shapely.LineString([(float(x), float(y)), (float(px[best]), float(py[best]))])
        else:
            line = engine.path_line(
                found, targets, best, (float(x), float(y)), (float(px[best]), float(py[best]))
            )
        out["properties"]["path"] = wgs84_geojson(engine, line)
    return out
