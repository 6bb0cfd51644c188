"""Grid walks (issue 18): track ingest and the visited buildings of a district's day,
each beside the same work in plain PostGIS SQL.

1. Ingest, in a synthetic district of its own database (``gis_service_bench_walks``: a
   square of WALK_GRIDS_SIDE² grids of ~460 × 555 m with 25 buildings apiece and streets
   every 0.001°, so the numbers do not depend on the demo city). WALK_WORKERS grid
   workers (5,000), each with a running walk, keep a fix every WALK_FIX_S seconds (2.5)
   and upload them as the phone does — web/mobile/walk.js cuts a chunk at CHUNK_FIXES
   fixes or when its oldest fix is CHUNK_AGE_MS old, read from that file — to
   ``POST /api/v1/walks/{id}/points`` of a real ``gis-service serve --workers 2`` (as in
   production, docs/deploy.md), from benchmarks/loadgen.py's separate process (open loop:
   latency from each chunk's scheduled send time) for WALK_SECONDS (60) after a 10-s
   warm-up. Afterwards every accepted chunk's fixes are counted in the database: stored
   exactly once. Target: ≥ 2,000 fixes/s sustained with p99 ≤ 100 ms. Peer: pgbench
   inserting chunks of the same size into a bare copy of walk_point (one multi-row
   INSERT … ON CONFLICT DO NOTHING a chunk) with one client per server connection.
2. The district's day, in the demo city (``gis_service_bench_walkday``, loaded once):
   every grid worker of the demo district walks their grid through all its buildings on
   one day, a fix every WALK_DAY_FIX_S seconds (5: the phone's sampling), with the demo's
   GPS noise, poor fixes and jumps (demo/walks.py ``district_day``); stored and processed
   by the walks service's bulk path. Then the visited buildings of all the day's walks by
   ``walk_visits()`` in one call (best of three) beside the peer: the same entrance areas
   (``building_doors()``) in a GiST-indexed table and ST_DWithin (geography, 15 m) of
   every raw fix against them — no cleaning, no matching. Target: ≤ 1 s.

Run: ``.venv/bin/python benchmarks/walks.py [ingest] [day]`` (both by default).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely
from common import pgbench, server, setup
from loadgen import Planned, http_post, launch
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.demo import walks as demo_walks
from gis_service.demo.hierarchy import DemoSize
from gis_service.demo.run import DEMO_DISTRICT, generate_city
from gis_service.settings import Settings
from gis_service.timezone import local_date
from gis_service.walks import service
from gis_service.walks.rules import ENTRANCE_MAX_M, VISIT_RADIUS_M

DB = "gis_service_bench_walks"
#: the demo city, for the district's day
DAY_DB = "gis_service_bench_walkday"
DAY_FIX_S = float(os.environ.get("WALK_DAY_FIX_S", "5"))
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
                    "INSERT INTO walk (district_code, worker_id, grid_code, client_started_at) "
                    "SELECT district_of(g), w, g, :s "
                    "FROM unnest(CAST(:w AS integer[]), CAST(:g AS text[])) "
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
        "INSERT INTO bench_walk_point (walk_id, district_code, client_ts, geom, accuracy_m, "
        "chunk_id) SELECT :w, '410105', now() + g * interval '3 s', "
        "ST_SetSRID(ST_MakePoint(113.0 + "
        f"random() * 0.05, 34.0 + random() * 0.05), 4326), 8, 'c' FROM generate_series(1, "
        f"{chunk}) g ON CONFLICT DO NOTHING;\n"
    )
    try:
        return pgbench(settings, script, clients=settings.db_pool_size, seconds=10, threads=2)
    finally:
        with transaction(settings) as conn:
            conn.execute(text("DROP TABLE bench_walk_point"))


def day_walks(settings: Settings) -> tuple[list[int], date]:
    """A whole district's day in the demo: every grid worker of the demo district walks
    their grid through all its buildings, a fix every DAY_FIX_S seconds (the phone's
    sampling while walking), with the demo's GPS noise, poor fixes and jumps
    (demo/walks.py ``district_day``), on the day before the demo's month of walks; stored
    and processed by the walks service's bulk path. Earlier runs' walks of that day go
    first. Returns the walks' ids and the day."""
    tz = settings.timezone
    day = local_date(settings) - timedelta(days=demo_walks.DAYS + 1)
    with transaction(settings) as conn:
        name, wkb = conn.execute(
            text("SELECT name, ST_AsBinary(geom) FROM admin_unit WHERE code = :c"),
            {"c": DEMO_DISTRICT},
        ).one()
        old = {"d": DEMO_DISTRICT + "%", "day": day, "tz": tz}
        conn.execute(
            text(
                "DELETE FROM walk WHERE grid_code LIKE :d "
                "AND (started_at AT TIME ZONE :tz)::date = :day"
            ),
            old,
        )
        conn.execute(text("DELETE FROM walk_day WHERE grid_code LIKE :d AND day = :day"), old)
    city = generate_city(name, shapely.from_wkb(bytes(wkb)), DemoSize(), seed=2026)
    with transaction(settings) as conn:
        walks = demo_walks.district_day(
            conn, city.h, city.net, city.plane, day, seed=2026, tz=tz, interval=DAY_FIX_S
        )
        t = time.perf_counter()
        ids = service.record_ended(conn, walks, tz)
        full = time.perf_counter() - t
    fixes = sum(len(w.t) for w in walks)
    print(
        f"the district's day ({day}): {len(ids)} walks of {len(ids)} grid workers, "
        f"{fixes:,} fixes (one every {DAY_FIX_S:.0f} s)"
    )
    print(
        f"  stored and processed by the bulk path (clean, match, track, visits, figures): "
        f"{full:6.2f} s"
    )
    return ids, day


def district_day(settings: Settings) -> None:
    """The visited buildings of the day's walks, ours beside the peer (module doc)."""
    ids, _ = day_walks(settings)
    params = {"ids": ids, "r": VISIT_RADIUS_M, "e": ENTRANCE_MAX_M}
    with get_engine(settings).connect() as conn:
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            ours = conn.execute(text(OURS_VISITS), params).scalar_one()
            runs.append(time.perf_counter() - t)
    with transaction(settings) as conn:
        t = time.perf_counter()
        for sql in PEER_VISITS:
            done = conn.execute(text(sql), {**params, "deg": VISIT_RADIUS_M / 90_000.0})
        plain = done.scalar_one()
        peer = time.perf_counter() - t
    print(
        f"  ours, walk_visits() over every walk of the day in one call: {min(runs):6.2f} s "
        f"(best of 3; {', '.join(f'{r:.2f}' for r in runs)})  {ours:,} visits"
    )
    print(
        f"  peer, ST_DWithin (geography, {VISIT_RADIUS_M:.0f} m) per raw fix to the same "
        f"entrance areas: {peer:6.2f} s  {plain:,} visits (no cleaning, no matching)"
    )
    print(f"target ≤ 1 s for the day's visited buildings: {'met' if min(runs) <= 1 else 'MISSED'}")


#: ours: walks.sql's visited rule over every walk of the day, in one call
OURS_VISITS = "SELECT count(*) FROM walk_visits(CAST(:ids AS bigint[]), :r, :e)"
#: the peer, plain PostGIS: the entrance areas (footprints and doors, walks.sql
#: ``building_doors``, the same areas as ours) of the buildings in the fixes' extent in a
#: table with a GiST index, then every raw fix of the walks (no cleaning, no matching)
#: against them by ST_DWithin on geography, the index answering the && prefilter
PEER_VISITS = [
    "CREATE TEMP TABLE peer_area ON COMMIT DROP AS SELECT d.code, a.g "
    "FROM building_doors((SELECT ST_Extent(geom)::geometry FROM walk_point "
    "WHERE walk_id = ANY(:ids)), :e) d, LATERAL (VALUES (d.footprint), (d.door)) AS a (g) "
    "WHERE a.g IS NOT NULL",
    "CREATE INDEX ON peer_area USING gist (g)",
    "ANALYZE peer_area",
    "SELECT count(*) FROM (SELECT DISTINCT p.walk_id, a.code FROM walk_point p "
    "JOIN peer_area a ON a.g && ST_Expand(p.geom, :deg) "
    "AND ST_DWithin(p.geom::geography, a.g::geography, :r) "
    "WHERE p.walk_id = ANY(:ids)) x",
]


def children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in done.stdout.split()]


def postgres_backends(db: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", f"postgres: .* {db} "], capture_output=True, text=True)
    return [int(x) for x in done.stdout.split()]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process so far (/proc/PID/stat)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


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
        procs = [srv.pid, *children(srv.pid), *postgres_backends(DB)]
        before = cpu_seconds(procs)
        steady = ingest(srv.port, records, SECONDS, tag)
        used = {k: v - before[k] for k, v in cpu_seconds(procs).items()}
        show(f"open loop, {SECONDS:.0f} s", steady)
        print(f"{'  slowest seconds of the run':<36} {steady['worst_seconds']}")
        n = max(sum(steady["statuses"].values()), 1)
        server_s = sum(v for k, v in used.items() if k in (srv.pid, *children(srv.pid)))
        print(
            f"{'  CPU a chunk':<36} server {server_s / n * 1000:.2f} ms, PostgreSQL "
            f"{(sum(used.values()) - server_s) / n * 1000:.2f} ms "
            f"({sum(used.values()) / steady['seconds']:.2f} cores used of {os.cpu_count()})"
        )
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


def machine(settings: Settings) -> None:
    """When, the load average, and a pgbench round trip: this VM's speed varies."""
    _, lat = pgbench(settings, "SELECT 1;\n", clients=1, seconds=3)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{load}; pgbench 'SELECT 1' round trip {lat * 1000:.0f} µs"
    )


def main() -> None:
    settings = Settings(db_name=DB, secret_key=SECRET)
    cluster.start(settings)
    cluster.ensure_database(settings, DB)
    migrate.upgrade(settings)
    what = sys.argv[1:] or ["ingest", "day"]
    machine(settings)
    if "ingest" in what:
        ingest_bench(settings)
    if "day" in what:
        district_day(setup(DAY_DB))


if __name__ == "__main__":
    main()
