"""Engines, one per URL, built on first use (never at import time)."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError

from gis_service.audit import actor as audit_actor
from gis_service.settings import Settings, get_settings
from gis_service.timezone import zone_name


@lru_cache(maxsize=8)
def _engine_for(url: str, pool_size: int, timezone: str, purpose: str = "requests") -> Engine:
    # pool_size == max: a pool that shrinks below its cap reconnects on every burst
    # (PERFORMANCE-NOTES: 337 req/s instead of ~1,500 with psycopg2's pool).
    # Sessions speak the district's time (GIS_TIMEZONE): every timestamptz PostgreSQL
    # writes as text or JSON, and every datetime it hands Python, carries the district's
    # offset, so what a person reads from any answer is their own clock. Day boundaries
    # in SQL never depend on it: they say AT TIME ZONE explicitly.
    # application_name says in pg_stat_activity which engine a connection belongs to
    # (``gis_service reads`` on a standby: tests/test_cluster.py)
    engine = create_engine(
        url,
        connect_args={
            "options": f"-c TimeZone={timezone}",
            "application_name": f"gis_service {purpose}",
        },
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        # Stale connections are caught by _drop_if_closed on checkout instead of a ping:
        # a round trip per checkout on every request, to find what the socket already says.
        pool_pre_ping=False,
        future=True,
    )
    event.listen(engine, "checkout", _drop_if_closed)
    event.listen(engine, "handle_error", _drop_if_read_only)
    # every transaction carries the current actor for the audit triggers (audit/actor.py)
    event.listen(engine, "begin", audit_actor.on_begin)
    event.listen(engine, "before_cursor_execute", audit_actor.before_cursor_execute)
    return engine


def _peer_closed(fd: int) -> bool:
    """Whether an idle connection's socket has anything to read. An idle PostgreSQL
    connection has nothing to say; when the server stops or restarts (pg_ctl stop in any
    mode, a backend killed) it sends its FATAL message and closes the socket, so the
    socket turns readable. One poll(2) with no wait: about a microsecond."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _drop_if_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool ``checkout`` listener: a pooled connection the server has closed is replaced
    before use (SQLAlchemy's "pessimistic disconnect handling": raising DisconnectionError
    makes the pool discard it and connect again; when that fails too the caller gets the
    OperationalError, which answers 503, api/handlers.py)."""
    if dbapi_connection.closed or _peer_closed(dbapi_connection.fileno()):
        raise DisconnectionError("the server closed this pooled connection")


def _drop_if_read_only(context: Any) -> None:
    """``handle_error`` listener: a write refused because the server is (now) a standby
    (SQLSTATE 25006 read_only_sql_transaction) counts as a lost connection, so the pool
    discards it and the next checkout connects again through the multi-host URL, whose
    target_session_attrs=read-write finds the new primary (Settings.database_url)."""
    if getattr(context.original_exception, "pgcode", None) == "25006":
        context.is_disconnect = True


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine for writes (and reads that must see them): Settings.database_url, which
    may name every node of the cluster (db/patroni.py) with target_session_attrs=read-write.
    After a failover the checkout listeners replace the connections to the old primary and
    the new ones reach the new primary; until one is primary, a checkout raises
    OperationalError (503 with Retry-After, api/handlers.py)."""
    s = settings or get_settings()
    return _engine_for(s.sqlalchemy_url, s.db_pool_size, zone_name(s))


def get_read_engine(settings: Settings | None = None) -> Engine:
    """The engine for reads that may lag the last commit by the standby's replay delay:
    Settings.read_database_url (target_session_attrs=prefer-standby), else the same engine
    as get_engine. Routes take it through api/deps.py ``ReadConnDep``, which applies
    read-your-writes (db/replicas.py); nothing that writes may use it."""
    s = settings or get_settings()
    if not s.read_database_url:
        return get_engine(s)
    return _engine_for(s.read_sqlalchemy_url, s.db_pool_size, zone_name(s), "reads")


def own_engine(settings: Settings | None = None) -> Engine:
    """An engine with a pool of one connection of its own, apart from the requests' pool,
    for work that runs under a lock while requests holding a connection of that pool wait
    for it: the statistics cube's sync (stats/cube.py). Taken from the requests' pool, the
    sync's second connection waited for connections held by requests that waited for the
    sync — every 30 s (pool_timeout) the process stalled and answered errors
    (benchmarks/soak.py, 20 requests/s, 2026-11-30). One is enough: the cube syncs under
    its lock, one sync at a time.

    On the primary (Settings.database_url), never a standby, even with read replicas: the
    cube and the tile index built on it (tiles/caseindex.py) are one copy shared by every
    request of the process, the reporter's own read right after a report among them, so
    they must never be behind a commit the API has acknowledged — a standby's replay lag
    would hold them behind every write, and read-your-writes (db/replicas.py) cannot wait
    per request on a shared copy. The sync itself is a short index range scan of what
    changed (changed_xid), cheap for the primary. The choice is freshness, not the delta's
    correctness: pg_current_snapshot and pg_visible_in_snapshot work on a hot standby too
    (its snapshots are built from the transaction ids it has replayed, which are the
    primary's), and hot_standby_feedback (db/patroni.py) keeps vacuum from removing rows a
    standby's REPEATABLE READ sync still reads."""
    s = settings or get_settings()
    return _engine_for(s.sqlalchemy_url, 1, zone_name(s), "own")


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    with get_engine(settings).begin() as conn:
        yield conn


def database_status(settings: Settings | None = None) -> tuple[str, str | None]:
    """(PostGIS library version, Alembic revision) of the database; raises SQLAlchemy's
    errors when it does not answer (``/healthz`` turns them into a 503)."""
    with get_engine(settings).connect() as conn:
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return postgis, revision
