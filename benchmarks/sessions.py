"""What the per-request session check costs (issue 14 item 3, auth/sessions.py).

Every signed-in request looks up its session and account by primary key (``ALIVE``)
before it does anything else. Measured here, sequentially over loopback, on the bench
database (the demo district; ``BENCH_DB`` picks another one holding the demo):

- the lookup alone: on the report path's asyncpg pool and on a SQLAlchemy connection;
- a report (POST /api/v1/cases, JSON, a new Idempotency-Key each) end to end;
- a cached vector tile (GET /tiles/cases/…, the tile cache hit: the check and the
  versions query are the request's database work) end to end;
- GET /api/v1/auth/me (nothing but the token and the check) end to end.

The check's share of each is its median over the request's median. Run:
``.venv/bin/python benchmarks/sessions.py`` (about half a minute).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import httpx
from common import DB, random_points, server, setup
from sqlalchemy import text

from gis_service.auth import sessions
from gis_service.auth.users import create_user
from gis_service.db.asyncpool import get_pool
from gis_service.db.engine import get_engine, transaction
from gis_service.tiles.basemap import lonlat_to_tile

SECRET = "benchmark-secret-key-not-for-production-use-0123456789"
LOOKUPS = 3000
REQUESTS = 400


def ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {statistics.median(samples) * 1e3:7.3f} ms   p99 {q[98] * 1e3:7.3f} ms"


def bench_user(settings) -> dict:
    with transaction(settings) as conn:
        row = (
            conn.execute(text("SELECT * FROM app_user WHERE username = 'bench-sessions'"))
            .mappings()
            .first()
        )
        return (
            dict(row)
            if row
            else create_user(
                conn, username="bench-sessions", password="bench-password", role="admin"
            )
        )


async def lookups_async(settings, principal) -> list[float]:
    pool = await get_pool(settings)
    times = []
    for _ in range(LOOKUPS):
        t = time.perf_counter()
        await sessions.check(settings, principal)
        times.append(time.perf_counter() - t)
    await pool.close()
    return times


def lookups_sync(settings, principal) -> list[float]:
    times = []
    with get_engine(settings).connect() as conn:
        for _ in range(LOOKUPS):
            t = time.perf_counter()
            sessions.check_sync(conn, principal)
            times.append(time.perf_counter() - t)
    return times


def timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    settings = setup(os.environ.get("BENCH_DB", DB)).model_copy(update={"secret_key": SECRET})
    grant = sessions.issue_for(settings, bench_user(settings))
    from gis_service.auth import tokens

    principal = tokens.read(grant.access_token, settings)
    print(f"session check — {time.strftime('%Y-%m-%d %H:%M')}, {settings.db_name}, sequential")
    check_async = asyncio.run(lookups_async(settings, principal))
    check_sync = lookups_sync(settings, principal)
    print(f"  {'check alone, asyncpg pool':<42}{ms(check_async)}")
    print(f"  {'check alone, SQLAlchemy connection':<42}{ms(check_sync)}")
    points = random_points(settings, REQUESTS, seed=11)
    lon, lat = points[0]
    x, y = lonlat_to_tile(lon, lat, 16)
    auth = {"Authorization": f"Bearer {grant.access_token}"}
    with (
        server(settings, GIS_SECRET_KEY=SECRET, GIS_ACCESS_TOKEN_SECONDS="3600") as srv,
        httpx.Client(base_url=srv.base, headers=auth, timeout=60) as client,
    ):
        tile = f"/tiles/cases/16/{x}/{y}.pbf"
        client.get(tile).raise_for_status()
        it = iter(points)

        def report() -> None:
            p = next(it)
            r = client.post(
                "/api/v1/cases",
                json={
                    "lon": p[0],
                    "lat": p[1],
                    "category": "environment.garbage",
                    "description": "bench",
                },
                headers={"Idempotency-Key": f"bench-sessions-{uuid.uuid4()}"},
            )
            assert r.status_code == 201, r.text

        for name, fn, n in (
            ("GET /api/v1/auth/me", lambda: client.get("/api/v1/auth/me").raise_for_status(), 0),
            ("GET /tiles/cases (cache hit)", lambda: client.get(tile).raise_for_status(), 0),
            ("POST /api/v1/cases (report)", report, REQUESTS - 20),
        ):
            fn()  # warm
            times = timed(fn, n or REQUESTS)
            check = check_sync if name.startswith("GET /tiles") else check_async
            share = statistics.median(check) / statistics.median(times)
            print(f"  {name:<42}{ms(times)}   check {share:5.1%} of p50")


if __name__ == "__main__":
    main()
