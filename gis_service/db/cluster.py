"""The project-local PostgreSQL cluster: data under a gitignored folder of the checkout.

PostgreSQL refuses to run as root, so when we are root (CI, fresh machines) the server
binaries run as the ``postgres`` system user that Debian's packages create.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from gis_service.backup import wal
from gis_service.errors import ClusterError
from gis_service.settings import Settings

SERVER_CONF = """
# Written by gis-service db up.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
include_if_exists = 'gis_service.conf'
"""

# Rewritten at every start, so tuning reaches clusters made by earlier versions.
TUNING_CONF = """
# Written by gis-service at every start: edit gis_service/db/cluster.py instead.
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
effective_cache_size = 4GB
# PostGIS functions carry high planner costs, so JIT fires on small spatial queries and
# costs far more than it saves (PERFORMANCE-NOTES: 270 ms of a 299 ms tile).
jit = off
random_page_cost = 1.1
# Fewer checkpoints under a stream of reports: each one makes the next write of every
# page a full-page image in the WAL. Durability is unchanged (synchronous_commit = on).
max_wal_size = 4GB
checkpoint_timeout = 15min
"""


def write_tuning(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    text_ = conf.read_text()
    if "include_if_exists = 'gis_service.conf'" not in text_:
        conf.write_text(text_ + "\ninclude_if_exists = 'gis_service.conf'\n")
    tuning = pgdata / "gis_service.conf"
    if not tuning.exists() or tuning.read_text() != TUNING_CONF:
        tuning.write_text(TUNING_CONF)
        if _is_root():
            shutil.chown(tuning, "postgres", "postgres")
            shutil.chown(conf, "postgres", "postgres")


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    data_dir: Path
    port: int
    url: str


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server binaries (Debian keeps them off PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    for pg_ctl in candidates:
        return pg_ctl.parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries not found; install postgresql-15, postgresql-15-postgis-3 "
        "and postgresql-15-pgrouting (make setup does this)"
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else cmd


def _owner_can_use(path: Path) -> bool:
    if not _is_root():
        return True
    probe = subprocess.run(_as_owner(["test", "-w", str(path)]), capture_output=True)
    return probe.returncode == 0


def data_dir(settings: Settings) -> Path:
    """Where the cluster lives: ``var_dir/pgdata``, unless the postgres user cannot reach it.

    A checkout under a private home (``/root``) is not traversable by ``postgres``; then the
    cluster goes to ``/var/lib/gis_service/<hash of the checkout>`` and a note says so.
    """
    var_dir = settings.var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    local = var_dir / "pgdata"
    if not _is_root():
        return local
    local.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(local, "postgres", "postgres")
    if _owner_can_use(local):
        return local
    digest = hashlib.sha1(str(var_dir).encode()).hexdigest()[:12]
    fallback = Path("/var/lib/gis_service") / digest / "pgdata"
    fallback.mkdir(parents=True, mode=0o700, exist_ok=True)
    for p in (fallback.parent, fallback):
        shutil.chown(p, "postgres", "postgres")
    (var_dir / "PGDATA_IS_ELSEWHERE").write_text(f"{fallback}\n")
    return fallback


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"{what} failed: {(done.stderr or done.stdout).strip()}")
    return done


def is_running(pgdata: Path) -> bool:
    if not (pgdata / "PG_VERSION").exists():
        return False
    done = subprocess.run(
        _as_owner([str(pg_bindir() / "pg_ctl"), "status", "-D", str(pgdata)]),
        capture_output=True,
        text=True,
    )
    return done.returncode == 0


def init_cluster(settings: Settings, pgdata: Path) -> bool:
    """Create the cluster the first time; returns whether it was created now."""
    if (pgdata / "PG_VERSION").exists():
        return False
    _run(
        [
            str(pg_bindir() / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            settings.db_user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        "initdb",
    )
    conf = pgdata / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(SERVER_CONF.format(port=settings.db_port, socket_dir=pgdata))
    return True


def start(settings: Settings) -> ClusterStatus:
    """Initialise (first time) and start the local cluster, then make sure the DB exists."""
    if settings.database_url:
        wait_for_server(public_url(settings))
        return status(settings)
    pgdata = data_dir(settings)
    init_cluster(settings, pgdata)
    write_tuning(pgdata)
    if settings.wal_archive_dir is not None:
        wal.configure(pgdata, settings.wal_archive_dir)
    if is_running(pgdata):
        _run([str(pg_bindir() / "pg_ctl"), "reload", "-s", "-D", str(pgdata)], "pg_ctl reload")
        if _wal_restart_needed(settings, pgdata):  # archive_mode and wal_level: start only
            stop(settings)
    if not is_running(pgdata):
        log = pgdata.parent / "postgres.log"
        if _is_root():
            log.touch()
            shutil.chown(log, "postgres", "postgres")
        done = subprocess.run(
            _as_owner(
                [
                    str(pg_bindir() / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(pgdata),
                    "-l",
                    str(log),
                    "-o",
                    f"-p {settings.db_port}",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-8:] if log.exists() else []
            raise ClusterError(
                f"PostgreSQL did not start on port {settings.db_port}: "
                + " | ".join(tail or [done.stderr.strip()])
            )
    ensure_database(settings, settings.db_name)
    return status(settings)


def _wal_restart_needed(settings: Settings, pgdata: Path) -> bool:
    conn = psycopg2.connect(_admin_dsn(settings, "postgres"), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            return wal.needs_restart(cur, pgdata)
    finally:
        conn.close()


def stop(settings: Settings) -> None:
    if settings.database_url:
        return
    pgdata = data_dir(settings)
    if is_running(pgdata):
        _run([str(pg_bindir() / "pg_ctl"), "stop", "-m", "fast", "-D", str(pgdata)], "pg_ctl stop")


def status(settings: Settings) -> ClusterStatus:
    if settings.database_url:
        try:
            wait_for_server(public_url(settings), timeout=2)
            running = True
        except ClusterError:
            running = False
        return ClusterStatus(running, Path("-"), 0, public_url(settings))
    pgdata = data_dir(settings)
    return ClusterStatus(is_running(pgdata), pgdata, settings.db_port, public_url(settings))


def public_url(settings: Settings) -> str:
    """The URL for psql and other libpq clients (no SQLAlchemy driver suffix; several
    hosts stay in libpq's comma form)."""
    return settings.libpq_url


def _admin_dsn(settings: Settings, dbname: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.sqlalchemy_url).set(database=dbname)
    return url.render_as_string(hide_password=False).replace("postgresql+psycopg2", "postgresql")


def wait_for_server(url: str, timeout: float = 30) -> None:
    dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(dsn, connect_timeout=2).close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterError(f"database not reachable at {dsn}: {exc}") from exc
            time.sleep(0.3)


def ensure_database(settings: Settings, dbname: str) -> None:
    conn = psycopg2.connect(_admin_dsn(settings, "postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    finally:
        conn.close()


def drop_database(settings: Settings, dbname: str) -> None:
    conn = psycopg2.connect(_admin_dsn(settings, "postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    finally:
        conn.close()
