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
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from common import pgbench, server
from loadgen import Planned, http_post, launch
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.settings import Settings
from gis_service.walks import service
from gis_service.walks.rules import ENTRANCE_MAX_M, VISIT_RADIUS_M

DB = "gis_service_bench_walks"
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
WORKERS = int(os.environ.get("WALK_WORKERS", "5000"))
SIDE = int(os.environ.get("WALK_GRIDS_SIDE", "10"))
FIX_S = float(os.environ.get("WALK_FIX_S", "2.5"))
SECONDS = float(os.environ.get("WALK_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("WALK_CONNECTIONS", "64"))
#: production runs `gis-service serve --workers 2` (docs/deploy.md)
SERVER_WORKERS = int(os.environ.get("WALK_SERVER_WORKERS", "2"))
X0, Y0, CELL = 113.0, 34.0, 0.005
M_PER_DEG_LAT = 111_195.0
#: the phone's chunking rule, read from the phone app itself (web/mobile/walk.js)
WALK_JS = (Path(__file__).parents[1] / "gis_service/web/mobile/walk.js").read_text()
CHUNK_FIXES = int(re.search(r"const CHUNK_FIXES = (\d+);", WALK_JS).group(1))
CHUNK_AGE_S = int(re.search(r"const CHUNK_AGE_MS = (\d+);", WALK_JS).group(1)) / 1000.0


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
    """WORKERS grid workers (accounts made by SQL), each with a running walk of a grid
    (started at ``start``), and their tokens: the load plan's records."""
    cells = grids()
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE walk SET status = 'ended', ended_at = now() WHERE status = 'running'")
        )
        users = [
            dict(r)
            for r in conn.execute(
                text(
                    "INSERT INTO app_user (username, password_hash, display_name, role, scopes) "
                    "SELECT 'bench-walker-' || i, '!', 'bench-walker-' || i, 'grid_worker', "
                    "ARRAY[g] FROM unnest(CAST(:g AS text[])) WITH ORDINALITY AS u (g, i) "
                    "ON CONFLICT (username) DO UPDATE SET scopes = EXCLUDED.scopes "
                    "RETURNING id, username, display_name, role, scopes, team_id, token_version"
                ),
                {"g": [cells[i % len(cells)][0] for i in range(WORKERS)]},
            ).mappings()
        ]
        users.sort(key=lambda u: int(u["username"].rsplit("-", 1)[1]))
        walk_ids = (
            conn.execute(
                text(
                    "INSERT INTO walk (worker_id, grid_code, client_started_at) "
                    "SELECT w, g, :s FROM unnest(CAST(:w AS integer[]), CAST(:g AS text[])) "
                    "WITH ORDINALITY AS u (w, g, n) ORDER BY n RETURNING id"
                ),
                {"w": [u["id"] for u in users], "g": [u["scopes"][0] for u in users], "s": start},
            )
            .scalars()
            .all()
        )
        tokens = [sessions.start(conn, u, settings, "bearer").access_token for u in users]
    out = []
    for i, (token, walk_id) in enumerate(zip(tokens, walk_ids, strict=True)):
        _, x, y = cells[i % len(cells)]
        # along one of the grid's east-west streets
        out.append({"token": token, "walk": walk_id, "lon": x, "lat": y + 0.001 * (i % 5)})
    return out


def chunks(params: dict) -> Iterator[Planned]:
    """loadgen.py's plan: the walkers' chunks as the phone cuts and sends them.

    The phone (web/mobile/walk.js) cuts the fixes it has not yet sent into a chunk when 20
    wait or the oldest has waited 30 s, checking at every kept fix (and every 10 s), and
    sends the chunk at once. Each walker here keeps a fix every ``fix_s`` seconds (±20 %),
    walking at 1.3 m/s along a street of its grid, and has been walking for a while when
    the run starts (the oldest unsent fix is 0–35 s old), so the chunks arrive spread
    over time as from phones that started at different moments. Fix times are real
    clock times (``shift_s`` moves them back, for a warm-up that must not share a fix
    time with the run after it)."""
    rng = np.random.default_rng(params["seed"])
    fix_s, seconds = params["fix_s"], params["seconds"]
    t0 = time.time() - params.get("shift_s", 0.0)
    planned: list[tuple[float, int, int, list[float]]] = []
    for w in range(len(params["records"])):
        t = -float(rng.uniform(0.0, CHUNK_AGE_S + fix_s))
        waiting: list[float] = []
        seq = 0
        while t < seconds:
            waiting.append(t)
            if len(waiting) >= CHUNK_FIXES or t - waiting[0] >= CHUNK_AGE_S:
                seq += 1
                if t >= 0:
                    planned.append((t, w, seq, waiting))
                waiting = []
            t += fix_s * float(rng.uniform(0.8, 1.2))
    planned.sort()
    return _requests(params, planned, t0)


def _requests(
    params: dict, planned: list[tuple[float, int, int, list[float]]], t0: float
) -> Iterator[Planned]:
    tag = params["tag"]
    for t, w, seq, fixes in planned:
        r = params["records"][w]
        m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(r["lat"]))
        points = [
            {
                "t": datetime.fromtimestamp(t0 + f, UTC).isoformat(timespec="milliseconds"),
                "lon": round(r["lon"] + ((t0 + f) * 1.3 % 450.0) / m_per_deg_lon, 7),
                "lat": r["lat"],
                "accuracy_m": 8,
            }
            for f in fixes
        ]
        body = json.dumps({"chunk_id": f"{tag}-{w}-{seq}", "points": points}).encode()
        headers = {"Authorization": f"Bearer {r['token']}"}
        yield t, http_post(f"/api/v1/walks/{r['walk']}/points", body, headers), len(points)


def ingest(port: int, records: list[dict], seconds: float, tag: str, shift_s: float = 0.0):
    """The chunk plan for ``seconds`` from loadgen.py's separate process."""
    params = {
        "records": records,
        "fix_s": FIX_S,
        "seconds": seconds,
        "tag": tag,
        "seed": zlib.crc32(tag.encode()),
        "shift_s": shift_s,
    }
    return launch(port, "walks:chunks", params, seconds=seconds, connections=CONNECTIONS)


def show(label: str, r: dict) -> None:
    print(
        f"{label:<36} {r['weight_rate']:8,.0f} fixes/s ({r['rate']:,.0f} chunks/s, "
        f"{r['weight_rate'] / max(r['rate'], 1):.1f} fixes each)  p50 {r['p50']:6.1f} ms  "
        f"p90 {r['p90']:6.1f} ms  p99 {r['p99']:6.1f} ms  max {r['max']:7.1f} ms  "
        f"statuses {r['statuses']}  errors {r['errors']}"
    )


def ingest_peer(settings: Settings, chunk: int) -> tuple[float, float]:
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
        f"{chunk}) g ON CONFLICT DO NOTHING;\n"
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


def stored_of(settings: Settings, walk_ids: list[int], tag: str) -> tuple[int, int]:
    """(fixes, distinct (walk, time)) stored by the chunks of a run."""
    with get_engine(settings).connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT (walk_id, client_ts)) FROM walk_point "
                "WHERE walk_id = ANY(:ids) AND chunk_id LIKE :tag"
            ),
            {"ids": walk_ids, "tag": f"{tag}-%"},
        ).one()
    return int(row[0]), int(row[1])


def ingest_bench(settings: Settings) -> None:
    build(settings)
    start = datetime.now(UTC) - timedelta(hours=3)
    records = walkers(settings, start)
    walk_ids = [r["walk"] for r in records]
    tag = f"r{int(time.time())}"
    offered = WORKERS / FIX_S
    print(
        f"walk ingest over loopback: {WORKERS:,} walkers, a fix every {FIX_S} s each "
        f"(≈ {offered:,.0f} fixes/s offered), chunks cut as the phone cuts them (at "
        f"{CHUNK_FIXES} fixes or when the oldest is {CHUNK_AGE_S:.0f} s old), "
        f"{SERVER_WORKERS} server worker(s), {CONNECTIONS} client connections"
    )
    with server(settings, workers=SERVER_WORKERS, GIS_SECRET_KEY=SECRET) as srv:
        warm = ingest(srv.port, records, 10, tag + "w", shift_s=7200)
        show("warm-up, 10 s", warm)
        steady = ingest(srv.port, records, SECONDS, tag)
        show(f"open loop, {SECONDS:.0f} s", steady)
        print(f"{'  slowest seconds of the run':<36} {steady['worst_seconds']}")
    accepted = steady["weights"].get("200", 0)
    rows, distinct = stored_of(settings, walk_ids, tag)
    print(
        f"fixes accepted (200) {accepted:,}, stored {rows:,}, distinct {distinct:,} "
        f"(exactly once: {accepted == rows == distinct})"
    )
    ok = steady["weight_rate"] >= 2000 and steady["p99"] <= 100 and steady["errors"] == 0
    print(f"target ≥ 2,000 fixes/s with p99 ≤ 100 ms: {'met' if ok else 'MISSED'}")
    chunk = round(steady["weight_rate"] / max(steady["rate"], 1))
    tps, lat = ingest_peer(settings, chunk)
    print(
        f"{'peer: pgbench INSERT of a chunk':<36} {tps * chunk:8,.0f} fixes/s "
        f"({tps:,.0f} chunks of {chunk}/s, {settings.db_pool_size} clients, avg {lat:.1f} ms)"
    )
    with transaction(settings) as conn:
        conn.execute(
            text("UPDATE walk SET status = 'ended', ended_at = now() WHERE id = ANY(:ids)"),
            {"ids": walk_ids},
        )


def main() -> None:
    settings = Settings(db_name=DB, secret_key=SECRET)
    cluster.start(settings)
    cluster.ensure_database(settings, DB)
    migrate.upgrade(settings)
    ingest_bench(settings)


if __name__ == "__main__":
    main()
