"""Shared set-up of the benchmarks: the bench database with the demo, random points, a
server started as a separate process, and pgbench."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from gis_service.db import cluster, migrate
from gis_service.db.cluster import pg_bindir
from gis_service.db.engine import get_engine
from gis_service.demo.run import load_demo
from gis_service.settings import Settings

DB = "gis_service_bench"
BIN = Path(sys.executable).parent


def setup(db: str = DB) -> Settings:
    """The bench database, migrated, with the demo city loaded once."""
    settings = Settings(db_name=db)
    cluster.start(settings)
    cluster.ensure_database(settings, db)
    migrate.upgrade(settings)
    with get_engine(settings).connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'building'"))
        if have.scalar() == 0:
            print("loading the demo …", file=sys.stderr)
            load_demo(settings)
    return settings


def maintain(settings: Settings, *statements: str) -> None:
    """Run maintenance statements (VACUUM, CHECKPOINT: not inside a transaction) in order."""
    with get_engine(settings).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            conn.execute(text(statement))


def random_points(
    settings: Settings, n: int, seed: int = 42, code: str = "410105"
) -> list[tuple[float, float]]:
    """n random WGS-84 points inside a unit (reproducible)."""
    with get_engine(settings).connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT ST_X(g), ST_Y(g) FROM (SELECT "
                    "(ST_Dump(ST_GeneratePoints(geom, :n, :seed)))"
                    ".geom AS g FROM admin_unit WHERE code = :code) x"
                ),
                {"n": n, "seed": seed, "code": code},
            )
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    port: int
    #: the server's process (with several workers: uvicorn's supervisor, their parent)
    pid: int
    #: seconds from the process's start until /healthz first answered 200, and until it
    #: said the statistics were ready (start-up, as benchmarks/city_scale.py reports it)
    answered_s: float = 0.0
    ready_s: float = 0.0


@contextlib.contextmanager
def server(
    settings: Settings, workers: int = 1, timeout: float = 120, **env: str
) -> Iterator[Server]:
    """``gis-service serve`` as its own process(es), ready when /healthz answers with the
    statistics loaded (SystemExit after ``timeout`` seconds)."""
    port = free_port()
    environ = {
        **os.environ,
        "GIS_DB_NAME": settings.db_name,
        "GIS_DB_PORT": str(settings.db_port),
        **env,
    }
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "gis-service"), "serve", "--port", str(port), "--workers", str(workers)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    started = time.perf_counter()
    base = f"http://127.0.0.1:{port}"
    srv = Server(base=base, port=port, pid=proc.pid)
    try:
        with httpx.Client(base_url=base) as client:
            while time.perf_counter() - started < timeout:
                try:
                    r = client.get("/healthz")
                    if r.status_code == 200:
                        srv.answered_s = srv.answered_s or time.perf_counter() - started
                        # Ready once the statistics cube has loaded: its first load takes
                        # the worker's CPU for seconds and would be measured as a stall.
                        if r.json().get("stats_ready", True):
                            break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            else:
                raise SystemExit(f"the server was not ready in {timeout:g} s")
        srv.ready_s = time.perf_counter() - started
        yield srv
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def pgbench(
    settings: Settings, script: str, *, clients: int = 1, seconds: int = 10, threads: int = 1
) -> tuple[float, float]:
    """Run a pgbench script on the bench database; returns (tps, average latency ms)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    os.chmod(fh.name, 0o644)
    cmd = [
        str(pg_bindir() / "pgbench"),
        "-n",
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(seconds),
        "-f",
        fh.name,
        "-h",
        "127.0.0.1",
        "-p",
        str(settings.db_port),
        "-U",
        settings.db_user,
        settings.db_name,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    lat = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if not tps or not lat:
        raise SystemExit(f"pgbench failed: {done.stderr or done.stdout}")
    return float(tps.group(1)), float(lat.group(1))
