"""Our walking network (walk_node / walk_edge) written out as an OpenStreetMap ``.osm.pbf``,
so that another engine (Valhalla, benchmarks/isochrones.py) walks the very graph ours walks.

Each walk_edge becomes one OSM way from its source node to its target node; the inner
vertices of its line become nodes of their own. Junctions are the walk_node rows, shared by
every way that meets there, so the OSM graph has the same topology as ours. Tags:
``highway`` is the edge's ``kind`` when that is an OSM highway value (a network imported from
OSM keeps it), else ``footway``; every way gets ``foot=yes`` (we walk every edge, so the
other engine must too), ``name`` when the edge has one, and ``oneway:foot=yes`` where ours is
one-way for walkers (``reverse_cost < 0``, pgRouting's convention, network/store.py).

Written with pyosmium (libosmium's writer), ids: nodes keep walk_node.id, inner vertices
are numbered after the largest of them, ways keep walk_edge.id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import osmium
import shapely
from sqlalchemy import Connection, text

#: highway values a router treats as walkable ways (OSM wiki, Key:highway); other kinds
#: (the demo's own classes such as "lane" or "bridge") are written as footways
OSM_HIGHWAYS = frozenset(
    {
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "motorway_link",
        "trunk_link",
        "primary_link",
        "secondary_link",
        "tertiary_link",
        "living_street",
        "service",
        "pedestrian",
        "track",
        "road",
        "footway",
        "bridleway",
        "steps",
        "corridor",
        "path",
        "cycleway",
    }
)


def network_digest(conn: Connection) -> str:
    """A fingerprint of the stored network (every edge's ends, direction, kind and shape):
    tiles built from an export stay valid while it is unchanged."""
    row = conn.execute(
        text(
            "SELECT count(*), md5(string_agg(concat_ws(',', id, source, target, "
            "reverse_cost < 0, kind, md5(ST_AsBinary(geom))), ';' ORDER BY id)) FROM walk_edge"
        )
    ).one()
    return hashlib.sha1(f"{row[0]}:{row[1]}".encode()).hexdigest()[:16]


def write_osm_pbf(conn: Connection, path: Path) -> tuple[int, int]:
    """Write the stored network to ``path`` (.osm.pbf, replaced). Returns (nodes, ways)."""
    nodes = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM walk_node ORDER BY id")).all()
    edges = conn.execute(
        text(
            "SELECT id, source, target, reverse_cost < 0, kind, name, ST_AsBinary(geom) "
            "FROM walk_edge ORDER BY id"
        )
    ).all()
    lines = shapely.from_wkb([bytes(e[6]) for e in edges])
    next_id = (max(n[0] for n in nodes) if nodes else 0) + 1
    inner: list[tuple[int, float, float]] = []
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for (eid, source, target, oneway, kind, name, _), line in zip(edges, lines, strict=True):
        xy = shapely.get_coordinates(line)[1:-1]
        refs = [int(source)]
        for x, y in xy.tolist():
            inner.append((next_id, x, y))
            refs.append(next_id)
            next_id += 1
        refs.append(int(target))
        tags = {"highway": kind if kind in OSM_HIGHWAYS else "footway", "foot": "yes"}
        if name:
            tags["name"] = name
        if oneway:
            tags["oneway:foot"] = "yes"
        ways.append((int(eid), refs, tags))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(path))
    try:
        for nid, x, y in [*nodes, *inner]:  # ids ascending: walk_node ids, then inner ones
            writer.add_node(osmium.osm.mutable.Node(id=int(nid), location=(x, y), version=1))
        for wid, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags, version=1))
    finally:
        writer.close()
    return len(nodes) + len(inner), len(ways)
