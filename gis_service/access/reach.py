"""The walking distance of every building to its nearest party organisation and to the
nearest service of each of the six living-circle categories, in one pass per question.

One multi-source search per question over the whole network (never one query per
building): every service point is a source, scipy's Dijkstra labels each street node with
its nearest source, and each building reads its distance off the street it stands on.
Results are kept in ``building_access`` with the versions of the network, the points and
the units they were computed from; a change to any of them makes them stale, and the next
question recomputes them (``ensure_fresh``).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from gis_service.access.engine import MAX_ACCESS_M, AccessEngine
from gis_service.access.search import distance_to_targets, nearest_sources
from gis_service.access.snap import Snapped
from gis_service.errors import NotFound
from gis_service.imports.report import Progress, no_progress
from gis_service.service_points.service import open_point
from gis_service.units.codes import district_of

#: a quarter hour at 4 km/h (GB 50180-2018's 15-minute life circle: 800–1,000 m)
QUARTER_HOUR_M = 1000.0
#: the one-kilometre promise: 不出千米就能找到党组织
PARTY_REACH_M = 1000.0
#: searches stop here; farther distances are stored as unknown ("beyond 3 km")
SEARCH_LIMIT_M = 3000.0
LOCK_KEY = 5_410_105  # pg_advisory_xact_lock: one recomputation at a time


@dataclass
class Points:
    id: np.ndarray
    kind: list[str]
    categories: list[list[str]]
    lon: np.ndarray
    lat: np.ndarray


@dataclass
class ReachRun:
    buildings: int
    population: int
    seconds: float
    versions: list[int]

    def summary(self) -> str:
        return (
            f"walking distances of {self.buildings:,} buildings "
            f"({self.population:,} residents) in {self.seconds:.2f} s"
        )


def current_versions(conn: Connection) -> list[int]:
    row = conn.execute(
        text("SELECT network_version, points_version, units_version FROM access_state")
    ).one()
    return [int(v) for v in row]


def stored_versions(conn: Connection) -> list[int] | None:
    row = conn.execute(text("SELECT versions FROM building_access LIMIT 1")).first()
    return None if row is None else [int(v) for v in row[0]]


def building_rows(conn: Connection) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    rows = conn.execute(
        text(
            "SELECT code, coalesce(population, 0), ST_X(label_point), ST_Y(label_point) "
            "FROM admin_unit WHERE level = 'building' ORDER BY code"
        )
    ).all()
    if not rows:
        raise NotFound("no building units: import the building level of the grid first")
    code, pop, lon, lat = zip(*rows, strict=True)
    return list(code), np.array(pop, np.int64), np.array(lon), np.array(lat)


def point_rows(conn: Connection) -> tuple[Points, set[str]]:
    rows = conn.execute(
        text(
            "SELECT id, kind, categories, ST_X(geom), ST_Y(geom) FROM service_point "
            f"WHERE {open_point()} ORDER BY id"
        )
    ).all()
    party = {
        r[0]
        for r in conn.execute(text("SELECT code FROM service_kind WHERE counts_for_party_reach"))
    }
    if not rows:
        return Points(np.zeros(0, np.int64), [], [], np.zeros(0), np.zeros(0)), party
    pid, kind, cats, lon, lat = zip(*rows, strict=True)
    return Points(
        np.array(pid, np.int64), list(kind), [list(c) for c in cats], np.array(lon), np.array(lat)
    ), party


def _subset(s: Snapped, mask: np.ndarray) -> Snapped:
    return Snapped(edge=s.edge[mask], frac=s.frac[mask], leg=s.leg[mask], x=s.x[mask], y=s.y[mask])


def distances_to(
    engine: AccessEngine,
    sources: Snapped,
    src_xy: np.ndarray,
    targets: Snapped,
    tgt_xy: np.ndarray,
    on_network: np.ndarray,
    limit: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per target: distance to the nearest source (inf if none within limit), its index,
    and the method (network, or euclidean for targets too far from any street)."""
    n = len(targets)
    dist = np.full(n, np.inf)
    which = np.full(n, -1, np.int64)
    if len(sources) == 0:
        return dist, which, np.where(on_network, "network", "euclidean")
    node_dist, node_src = nearest_sources(engine.graph, sources, toward=True, limit=limit)
    d, w = distance_to_targets(engine.graph, node_dist, node_src, sources, targets)
    dist[on_network], which[on_network] = d[on_network], w[on_network]
    off = ~on_network
    if off.any():
        straight, idx = cKDTree(src_xy).query(tgt_xy[off])
        dist[off], which[off] = straight, idx
    dist[dist > limit] = np.inf
    which[~np.isfinite(dist)] = -1
    return dist, which, np.where(on_network, "network", "euclidean")


def compute(conn: Connection, engine: AccessEngine, progress: Progress = no_progress) -> ReachRun:
    """Recompute building_access (the caller's transaction; nothing half-written)."""
    t0 = time.perf_counter()
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    versions = current_versions(conn)
    codes, pop, blon, blat = building_rows(conn)
    points, party_kinds = point_rows(conn)
    categories = [
        r[0] for r in conn.execute(text("SELECT code FROM living_category ORDER BY sort"))
    ]
    progress(f"snapping {len(codes):,} buildings and {len(points.id):,} service points")
    b_snap = engine.snap(blon, blat)
    bx, by = engine.project(blon, blat)
    b_xy = np.column_stack([bx, by])
    on_net = b_snap.leg <= MAX_ACCESS_M
    if len(points.id):
        p_snap = engine.snap(points.lon, points.lat)
        px, py = engine.project(points.lon, points.lat)
        p_xy = np.column_stack([px, py])
    progress("one-kilometre reach of party organisations")
    is_party = np.array([k in party_kinds for k in points.kind], bool)
    if is_party.any():
        party_m, party_i, method = distances_to(
            engine, _subset(p_snap, is_party), p_xy[is_party], b_snap, b_xy, on_net, SEARCH_LIMIT_M
        )
        party_id = np.where(party_i >= 0, points.id[is_party][np.maximum(party_i, 0)], -1)
    else:
        party_m = np.full(len(codes), np.inf)
        party_id = np.full(len(codes), -1)
        method = np.where(on_net, "network", "euclidean")
    per_cat: dict[str, np.ndarray] = {}
    for cat in categories:
        progress(f"quarter-hour circle: {cat}")
        mask = np.array([cat in c for c in points.categories], bool)
        if mask.any():
            per_cat[cat] = distances_to(
                engine, _subset(p_snap, mask), p_xy[mask], b_snap, b_xy, on_net, SEARCH_LIMIT_M
            )[0]
        else:
            per_cat[cat] = np.full(len(codes), np.inf)
    progress(f"writing {len(codes):,} buildings")
    conn.execute(text("TRUNCATE building_access"))
    _copy_rows(
        conn,
        codes,
        blon,
        blat,
        pop,
        b_snap.leg,
        method,
        party_m,
        party_id,
        per_cat,
        categories,
        versions,
    )
    return ReachRun(len(codes), int(pop.sum()), time.perf_counter() - t0, versions)


def fresh_versions(conn: Connection) -> list[int] | None:
    """The current versions when building_access was computed from them, else None (the
    network, the points or the units changed since: recompute before answering)."""
    current = current_versions(conn)
    return current if stored_versions(conn) == current else None


def ensure_fresh(conn: Connection, engine: AccessEngine) -> list[int]:
    """Recompute building_access if the network, the points or the units have changed."""
    current = fresh_versions(conn)
    return current if current is not None else compute(conn, engine).versions


def _fmt(values: np.ndarray, digits: int) -> list[str]:
    """Numbers as COPY text, \\N for unknown (inf)."""
    out = np.round(values, digits).astype(str).astype(object)
    out[~np.isfinite(values)] = "\\N"
    return out.tolist()


def _copy_rows(
    conn: Connection,
    codes: list[str],
    lon: np.ndarray,
    lat: np.ndarray,
    pop: np.ndarray,
    leg: np.ndarray,
    method: np.ndarray,
    party_m: np.ndarray,
    party_id: np.ndarray,
    per_cat: dict[str, np.ndarray],
    categories: list[str],
    versions: list[int],
) -> None:
    """COPY building_access, the text built column by column (numpy, then one join)."""
    vtext = "{" + ",".join(map(str, versions)) + "}"
    cat_text = {c: [("null" if v == "\\N" else v) for v in _fmt(per_cat[c], 1)] for c in categories}
    within = (
        np.column_stack([per_cat[c] <= QUARTER_HOUR_M for c in categories])
        if categories
        else np.zeros((len(codes), 0), bool)
    )
    lines = []
    points = [
        f"SRID=4326;POINT({x:.8f} {y:.8f})" for x, y in zip(lon.tolist(), lat.tolist(), strict=True)
    ]
    pid = party_id.astype(str).astype(object)
    pid[party_id < 0] = "\\N"
    cols = [
        codes,
        [district_of(c) for c in codes],  # the key Citus distributes it by (0025)
        points,
        pop.astype(str).tolist(),
        _fmt(leg, 2),
        method.tolist(),
        _fmt(party_m, 2),
        pid.tolist(),
    ]
    for i, row in enumerate(zip(*cols, strict=True)):
        cat_json = "{" + ",".join(f'"{c}": {cat_text[c][i]}' for c in categories) + "}"
        near = "{" + ",".join(c for c, w in zip(categories, within[i], strict=True) if w) + "}"
        lines.append("\t".join((*row, cat_json, near, vtext)))
    buf = io.StringIO("\n".join(lines) + "\n")
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(
            "COPY building_access (unit_code, district_code, geom, population, leg_m, method, "
            "party_m, party_point_id, category_m, categories_within, versions) FROM STDIN",
            buf,
        )
