"""Memory and start-up of one API process as the history grows (issue 19 item 5; target:
≤ 1 GB resident, ≤ 15 s from start to a loaded statistics cube, roughly flat as the
history grows).

Builds MEMORY_CASES (1,000,000) cases over MEMORY_YEARS (4) years of the demo district
with the demo's generator (one year per call, ``generate_case_history(end=…)``), then,
after one year and after all of them, starts ``gis-service serve`` (one worker) and
reads, in one run on the same database:
- start-up: seconds from the process's start until /healthz says the cube is loaded
  (``stats_ready``), and the process's VmRSS / VmHWM (/proc/PID/status) then and after
  ten GET /api/v1/stats/resolution of the default 52 weeks at grid level (the first —
  the roll-up read from PostgreSQL — and the p50; later ones reuse the process's answer
  for the roll-up's days until a fold or a write to an old case);
- with the roll-up (``GIS_STATS_RECENT_DAYS`` = 90, the default), after folding every
  old day into it from empty (timed apart: what the first start after the upgrade does);
- the peer: the same process holding every case (``GIS_STATS_RECENT_DAYS`` = 100000, as
  before the roll-up existed).
Environment: MEMORY_CASES, MEMORY_YEARS, MEMORY_RECENT_DAYS (90).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

import httpx
from common import server, setup
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.db.engine import get_engine, transaction
from gis_service.demo.cases import generate_case_history
from gis_service.settings import Settings
from gis_service.stats import rollup
from gis_service.timezone import local_date

CASES = int(os.environ.get("MEMORY_CASES", "1000000"))
YEARS = int(os.environ.get("MEMORY_YEARS", "4"))
RECENT = int(os.environ.get("MEMORY_RECENT_DAYS", "90"))
EVERYTHING = 100_000  # days: the cube holds every case, as before the roll-up
DB = "gis_service_bench_memory"
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"


def _descendants(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            out.extend(_descendants(int(child)))
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (peak) of the process and its children, MB."""
    rss = hwm = 0
    for p in _descendants(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss / 1024, hwm / 1024


def unfold(settings: Settings) -> None:
    """Empty the roll-up, as before its migration ran (the next start folds again)."""
    with transaction(settings) as conn:
        conn.execute(text("UPDATE case_rollup_state SET folded_before = NULL, tz = NULL"))
        conn.execute(text("DELETE FROM case_rollup"))


def grow(settings: Settings, years: int) -> int:
    """Generate cases until ``years`` years hold CASES / YEARS each (the roll-up emptied
    first, so its trigger has nothing to do during the bulk load)."""
    per_year = CASES // YEARS
    engine = get_engine(settings)
    today = local_date(settings)
    unfold(settings)
    for k in range(years):
        end = today - timedelta(days=365 * k)
        with engine.connect() as conn:
            have = conn.execute(
                text(
                    "SELECT count(*) FROM cases WHERE reported_at >= "
                    "(CAST(:d0 AS date))::timestamp AT TIME ZONE :tz AND reported_at < "
                    "(CAST(:d1 AS date))::timestamp AT TIME ZONE :tz"
                ),
                {"d0": end - timedelta(days=365), "d1": end, "tz": settings.timezone},
            ).scalar_one()
        if have < per_year * 0.9:
            print(f"generating {per_year - have:,} cases in the year before {end} …", flush=True)
            t = time.perf_counter()
            with transaction(settings) as conn:
                generate_case_history(conn, n=per_year - have, seed=100 + k, events=False, end=end)
            print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE cases"))
        return conn.execute(text("SELECT count(*) FROM cases")).scalar_one()


def measure(settings: Settings, label: str, recent_days: int, token: str) -> None:
    t = time.perf_counter()
    with (
        server(settings, GIS_SECRET_KEY=SECRET, GIS_STATS_RECENT_DAYS=str(recent_days)) as srv,
        httpx.Client(
            base_url=srv.base, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        started = time.perf_counter() - t
        rss, hwm = memory_mb(srv.pid)
        ms = []
        for _ in range(10):
            t = time.perf_counter()
            r = client.get("/api/v1/stats/resolution", params={"level": "grid"})
            ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
        body = r.json()
        rss_after, hwm_after = memory_mb(srv.pid)
    print(
        f"{label:<44} start {started:6.1f} s   RSS {rss:6.0f} MB (peak {hwm:6.0f})   "
        f"after stats RSS {rss_after:6.0f} MB (peak {hwm_after:6.0f})   "
        f"stats first {ms[0]:7.1f} ms, p50 {statistics.median(ms):7.1f} ms   "
        f"cube {body['cases_in_cube']:,} cases",
        flush=True,
    )


def main() -> None:
    settings = setup(DB).model_copy(update={"secret_key": SECRET})
    with get_engine(settings).connect() as conn:
        admin = (
            conn.execute(
                text("SELECT * FROM app_user WHERE role = 'admin' AND active ORDER BY id LIMIT 1")
            )
            .mappings()
            .one()
        )
    token = sessions.issue_for(settings, dict(admin)).access_token
    print(f"load average before: {os.getloadavg()} (a shared machine: other work ran too)")
    for years in sorted({1, YEARS}):
        total = grow(settings, years)
        print(f"--- {total:,} cases over {years} year(s)", flush=True)
        measure(settings, f"every case in the cube ({EVERYTHING} days)", EVERYTHING, token)
        unfold(settings)
        folding = settings.model_copy(update={"stats_recent_days": RECENT})
        t = time.perf_counter()
        with transaction(folding) as conn:
            rows = rollup.fold(conn, folding)
        print(
            f"{'fold of every day before the window':<44} {time.perf_counter() - t:6.1f} s   "
            f"{rows:,} roll-up rows",
            flush=True,
        )
        measure(settings, f"recent {RECENT} days + roll-up", RECENT, token)
        print(f"load average: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
