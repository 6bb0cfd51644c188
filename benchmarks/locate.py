"""Locate benchmark: 10,000 random points in the demo district.

Prints, in one run:
- in the database: the locate statement's execution time (EXPLAIN ANALYZE, server side)
  and its round trip from Python over loopback (psycopg2, one connection);
- the same statement under pgbench (the peer: PostgreSQL's own load generator), 1 client;
- through the API: HTTP GET /api/v1/locate against a uvicorn started here, over loopback.
Targets (issue 3): median ≤ 1 ms in the database, ≤ 5 ms through the API.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
import numpy as np
import psycopg2
from common import DB, pgbench, random_points, server, setup

from gis_service.db import cluster
from gis_service.settings import Settings
from gis_service.units.service import LOCATE_SQL

N = int(os.environ.get("LOCATE_POINTS", "10000"))


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def line(label: str, ms: list[float]) -> str:
    return (
        f"{label:<42} median {statistics.median(ms):7.3f} ms   p99 {pct(ms, 99):7.3f} ms"
        f"   ({len(ms)} samples)"
    )


def setup_points() -> tuple[Settings, list[tuple[float, float]]]:
    settings = setup(DB)
    return settings, random_points(settings, N, seed=42)


def in_database(settings: Settings, points) -> tuple[list[float], list[float]]:
    dsn = cluster.public_url(settings)
    sql = (
        str(LOCATE_SQL.compile(compile_kwargs={}))
        .replace(":lon", "%(lon)s")
        .replace(":lat", "%(lat)s")
    )
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    for lon, lat in points[:200]:  # warm the cache
        cur.execute(sql, {"lon": lon, "lat": lat})
        cur.fetchall()
    round_trip = []
    for lon, lat in points:
        t = time.perf_counter()
        cur.execute(sql, {"lon": lon, "lat": lat})
        cur.fetchall()
        round_trip.append((time.perf_counter() - t) * 1000)
    server = []
    for lon, lat in points[:2000]:
        cur.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, {"lon": lon, "lat": lat})
        plan = cur.fetchone()[0][0]
        server.append(plan["Execution Time"] + plan.get("Planning Time", 0.0))
    conn.close()
    return server, round_trip


def pgbench_line(settings: Settings) -> str:
    """The same statement in pgbench with random points over the district's bounding box."""
    script = """
\\set x random(0, 1000000)
\\set y random(0, 1000000)
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(113.61 + :x * 0.00000024,
                                           34.735 + :y * 0.000000155), 4326) AS g),
hit AS (SELECT code FROM pt, locate_unit(pt.g) code)
SELECT a.code, a.level, a.name FROM hit JOIN admin_unit a ON a.code = ANY (unit_prefixes(hit.code));
"""
    tps, lat = pgbench(settings, script, clients=1, seconds=10)
    label = "pgbench, same statement, 1 client, 10 s"
    return f"{label:<42} latency avg {lat:.3f} ms   {tps:,.0f} tps"


def through_api(settings: Settings, points) -> list[float]:
    with server(settings) as srv, httpx.Client(base_url=srv.base) as client:
        for lon, lat in points[:200]:
            client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
        ms = []
        for lon, lat in points:
            t = time.perf_counter()
            r = client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
            ms.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"locate failed at {lon},{lat}: {r.text}")
        return ms


def main() -> None:
    settings, points = setup_points()
    print(f"locate over {len(points):,} random points in 金水区 (demo: 2,025 units)")
    server, round_trip = in_database(settings, points)
    print(line("database: execution (EXPLAIN ANALYZE)", server))
    print(line("database: round trip from Python", round_trip))
    print(pgbench_line(settings))
    api = through_api(settings, points)
    print(line("API: HTTP GET /api/v1/locate (loopback)", api))
    ok_db = statistics.median(server) <= 1.0
    ok_api = statistics.median(api) <= 5.0
    print(
        f"targets: database median ≤ 1 ms {'met' if ok_db else 'MISSED'}; "
        f"API median ≤ 5 ms {'met' if ok_api else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
