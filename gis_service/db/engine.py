"""Engines, one per URL, built on first use (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, text

from gis_service.settings import Settings, get_settings
from gis_service.timezone import zone_name


@lru_cache(maxsize=8)
def _engine_for(url: str, pool_size: int, timezone: str) -> Engine:
    # pool_size == max: a pool that shrinks below its cap reconnects on every burst
    # (PERFORMANCE-NOTES: 337 req/s instead of ~1,500 with psycopg2's pool).
    # Sessions speak the district's time (GIS_TIMEZONE): every timestamptz PostgreSQL
    # writes as text or JSON, and every datetime it hands Python, carries the district's
    # offset, so what a person reads from any answer is their own clock. Day boundaries
    # in SQL never depend on it: they say AT TIME ZONE explicitly.
    return create_engine(
        url,
        connect_args={"options": f"-c TimeZone={timezone}"},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,
        future=True,
    )


def get_engine(settings: Settings | None = None) -> Engine:
    s = settings or get_settings()
    return _engine_for(s.sqlalchemy_url, s.db_pool_size, zone_name(s))


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
