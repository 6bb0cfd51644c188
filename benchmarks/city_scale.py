"""The city at one and at ten million cases, in one run (issue 19, "Done when").

Two databases built by ``gis-service demo --city`` (demo/city.py: the twelve Zhengzhou
divisions, five years of history, timelines for the last year): ``gis_service_city_1m``
with 1,000,000 cases and ``gis_service_city`` with 10,000,000. Each is built here when
missing (the ten-million one takes about an hour on the 2-core VM). Against each, a fresh
``gis-service serve --workers 1`` (tile cache off) is measured:

- start-up: seconds from the process start until /healthz answers, and until the
  statistics are ready (``stats_ready``); resident memory (MiB, the process and its
  children: ``soak.rss_mib``) once ready and after the statistics and tiles have been used;
- statistics: ``GET /api/v1/stats/resolution`` for the whole city by district, and for
  金水区 by grid, over the last twelve months, as an administrator: the first request after
  start (which reads the roll-up), then p50 and p99 of 20 more;
- tiles: the cases and units layers at zooms 12–16, 25 tiles each round the densest point
  (benchmarks/tiles.py), uncached, sequential; p50 and p99;
- reports: ``POST /api/v1/cases`` at REPORT_RATE (1,000/s) for CITY_REPORT_SECONDS (30 s)
  from the separate load generator (benchmarks/loadgen.py), points in 金水区; p50 and p99.

Targets (issue 19): report ≥ 1,000/s with p99 ≤ 50 ms; statistics p50 ≤ 300 ms; tiles p50
≤ 10 ms; memory ≤ 1 GB and start-up ≤ 15 s, roughly flat from 1 M to 10 M.
Environment: CITY_SIZES ("1000000,10000000"), CITY_REPORT_SECONDS (30), REPORT_RATE (1000).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, timedelta

import httpx
import numpy as np
from common import maintain, random_points, server
from report_load import bench_user, loadgen
from soak import rss_mib
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.db import cluster, migrate
from gis_service.db.engine import get_engine, transaction
from gis_service.demo.city import load_city
from gis_service.settings import Settings
from gis_service.stats import rollup
from tiles import ZOOMS, admin_token, measure, tiles_around

SIZES = [int(s) for s in os.environ.get("CITY_SIZES", "1000000,10000000").split(",")]
REPORT_SECONDS = float(os.environ.get("CITY_REPORT_SECONDS", "30"))
RATE = float(os.environ.get("REPORT_RATE", "1000"))
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"


def database(cases: int) -> Settings:
    """The city database holding ``cases`` cases, built when missing."""
    name = "gis_service_city" if cases == 10_000_000 else f"gis_service_city_{cases // 10**6}m"
    settings = Settings(db_name=name, secret_key=SECRET)
    cluster.start(settings)
    cluster.ensure_database(settings, name)
    migrate.upgrade(settings)
    with get_engine(settings).connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    if have < cases * 0.99:
        print(f"building {name}: {cases:,} cases over the twelve divisions …", flush=True)
        result = load_city(settings, cases_total=cases, progress=lambda m: print("  " + m))
        print(f"  {result.summary()}")
        maintain(settings, "VACUUM ANALYZE")
    with transaction(settings) as conn:
        t = time.perf_counter()
        rows = rollup.fold(conn, settings)
    if rows:
        print(
            f"{name}: folded the settled history into the daily roll-up once after the "
            f"upgrade: {rows:,} rows in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        # as autovacuum would have by the time a city is in service: otherwise its pass
        # over the millions of new roll-up rows lands inside the measured minutes
        maintain(settings, "VACUUM ANALYZE case_rollup")
    return settings


def pct(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def measure_city(settings: Settings) -> dict[str, object]:
    out: dict[str, object] = {}
    with get_engine(settings).connect() as conn:
        out["cases"] = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    token = admin_token(settings)
    auth = {"Authorization": f"Bearer {token}"}
    with (
        server(
            settings, workers=1, timeout=600, GIS_SECRET_KEY=SECRET, GIS_TILE_CACHE_SIZE="0"
        ) as srv,
        httpx.Client(base_url=srv.base, timeout=120) as client,
    ):
        out["start_answer_s"] = srv.answered_s
        out["start_ready_s"] = srv.ready_s
        out["rss_ready_mib"] = rss_mib(srv.pid)[0]
        to = date.today()
        since = to - timedelta(days=365)
        period = f"from={since}&to={to}"
        for label, url in (
            ("stats_city", f"/api/v1/stats/resolution?level=district&{period}"),
            ("stats_grid", f"/api/v1/stats/resolution?level=grid&unit=410105&{period}"),
        ):
            t = time.perf_counter()
            client.get(url, headers=auth).raise_for_status()
            out[label + "_first_ms"] = (time.perf_counter() - t) * 1000
            times = []
            for _ in range(20):
                t = time.perf_counter()
                client.get(url, headers=auth).raise_for_status()
                times.append(time.perf_counter() - t)
            out[label] = pct(times)

        tiles = tiles_around(settings)
        for layer in ("units", "cases"):
            times = []
            for z in ZOOMS:
                urls = [f"/tiles/{layer}/{z}/{x}/{y}.pbf" for x, y in tiles[z]]
                measure(client, urls[:3], auth)
                times += measure(client, urls, auth)[0]
            out[f"tiles_{layer}"] = pct(times)
        out["rss_used_mib"] = rss_mib(srv.pid)[0]

    # reports, against a server of their own (the configuration report_load.py measures)

    user = bench_user(settings)
    report_token = sessions.issue_for(settings, user).access_token
    points = random_points(settings, 50_000, seed=7)
    run = f"city{int(time.time())}"
    maintain(settings, "CHECKPOINT")  # no checkpoint due inside the measured minute
    with server(settings, workers=1, GIS_SECRET_KEY=SECRET) as srv:
        loadgen(srv.port, report_token, points, rate=500, seconds=5, connections=32, tag=run + "w")
        r = loadgen(
            srv.port,
            report_token,
            points,
            rate=RATE,
            seconds=REPORT_SECONDS,
            connections=32,
            tag=run,
        )
    out["report"] = (r["rate"], r["p50"], r["p99"], r["errors"])
    return out


def main() -> None:
    load = os.getloadavg()[0]
    print(
        f"the city at scale — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {load:.1f}, {os.cpu_count()} cores"
    )
    results = {}
    for n in SIZES:
        results[n] = measure_city(database(n))
        print(f"  {n:,}: {results[n]}", flush=True)
    cols = [f"{results[n]['cases']:>14,}" for n in SIZES]
    print(f"\n{'measure':<40}" + "".join(cols) + "   target")
    rows = [
        ("start-up: /healthz answers (s)", "start_answer_s", "{:.1f}", ""),
        ("start-up: statistics ready (s)", "start_ready_s", "{:.1f}", "≤ 15"),
        ("resident memory when ready (MiB)", "rss_ready_mib", "{:,.0f}", ""),
        ("resident memory after use (MiB)", "rss_used_mib", "{:,.0f}", "≤ 1,024"),
    ]
    for label, key, f, target in rows:
        print(f"{label:<40}" + "".join(f"{f.format(results[n][key]):>14}" for n in SIZES), target)
    for label, key, target in (
        ("statistics, city by district p50/p99 ms", "stats_city", "p50 ≤ 300"),
        ("statistics, 金水区 by grid p50/p99 ms", "stats_grid", "p50 ≤ 300"),
        ("tiles, cases p50/p99 ms (uncached)", "tiles_cases", "p50 ≤ 10"),
        ("tiles, units p50/p99 ms (uncached)", "tiles_units", "p50 ≤ 10"),
    ):
        cells = "".join(
            f"{'{:.1f}/{:.1f}'.format(*results[n][key]):>14}"
            for n in SIZES  # type: ignore[str-format]
        )
        print(f"{label:<40}{cells}", target)
        if key.startswith("stats"):
            first = "".join(f"{results[n][key + '_first_ms']:>14.0f}" for n in SIZES)
            print(f"{'  its first request after start (ms)':<40}{first}")
    cells = "".join(
        "{:>14}".format("{:.0f}/s {:.0f}/{:.0f}".format(*results[n]["report"][:3])) for n in SIZES
    )
    print(f"{'reports: rate, p50/p99 ms':<40}{cells}", "≥ 1,000/s, p99 ≤ 50")
    print(
        "\nsummary: "
        + "; ".join(
            f"{results[n]['cases']:,} cases: ready in {results[n]['start_ready_s']:.1f} s, "
            f"{results[n]['rss_used_mib']:,.0f} MiB"
            for n in SIZES
        )
    )


if __name__ == "__main__":
    sys.exit(main())
