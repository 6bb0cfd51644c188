"""OGC API – Features items pages (issue 16), beside tipg serving the same table in the
same run.

On the demo district with 1 M generated cases (the statistics benchmark's database,
gis_service_bench_stats; the cases are generated here if fewer, as benchmarks/stats.py
does):
- ours: ``GET /ogc/collections/cases/items?limit=100`` as an admin (every case), uncached,
  over loopback with httpx: the first page, and pages deep in the table reached by their
  ``after`` cursor (what the next links carry: keyset paging);
- the peer: tipg 1.6.1 (PyPI, in its own virtualenv .venv-peers, created if missing: it
  pins its own FastAPI/pydantic, so not in ours; benchmarks/tiles.py's set-up) serving
  public.cases from the same database: ``/collections/public.cases/items?limit=100`` with
  the same properties (``properties=``), the first page and the same deep pages by
  ``offset`` (its paging).
Both answer GeoJSON with numberMatched. Prints p50/p99 per kind of page and the body
sizes. Environment: OGC_CASES (1000000), OGC_DB (gis_service_bench_stats), OGC_PAGES (50
of each kind).
"""

from __future__ import annotations

import os
import statistics
import time

import httpx
import numpy as np
from common import server, setup
from sqlalchemy import text

from gis_service.db.engine import get_engine, transaction
from gis_service.demo.cases import generate_case_history
from tiles import admin_token, tipg_server

CASES = int(os.environ.get("OGC_CASES", "1000000"))
DB = os.environ.get("OGC_DB", "gis_service_bench_stats")
PAGES = int(os.environ.get("OGC_PAGES", "50"))
LIMIT = 100
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
#: tipg's columns for our case properties (gis_service/ogc/collections.py CASE_PROPERTIES;
#: ours computes status and overdue, tipg reads the stored columns)
TIPG_PROPERTIES = (
    "case_no,status,category_code,priority,description,address,unit_code,handling_level,"
    "source,team_id,reported_at,accepted_at,deadline_at,closed_at,rework_count,rating,"
    "updated_at"
)


def ensure_cases(settings) -> int:
    engine = get_engine(settings)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    if have < CASES:
        print(f"generating {CASES - have:,} cases …")
        with transaction(settings) as conn:
            generate_case_history(conn, n=CASES - have, seed=7, events=False)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE cases")
            )
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM cases")).scalar_one()


def deep_positions(settings, total: int) -> list[tuple[int, int]]:
    """(offset, id of the case just before it) of PAGES positions spread over the table,
    in id order: the same page for both servers."""
    rng = np.random.default_rng(16)
    offsets = sorted(int(o) for o in rng.integers(1, max(2, total - LIMIT), PAGES))
    with get_engine(settings).connect() as conn:
        return [
            (
                o,
                conn.execute(
                    text("SELECT id FROM cases ORDER BY id OFFSET :o LIMIT 1"), {"o": o - 1}
                ).scalar_one(),
            )
            for o in offsets
        ]


def timed(client: httpx.Client, urls: list[str], headers=None) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for url in urls:
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        assert len(r.json()["features"]) == LIMIT, url
        sizes.append(len(r.content))
    return times, sizes


def line(label: str, times: list[float], sizes: list[int]) -> str:
    return (
        f"{label:<44} p50 {statistics.median(times):8.1f} ms   p99 "
        f"{float(np.percentile(times, 99)):8.1f} ms   body {statistics.median(sizes) / 1024:6.1f}"
        f" KiB   ({len(times)} pages)"
    )


def main() -> None:
    settings = setup(DB).model_copy(update={"secret_key": SECRET})
    total = ensure_cases(settings)
    positions = deep_positions(settings, total)
    print(f"OGC API – Features items, limit={LIMIT}, over {total:,} cases")
    token = admin_token(settings)
    auth = {"Authorization": f"Bearer {token}"}
    ours = "/ogc/collections/cases/items"
    with server(settings, GIS_SECRET_KEY=SECRET) as srv, httpx.Client(timeout=120) as client:
        first = [f"{srv.base}{ours}?limit={LIMIT}"] * PAGES
        deep = [f"{srv.base}{ours}?limit={LIMIT}&after={key}" for _, key in positions]
        timed(client, first[:3], auth)  # warm the connections
        print(line("ours: first page", *timed(client, first, auth)))
        print(line("ours: deep pages (after=, keyset)", *timed(client, deep, auth)))
    proc, base = tipg_server(settings)
    try:
        with httpx.Client(timeout=120) as client:
            peer = f"{base}/collections/public.cases/items?limit={LIMIT}&properties="
            first = [peer + TIPG_PROPERTIES] * PAGES
            deep = [f"{peer}{TIPG_PROPERTIES}&offset={o}" for o, _ in positions]
            timed(client, first[:3])
            print(line("tipg 1.6.1: first page", *timed(client, first)))
            print(line("tipg 1.6.1: deep pages (offset=)", *timed(client, deep)))
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
