"""Write a noded walking network into walk_node / walk_edge in one transaction.

COPY, not INSERT: a city network has hundreds of thousands of edges. Lengths are measured
on the spheroid (geography), so they are metres whatever CRS the source had. The layout
is pgRouting's: source, target, cost, reverse_cost (-1 marks a one-way edge).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection


@dataclass
class Network:
    """A noded network in WGS-84: every edge runs from its source node to its target node
    and touches other edges only at its ends."""

    node_id: NDArray[np.int64]
    node_lon: NDArray[np.float64]
    node_lat: NDArray[np.float64]
    source: NDArray[np.int64]
    target: NDArray[np.int64]
    lines: NDArray[np.object_]  # shapely LineStrings, source → target
    kind: list[str]
    name: list[str | None]
    oneway: NDArray[np.bool_] = field(default=None)  # type: ignore[assignment]
    osm_id: list[int | None] | None = None

    def __post_init__(self) -> None:
        if self.oneway is None:
            self.oneway = np.zeros(len(self.source), dtype=bool)

    @property
    def edge_count(self) -> int:
        return len(self.source)


def _copy(conn: Connection, table: str, columns: str, buf: io.StringIO) -> None:
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)


_COPY_TEXT = str.maketrans({"\\": "\\\\", "\t": " ", "\n": " ", "\r": " ", "\x00": None})


def _text(value: str | None) -> str:
    """A street's kind or name in COPY's text format, on one line: backslashes escaped,
    tabs and line breaks made spaces, NUL (which PostgreSQL text cannot hold) dropped."""
    if value is None:
        return "\\N"
    return value.translate(_COPY_TEXT)


def write_network(conn: Connection, net: Network) -> int:
    """Replace the whole network (the caller's transaction). Returns the number of edges."""
    conn.exec_driver_sql("TRUNCATE walk_edge, walk_node RESTART IDENTITY")
    nodes = io.StringIO()
    for i, x, y in zip(
        net.node_id.tolist(), net.node_lon.tolist(), net.node_lat.tolist(), strict=True
    ):
        nodes.write(f"{i}\tSRID=4326;POINT({x:.9f} {y:.9f})\n")
    _copy(conn, "walk_node", "id, geom", nodes)

    wkt = shapely.to_wkt(net.lines, rounding_precision=9, trim=True)
    osm = net.osm_id if net.osm_id is not None else [None] * net.edge_count
    edges = io.StringIO()
    for s, t, k, nm, ow, w, o in zip(
        net.source.tolist(),
        net.target.tolist(),
        net.kind,
        net.name,
        net.oneway.tolist(),
        wkt.tolist(),
        osm,
        strict=True,
    ):
        edges.write(
            f"{s}\t{t}\t0\t0\t{'-1' if ow else '0'}\t{_text(k)}\t{_text(nm)}\t"
            f"{_text(None if o is None else str(o))}\tSRID=4326;{w}\n"
        )
    _copy(
        conn,
        "walk_edge",
        "source, target, length_m, cost, reverse_cost, kind, name, osm_id, geom",
        edges,
    )
    # reverse_cost -1 marks a one-way edge (pgRouting's convention); others cost their length.
    conn.exec_driver_sql(
        """
        UPDATE walk_edge SET length_m = ST_Length(geom::geography),
                             cost = ST_Length(geom::geography),
                             reverse_cost = CASE WHEN reverse_cost < 0 THEN -1
                                                 ELSE ST_Length(geom::geography) END
        """
    )
    conn.exec_driver_sql("ANALYZE walk_node")
    conn.exec_driver_sql("ANALYZE walk_edge")
    return net.edge_count


def replace_network(
    conn: Connection,
    node_id: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    kind: list[str],
    name: list[str | None],
    oneway: np.ndarray | None = None,
) -> int:
    """A network of straight edges between its nodes (the demo's)."""
    order = np.argsort(node_id)
    ids = np.asarray(node_id)[order]
    a, b = order[np.searchsorted(ids, source)], order[np.searchsorted(ids, target)]
    lines = shapely.linestrings(
        np.stack([np.column_stack([lon[a], lat[a]]), np.column_stack([lon[b], lat[b]])], axis=1)
    )
    return write_network(
        conn,
        Network(
            node_id=np.asarray(node_id, np.int64),
            node_lon=np.asarray(lon, float),
            node_lat=np.asarray(lat, float),
            source=np.asarray(source, np.int64),
            target=np.asarray(target, np.int64),
            lines=lines,
            kind=kind,
            name=name,
            oneway=oneway,
        ),
    )
