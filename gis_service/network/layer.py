"""A surveyed line layer (GeoJSON / GeoPackage / Shapefile) as a walking network.

Cities with their own surveyed network hand it over as lines that may cross without a
shared vertex. Lines are noded where they cross or touch (GEOS ``node``), ends closer than
``snap_m`` are merged, and attributes are carried over when the layer has them:
``kind`` (or ``highway``), ``name``, ``oneway`` (yes/true/1 or -1). A crossing drawn
without a junction in the data is a junction here: layers that model bridges must be
split at their own vertices and imported with ``--no-node``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from gis_service.errors import ImportRejected
from gis_service.geo.bounds import GeometryLimits
from gis_service.geo.coords import CoordSys
from gis_service.imports.readers import read_vector
from gis_service.network.store import Network
from gis_service.settings import get_settings

KIND_FIELDS = ("kind", "highway", "type", "class", "类型")
NAME_FIELDS = ("name", "名称", "road_name")
ONEWAY_FIELDS = ("oneway", "one_way", "单行")


def _field(frame, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


def read_layer(
    path: Path,
    *,
    crs: str | None = None,
    coord_sys: CoordSys | str = CoordSys.wgs84,
    layer: str | None = None,
    node: bool = True,
    snap_m: float = 0.5,
    limits: GeometryLimits | None = None,
) -> Network:
    """The lines of a layer as a noded network; each line and the whole layer are held to
    ``limits`` (``geo/bounds.py``; default: the settings' network limits)."""
    limits = limits or GeometryLimits.of(get_settings(), network=True)
    frame = read_vector(path, crs=crs, coord_sys=coord_sys, layer=layer, limits=limits).frame
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    types = set(frame.geometry.geom_type)
    if not types <= {"LineString", "MultiLineString"}:
        raise ImportRejected(
            f"{Path(path).name}: a network needs lines, found "
            f"{', '.join(sorted(types - {'LineString', 'MultiLineString'}))}"
        )
    frame = frame.explode(index_parts=False).reset_index(drop=True)
    if frame.empty:
        raise ImportRejected(f"{Path(path).name}: no lines")
    kf, nf, of = (_field(frame, f) for f in (KIND_FIELDS, NAME_FIELDS, ONEWAY_FIELDS))
    kind = frame[kf].astype(str).tolist() if kf else ["street"] * len(frame)
    name = (
        [None if v is None or v != v else str(v) for v in frame[nf]] if nf else [None] * len(frame)
    )
    flags = [str(v).lower() if v is not None else "" for v in frame[of]] if of else []
    lines = np.asarray(frame.geometry.values, dtype=object)
    direction = np.array(
        [-1 if f == "-1" else 1 if f in ("yes", "true", "1") else 0 for f in flags]
        or [0] * len(lines)
    )
    lines = np.where(direction < 0, shapely.reverse(lines), lines)
    parent = np.arange(len(lines))
    if node:
        lines, parent = _node(lines)
    return _topology(lines, parent, kind, name, direction != 0, snap_m)


def _node(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every line where another crosses or touches it inside (not at its own ends),
    keeping its direction. Pairs are found with an STRtree and intersected in one
    vectorised call; only lines with an inner crossing are split."""
    tree = shapely.STRtree(lines)
    a, b = tree.query(lines, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    cuts = shapely.intersection(lines[a], lines[b])
    points, owner = shapely.get_parts(shapely.get_parts(cuts), return_index=True)
    points = np.asarray(points)
    pair = owner
    is_point = shapely.get_type_id(points) == 0
    # overlapping stretches (lines) are cut at their ends
    others = shapely.get_type_id(points) == 1
    ends = shapely.get_parts(shapely.boundary(points[others]), return_index=True)
    pts = np.concatenate([points[is_point], np.asarray(ends[0])])
    line_of = np.concatenate([a[pair[is_point]], a[pair[others]][ends[1]]])
    first = shapely.get_point(lines[line_of], 0)
    last = shapely.get_point(lines[line_of], -1)
    inner = ~(shapely.equals_exact(pts, first, 1e-9) | shapely.equals_exact(pts, last, 1e-9))
    by_line: dict[int, list] = {}
    for i, p in zip(line_of[inner].tolist(), pts[inner], strict=True):
        by_line.setdefault(i, []).append(p)
    out, parent = [], []
    for i, line in enumerate(lines):
        cut = by_line.get(i)
        pieces = _split(line, shapely.multipoints(cut)) if cut else [line]
        out.extend(pieces), parent.extend([i] * len(pieces))
    return np.asarray(out, dtype=object), np.asarray(parent)


def _split(line, cut) -> list:
    from shapely.ops import split

    points = [p for p in shapely.get_parts(cut) if p.geom_type == "Point"]
    if not points:
        return [line]
    parts = list(
        shapely.get_parts(
            split(
                shapely.snap(line, shapely.multipoints(points), 1e-9), shapely.multipoints(points)
            )
        )
    )
    return [p for p in parts if p.length > 0]


def _topology(
    lines: np.ndarray,
    parent: np.ndarray,
    kind: list[str],
    name: list[str | None],
    oneway: np.ndarray,
    snap_m: float,
) -> Network:
    first = shapely.get_point(lines, 0)
    last = shapely.get_point(lines, -1)
    ends = np.vstack([shapely.get_coordinates(first), shapely.get_coordinates(last)])
    # merge ends within snap_m (≈ degrees at this latitude): grid-round, then unique
    step = snap_m / 111_000.0
    key = np.round(ends / step).astype(np.int64)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    node_xy = np.zeros((len(uniq), 2))
    np.add.at(node_xy, inverse, ends)
    node_xy /= np.bincount(inverse, minlength=len(uniq))[:, None]
    m = len(lines)
    source, target = inverse[:m] + 1, inverse[m:] + 1
    keep = source != target
    if not keep.any():
        raise ImportRejected("the layer has no line with two distinct ends")
    idx = np.nonzero(keep)[0]
    return Network(
        node_id=np.arange(1, len(uniq) + 1, dtype=np.int64),
        node_lon=node_xy[:, 0],
        node_lat=node_xy[:, 1],
        source=source[idx].astype(np.int64),
        target=target[idx].astype(np.int64),
        lines=lines[idx],
        kind=[kind[parent[i]] for i in idx],
        name=[name[parent[i]] for i in idx],
        oneway=oneway[parent[idx]],
    )
