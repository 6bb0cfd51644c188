"""A database that stops and starts again under a running app (issue 14, item 1).

Runs on a PostgreSQL cluster of its own (a temporary data directory on a free port): the
project's cluster is shared by the whole test session and must never stop. While the
database is down, every kind of request — a report (asyncpg), a case list (SQLAlchemy), a
case tile and a unit tile (the statistics cube, the tile cache), a sign-in, /healthz —
answers 503 ``database_unavailable`` with Retry-After, never 500; once it is up again the
very first request of each kind succeeds (stale pooled connections are replaced). Under a
stream of reports to the real server (two workers) that retries with the same
Idempotency-Key, a restart loses and doubles nothing acknowledged (tests/faults/stream.py).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from gis_service.app import create_app
from gis_service.db import cluster, migrate
from gis_service.settings import Settings
from tests.browser import free_port
from tests.conftest import (
    IN_GRID_1,
    TEST_SECRET,
    import_test_city,
    make_user,
)
from tests.faults.stream import UNHANDLED, ReportStream, assert_exactly_once, served

RETRY_AFTER = 3
#: the whole stop/start cycle of one mode may take this long (initdb is not counted)
BOUND_SECONDS = 60
#: the stated bound: once PostgreSQL accepts connections again, reports sent after it are
#: acknowledged within this many seconds
RECOVERY_SECONDS = 10
#: how long the database stays down under the stream
OUTAGE_SECONDS = 2


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Settings]:
    # straight under the temporary directory: when the tests run as root, the server runs
    # as the postgres user, who cannot enter pytest's private tmp_path
    root = Path(tempfile.mkdtemp(prefix="gis-faults-"))
    root.chmod(0o755)
    settings = Settings(
        var_dir=root / "var",
        db_port=free_port(),
        db_name="gis_service_faults",
        secret_key=TEST_SECRET,
        tile_freshness_seconds=0,
        photo_dir=root / "photos",
        db_pool_size=4,
        db_retry_after_seconds=RETRY_AFTER,
    )
    try:
        cluster.start(settings)
        assert cluster.data_dir(settings).is_relative_to(root)
        migrate.upgrade(settings)
        yield settings
    finally:
        cluster.stop(settings)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def city(own_cluster: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The conftest's small test city on the cluster, and a grid worker to report."""
    tmp = tmp_path_factory.mktemp("faults-city")
    import_test_city(own_cluster, tmp, grids=True)
    return {
        "settings": own_cluster,
        "worker": make_user(own_cluster, "grid_worker", scopes=["41019900100101"]),
        "admin": make_user(own_cluster, "admin", username="admin"),
    }


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The Web Mercator (XYZ) tile holding a point."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def requests(client: TestClient, city: dict) -> dict[str, Callable[[], Response]]:
    """One request of each kind, by name; each reads (or writes) the database."""
    worker, admin = city["worker"], city["admin"]
    report = {
        "category": "environment.garbage",
        "lon": IN_GRID_1[0],
        "lat": IN_GRID_1[1],
        "description": "楼下垃圾堆放",
    }
    z, x, y = tile_of(*IN_GRID_1, 14)
    return {
        "report": lambda: client.post("/api/v1/cases", headers=worker, json=report),
        "case list": lambda: client.get("/api/v1/cases", headers=admin),
        "case tile": lambda: client.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers=admin),
        "unit tile": lambda: client.get(f"/tiles/units/{z}/{x}/{y}.pbf", headers=admin),
        "sign-in": lambda: client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": "password-123"}
        ),
        "open311 requests": lambda: client.get("/open311/v2/requests.json"),
        "healthz": lambda: client.get("/healthz"),
    }


def pg_ctl_stop(settings: Settings, mode: str) -> None:
    pgdata = cluster.data_dir(settings)
    cmd = [str(cluster.pg_bindir() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(pgdata)]
    subprocess.run(cluster._as_owner(cmd), check=True, capture_output=True)


def assert_unavailable(name: str, r: Response) -> None:
    assert r.status_code == 503, f"{name}: {r.status_code} {r.text[:300]}"
    assert r.headers["Retry-After"] == str(RETRY_AFTER), name
    body = r.json()
    if name.startswith("open311"):  # the GeoReport error list, the spec's format
        assert body[0]["code"] == 503 and body[0]["description"], name
        return
    assert body["error"] == "database_unavailable" and body["detail"], name
    assert body["retry_after"] == RETRY_AFTER, name


def first_requests_succeed(calls: dict[str, Callable[[], Response]], when: str) -> float:
    """Each kind of request once, each must succeed; returns the seconds they took."""
    t0 = time.monotonic()
    for name, call in calls.items():
        r = call()
        assert r.status_code in (200, 201), f"first {name} {when}: {r.status_code} {r.text[:300]}"
    return time.monotonic() - t0


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restart_between_requests_leaves_no_stale_connection(city: dict, mode: str) -> None:
    """The database restarts while nobody asks: every pooled connection is dead, and the
    very first request of each kind after the restart succeeds anyway."""
    settings = city["settings"]
    started = time.monotonic()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        calls = requests(client, city)
        for _ in range(3):  # more requests than one connection: the pools hold several
            first_requests_succeed(calls, "at start")
        pg_ctl_stop(settings, mode)
        cluster.start(settings)
        took = first_requests_succeed(calls, f"after a {mode} restart")
        first_requests_succeed(calls, f"again after a {mode} restart")
    print(f"\n[{mode} restart, no requests during it] first requests after it: {took:.3f} s")
    assert time.monotonic() - started < BOUND_SECONDS


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_every_request_answers_503_while_the_database_is_down_and_recovers(
    city: dict, mode: str
) -> None:
    settings = city["settings"]
    started = time.monotonic()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        calls = requests(client, city)
        first_requests_succeed(calls, "at start")  # the connections that will go stale

        pg_ctl_stop(settings, mode)
        for _ in range(2):  # the pools' first try and a retry
            for name, call in calls.items():
                assert_unavailable(name, call())
        health = client.get("/healthz").json()
        assert health["status"] == "error" and health["database"] == "unreachable"
        assert {"database", "report_path"} <= set(health["down"])

        restart = time.monotonic()
        cluster.start(settings)
        up = time.monotonic()
        took = first_requests_succeed(calls, "after the outage")
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["down"] == []
    print(
        f"\n[{mode} stop, requests during the outage] pg_ctl start took {up - restart:.2f} s; "
        f"the first request of each kind after it succeeded, all seven in {took:.3f} s"
    )
    assert time.monotonic() - started < BOUND_SECONDS


def test_an_app_started_while_the_database_is_down_serves_once_it_is_up(city: dict) -> None:
    """No pool could open at start: the first requests say 503, not 500, and the pools
    open on the first request after the database is back."""
    settings = city["settings"]
    pg_ctl_stop(settings, "fast")
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            calls = requests(client, city)
            for name, call in calls.items():
                assert_unavailable(name, call())
            # the statistics cube's first load (a thread started with the app) failed
            # too: /healthz says so, and the process is still serving
            deadline = time.monotonic() + 10
            while "statistics" not in (down := client.get("/healthz").json()["down"]):
                assert time.monotonic() < deadline, down
                time.sleep(0.05)
            assert set(down) == {"database", "report_path", "statistics"}
            cluster.start(settings)
            for name, call in calls.items():
                r = call()
                assert r.status_code in (200, 201), f"{name} once up: {r.text[:300]}"
            assert client.get("/healthz").json()["down"] == []
    finally:
        cluster.start(settings)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_report_stream_through_a_restart_loses_and_doubles_nothing(city: dict, mode: str) -> None:
    """The real server, two workers, three clients reporting without pause; PostgreSQL
    stops (``fast``: sessions end cleanly; ``immediate``: no shutdown checkpoint, crash
    recovery at start) for two seconds and starts again. While it is down reports are
    answered 503 with Retry-After and sent again with their key; none is answered 500;
    every acknowledged report is stored exactly once."""
    settings = city["settings"]
    started = time.monotonic()
    tag = f"pg-{mode}-{uuid.uuid4().hex[:8]}"
    try:
        with (
            served(settings, workers=2) as server,
            ReportStream(server.base, city["worker"], tag=tag, threads=3, photo_every=4) as stream,
        ):
            stream.wait_acks(10, sent_after=started, within=RECOVERY_SECONDS)
            pg_ctl_stop(settings, mode)
            stopped = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            cluster.start(settings)
            up = time.monotonic()
            first = stream.wait_acks(5, sent_after=up, within=RECOVERY_SECONDS)
            stream.stop()
            log = server.log_text()
    finally:
        cluster.start(settings)  # up again whatever failed: the next test needs it

    assert_exactly_once(settings, stream)
    assert stream.statuses[503] > 0, stream.summary()  # it was down, and said so
    assert UNHANDLED not in log, log[-3000:]
    print(
        f"\n[{mode} restart under a report stream] down {up - stopped:.2f} s; reports sent "
        f"after it were acknowledged {first - up:.2f} s after PostgreSQL was up\n"
        f"{stream.summary()}"
    )
    assert time.monotonic() - started < BOUND_SECONDS
