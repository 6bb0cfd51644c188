"""Read the walking network out of PostGIS, and the engines built from it, per version.

``access_state.network_version`` is bumped by a trigger on every change to walk_edge, so a
process notices an imported network at its next question and rebuilds its engine once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis_service.access.engine import AccessEngine
from gis_service.access.graph import WalkGraph, build_graph
from gis_service.errors import NotFound

#: the walking network's version (a trigger on walk_edge bumps it, migration 0003)
NETWORK_VERSION_SQL = "SELECT network_version FROM access_state"


def network_version(conn: Connection) -> int:
    return int(conn.execute(text(NETWORK_VERSION_SQL)).scalar_one())


def load_graph(conn: Connection) -> WalkGraph:
    version = network_version(conn)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("SELECT id, ST_X(geom), ST_Y(geom) FROM walk_node")
        nodes = np.array(cur.fetchall(), dtype=float).reshape(-1, 3)
        cur.execute(
            "SELECT id, source, target, length_m, reverse_cost < 0, ST_AsBinary(geom) "
            "FROM walk_edge ORDER BY id"
        )
        rows = cur.fetchall()
    if not rows:
        raise NotFound(
            "no walking network has been imported: "
            "run `gis-service import network FILE` (or `gis-service demo`)"
        )
    edge_id, source, target, length, oneway, wkb = zip(*rows, strict=True)
    lines = shapely.from_wkb([bytes(w) for w in wkb])
    return build_graph(
        nodes[:, 0].astype(np.int64),
        nodes[:, 1],
        nodes[:, 2],
        np.array(edge_id, np.int64),
        np.array(source, np.int64),
        np.array(target, np.int64),
        np.array(length, float),
        np.array(oneway, bool),
        lines,
        version=version,
    )


class EngineCache:
    """The current engine of one database; rebuilt when the network version moves."""

    def __init__(self) -> None:
        self._engine: AccessEngine | None = None
        self._lock = threading.Lock()

    def get(self, conn: Connection) -> AccessEngine:
        """The engine of the network as ``conn`` sees it now (one query; built on a change)."""
        return self.at(network_version(conn), lambda: contextlib.nullcontext(conn))

    def at(
        self, version: int, connect: Callable[[], AbstractContextManager[Connection]]
    ) -> AccessEngine:
        """The engine of network ``version``, read just now by the caller: the cached one
        when it is that version, else built from a connection ``connect()`` opens (once,
        whoever asks meanwhile waits for it)."""
        engine = self._engine
        if engine is not None and engine.version == version:
            return engine
        with self._lock:
            engine = self._engine
            if engine is None or engine.version != version:
                with connect() as conn:
                    engine = AccessEngine(load_graph(conn))
                self._engine = engine
        return engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def current(self) -> AccessEngine | None:
        """The engine built last (None before the first), whatever the version now."""
        return self._engine
