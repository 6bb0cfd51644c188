"""Vector tiles and map pages (issue 6), beside tipg serving the same tables in the same run.

On the demo district with 1 M generated cases (the statistics benchmark's database,
gis_service_bench_stats):
- tile latency p50/p99 and median size for the units and cases layers at z12–z16,
  uncached (our server runs with GIS_TILE_CACHE_SIZE=0), over loopback with httpx, from
  the tiles around the densest point;
- tipg 1.6.1 (PyPI, its own virtualenv .venv-peers, created if missing) serving
  public.admin_unit and public.cases from the same database: the same tiles, its latency,
  size and feature count (it caps a tile at 10,000 features without saying so);
- time to first map paint of every page in Debian's Chromium (the page's own mark: the
  first basemap tile or data drawn), target ≤ 1.5 s.

Targets: our p50 ≤ 10 ms uncached at every zoom; no silent truncation.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mapbox_vector_tile
import numpy as np
from common import free_port, server
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.auth.users import create_user
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.settings import Settings
from gis_service.tiles.basemap import lonlat_to_tile

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".venv-peers"
DB = "gis_service_bench_stats"
ZOOMS = range(12, 17)
PER_ZOOM = int(os.environ.get("BENCH_TILES_PER_ZOOM", "25"))
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"


def setup() -> Settings:
    settings = Settings(db_name=DB, secret_key=SECRET)
    cluster.start(settings)
    migrate.upgrade(settings)
    with get_engine(settings).connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM cases")).scalar()
    if n < 1_000_000:
        raise SystemExit(f"{DB} holds {n:,} cases: run benchmarks/stats.py first")
    return settings


def admin_token(settings: Settings) -> str:
    with transaction(settings) as conn:
        row = (
            conn.execute(
                text(
                    "SELECT id, username, display_name, role, scopes, team_id, token_version "
                    "FROM app_user WHERE username = 'bench-tiles-admin'"
                )
            )
            .mappings()
            .first()
        )
        user = (
            dict(row)
            if row
            else create_user(
                conn, username="bench-tiles-admin", password="bench-password", role="admin"
            )
        )
    return sessions.issue_for(settings, user).access_token


def tiles_around(settings: Settings) -> dict[int, list[tuple[int, int]]]:
    with get_engine(settings).connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT avg(ST_X(geom)), avg(ST_Y(geom)) FROM (SELECT geom FROM cases "
                "TABLESAMPLE SYSTEM (1)) s"
            )
        ).one()
    out = {}
    for z in ZOOMS:
        cx, cy = lonlat_to_tile(lon, lat, z)
        side = int(np.ceil(np.sqrt(PER_ZOOM)))
        out[z] = [
            (cx + dx - side // 2, cy + dy - side // 2) for dx in range(side) for dy in range(side)
        ][:PER_ZOOM]
    return out


def measure(
    client: httpx.Client, urls: list[str], headers: dict | None = None
) -> tuple[list[float], list[int], list[int]]:
    times, sizes, counts = [], [], []
    for url in urls:
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append(time.perf_counter() - t)
        r.raise_for_status()
        sizes.append(len(r.content))
        layers = mapbox_vector_tile.decode(r.content) if r.content else {}
        counts.append(sum(len(v["features"]) for k, v in layers.items() if k != "meta"))
    return times, sizes, counts


def ensure_tipg() -> Path:
    uvicorn = PEERS / "bin" / "uvicorn"
    if not uvicorn.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run(
            [str(PEERS / "bin" / "pip"), "install", "-q", "tipg==1.6.1", "uvicorn"], check=True
        )
    return uvicorn


def tipg_server(settings: Settings):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgresql://{settings.db_user}@127.0.0.1:{settings.db_port}/{settings.db_name}"
        ),
        "TIPG_DB_TABLES": '["public.admin_unit","public.cases"]',
    }
    proc = subprocess.Popen(
        [str(ensure_tipg()), "tipg.main:app", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/collections", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("tipg did not start")


def pct(times: list[float]) -> str:
    a = np.asarray(times) * 1000
    return f"{np.percentile(a, 50):7.1f} {np.percentile(a, 99):7.1f}"


def paint_times(base: str) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from tests.browser import browser_context, sign_in

    out = {}
    with browser_context(viewport={"width": 1280, "height": 800}) as (context, watch):
        page = context.new_page()
        sign_in(page, base, "bench-tiles-admin", "bench-password", "/maps/units")
        for name in ("resolution", "cases", "units", "coverage"):
            runs = []
            for _ in range(3):
                page.goto(f"{base}/maps/{name}")
                page.wait_for_function(
                    "() => window.gisStats && window.gisStats.firstPaint", timeout=60000
                )
                runs.append(page.evaluate("() => window.gisStats.firstPaint") / 1000)
            out[name] = statistics.median(runs)
        if watch.external:
            out["external requests (must be 0)"] = len(watch.external)
    return out


def main() -> None:
    settings = setup()
    token = admin_token(settings)
    auth = {"Authorization": f"Bearer {token}"}
    tiles = tiles_around(settings)
    print(
        f"vector tiles — {time.strftime('%Y-%m-%d %H:%M')}, {DB} (1 M cases), "
        f"{PER_ZOOM} tiles per zoom around the densest point, uncached, sequential"
    )
    with server(settings, GIS_SECRET_KEY=SECRET, GIS_TILE_CACHE_SIZE="0") as srv:
        with httpx.Client(base_url=srv.base, timeout=60) as client:
            # warm: the cube and the case index load once per process
            client.get("/tiles/cases/12/0/0.pbf", headers=auth).raise_for_status()
            client.get("/tiles/units/12/0/0.pbf", headers=auth).raise_for_status()
            ours = {}
            for layer in ("units", "cases"):
                for z in ZOOMS:
                    urls = [f"/tiles/{layer}/{z}/{x}/{y}.pbf" for x, y in tiles[z]]
                    measure(client, urls[:3], auth)
                    ours[layer, z] = measure(client, urls, auth)
        paint = paint_times(srv.base)
    proc, tipg = tipg_server(settings)
    try:
        with httpx.Client(base_url=tipg, timeout=120) as client:
            theirs = {}
            for layer, table in (("units", "public.admin_unit"), ("cases", "public.cases")):
                for z in ZOOMS:
                    urls = [
                        f"/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                        for x, y in tiles[z]
                    ]
                    measure(client, urls[:3])
                    theirs[layer, z] = measure(client, urls)
    finally:
        proc.terminate()
    print(
        "\nlayer  z    ours p50/p99 ms  size KB  features |  tipg p50/p99 ms  size KB  "
        "features (max)"
    )
    for layer in ("units", "cases"):
        for z in ZOOMS:
            t, s, c = ours[layer, z]
            tt, ts, tc = theirs[layer, z]
            print(
                f"{layer:<6} {z:<3} {pct(t)}  {np.median(s) / 1024:7.1f} {np.median(c):9.0f} |"
                f"  {pct(tt)}  {np.median(ts) / 1024:7.1f} {np.median(tc):9.0f} "
                f"({max(tc):,})"
            )
    print("\nfirst map paint in Chromium (median of 3, s; target ≤ 1.5):")
    for name, secs in paint.items():
        print(f"  {name:<12} {secs:.2f}")


if __name__ == "__main__":
    main()
