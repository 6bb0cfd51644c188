"""The pedestrian network out of an OpenStreetMap extract (.osm.pbf / .osm / .osm.bz2).

Which ways count as walkable (docs/access.md) is OSMnx's "walk" network filter
(``osmnx._overpass._get_osm_filter("walk")`` with OSMnx's default ``access`` setting), read
the way Overpass reads it: a way needs a ``highway`` tag, and is dropped when any of these
unanchored, case-sensitive regular expressions matches the value of its key:

* ``highway``: abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|
  proposed|raceway|razed (so motorway and motorway_link go, trunk stays);
* ``area``: yes (squares and other areas are walked around, not through, here);
* ``access``: private; ``foot``: no; ``service``: private.

Everything else with a ``highway`` tag is kept: footway, path, steps, pedestrian, track,
trail, living_street, residential, service, the trunk ... unclassified classes, etc.

One-way applies to a walker only where OSM says so for walkers: ``oneway:foot``, or
``oneway`` on ways built for walking (footway, path, steps, pedestrian, corridor).

Ways are split at every node shared with another kept way (the intersections), so the
graph is noded exactly where OSM says streets meet: a bridge over a street is not a
crossing. Only the largest connected part is kept unless ``keep_all``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gis_service.errors import ImportRejected
from gis_service.geo.bounds import SETTING, Excess, GeometryLimits
from gis_service.imports.problems import Problems
from gis_service.network.store import Network

OSMNX_WALK_FILTER: tuple[tuple[str, str], ...] = (
    ("area", "yes"),
    ("access", "private"),
    (
        "highway",
        "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
        "raceway|razed",
    ),
    ("foot", "no"),
    ("service", "private"),
)
"""OSMnx's "walk" filter as (key, pattern) pairs: Overpass ``["key"!~"pattern"]`` clauses."""
_EXCLUDE = tuple((key, re.compile(pattern)) for key, pattern in OSMNX_WALK_FILTER)
FOOT_WAYS = {"footway", "path", "steps", "pedestrian", "corridor"}


def walkable(tags: Mapping[str, str]) -> bool:
    """Whether OSMnx's "walk" network keeps a way with these tags.

    Overpass semantics: ``["highway"]`` requires the key; ``["k"!~"re"]`` passes when the key
    is absent or the regular expression finds no match anywhere in the value.
    """
    if "highway" not in tags:
        return False
    return not any(
        (value := tags.get(key)) is not None and pattern.search(value) for key, pattern in _EXCLUDE
    )


def oneway_for_walkers(tags: dict[str, str]) -> int:
    """+1 one-way along the way, -1 against it, 0 both ways."""
    value = tags.get("oneway:foot")
    if value is None and tags.get("highway") in FOOT_WAYS:
        value = tags.get("oneway")
    if value in ("yes", "true", "1"):
        return 1
    if value == "-1":
        return -1
    return 0


@dataclass
class _Way:
    osm_id: int
    refs: list[int]
    kind: str
    name: str | None
    oneway: int


def read_osm(
    path: Path,
    bbox: tuple[float, float, float, float] | None = None,
    keep_all: bool = False,
    progress: Callable[[str], None] | None = None,
    limits: GeometryLimits | None = None,
) -> Network:
    """The walkable ways of an extract as a noded network. Each walkable way is held to
    ``limits.vertices`` (a problem naming the way) and all of them together to
    ``limits.total``, counted while reading, so an oversized extract is stopped before it
    is held in memory (``geo/bounds.py``; ImportRejected, 422)."""
    if not path.exists():
        raise ImportRejected(f"{path.name}: no such file")
    ways: list[_Way] = []
    location: dict[int, tuple[float, float]] = {}
    problems = Problems()
    total = 0
    try:
        processor = osmium.FileProcessor(str(path)).with_locations()
        for obj in processor:
            if not obj.is_way():
                continue
            tags = dict(obj.tags)
            if not walkable(tags):
                continue
            refs = []
            for n in obj.nodes:
                if not n.location.valid():
                    continue
                refs.append(n.ref)
                location[n.ref] = (n.lon, n.lat)
            total += len(refs)
            if limits and len(refs) > limits.vertices:
                e = Excess(obj.id, "vertices", len(refs), limits.vertices, SETTING["vertices"])
                problems.add(
                    None,
                    f"way {obj.id} {e.message}",
                    osm_id=obj.id,
                    field="geometry",
                    count=e.count,
                    limit=e.limit,
                )
            if limits and total > limits.total:
                e = Excess(None, "vertices", total, limits.total, limits.total_setting)
                problems.add(
                    None,
                    f"the walkable ways {e.message}",
                    field="geometry",
                    count=e.count,
                    limit=e.limit,
                )
                break
            if len(refs) >= 2:
                ways.append(
                    _Way(obj.id, refs, tags["highway"], tags.get("name"), oneway_for_walkers(tags))
                )
    except RuntimeError as exc:
        raise ImportRejected(f"{path.name}: not a readable OpenStreetMap file ({exc})") from exc
    problems.raise_if_any(path.name)
    if progress:
        progress(f"{len(ways):,} walkable ways")
    if not ways:
        raise ImportRejected(f"{path.name}: no walkable ways found")
    return _noded(ways, location, bbox, keep_all)


def _noded(
    ways: list[_Way],
    location: dict[int, tuple[float, float]],
    bbox: tuple[float, float, float, float] | None,
    keep_all: bool,
) -> Network:
    uses: dict[int, int] = {}
    for w in ways:
        for r in w.refs:
            uses[r] = uses.get(r, 0) + 1
        # a way's ends are nodes even if nothing else touches them
        uses[w.refs[0]] = uses.get(w.refs[0], 0) + 1
        uses[w.refs[-1]] = uses.get(w.refs[-1], 0) + 1
    src, dst, coords, kinds, names, oneway, osm = [], [], [], [], [], [], []
    for w in ways:
        refs = w.refs if w.oneway >= 0 else w.refs[::-1]
        start = 0
        for i in range(1, len(refs)):
            if uses[refs[i]] > 1 or i == len(refs) - 1:
                piece = refs[start : i + 1]
                start = i
                if piece[0] == piece[-1] and len(piece) <= 2:
                    continue  # a zero-length repeat of one node
                src.append(piece[0]), dst.append(piece[-1])
                coords.append([location[r] for r in piece])
                kinds.append(w.kind), names.append(w.name), oneway.append(w.oneway != 0)
                osm.append(w.osm_id)
    if not coords:
        raise ImportRejected("no walkable street has two distinct nodes")
    counts = [len(c) for c in coords]
    flat = np.array([p for c in coords for p in c], dtype=float)
    lines = shapely.linestrings(flat, indices=np.repeat(np.arange(len(coords)), counts))
    keep = np.ones(len(src), dtype=bool)
    if bbox is not None:
        keep &= shapely.intersects(lines, shapely.box(*bbox))
    source, target = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    if not keep_all and keep.any():
        keep &= _in_largest_component(source, target, keep)
    if not keep.any():
        raise ImportRejected("no walkable street lies inside the requested area")
    idx = np.nonzero(keep)[0]
    source, target = source[idx], target[idx]
    ids = np.unique(np.concatenate([source, target]))
    lonlat = np.array([location[int(i)] for i in ids])
    return Network(
        node_id=ids,
        node_lon=lonlat[:, 0],
        node_lat=lonlat[:, 1],
        source=source,
        target=target,
        lines=lines[idx],
        kind=[kinds[i] for i in idx],
        name=[names[i] for i in idx],
        oneway=np.asarray(oneway, bool)[idx],
        osm_id=[osm[i] for i in idx],
    )


def _in_largest_component(source: np.ndarray, target: np.ndarray, keep: np.ndarray) -> np.ndarray:
    ids, inverse = np.unique(np.concatenate([source, target]), return_inverse=True)
    n, m = len(ids), len(source)
    a, b = inverse[:m][keep], inverse[m:][keep]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels[np.unique(np.concatenate([a, b]))])
    return labels[inverse[:m]] == sizes.argmax()
