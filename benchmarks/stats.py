"""Resolution statistics over 1 M generated cases (issue 4 target: ≤ 300 ms).

Prints, in one run, on the same database:
- the cube: first load (COPY of the facts), an incremental sync after 1,000 changes, and
  the statistics per level (district … grid), whole year, with and without a category;
- the peer: the same figures computed by PostgreSQL in one GROUP BY (percentile_cont for
  the median), which is what a straightforward implementation would run;
- through the API (`gis-service serve`, cube warm): GET /api/v1/stats/resolution.
Environment: STATS_CASES (1000000).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta

import httpx
import numpy as np
from common import server, setup
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.auth.principal import Principal, Role
from gis_service.db.engine import get_engine, transaction
from gis_service.demo.cases import generate_case_history
from gis_service.stats.cube import LEVEL_LENGTHS, CaseCube
from gis_service.stats.resolution import StatsQuery, resolution

CASES = int(os.environ.get("STATS_CASES", "1000000"))
DB = "gis_service_bench_stats"
SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
ADMIN = Principal(role=Role.admin, user_id=0)

PEER_SQL = """
SELECT left(unit_code, :n) AS unit, count(*) AS reported,
       count(accepted_at) AS accepted, count(*) FILTER (WHERE status = 'closed') AS closed,
       count(*) FILTER (WHERE status = 'closed' AND closed_at <= deadline_at) AS on_time,
       count(*) FILTER (WHERE status = 'closed' AND rework_count > 0) AS rework,
       count(rating) AS rated, count(*) FILTER (WHERE rating >= 4) AS satisfied,
       count(*) FILTER (WHERE status IN ('reported','accepted','dispatched','in_progress',
                                         'handled') AND deadline_at < now()) AS overdue,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - reported_at)
                                          / 3600) FILTER (WHERE status = 'closed') AS median
  FROM cases
 WHERE reported_at >= (CAST(:d0 AS date))::timestamp AT TIME ZONE 'Asia/Shanghai'
   AND reported_at < (CAST(:d1 AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
   AND status <> 'duplicate' AND length(unit_code) >= :n
 GROUP BY 1
"""


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def fmt(label: str, ms: list[float]) -> str:
    return (
        f"{label:<46} p50 {statistics.median(ms):8.1f} ms   p99 "
        f"{float(np.percentile(ms, 99)):8.1f} ms   ({len(ms)} runs)"
    )


def main() -> None:
    settings = setup(DB).model_copy(update={"secret_key": SECRET})
    engine = get_engine(settings)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    if have < CASES:
        print(f"generating {CASES - have:,} cases …")
        with transaction(settings) as conn:
            h = generate_case_history(conn, n=CASES - have, seed=7, events=False)
        print(f"  {h.summary()}")
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE cases")
            )
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        d1 = conn.execute(
            text("SELECT (max(reported_at) AT TIME ZONE 'Asia/Shanghai')::date FROM cases")
        ).scalar_one()
    d0 = d1 - timedelta(days=363)
    print(f"statistics over {total:,} cases, {d0} … {d1}")

    cube = CaseCube(settings)
    with engine.connect() as conn:
        t = time.perf_counter()
        cube.facts()
        print(f"{'cube: first load (COPY of the facts)':<46} {(time.perf_counter() - t):8.2f} s")
        with transaction(settings) as tx:
            tx.execute(
                text(
                    "UPDATE cases SET rating = coalesce(rating, 5) WHERE id IN "
                    "(SELECT id FROM cases ORDER BY id DESC LIMIT 1000)"
                )
            )
        t = time.perf_counter()
        cube.facts()
        print(
            f"{'cube: sync after 1,000 changed cases':<46} "
            f"{(time.perf_counter() - t) * 1000:8.1f} ms  ({cube.last_delta} rows fetched)"
        )
        for level in LEVEL_LENGTHS:
            for category in (None, "environment"):
                q = StatsQuery(level=level, date_from=d0, date_to=d1, category=category)
                ms = timed(lambda q=q: resolution(conn, cube, ADMIN, q), 10)
                print(
                    fmt(f"cube: level={level}" + (f" category={category}" if category else ""), ms)
                )
        # the jurisdiction rule (auth/scope.py) on the cube: a subdistrict compares the
        # cube's level index; a team and a building scope take their ids from the SQL rule
        sub = conn.execute(
            text("SELECT code FROM admin_unit WHERE level = 'subdistrict' ORDER BY code LIMIT 1")
        ).scalar_one()
        building = conn.execute(
            text(
                "SELECT unit_code FROM cases WHERE length(unit_code) = 17 "
                "GROUP BY unit_code ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
        team = conn.execute(
            text(
                "SELECT t FROM cases, unnest(team_history) t GROUP BY t ORDER BY count(*) DESC "
                "LIMIT 1"
            )
        ).scalar_one()
        for label, viewer in (
            ("subdistrict supervisor", Principal(role=Role.supervisor, scopes=(sub,))),
            ("team member (busiest team)", Principal(role=Role.team_member, team_id=team)),
            ("building-scoped Open311 key", Principal(role=Role.client, scopes=(building,))),
        ):
            q = StatsQuery(level="grid", date_from=d0, date_to=d1)
            ms = timed(lambda q=q, v=viewer: resolution(conn, cube, v, q), 10)
            print(fmt(f"cube: level=grid, {label}", ms))
        for level in ("community", "grid"):
            ms = timed(
                lambda level=level: conn.execute(
                    text(PEER_SQL), {"n": LEVEL_LENGTHS[level], "d0": d0, "d1": d1}
                ).all(),
                3,
            )
            print(fmt(f"peer: one SQL GROUP BY, level={level}", ms))

    with get_engine(settings).connect() as conn:
        admin = (
            conn.execute(
                text("SELECT * FROM app_user WHERE role = 'admin' AND active ORDER BY id LIMIT 1")
            )
            .mappings()
            .one()
        )
    token = sessions.issue_for(settings, dict(admin)).access_token
    with (
        server(settings, GIS_SECRET_KEY=SECRET) as srv,
        httpx.Client(
            base_url=srv.base, timeout=120, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        params = {"level": "grid", "from": str(d0), "to": str(d1)}
        t = time.perf_counter()
        assert client.get("/api/v1/stats/resolution", params=params).status_code == 200
        print(f"{'API: first request (cube still loading)':<46} {(time.perf_counter() - t):8.2f} s")
        ms = timed(lambda: client.get("/api/v1/stats/resolution", params=params), 20)
        print(fmt("API: GET /stats/resolution?level=grid", ms))
    ok = statistics.median(ms) <= 300
    print(f"target ≤ 300 ms at {total:,} cases: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
