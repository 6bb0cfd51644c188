"""A generated walking network shaped like Zhengzhou's.

Main 经/纬 roads (经 run north–south, 纬 east–west) on an 800 m grid, secondary streets
between them every 400 m, and lanes and alleys inside the blocks every 100 m (more of them
where more people live, some ending blind). A canal (东风渠) crosses the district and can
be crossed only on the main roads' bridges and a few footbridges; a railway line can be
crossed only at the main roads' underpasses: real barriers, so that walking distance and
straight distance disagree where they do in the city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from gis_service.demo.names import NS_NUMERALS
from gis_service.demo.plane import Density, Plane

SPACING_M = 100.0
SECONDARY_EVERY = 4  # 400 m
MAIN_EVERY = 8  # 800 m

# The canal and the railway, in WGS-84 (lon, lat), drawn after the real ones' course.
CANAL = [(113.595, 34.812), (113.66, 34.806), (113.72, 34.812), (113.78, 34.803), (113.86, 34.808)]
RAILWAY = [(113.641, 34.72), (113.643, 34.80), (113.648, 34.90)]


@dataclass
class Network:
    node_id: np.ndarray  # int64
    node_xy: np.ndarray  # metric (n, 2)
    source: np.ndarray
    target: np.ndarray
    kind: list[str]
    name: list[str | None]

    @property
    def edge_count(self) -> int:
        return len(self.source)


def _class(index: int) -> str:
    if index % MAIN_EVERY == 0:
        return "primary"
    if index % SECONDARY_EVERY == 0:
        return "secondary"
    return "lane"


def _road_name(prefix: str, index: int, cls: str) -> str | None:
    n = index // MAIN_EVERY
    numeral = NS_NUMERALS[n % len(NS_NUMERALS)]
    if cls == "primary":
        return f"{prefix}{numeral}路"
    if cls == "secondary":
        return f"{prefix}{numeral}路支路"
    return None


def _largest_component(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The node ids of the largest connected component."""
    nodes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    a, b = inverse[: len(src)], inverse[len(src) :]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    biggest = np.bincount(labels).argmax()
    return nodes[labels == biggest]


def generate(
    area_metric: BaseGeometry, plane: Plane, density: Density, rng: np.random.Generator
) -> Network:
    region = area_metric.buffer(300)
    shapely.prepare(region)
    minx, miny, maxx, maxy = region.bounds
    # Anchor the lattice on whole kilometres so main roads fall on round coordinates.
    x0 = np.floor(minx / 800) * 800
    y0 = np.floor(miny / 800) * 800
    nx = int(np.ceil((maxx - x0) / SPACING_M)) + 1
    ny = int(np.ceil((maxy - y0) / SPACING_M)) + 1
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    xs = x0 + ii * SPACING_M
    ys = y0 + jj * SPACING_M
    lane_node = (ii % SECONDARY_EVERY != 0) & (jj % SECONDARY_EVERY != 0)
    xs = xs + np.where(lane_node, rng.uniform(-12, 12, xs.shape), 0.0)
    ys = ys + np.where(lane_node, rng.uniform(-12, 12, ys.shape), 0.0)
    inside = shapely.contains_xy(region, xs, ys)
    dens = density(xs, ys)
    dens_norm = dens / dens.max()

    canal = plane.metric(LineString(CANAL))
    railway = plane.metric(LineString(RAILWAY))
    footbridges = {k for k in range(nx) if k % (SECONDARY_EVERY * 5) == SECONDARY_EVERY}

    src: list[int] = []
    dst: list[int] = []
    kinds: list[str] = []
    road_names: list[str | None] = []

    def node(i: int, j: int) -> int:
        return i * ny + j + 1

    candidates = []
    for i in range(nx):
        for j in range(ny):
            if not inside[i, j]:
                continue
            if i + 1 < nx and inside[i + 1, j]:
                candidates.append((i, j, i + 1, j, _class(j), "纬", j, i))
            if j + 1 < ny and inside[i, j + 1]:
                candidates.append((i, j, i, j + 1, _class(i), "经", i, j))
    cand = np.array([(c[0], c[1], c[2], c[3]) for c in candidates])
    lines = shapely.linestrings(
        np.stack(
            [
                np.column_stack([xs[cand[:, 0], cand[:, 1]], ys[cand[:, 0], cand[:, 1]]]),
                np.column_stack([xs[cand[:, 2], cand[:, 3]], ys[cand[:, 2], cand[:, 3]]]),
            ],
            axis=1,
        )
    )
    crosses_canal = shapely.intersects(lines, canal)
    crosses_rail = shapely.intersects(lines, railway)
    keep_draw = rng.uniform(0, 1, len(candidates))
    for k, (i, j, i2, j2, cls, prefix, line_index, _along) in enumerate(candidates):
        if cls == "lane":
            p = 0.25 + 0.65 * float(min(dens_norm[i, j], dens_norm[i2, j2]))
            if keep_draw[k] > p:
                continue
        if crosses_rail[k] and cls != "primary":
            continue
        kind = cls
        if crosses_canal[k]:
            if cls == "primary":
                kind = "bridge"
            elif prefix == "经" and cls == "secondary" and i in footbridges:
                kind = "footbridge"
            else:
                continue
        src.append(node(i, j))
        dst.append(node(i2, j2))
        kinds.append(kind)
        road_names.append(_road_name(prefix, line_index, cls))

    members = _largest_component(np.array(src), np.array(dst))
    keep = np.isin(np.array(src), members) & np.isin(np.array(dst), members)
    # Lanes cut off by the dropped segments would be islands no one can walk to: drop them,
    # as an OSM import keeps only the main component.
    src = [s for s, k in zip(src, keep, strict=True) if k]
    dst = [d for d, k in zip(dst, keep, strict=True) if k]
    kinds = [x for x, k in zip(kinds, keep, strict=True) if k]
    road_names = [x for x, k in zip(road_names, keep, strict=True) if k]
    used = np.unique(np.concatenate([np.array(src), np.array(dst)]))
    ui = (used - 1) // ny
    uj = (used - 1) % ny
    return Network(
        node_id=used.astype(np.int64),
        node_xy=np.column_stack([xs[ui, uj], ys[ui, uj]]),
        source=np.array(src, dtype=np.int64),
        target=np.array(dst, dtype=np.int64),
        kind=kinds,
        name=road_names,
    )
