"""Write a noded walking network into walk_node / walk_edge in one transaction.

COPY, not INSERT: a city network has hundreds of thousands of edges. Lengths are measured
on the spheroid (geography), so they are metres whatever CRS the source had.
"""

from __future__ import annotations

import io

import numpy as np
from sqlalchemy import Connection


def _copy(conn: Connection, table: str, columns: str, buf: io.StringIO) -> None:
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)


def replace_network(conn: Connection, node_id: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                    source: np.ndarray, target: np.ndarray, kind: list[str],
                    name: list[str | None], oneway: np.ndarray | None = None) -> int:
    """Replace the whole network; edges are straight between their nodes. Returns edges."""
    conn.exec_driver_sql("TRUNCATE walk_edge, walk_node RESTART IDENTITY")
    nodes = io.StringIO()
    for i, x, y in zip(node_id.tolist(), lon.tolist(), lat.tolist(), strict=True):
        nodes.write(f"{i}\tSRID=4326;POINT({x:.9f} {y:.9f})\n")
    _copy(conn, "walk_node", "id, geom", nodes)

    index = {int(n): k for k, n in enumerate(node_id.tolist())}
    edges = io.StringIO()
    one = oneway if oneway is not None else np.zeros(len(source), dtype=bool)
    for s, t, k, nm, ow in zip(source.tolist(), target.tolist(), kind, name, one.tolist(),
                               strict=True):
        a, b = index[s], index[t]
        wkt = (f"SRID=4326;LINESTRING({lon[a]:.9f} {lat[a]:.9f},{lon[b]:.9f} {lat[b]:.9f})")
        label = "\\N" if nm is None else nm
        edges.write(f"{s}\t{t}\t0\t0\t{'-1' if ow else '0'}\t{k}\t{label}\t{wkt}\n")
    _copy(conn, "walk_edge", "source, target, length_m, cost, reverse_cost, kind, name, geom",
          edges)
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
    return len(source)
