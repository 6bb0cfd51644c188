"""The database session of one CLI command: start the local cluster if needed, then one
transaction (committed at the end, rolled back on any error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from gis_service.db import cluster
from gis_service.db.engine import transaction
from gis_service.settings import get_settings


@contextmanager
def database() -> Iterator[Connection]:
    settings = get_settings()
    cluster.start(settings)
    with transaction(settings) as conn:
        yield conn
