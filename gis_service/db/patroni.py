"""The replicated cluster on one machine: etcd and Patroni-managed PostgreSQL nodes.

``gis-service cluster up --replicas N`` starts one etcd member (Debian's ``etcd-server``)
and N + 1 PostgreSQL nodes, each run by its own Patroni (Debian's ``patroni``) with the
same PostgreSQL, PostGIS and pgRouting binaries as the single local cluster
(db/cluster.py). Patroni elects a primary through etcd, the others stream from it, and one
of them is a synchronous standby (``synchronous_mode: true``): a commit is acknowledged
only once that standby has it, so it survives the loss of the primary (Patroni docs,
"Replication modes"). ``primary_start_timeout: 0``: a primary whose postmaster dies is
failed over to the synchronous standby at once instead of being restarted in place.

Everything lives under ``var_dir/cluster/``: the generated Patroni YAML per node, the
processes' pid files and logs, and (when the ``postgres`` user can reach it) the data
directories. All addresses are 127.0.0.1; the ports are consecutive from a base derived
from var_dir (or ``GIS_CLUSTER_PORT_BASE``): etcd's client and peer ports, then per node
its PostgreSQL port and its Patroni REST port. The same configuration on three machines:
docs/scale.md, "The cluster".

Processes run as their own sessions so they outlive the command that started them; the
pid files are how ``status`` and ``down`` find them again. As root (CI), Patroni and its
PostgreSQL run as the ``postgres`` system user, like the single cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from psycopg2 import sql

from gis_service.db.cluster import TUNING_CONF, pg_bindir
from gis_service.errors import ClusterError
from gis_service.settings import Settings

#: the Patroni cluster's name (its ``scope``: the etcd key prefix /service/<scope>/)
SCOPE = "gis"
#: how many ports one cluster takes from its base: etcd (2) and 2 per node, up to 5 nodes
PORTS_PER_CLUSTER = 12
MAX_NODES = (PORTS_PER_CLUSTER - 2) // 2
#: the replication role Patroni creates at bootstrap (trusted on 127.0.0.1 only)
REPLICATION_USER = "replicator"
#: Patroni's timing (docs "Dynamic configuration settings"): the leader key lives ``ttl``
#: seconds; each node's loop runs every ``loop_wait``; DCS and PostgreSQL calls are retried
#: for ``retry_timeout`` (Patroni requires loop_wait + 2 * retry_timeout <= ttl).
TTL_SECONDS = 20
LOOP_WAIT_SECONDS = 2
RETRY_TIMEOUT_SECONDS = 5
#: how long ``up`` waits for a leader and every standby streaming
UP_SECONDS = 180
#: how long ``down`` waits for a process to end after SIGTERM before SIGKILL
STOP_SECONDS = 60


@dataclass(frozen=True)
class Node:
    name: str
    pg_port: int
    rest_port: int
    data_dir: Path
    config: Path

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


@dataclass(frozen=True)
class Layout:
    """Where one cluster's files and ports are."""

    root: Path
    data_root: Path
    etcd_client_port: int
    etcd_peer_port: int
    nodes: tuple[Node, ...]
    db_name: str
    db_user: str

    @property
    def etcd_dir(self) -> Path:
        return self.root / "etcd"

    def pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def dsn(self, target_session_attrs: str, db_name: str | None = None) -> str:
        """A libpq URL naming every node, e.g. ``postgresql://gis@127.0.0.1:p1,127.0.0.1:p2/
        gis_service?target_session_attrs=read-write`` (libpq §34.1.1.3)."""
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (
            f"postgresql://{self.db_user}@{hosts}/{db_name or self.db_name}"
            f"?target_session_attrs={target_session_attrs}"
        )

    @property
    def write_dsn(self) -> str:
        """Writes: whichever node is the primary now."""
        return self.dsn("read-write")

    @property
    def read_dsn(self) -> str:
        """Reads that may lag: a standby when one answers, else the primary; with several
        standbys, each new connection picks one at random (``load_balance_hosts=random``,
        libpq 16+; psycopg2's wheel carries libpq 17), so they share the reads."""
        return self.dsn("prefer-standby") + "&load_balance_hosts=random"


def port_base(settings: Settings) -> int:
    """GIS_CLUSTER_PORT_BASE, else one of 400 blocks above the single clusters' ports
    (54330-54929), chosen by the checkout's var_dir so checkouts do not collide."""
    if settings.cluster_port_base is not None:
        return settings.cluster_port_base
    digest = hashlib.sha1(str(settings.var_dir.resolve()).encode()).digest()
    return 55000 + int.from_bytes(digest[:2], "big") % 400 * PORTS_PER_CLUSTER


def free_port_block(size: int = PORTS_PER_CLUSTER) -> int:
    """The first of ``size`` consecutive free loopback ports: a ``cluster_port_base`` for
    a cluster that must not meet another checkout's (tests, benchmarks). ClusterError when
    200 tries find none."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + size >= 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + size):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise ClusterError("no block of free loopback ports")


def _is_root() -> bool:
    return os.geteuid() == 0


def _owned_by_postgres(path: Path) -> None:
    if _is_root():
        shutil.chown(path, "postgres", "postgres")


def _data_root(root: Path) -> Path:
    """``root/data``, unless the postgres user cannot reach it (a checkout under /root):
    then under /var/lib/gis_service/<hash>/cluster, like db/cluster.py's data_dir."""
    local = root / "data"
    if not _is_root():
        return local
    root.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(root)], capture_output=True
    )
    if probe.returncode == 0:
        return local
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return Path("/var/lib/gis_service") / digest / "cluster"


def layout(settings: Settings, replicas: int | None = None) -> Layout:
    """The cluster of these settings with ``replicas`` standbys; None: as many as its last
    ``up`` made (kept in var_dir/cluster/nodes.json), else 1."""
    root = settings.var_dir.resolve() / "cluster"
    if replicas is None:
        saved = root / "nodes.json"
        replicas = json.loads(saved.read_text())["replicas"] if saved.exists() else 1
    if not 0 <= replicas < MAX_NODES:
        raise ClusterError(f"--replicas must be between 0 and {MAX_NODES - 1}, not {replicas}")
    base = port_base(settings)
    data_root = _data_root(root)
    nodes = tuple(
        Node(
            name=f"node{i}",
            pg_port=base + 2 + 2 * i,
            rest_port=base + 3 + 2 * i,
            data_dir=data_root / f"node{i}",
            config=root / f"node{i}.yml",
        )
        for i in range(replicas + 1)
    )
    return Layout(root, data_root, base, base + 1, nodes, settings.db_name, settings.db_user)


def _tuning() -> dict[str, str]:
    """The single cluster's tuning (db/cluster.py TUNING_CONF), as Patroni parameters."""
    params = {}
    for line in TUNING_CONF.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            params[key] = value
    return params


def patroni_config(lay: Layout, node: Node, shared_buffers: str | None = None) -> dict[str, Any]:
    """One node's Patroni configuration (Patroni docs "YAML Configuration Settings").
    ``bootstrap.dcs`` is read once, by the node that initialises the cluster, and then
    lives in etcd for every node."""
    parameters: dict[str, Any] = {
        **_tuning(),
        "max_connections": 200,
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "256MB",
        "hot_standby": "on",
        # a standby's long read is not cancelled by the primary's vacuum, and it tells
        # the primary what it still reads
        "hot_standby_feedback": "on",
    }
    if shared_buffers:
        parameters["shared_buffers"] = shared_buffers
    return {
        "scope": SCOPE,
        "name": node.name,
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{node.rest_port}",
            "connect_address": f"127.0.0.1:{node.rest_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{lay.etcd_client_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL_SECONDS,
                "loop_wait": LOOP_WAIT_SECONDS,
                "retry_timeout": RETRY_TIMEOUT_SECONDS,
                "maximum_lag_on_failover": 1024 * 1024,
                "synchronous_mode": True,
                "primary_start_timeout": 0,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": parameters,
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.pg_port}",
            "connect_address": f"127.0.0.1:{node.pg_port}",
            "data_dir": str(node.data_dir),
            "bin_dir": str(pg_bindir()),
            "pgpass": str(lay.data_root / f"{node.name}.pgpass"),
            "authentication": {
                "superuser": {"username": lay.db_user},
                "replication": {"username": REPLICATION_USER},
                "rewind": {"username": lay.db_user},
            },
            "parameters": {"unix_socket_directories": str(lay.data_root)},
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                f"host replication {REPLICATION_USER} 127.0.0.1/32 trust",
                f"host replication {lay.db_user} 127.0.0.1/32 trust",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
    }


# --- processes ----------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in ``path`` when that process is alive, else None."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # a zombie (our own child not yet reaped) counts as ended
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return None
    return pid


def _spawn(cmd: list[str], log: Path, pid_file: Path, as_postgres: bool) -> int:
    extra: dict[str, Any] = {}
    env = dict(os.environ)
    if as_postgres and _is_root():
        pw = pwd.getpwnam("postgres")
        extra = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        env.update(HOME=pw.pw_dir, USER="postgres", LOGNAME="postgres")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
            env=env,
            **extra,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _start_etcd(lay: Layout) -> None:
    if read_pid(lay.pid_file("etcd")):
        return
    lay.etcd_dir.mkdir(parents=True, exist_ok=True)
    client = f"http://127.0.0.1:{lay.etcd_client_port}"
    peer = f"http://127.0.0.1:{lay.etcd_peer_port}"
    _spawn(
        [
            shutil.which("etcd") or "/usr/bin/etcd",
            "--name",
            "etcd0",
            "--data-dir",
            str(lay.etcd_dir),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"etcd0={peer}",
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            f"gis-{lay.etcd_client_port}",
            # no metrics or debug listeners beyond the two loopback ports
            "--listen-metrics-urls",
            "",
        ],
        lay.log_file("etcd"),
        lay.pid_file("etcd"),
        as_postgres=False,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{client}/health", timeout=2).json().get("health") == "true":
                return
        if not read_pid(lay.pid_file("etcd")):
            break
        time.sleep(0.2)
    raise ClusterError(f"etcd did not start on port {lay.etcd_client_port}: {_tail(lay, 'etcd')}")


def _tail(lay: Layout, name: str, lines: int = 8) -> str:
    log = lay.log_file(name)
    text_ = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
    return " | ".join(text_)


def _write_config(lay: Layout, node: Node, shared_buffers: str | None) -> None:
    # JSON is YAML (YAML 1.2), which Patroni reads: no YAML writer needed
    node.config.write_text(
        "# Written by gis-service cluster up: edit gis_service/db/patroni.py instead.\n"
        + json.dumps(patroni_config(lay, node, shared_buffers), indent=2)
        + "\n"
    )


def up(
    settings: Settings, replicas: int = 1, shared_buffers: str | None = None
) -> tuple[Layout, list[dict[str, Any]]]:
    """Start etcd and N + 1 Patroni nodes (those not already running), wait until a leader
    runs and every standby streams with a synchronous one among them, then create the
    database and migrate it on the primary through the multi-host write DSN. Returns the
    layout and the members as Patroni's REST API lists them. Raises ClusterError naming
    the process that did not come up."""
    for tool in ("etcd", "patroni"):
        if shutil.which(tool) is None:
            raise ClusterError(
                f"{tool} not found: install patroni, etcd-server and etcd-client (make setup)"
            )
    lay = layout(settings, replicas)
    lay.root.mkdir(parents=True, exist_ok=True)
    lay.data_root.mkdir(parents=True, mode=0o700, exist_ok=True)
    _owned_by_postgres(lay.data_root)
    (lay.root / "nodes.json").write_text(json.dumps({"replicas": replicas}) + "\n")
    _start_etcd(lay)
    for node in lay.nodes:
        if read_pid(lay.pid_file(node.name)):
            continue
        _write_config(lay, node, shared_buffers)
        log = lay.log_file(node.name)
        log.touch()
        _spawn(
            [shutil.which("patroni") or "/usr/bin/patroni", str(node.config)],
            log,
            lay.pid_file(node.name),
            as_postgres=True,
        )
    members = wait_healthy(lay, UP_SECONDS)
    ensure_database(lay)
    from gis_service.db import migrate

    migrate.upgrade(settings_for(settings, lay))
    return lay, members


def settings_for(settings: Settings, lay: Layout) -> Settings:
    """These settings pointed at the cluster: writes and reads through the multi-host
    DSNs (what ``cluster up`` prints for GIS_DATABASE_URL / GIS_READ_DATABASE_URL)."""
    return settings.model_copy(
        update={"database_url": lay.write_dsn, "read_database_url": lay.read_dsn}
    )


def members(lay: Layout, timeout: float = 3) -> list[dict[str, Any]]:
    """The members as any reachable node's REST API says (GET /cluster): name, role
    (leader, sync_standby, replica), state, host, port, lag (bytes), timeline."""
    for node in lay.nodes:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(f"{node.rest_url}/cluster", timeout=timeout)
            if answer.status_code == 200:
                return answer.json().get("members", [])
    return []


def healthy(lay: Layout, found: list[dict[str, Any]]) -> bool:
    """A running leader, every other node a standby that runs, and (with standbys) one of
    them synchronous."""
    if len(found) != len(lay.nodes):
        return False
    leaders = [m for m in found if m.get("role") == "leader" and m.get("state") == "running"]
    standbys = [m for m in found if m.get("role") in ("sync_standby", "replica")]
    up_ = all(m.get("state") in ("running", "streaming") for m in standbys)
    sync_ok = len(lay.nodes) == 1 or any(m.get("role") == "sync_standby" for m in standbys)
    return len(leaders) == 1 and len(standbys) == len(lay.nodes) - 1 and up_ and sync_ok


def wait_healthy(lay: Layout, timeout: float) -> list[dict[str, Any]]:
    """Until ``healthy``; raises ClusterError with the nodes' last log lines after
    ``timeout`` seconds or when a node's Patroni has exited."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = members(lay)
        if healthy(lay, found):
            return found
        for node in lay.nodes:
            if not read_pid(lay.pid_file(node.name)):
                raise ClusterError(f"patroni {node.name} exited: {_tail(lay, node.name)}")
        time.sleep(0.5)
    raise ClusterError(
        f"the cluster was not healthy after {timeout:g} s: members {found}; "
        + "; ".join(f"{n.name}: {_tail(lay, n.name, 3)}" for n in lay.nodes)
    )


def leader(lay: Layout) -> dict[str, Any] | None:
    return next((m for m in members(lay) if m.get("role") == "leader"), None)


def primary_node(lay: Layout) -> Node:
    """The node Patroni reports as leader now. ClusterError when there is none."""
    roles = {m["name"]: m["role"] for m in members(lay)}
    found = next((n for n in lay.nodes if roles.get(n.name) == "leader"), None)
    if found is None:
        raise ClusterError(f"no leader among {sorted(roles)}")
    return found


def node_query(node: Node, settings: Settings, query: str) -> list[tuple]:
    """``query`` on one node itself (not through the multi-host URLs), as the database's
    superuser, autocommit; its rows ([] for a statement without any)."""
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=node.pg_port,
        user=settings.db_user,
        dbname=settings.db_name,
        connect_timeout=5,
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def ensure_database(lay: Layout, timeout: float = 60) -> None:
    """CREATE DATABASE on the primary when it is missing, then wait until every node has
    replayed it: libpq moves on to the next host of a multi-host URL only when a connection
    fails, not when a server refuses the session ("database does not exist" from a standby
    that has not replayed the CREATE yet ends the attempt; libpq §34.1.1.3)."""
    conn = psycopg2.connect(lay.dsn("read-write", "postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (lay.db_name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(lay.db_name)))
    finally:
        conn.close()
    deadline = time.monotonic() + timeout
    for node in lay.nodes:
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1",
                    port=node.pg_port,
                    user=lay.db_user,
                    dbname=lay.db_name,
                    connect_timeout=5,
                ).close()
                break
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"{node.name} has no database {lay.db_name}: {exc}") from exc
                time.sleep(0.2)


def switchover(lay: Layout, candidate: str | None = None, timeout: float = 90) -> dict[str, Any]:
    """A planned switchover through the leader's REST API (POST /switchover, Patroni docs
    "REST API"): the leader hands over to ``candidate`` (default: the synchronous standby)
    and becomes a standby. Waits until the cluster is healthy with the new leader; returns
    the new leader's member entry. Raises ClusterError when Patroni refuses."""
    current = leader(lay)
    if current is None:
        raise ClusterError("no leader: the cluster is not running (gis-service cluster up)")
    found = members(lay)
    if candidate is None:
        sync = [m["name"] for m in found if m.get("role") == "sync_standby"]
        if not sync:
            raise ClusterError("no synchronous standby to switch over to")
        candidate = sync[0]
    body = {"leader": current["name"], "candidate": candidate}
    node = next(n for n in lay.nodes if n.name == current["name"])
    answer = httpx.post(f"{node.rest_url}/switchover", json=body, timeout=timeout)
    if answer.status_code != 200:
        raise ClusterError(f"switchover refused ({answer.status_code}): {answer.text.strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = members(lay)
        new = next((m for m in now if m.get("role") == "leader"), None)
        if new and new["name"] == candidate and healthy(lay, now):
            return new
        time.sleep(0.5)
    raise ClusterError(f"{candidate} did not become a healthy leader in {timeout:g} s")


def _postmaster_pid(node: Node) -> int | None:
    try:
        return int((node.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(node: Node) -> int | None:
    """The node's running postmaster, if any (from its postmaster.pid)."""
    pid = _postmaster_pid(node)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _stop(pid_file: Path, timeout: float) -> None:
    pid = read_pid(pid_file)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while read_pid(pid_file) and time.monotonic() < deadline:
            time.sleep(0.2)
        if read_pid(pid_file):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def down(settings: Settings) -> None:
    """Stop every node (standbys first, so none is promoted on the way), then etcd. Each
    Patroni stops its PostgreSQL on SIGTERM; a postmaster left behind (its Patroni was
    killed) is stopped with pg_ctl. Data stays for the next ``up``."""
    lay = _known_layout(settings)
    current = leader(lay) if read_pid(lay.pid_file("etcd")) else None
    order = sorted(lay.nodes, key=lambda n: current is not None and n.name == current["name"])
    for node in order:
        _stop(lay.pid_file(node.name), STOP_SECONDS)
        if postmaster_pid(node) is not None:
            cmd = [str(pg_bindir() / "pg_ctl"), "stop", "-m", "fast", "-D", str(node.data_dir)]
            if _is_root():
                cmd = ["runuser", "-u", "postgres", "--", *cmd]
            subprocess.run(cmd, capture_output=True, timeout=STOP_SECONDS)
    _stop(lay.pid_file("etcd"), STOP_SECONDS)


def _known_layout(settings: Settings) -> Layout:
    """The layout of the last ``up``, with every node that has a pid file or data."""
    lay = layout(settings)
    extra = [
        i
        for i in range(len(lay.nodes), MAX_NODES)
        if lay.pid_file(f"node{i}").exists() or (lay.data_root / f"node{i}").exists()
    ]
    return layout(settings, max([len(lay.nodes) - 1, *extra]))


def running_processes(settings: Settings) -> list[str]:
    """What of this cluster still runs: 'etcd', 'patroni nodeN', 'postgres nodeN'."""
    lay = _known_layout(settings)
    found = ["etcd"] if read_pid(lay.pid_file("etcd")) else []
    for node in lay.nodes:
        if read_pid(lay.pid_file(node.name)):
            found.append(f"patroni {node.name}")
        if postmaster_pid(node) is not None:
            found.append(f"postgres {node.name}")
    return found
