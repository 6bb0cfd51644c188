"""The Patroni cluster from the CLI (issue 19, items 1-3; gis_service/db/patroni.py).

Everything runs on a cluster of its own, started and stopped here: etcd and two
PostgreSQL nodes (one replica, synchronous) under a temporary directory on free loopback
ports, through ``gis-service cluster up|status|switchover|down`` as an operator runs them.
The API server (``gis-service serve``) is pointed at the cluster only through the
multi-host connection strings ``cluster up`` prints; under a stream of reports that
retries with the same Idempotency-Key (tests/faults/stream.py) the primary's postmaster is
killed with SIGKILL and, later, a switchover is asked for: a standby takes over, the server
reconnects by itself, and every acknowledged report is stored exactly once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis_service.db import patroni
from gis_service.db.engine import get_engine, get_read_engine
from gis_service.settings import Settings
from tests.conftest import TEST_SECRET, import_test_city, make_user
from tests.faults.stream import (
    GRID_1,
    UNHANDLED,
    ReportStream,
    assert_exactly_once,
    served,
)

#: how long `cluster up` may take (initdb, a base backup, the migrations)
UP_SECONDS = 300
#: the stated bound: after the primary's postmaster is killed (or a switchover is asked
#: for), reports sent afterwards are acknowledged again within this many seconds
FAILOVER_SECONDS = 30
#: a standby replays a commit within this many seconds (synchronous_commit = on waits for
#: the standby's flush, not its replay)
REPLAY_SECONDS = 10
CLI = str(Path(sys.executable).parent / "gis-service")


def cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GIS_VAR_DIR": str(settings.var_dir),
        "GIS_CLUSTER_PORT_BASE": str(settings.cluster_port_base),
        "GIS_DB_NAME": settings.db_name,
        "COLUMNS": "200",
    }
    env.pop("GIS_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [CLI, "cluster", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def cluster_up() -> Iterator[dict]:
    """``gis-service cluster up --replicas 1``; ``down`` afterwards, and whatever is left
    of it killed."""
    # straight under the temporary directory: as root, Patroni runs as the postgres user,
    # who cannot enter pytest's private tmp_path
    root = Path(tempfile.mkdtemp(prefix="gis-cluster-"))
    root.chmod(0o755)
    base = Settings(
        var_dir=root / "var",
        cluster_port_base=patroni.free_port_block(),
        db_name="gis_service_cluster",
        secret_key=TEST_SECRET,
        photo_dir=root / "photos",
        db_pool_size=4,
        db_retry_after_seconds=1,
        tile_freshness_seconds=0,
    )
    try:
        started = time.monotonic()
        done = cli(base, "up", "--replicas", "1", "--shared-buffers", "64MB", timeout=UP_SECONDS)
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
        up_seconds = time.monotonic() - started
        lay = patroni.layout(base)
        env = dict(
            line.split("=", 1) for line in (lay.root / "env").read_text().splitlines() if line
        )
        settings = base.model_copy(
            update={
                "database_url": env["GIS_DATABASE_URL"],
                "read_database_url": env["GIS_READ_DATABASE_URL"],
            }
        )
        print(f"\n[cluster up] 2 nodes healthy and migrated in {up_seconds:.1f} s")
        yield {"settings": settings, "layout": lay, "up": done, "root": root}
    finally:
        with contextlib.suppress(Exception):
            cli(base, "down", timeout=180)
        for pid in _processes_under(root):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        for engine in (get_engine, get_read_engine):
            with contextlib.suppress(Exception):
                engine(settings).dispose()
        shutil.rmtree(root, ignore_errors=True)


def _processes_under(root: Path) -> list[int]:
    """Live (not zombie) processes whose command line names ``root`` (etcd, Patroni,
    PostgreSQL: each is started with a path under it)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(root) in " ".join(p.info["cmdline"] or []):
                found.append(p.info["pid"])
    return found


def _roles(lay: patroni.Layout) -> dict[str, str]:
    return {m["name"]: m["role"] for m in patroni.members(lay)}


def test_up_and_status_show_a_leader_and_a_sync_standby(cluster_up: dict) -> None:
    lay, settings = cluster_up["layout"], cluster_up["settings"]
    assert [n.name for n in lay.nodes] == ["node0", "node1"]
    # the connection strings name both nodes, for writes and for reads
    for dsn, attrs in (
        (settings.database_url, "read-write"),
        (settings.read_database_url, "prefer-standby"),
    ):
        for node in lay.nodes:
            assert f"127.0.0.1:{node.pg_port}" in dsn
        assert f"target_session_attrs={attrs}" in dsn
    done = cli(settings, "status")
    assert done.returncode == 0, done.stderr
    rows = {
        line.split("│")[1].strip(): line
        for line in done.stdout.splitlines()
        if line.startswith("│")
    }
    assert set(rows) == {"node0", "node1"}, done.stdout
    assert sorted(rows[n].split("│")[2].strip() for n in rows) == ["leader", "sync_standby"]
    for node in lay.nodes:
        assert str(node.pg_port) in rows[node.name]
    # the generated configuration is per node, under var_dir/cluster
    assert all(n.config.is_file() for n in lay.nodes)
    # the schema is there (migrated on the primary)
    with get_engine(settings).connect() as conn:
        assert conn.execute(text("SELECT to_regclass('cases') IS NOT NULL")).scalar_one()


def test_a_standby_serves_reads_of_what_the_primary_wrote(cluster_up: dict) -> None:
    settings = cluster_up["settings"]
    marker = uuid.uuid4().hex
    with get_engine(settings).begin() as conn:
        assert conn.execute(text("SELECT NOT pg_is_in_recovery()")).scalar_one()
        conn.execute(text("CREATE TABLE IF NOT EXISTS cluster_probe (marker text)"))
        conn.execute(text("INSERT INTO cluster_probe VALUES (:m)"), {"m": marker})
    deadline = time.monotonic() + REPLAY_SECONDS
    with get_read_engine(settings).connect() as conn:
        # prefer-standby: the read connection is on the standby
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        while True:
            query = text("SELECT count(*) FROM cluster_probe WHERE marker = :m")
            if conn.execute(query, {"m": marker}).scalar_one() == 1:
                break
            assert time.monotonic() < deadline, "the standby did not replay the write"
            conn.rollback()
            time.sleep(0.1)
        conn.rollback()
    # and it refuses writes
    engine = get_read_engine(settings)
    with pytest.raises(DBAPIError, match="read-only"), engine.begin() as conn:
        conn.execute(text("INSERT INTO cluster_probe VALUES ('nope')"))


@pytest.fixture(scope="module")
def city(cluster_up: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The conftest's small test city on the cluster, and a grid worker to report."""
    settings = cluster_up["settings"]
    import_test_city(settings, tmp_path_factory.mktemp("cluster-city"), grids=True)
    return {"worker": make_user(settings, "grid_worker", scopes=["41019900100101"])}


def _standby(lay: patroni.Layout) -> patroni.Node:
    """The (first) node that is a standby now."""
    roles = _roles(lay)
    return next(n for n in lay.nodes if roles.get(n.name) in ("sync_standby", "replica"))


#: the API's connections to a node of our database, by engine (db/engine.py names them)
API_CONNECTIONS = """
    SELECT application_name, count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND backend_type = 'client backend'
       AND pid <> pg_backend_pid() GROUP BY 1
"""


#: when a connection of the read engine last finished a statement on a node
LAST_READ = """
    SELECT max(state_change) FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'gis_service reads'
"""


def _cluster_env(settings: Settings) -> dict[str, str]:
    return {
        "GIS_DATABASE_URL": settings.database_url or "",
        "GIS_READ_DATABASE_URL": settings.read_database_url or "",
    }


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a point (Web Mercator)."""
    import math

    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _report(client: httpx.Client, tag: str) -> httpx.Response:
    west, south, east, north = GRID_1
    body = {
        "category": "environment.garbage",
        "lon": (west + east) / 2,
        "lat": (south + north) / 2,
        "description": f"读写一致测试 {tag}",
    }
    return client.post("/api/v1/cases", json=body, headers={"Idempotency-Key": tag})


def _mine(client: httpx.Client, **headers: str) -> set[int]:
    answer = client.get("/api/v1/cases", params={"mine": "true", "limit": 100}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {f["id"] for f in answer.json()["features"]}


def test_a_standby_serves_the_api_reads_and_never_its_writes(cluster_up: dict, city: dict) -> None:
    """Statistics, tiles, the case list and the desk's queue, asked of a server that knows
    the cluster only by its two URLs, are read on the standby (their connections there are
    the read engine's); the report goes to the primary, and no write engine connects to
    the standby."""
    settings, lay = cluster_up["settings"], cluster_up["layout"]
    supervisor = make_user(settings, "supervisor", scopes=["410199"])
    # only the server's connections from here on (this process's pools closed)
    for engine in (get_engine, get_read_engine):
        engine(settings).dispose()
    west, south, east, north = GRID_1
    x, y = _tile_of((west + east) / 2, (south + north) / 2, 14)
    reads = [
        "/api/v1/stats/resolution",
        f"/tiles/cases/14/{x}/{y}.pbf",
        f"/tiles/units/14/{x}/{y}.pbf",
        "/api/v1/cases",
        "/api/v1/desk/queue",
    ]
    with (
        served(settings, workers=1, **_cluster_env(settings)) as server,
        httpx.Client(base_url=server.base, timeout=20) as client,
        httpx.Client(base_url=server.base, headers=city["worker"], timeout=20) as worker,
    ):
        reported = _report(worker, f"rr-{uuid.uuid4().hex[:8]}")
        assert reported.status_code == 201, reported.text
        standby, primary = _standby(lay), patroni.primary_node(lay)
        for path in reads:
            before = patroni.node_query(standby, settings, LAST_READ)[0][0]
            answer = client.get(path, headers=supervisor)
            assert answer.status_code == 200, (path, answer.text[:500])
            # a connection of the read engine on the standby worked for this request
            after = patroni.node_query(standby, settings, LAST_READ)[0][0]
            assert after is not None and (before is None or after > before), path
        on_standby = dict(patroni.node_query(standby, settings, API_CONNECTIONS))
        on_primary = dict(patroni.node_query(primary, settings, API_CONNECTIONS))
    # the standby holds read connections only; the primary none of them
    assert set(on_standby) == {"gis_service reads"}, on_standby
    assert "gis_service reads" not in on_primary, on_primary
    assert on_primary.get("gis_service requests", 0) >= 1, on_primary
    print(f"\n[reads on the standby] standby {on_standby}; primary {on_primary}")


@contextlib.contextmanager
def _replay_paused(lay: patroni.Layout, node: patroni.Node, settings: Settings) -> Iterator[None]:
    """The standby keeps receiving and flushing WAL (so synchronous commits go on) but
    replays none of it until the block ends (pg_wal_replay_pause, PostgreSQL docs §9.28.4).
    Patroni resumes a paused replay on its next loop unless the cluster is in maintenance
    mode (``pause: true`` in its dynamic configuration, what ``patronictl pause`` sets), so
    the block holds that too."""
    rest = httpx.Client(base_url=node.rest_url, timeout=5)
    answer = rest.patch("/config", json={"pause": True})
    assert answer.status_code == 200, answer.text
    try:
        deadline = time.monotonic() + REPLAY_SECONDS
        while not all(
            httpx.get(f"{n.rest_url}/patroni", timeout=5).json().get("pause") for n in lay.nodes
        ):
            assert time.monotonic() < deadline, "Patroni did not enter maintenance mode"
            time.sleep(0.2)
        patroni.node_query(node, settings, "SELECT pg_wal_replay_pause()")
        while (
            patroni.node_query(node, settings, "SELECT pg_get_wal_replay_pause_state()")[0][0]
            != "paused"
        ):
            assert time.monotonic() < deadline, "the standby's replay did not pause"
            time.sleep(0.05)
        yield
    finally:
        with contextlib.suppress(Exception):
            patroni.node_query(node, settings, "SELECT pg_wal_replay_resume()")
        rest.patch("/config", json={"pause": False})
        rest.close()
        deadline = time.monotonic() + REPLAY_SECONDS
        while any(
            httpx.get(f"{n.rest_url}/patroni", timeout=5).json().get("pause") for n in lay.nodes
        ):
            assert time.monotonic() < deadline, "Patroni did not leave maintenance mode"
            time.sleep(0.2)


def test_read_your_writes_for_the_reporter_with_the_standby_held_back(
    cluster_up: dict, city: dict
) -> None:
    """The standby's replay paused: the reporter's list right after the report shows it
    (the report's answer carried X-Min-LSN; the read waited for the standby, then read on
    the primary), while the same list without the position — the standby as it is — does
    not, until replay resumes."""
    settings, lay = cluster_up["settings"], cluster_up["layout"]
    standby = _standby(lay)
    wait_ms = settings.read_your_writes_wait_ms
    tag = f"ryw-{uuid.uuid4().hex[:8]}"
    with (
        served(settings, workers=1, **_cluster_env(settings)) as server,
        httpx.Client(base_url=server.base, headers=city["worker"], timeout=20) as reporter,
        httpx.Client(base_url=server.base, headers=city["worker"], timeout=20) as elsewhere,
    ):
        assert _mine(reporter) == _mine(elsewhere)  # warm: both on the standby, in step
        with _replay_paused(lay, standby, settings):
            answer = _report(reporter, tag)
            assert answer.status_code == 201, answer.text
            case_id = answer.json()["id"]
            lsn = answer.headers["X-Min-LSN"]
            assert reporter.cookies.get("gis_min_lsn") == lsn  # the browser's way
            started = time.monotonic()
            assert case_id in _mine(reporter)  # the cookie, sent back by itself
            took = time.monotonic() - started
            # the same sign-in without the position reads the standby, which is behind
            assert case_id not in _mine(elsewhere)
            # the phone's way: the header sent back
            assert case_id in _mine(elsewhere, **{"X-Min-LSN": lsn})
            # a position that is not one is refused, naming it
            bad = elsewhere.get("/api/v1/cases", headers={"X-Min-LSN": "yesterday"})
            assert bad.status_code == 422 and bad.json()["field"] == "X-Min-LSN", bad.text
        # replay resumed: the standby catches up, and then serves the position itself
        deadline = time.monotonic() + REPLAY_SECONDS
        while case_id not in _mine(elsewhere):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.1)
        assert case_id in _mine(reporter)
    # the read that fell back waited the bounded time for the standby, not longer
    assert wait_ms / 1000 <= took < wait_ms / 1000 + 5, took
    print(f"\n[read-your-writes, replay paused] the reporter's list took {took * 1000:.0f} ms")


def _report_stream_through(cluster_up: dict, city: dict, fault: str) -> None:
    """Reports stream into a server that knows the cluster only by its connection
    strings; ``fault`` ('kill' or 'switchover') happens under the stream."""
    settings, lay = cluster_up["settings"], cluster_up["layout"]
    before = patroni.leader(lay)
    assert before is not None
    old = next(n for n in lay.nodes if n.name == before["name"])
    tag = f"{fault}-{uuid.uuid4().hex[:8]}"
    env = {
        "GIS_DATABASE_URL": settings.database_url,
        "GIS_READ_DATABASE_URL": settings.read_database_url,
    }
    started = time.monotonic()
    with (
        served(settings, workers=1, **env) as server,
        ReportStream(server.base, city["worker"], tag=tag, threads=2, timeout=10) as stream,
    ):
        stream.wait_acks(10, sent_after=started, within=FAILOVER_SECONDS)
        fault_at = time.monotonic()
        if fault == "kill":
            pid = patroni.postmaster_pid(old)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        else:
            done = cli(settings, "switchover", timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
        first = stream.wait_acks(5, sent_after=fault_at, within=FAILOVER_SECONDS)
        # the new primary: another node (a standby took over)
        leader_deadline = time.monotonic() + FAILOVER_SECONDS
        while (now := patroni.leader(lay)) is None or now["name"] == old.name:
            assert time.monotonic() < leader_deadline, f"no new leader: {patroni.members(lay)}"
            time.sleep(0.2)
        stream.wait_acks(5, sent_after=time.monotonic(), within=FAILOVER_SECONDS)
        stream.stop()
        log = server.log_text()
    assert_exactly_once(settings, stream)
    assert UNHANDLED not in log, log[-3000:]
    # the outage as the reporters saw it: the longest time without an acknowledgement
    # from the last one before the fault on
    acks = sorted(s.acked_at for s in stream.acked() if s.acked_at is not None)
    since = max([a for a in acks if a <= fault_at], default=fault_at)
    window = [since, *(a for a in acks if a > since)]
    outage = max(b - a for a, b in itertools.pairwise(window))
    assert outage < FAILOVER_SECONDS
    print(
        f"\n[{fault} of primary {old.name} under a report stream] new leader {now['name']}; "
        f"longest time without an acknowledged report {outage:.2f} s; the first report sent "
        f"after the fault acknowledged {first - fault_at:.2f} s after it\n{stream.summary()}"
    )
    # the cluster heals: the old primary rejoins as a standby, one of them synchronous
    members = patroni.wait_healthy(lay, 120)
    assert {m["name"]: m["role"] for m in members}[old.name] in ("sync_standby", "replica")


def test_kill_9_of_the_primary_under_a_report_stream(cluster_up: dict, city: dict) -> None:
    _report_stream_through(cluster_up, city, "kill")


def test_switchover_under_a_report_stream(cluster_up: dict, city: dict) -> None:
    _report_stream_through(cluster_up, city, "switchover")


def test_down_leaves_no_process(cluster_up: dict) -> None:
    settings, lay = cluster_up["settings"], cluster_up["layout"]
    pids = [patroni.read_pid(lay.pid_file(n)) for n in ("etcd", "node0", "node1")]
    assert all(pids), pids
    done = cli(settings, "down", timeout=180)
    assert done.returncode == 0, done.stderr
    assert patroni.running_processes(settings) == []
    assert _processes_under(cluster_up["root"]) == []
    # nothing answers on the cluster's ports any more
    for node in lay.nodes:
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(host="127.0.0.1", port=node.pg_port, user="gis", connect_timeout=2)
    done = cli(settings, "status")
    assert done.returncode == 3


def test_a_multi_host_url_reaches_each_driver_whole() -> None:
    """libpq's multi-host form goes to psycopg2 (through SQLAlchemy) as host=h1,h2
    port=p1,p2 and to asyncpg as it is; a one-host URL is left as before."""
    from sqlalchemy import create_engine

    url = "postgresql://gis@127.0.0.1:5001,127.0.0.1:5002/gis?target_session_attrs=read-write"
    settings = Settings(database_url=url)
    engine = create_engine(settings.sqlalchemy_url)
    _, params = engine.dialect.create_connect_args(engine.url)
    assert params["host"] == "127.0.0.1,127.0.0.1"
    assert params["port"] == "5001,5002"
    assert params["target_session_attrs"] == "read-write"
    assert params["dbname"] == "gis" and params["user"] == "gis"
    assert settings.libpq_url == url
    assert settings.read_sqlalchemy_url == settings.sqlalchemy_url
    one = Settings(database_url="postgres://a:b@db:5432/x")
    assert one.sqlalchemy_url == "postgresql+psycopg2://a:b@db:5432/x"
    assert one.libpq_url == "postgresql://a:b@db:5432/x"


# --- without a cluster: the read dependency is the primary ---------------------------


def _route_calls(app) -> dict[tuple[str, str], set]:
    """(method, path) → every dependency callable of that route, pages included."""

    def calls(dependant) -> set:
        out = set()
        for dep in dependant.dependencies:
            out |= {dep.call, *calls(dep)}
        return out

    found = {}
    for route in app.routes:
        contexts = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for r in contexts:
            if hasattr(r, "dependant"):
                for method in r.methods:
                    found[(method, r.path)] = calls(r.dependant)
    return found


def test_reads_declare_the_read_connection_and_no_write_does(settings: Settings) -> None:
    """Which routes read on a standby is what they declare (api/deps.py ReadConnDep): the
    statistics, the tiles, the map pages, the case list and the desk's queue do; no route
    with an unsafe method (RFC 9110 §9.2.1) does, so writes never reach a standby."""
    from gis_service.api.deps import get_conn, get_read_conn
    from gis_service.app import create_app

    routes = _route_calls(create_app(settings))
    reading = {key for key, calls in routes.items() if get_read_conn in calls}
    for wanted in [
        ("GET", "/api/v1/stats/resolution"),
        ("GET", "/tiles/{layer}/{z}/{x}/{y}.pbf"),
        ("GET", "/tiles/cases/pick"),
        ("GET", "/maps/resolution"),
        ("GET", "/maps/cases"),
        ("GET", "/api/v1/cases"),
        ("GET", "/api/v1/desk/queue"),
        ("GET", "/api/v1/desk/counts"),
    ]:
        assert wanted in reading, wanted
    assert {method for method, _ in reading} <= {"GET", "HEAD"}, sorted(reading)
    # and a route holds one connection, not one of each
    assert not [key for key in reading if get_conn in routes[key]]


def test_without_a_read_url_the_read_connection_is_the_primary(db: Settings) -> None:
    """The single local cluster (``make demo``): the read engine is the primary's, the
    read dependency hands out a primary connection even for a request carrying a position,
    and writes are not stamped (no middleware, nothing paid on the report path)."""
    from fastapi.testclient import TestClient
    from starlette.requests import Request

    from gis_service.api.deps import get_read_conn
    from gis_service.app import create_app

    assert db.read_database_url is None
    assert get_read_engine(db) is get_engine(db)
    with get_engine(db).connect() as conn:
        far = conn.execute(text("SELECT (pg_current_wal_lsn() + 1e9)::text")).scalar_one()
    request = Request({"type": "http", "method": "GET", "headers": [(b"x-min-lsn", far.encode())]})
    deps = get_read_conn(request, db, far)
    conn = next(deps)
    try:
        assert conn.engine is get_engine(db)
        assert not conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
    finally:
        deps.close()
    with TestClient(create_app(db)) as client:
        answer = client.get("/tiles/basemap/0/0/0.pbf", headers={"X-Min-LSN": far})
        assert answer.status_code == 200, answer.text
        bad = client.get("/tiles/basemap/0/0/0.pbf", headers={"X-Min-LSN": "0/xyz"})
        assert bad.status_code == 422 and bad.json()["field"] == "X-Min-LSN", bad.text
        make_user(db, "admin", username="ryw-admin", password="password-123")
        signed = client.post(
            "/api/v1/auth/token", data={"username": "ryw-admin", "password": "password-123"}
        )
        assert signed.status_code == 200, signed.text  # a write: a session was opened
        assert "x-min-lsn" not in signed.headers and "gis_min_lsn" not in client.cookies


def test_lsn_text_round_trips_as_postgresql_reads_it(db: Settings) -> None:
    """db/replicas.py's parse and format agree with PostgreSQL's pg_lsn on real positions."""
    from gis_service.db import replicas

    with get_engine(db).connect() as conn:
        for lsn in conn.execute(
            text(
                "SELECT (pg_current_wal_lsn() + n)::text FROM unnest("
                "ARRAY[0, 1, 4294967295, 4294967296, 1e12]::numeric[]) n"
            )
        ).scalars():
            position = replicas.parse_lsn(lsn)
            assert replicas.format_lsn(position) == lsn
            back = conn.execute(
                text("SELECT CAST(:t AS pg_lsn) - '0/0'::pg_lsn"), {"t": lsn}
            ).scalar_one()
            assert int(back) == position
