"""Read throughput of statistics and tiles with reads on one and on two standbys, beside the
peer: the same requests with every read on the primary (issue 19, item 2).

    python benchmarks/read_replicas.py [--seconds 10] [--clients 8] [--workers 2]
                                       [--cases 20000] [--rounds 3]

Starts its own Patroni cluster (db/patroni.py: etcd, a primary and two standbys on free
loopback ports under a temporary directory), loads the demo city into it through the
write URL, and stops and removes everything at the end. Three runs of one server
(``gis-service serve --workers N``) against the same cluster, differing only in
``GIS_READ_DATABASE_URL``:

- *primary alone* (the peer): no read URL, every read on the primary;
- *one standby*: the read URL names the primary and one standby (prefer-standby);
- *two standbys*: the read URL ``cluster up`` prints (every node, load-balanced).

Each run sends ``--clients`` closed-loop clients (threads, keep-alive) for ``--seconds``
at ``GET /api/v1/stats/resolution`` (community, grid and subdistrict level, the whole
district and each subdistrict) and then at vector tiles (units and basemap layers, zooms
12-16 around the cases' centre) with the tile cache off (``GIS_TILE_CACHE_SIZE=0``: every
tile is made), and reports requests/s, p50 and p99, and where the read connections were
(pg_stat_activity per node); ``--rounds`` repeats the three runs interleaved and the table
gives the medians. The load average before and after is printed: on one
machine the standbys share the same cores as the primary and the server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
from common import server
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.auth.users import create_user
from gis_service.db import patroni
from gis_service.db.engine import get_engine, transaction
from gis_service.demo.run import load_demo
from gis_service.settings import Settings

SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
DB = "gis_service_bench_replicas"
ZOOMS = range(12, 17)
TILES_PER_ZOOM = 16
#: the read engine's connections per node (db/engine.py names them)
READS_ON_NODE = """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'gis_service reads'
"""


def wait_replayed(lay: patroni.Layout, settings: Settings, timeout: float = 600) -> None:
    """Until every standby has replayed what the primary has written so far."""
    primary = patroni.primary_node(lay)
    target = patroni.node_query(primary, settings, "SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + timeout
    for node in lay.nodes:
        if node is primary:
            continue
        query = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while not patroni.node_query(node, settings, query)[0][0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"{node.name} did not replay to {target}")
            time.sleep(0.5)


def admin_token(settings: Settings) -> str:
    with transaction(settings) as conn:
        user = create_user(conn, username="bench-replicas", password="bench-password", role="admin")
    return sessions.issue_for(settings, user).access_token


def stats_urls(settings: Settings) -> list[str]:
    with get_engine(settings).connect() as conn:
        subdistricts = (
            conn.execute(
                text(
                    "SELECT code FROM admin_unit "
                    "WHERE level = 'subdistrict' AND code LIKE '410105%'"
                )
            )
            .scalars()
            .all()
        )
    urls = []
    for level in ("community", "grid", "subdistrict"):
        urls.append(f"/api/v1/stats/resolution?level={level}")
        urls += [f"/api/v1/stats/resolution?level={level}&unit={u}" for u in subdistricts]
    return urls


def tile_urls(settings: Settings) -> list[str]:
    import math

    with get_engine(settings).connect() as conn:
        lon, lat = conn.execute(text("SELECT avg(ST_X(geom)), avg(ST_Y(geom)) FROM cases")).one()
    urls = []
    side = math.isqrt(TILES_PER_ZOOM)
    for z in ZOOMS:
        n = 1 << z
        cx = int((lon + 180) / 360 * n)
        cy = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        for dx in range(side):
            for dy in range(side):
                x, y = cx + dx - side // 2, cy + dy - side // 2
                urls += [f"/tiles/units/{z}/{x}/{y}.pbf", f"/tiles/basemap/{z}/{x}/{y}.pbf"]
    return urls


def load(base: str, token: str, urls: list[str], clients: int, seconds: float) -> dict:
    """``clients`` threads, each looping over ``urls`` (from its own offset) until
    ``seconds`` have passed; latencies of the 200s, and any other answer counted."""
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        mine, bad = [], []
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            i = k * 7
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = c.get(urls[i % len(urls)])
                if r.status_code == 200:
                    mine.append(time.perf_counter() - t)
                else:
                    bad.append(f"{r.status_code} {urls[i % len(urls)]}")
                i += 1
        with lock:
            times.extend(mine)
            errors.extend(bad)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    ms = np.array(times) * 1000
    return {
        "rps": len(times) / took,
        "p50": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        "n": len(times),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def subset_dsn(lay: patroni.Layout, nodes: list[patroni.Node], settings: Settings) -> str:
    hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in nodes)
    return f"postgresql://{settings.db_user}@{hosts}/{settings.db_name}?target_session_attrs=prefer-standby"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-buffers", default="128MB")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gis-bench-replicas-"))
    root.chmod(0o755)  # as root, PostgreSQL runs as postgres and must enter it
    base = Settings(
        var_dir=root / "var",
        cluster_port_base=patroni.free_port_block(),
        db_name=DB,
        secret_key=SECRET,
        photo_dir=root / "photos",
    )
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}")
    try:
        started = time.monotonic()
        lay, _ = patroni.up(base, replicas=2, shared_buffers=args.shared_buffers)
        settings = patroni.settings_for(base, lay)
        print(f"cluster up (3 nodes) in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        load_demo(settings, cases=args.cases)
        with get_engine(settings).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
            cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        wait_replayed(lay, settings)
        print(f"demo loaded ({cases:,} cases) and replayed in {time.monotonic() - started:.0f} s")
        token = admin_token(settings)
        urls = {"stats": stats_urls(settings), "tiles": tile_urls(settings)}
        wait_replayed(lay, settings)
        primary = patroni.primary_node(lay)
        standbys = [n for n in lay.nodes if n is not primary]
        runs = {
            "primary alone (peer)": None,
            "one standby": subset_dsn(lay, [primary, standbys[0]], settings),
            "two standbys": lay.read_dsn,
        }
        env = {
            "GIS_VAR_DIR": str(base.var_dir),
            "GIS_SECRET_KEY": SECRET,
            "GIS_DATABASE_URL": lay.write_dsn,
            "GIS_TILE_CACHE_SIZE": "0",
        }
        rows = []
        # interleaved rounds: on a shared machine the load moves by the minute, so each
        # configuration meets each phase of it
        for round_ in range(1, args.rounds + 1):
            for name, read_url in runs.items():
                extra = {**env, **({"GIS_READ_DATABASE_URL": read_url} if read_url else {})}
                with server(settings, workers=args.workers, **extra) as srv:
                    for kind in ("stats", "tiles"):
                        load(srv.base, token, urls[kind][:8], 2, 2)  # warm the pools
                        result = load(srv.base, token, urls[kind], args.clients, args.seconds)
                        where = {
                            n.name: patroni.node_query(n, settings, READS_ON_NODE)[0][0]
                            for n in lay.nodes
                        }
                        rows.append((name, kind, result))
                        print(
                            f"round {round_} {name:22} {kind:5} {result['rps']:7.1f}/s "
                            f"p50 {result['p50']:7.1f} ms p99 {result['p99']:7.1f} ms "
                            f"n={result['n']} errors={result['errors']} {result['first_error']} "
                            f"read connections {where} (primary {primary.name}) "
                            f"load {os.getloadavg()[0]:.2f}",
                            flush=True,
                        )
        print(f"\n| reads on | kind | requests/s (median of {args.rounds}) | p50 | p99 | errors |")
        print("|---|---|---|---|---|---|")
        peer: dict[str, float] = {}
        for name in runs:
            for kind in ("stats", "tiles"):
                mine = [r for n, k, r in rows if n == name and k == kind]
                rps = float(np.median([r["rps"] for r in mine]))
                p50 = float(np.median([r["p50"] for r in mine]))
                p99 = float(np.median([r["p99"] for r in mine]))
                peer.setdefault(kind, rps)  # the first configuration is the peer
                print(
                    f"| {name} | {kind} | {rps:.1f} ({rps / peer[kind]:.2f}× the peer) "
                    f"| {p50:.1f} ms | {p99:.1f} ms | {sum(r['errors'] for r in mine)} |"
                )
        print(f"\nload average at the end {os.getloadavg()}")
    finally:
        with contextlib.suppress(Exception):
            patroni.down(base)
        for p in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                if str(root) in " ".join(p.info["cmdline"] or []):
                    p.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
