"""Grid walks (issue 18 item 6): track ingest and the visited buildings of a district's
day, each beside the same work in plain PostGIS SQL.

A synthetic district of its own database (``gis_service_bench_walks``): a square of
WALK_GRIDS_SIDE² grids (~460 × 555 m each) with 25 buildings apiece and streets every
0.001° (~90–110 m), so the numbers do not depend on the demo city. Then:

1. Ingest: WALK_WORKERS grid workers, each with a running walk, upload chunks of
   WALK_CHUNK fixes (a fix every 3 s, walking 4 m between fixes) to
   ``POST /api/v1/walks/{id}/points`` from a separate load-generator process
   (benchmarks/loadgen.py's open loop: latency from the scheduled send time) at
   WALK_RATE fixes/s for WALK_SECONDS. Afterwards every accepted chunk's fixes are
   counted in the database: stored exactly once. Target: ≥ 2,000 fixes/s, p99 ≤ 100 ms
   (5,000 workers, a fix every few seconds).
   Peer: pgbench inserting the same chunks (WALK_CHUNK rows per statement) into a bare
   copy of walk_point with one client per server connection.
2. The district's day (after ending the walks): every walk processed (cleaning,
   matching, track, visits, figures: walks/service.py ``refresh``) and ``walk_visits()``
   alone over every walk, beside the plain rule: ST_DWithin (geography, 15 m) of every raw
   fix against the same entrance areas (footprints and doors, ``building_doors()``; the
   GiST index prefilters), without cleaning or matching. Target: ≤ 1 s.

Environment: WALK_WORKERS (200), WALK_GRIDS_SIDE (10), WALK_RATE (2000), WALK_SECONDS
(20), WALK_CHUNK (10), WALK_CONNECTIONS (32), WALK_SERVER_WORKERS (1).
Run: ``.venv/bin/python benchmarks/walks.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import pgbench, server
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.settings import Settings
from gis_service.walks import service
from gis_service.walks.rules import ENTRANCE_MAX_M, VISIT_RADIUS_M

DB = "gis_service_bench_walks"
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
WORKERS = int(os.environ.get("WALK_WORKERS", "200"))
SIDE = int(os.environ.get("WALK_GRIDS_SIDE", "10"))
RATE = float(os.environ.get("WALK_RATE", "2000"))
SECONDS = float(os.environ.get("WALK_SECONDS", "20"))
CHUNK = int(os.environ.get("WALK_CHUNK", "10"))
CONNECTIONS = int(os.environ.get("WALK_CONNECTIONS", "32"))
SERVER_WORKERS = int(os.environ.get("WALK_SERVER_WORKERS", "1"))
X0, Y0, CELL = 113.0, 34.0, 0.005
FIX_SECONDS, STEP_M = 3.0, 4.0
#: the warm-up's fixes start this many fixes (2.5 h) into the walks
WARM_OFFSET = 3000
M_PER_DEG_LAT = 111_195.0


def grids() -> list[tuple[str, float, float]]:
    """(code, west, south) of every grid: community = row, grid = column."""
    return [
        (f"410199001{r + 1:03d}{c + 1:02d}", X0 + c * CELL, Y0 + r * CELL)
        for r in range(SIDE)
        for c in range(SIDE)
    ]


def build(settings: Settings) -> None:
    """The synthetic district, once (units by SQL, the streets through the importer)."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from gis_service.network.imports import import_network

    with get_engine(settings).connect() as conn:
        if conn.execute(text("SELECT count(*) FROM admin_unit")).scalar_one():
            return
    print("building the synthetic district …", file=sys.stderr)
    side = SIDE * CELL
    env = "ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"
    insert = text(
        f"INSERT INTO admin_unit (code, level, name, parent_code, geom) "
        f"VALUES (:code, :level, :name, :parent, {env})"
    )
    with transaction(settings) as conn:
        rows = [
            ("410199", "district", None, X0, Y0, X0 + side, Y0 + side),
            ("410199001", "subdistrict", "410199", X0, Y0, X0 + side, Y0 + side),
        ]
        rows += [
            (
                f"410199001{r + 1:03d}",
                "community",
                "410199001",
                X0,
                Y0 + r * CELL,
                X0 + side,
                Y0 + (r + 1) * CELL,
            )
            for r in range(SIDE)
        ]
        for code, x, y in grids():
            rows.append((code, "grid", code[:12], x, y, x + CELL, y + CELL))
            for k in range(25):  # 5 × 5 buildings of ~20 m, 17 m north of a street
                bx = x + (k % 5) * 0.001 + 0.0004
                by = y + (k // 5) * 0.001 + 0.00015
                rows.append(
                    (f"{code}{k + 1:03d}", "building", code, bx, by, bx + 0.0002, by + 0.0002)
                )
        for code, level, parent, x0, y0, x1, y1 in rows:
            conn.execute(
                insert,
                {
                    "code": code,
                    "level": level,
                    "name": f"{level}{code[-3:]}",
                    "parent": parent,
                    "x0": x0,
                    "y0": y0,
                    "x1": x1,
                    "y1": y1,
                },
            )
    n = round(side / 0.001)
    lines = [LineString([(X0, Y0 + i * 0.001), (X0 + side, Y0 + i * 0.001)]) for i in range(n + 1)]
    lines += [LineString([(X0 + i * 0.001, Y0), (X0 + i * 0.001, Y0 + side)]) for i in range(n + 1)]
    net = gpd.GeoDataFrame({"highway": ["footway"] * len(lines)}, geometry=lines, crs=4326)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "streets.geojson"
        net.to_file(path)
        import_network(path, settings=settings)


def walkers(settings: Settings, start: datetime) -> list[dict]:
    """WORKERS grid workers (accounts made by SQL), each with a running walk of a grid,
    and their tokens: the load generator's records."""
    cells = grids()
    out = []
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE walk SET status = 'ended', ended_at = now() WHERE status = 'running'")
        )
    for i in range(WORKERS):
        code, x, y = cells[i % len(cells)]
        with transaction(settings) as conn:
            user = dict(
                conn.execute(
                    text(
                        "INSERT INTO app_user (username, password_hash, display_name, role, "
                        "scopes) VALUES (:u, '!', :u, 'grid_worker', ARRAY[:g]) "
                        "ON CONFLICT (username) DO UPDATE SET scopes = ARRAY[:g] "
                        "RETURNING id, username, display_name, role, scopes, team_id, "
                        "token_version"
                    ),
                    {"u": f"bench-walker-{i}", "g": code},
                )
                .mappings()
                .one()
            )
            walk_id = conn.execute(
                text(
                    "INSERT INTO walk (worker_id, grid_code, client_started_at) "
                    "VALUES (:w, :g, :s) RETURNING id"
                ),
                {"w": user["id"], "g": code, "s": start},
            ).scalar_one()
        token = sessions.issue_for(settings, user).access_token
        # along the street through the grid's middle row
        out.append(
            {"token": token, "walk": walk_id, "lon": x, "lat": y + 0.002, "t0": start.timestamp()}
        )
    return out


def chunk_request(i: int, _token: str, tag: str, records: list[dict]) -> bytes:
    """Request i of the load: the next chunk of walker i % n (loadgen.py's builder)."""
    w = records[i % len(records)]
    seq = i // len(records)
    # the warm-up walks a later stretch of time, so its fixes are not the steady run's
    base = WARM_OFFSET if tag.endswith("-warm") else 0
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(w["lat"]))
    points = []
    for k in range(CHUNK):
        n = base + seq * CHUNK + k
        along = (n * STEP_M) % 450.0
        t = datetime.fromtimestamp(w["t0"] + n * FIX_SECONDS, UTC)
        points.append(
            {
                "t": t.isoformat(),
                "lon": w["lon"] + along / m_per_deg_lon,
                "lat": w["lat"],
                "accuracy_m": 8,
            }
        )
    body = json.dumps({"chunk_id": f"{tag}-{seq}", "points": points}).encode()
    head = (
        f"POST /api/v1/walks/{w['walk']}/points HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {w['token']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def loadgen_main() -> None:
    """``walks.py --loadgen PORT RECORDS.json --rate R --seconds S --connections C --tag T``:
    loadgen.py's open loop with the chunk requests, in this separate process."""
    import loadgen

    loadgen.request_bytes = chunk_request
    sys.argv = [sys.argv[0], sys.argv[2], "-", *sys.argv[3:]]
    loadgen.main()


def run_loadgen(port: int, records: str, rate: float, seconds: float, tag: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--loadgen",
        str(port),
        records,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        str(CONNECTIONS),
        "--tag",
        tag,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 120)
    if done.returncode != 0:
        raise SystemExit(f"loadgen failed: {done.stderr}")
    return json.loads(done.stdout)


def show(label: str, r: dict) -> None:
    print(
        f"{label:<36} {r['rate'] * CHUNK:8,.0f} fixes/s ({r['rate']:,.0f} chunks/s)  "
        f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  max {r['max']:7.1f} ms  "
        f"statuses {r['statuses']}  errors {r['errors']}"
    )


def ingest_peer(settings: Settings) -> tuple[float, float]:
    with transaction(settings) as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_walk_point"))
        conn.execute(
            text(
                "CREATE TABLE bench_walk_point (LIKE walk_point INCLUDING DEFAULTS, "
                "PRIMARY KEY (walk_id, client_ts))"
            )
        )
    script = (
        "\\set w random(1, 1000000000)\n"
        "INSERT INTO bench_walk_point (walk_id, client_ts, geom, accuracy_m, chunk_id) "
        "SELECT :w, now() + g * interval '3 s', ST_SetSRID(ST_MakePoint(113.0 + "
        f"random() * 0.05, 34.0 + random() * 0.05), 4326), 8, 'c' FROM generate_series(1, "
        f"{CHUNK}) g ON CONFLICT DO NOTHING;\n"
    )
    try:
        return pgbench(settings, script, clients=settings.db_pool_size, seconds=10, threads=2)
    finally:
        with transaction(settings) as conn:
            conn.execute(text("DROP TABLE bench_walk_point"))


def district_day(settings: Settings, walk_ids: list[int]) -> None:
    ids = {"ids": walk_ids}
    with get_engine(settings).connect() as conn:
        fixes = conn.execute(
            text("SELECT count(*) FROM walk_point WHERE walk_id = ANY(:ids)"), ids
        ).scalar_one()
    with transaction(settings) as conn:
        t = time.perf_counter()
        n = service.refresh(conn, "w.id = ANY(:ids)", ids, settings.timezone)
        full = time.perf_counter() - t
    with transaction(settings) as conn:
        conn.execute(text("UPDATE walk SET points_processed = NULL WHERE id = ANY(:ids)"), ids)
        t = time.perf_counter()
        service.refresh(conn, "w.id = ANY(:ids)", ids, settings.timezone)
        again = time.perf_counter() - t
    with get_engine(settings).connect() as conn:
        t = time.perf_counter()
        ours = conn.execute(
            text("SELECT count(*) FROM walk w, walk_visits(w.id, :r, :e) v WHERE w.id = ANY(:ids)"),
            {**ids, "r": VISIT_RADIUS_M, "e": ENTRANCE_MAX_M},
        ).scalar_one()
        visits = time.perf_counter() - t
        t = time.perf_counter()
        plain = conn.execute(
            text(
                "WITH area AS MATERIALIZED (SELECT d.code, g FROM building_doors("
                "(SELECT ST_Extent(geom)::geometry FROM walk_point WHERE walk_id = ANY(:ids)),"
                " :e) d, LATERAL (VALUES (d.footprint), (d.door)) AS t (g) "
                "WHERE g IS NOT NULL) "
                "SELECT count(*) FROM (SELECT DISTINCT p.walk_id, a.code FROM walk_point p "
                "JOIN area a ON a.g && ST_Expand(p.geom, :deg) "
                "AND ST_DWithin(p.geom::geography, a.g::geography, :r) "
                "WHERE p.walk_id = ANY(:ids)) x"
            ),
            {**ids, "r": VISIT_RADIUS_M, "e": ENTRANCE_MAX_M, "deg": VISIT_RADIUS_M / 90_000.0},
        ).scalar_one()
        peer = time.perf_counter() - t
    print(f"the district's day: {len(walk_ids)} walks, {fixes:,} fixes")
    print(
        f"  processing every walk (clean, match, track, visits, figures): {full:6.2f} s "
        f"({n} walks; again from scratch {again:.2f} s)"
    )
    print(f"  walk_visits() alone over every walk:  {visits:6.2f} s  ({ours:,} visits)")
    print(
        f"  peer, ST_DWithin per raw fix to the same entrance areas: {peer:6.2f} s  "
        f"({plain:,} visits; no cleaning, no matching)"
    )


def main() -> None:
    settings = Settings(db_name=DB, secret_key=SECRET)
    cluster.start(settings)
    cluster.ensure_database(settings, DB)
    migrate.upgrade(settings)
    build(settings)
    start = datetime.now(UTC) - timedelta(hours=3)
    records = walkers(settings, start)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(records, fh)
    tag = f"r{int(time.time())}"
    print(
        f"walk ingest over loopback: {WORKERS} walkers, chunks of {CHUNK} fixes, "
        f"{SERVER_WORKERS} server worker(s), {CONNECTIONS} client connections"
    )
    with server(settings, workers=SERVER_WORKERS, GIS_SECRET_KEY=SECRET) as srv:
        warm = run_loadgen(srv.port, fh.name, RATE / CHUNK / 4, 3, tag + "-warm")
        show("warm-up", warm)
        steady = run_loadgen(srv.port, fh.name, RATE / CHUNK, SECONDS, tag)
        show(f"open loop at {RATE:,.0f} fixes/s", steady)
    walk_ids = [r["walk"] for r in records]
    with get_engine(settings).connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM walk_point WHERE walk_id = ANY(:ids)"), {"ids": walk_ids}
        ).scalar_one()
    accepted = (steady["statuses"].get("200", 0) + warm["statuses"].get("200", 0)) * CHUNK
    print(f"fixes accepted {accepted:,}, stored {stored:,} (exactly once: {accepted == stored})")
    tps, lat = ingest_peer(settings)
    print(
        f"{'peer: pgbench INSERT of a chunk':<36} {tps * CHUNK:8,.0f} fixes/s "
        f"({tps:,.0f} chunks/s, {settings.db_pool_size} clients, avg {lat:.1f} ms)"
    )
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE walk SET status = 'ended', ended_at = now() WHERE id = ANY(:ids)"),
            {"ids": walk_ids},
        )
    district_day(settings, walk_ids)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen_main()
    else:
        main()
