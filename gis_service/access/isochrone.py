"""Isochrone polygons: the ground within a walk-off distance of the streets reachable in
a budget, part-way streets included, with holes where the network does not reach.

Why a raster: the union of thousands of buffered street pieces is what makes isochrones
slow (80–95 % of the time in networkx and in SQL). Here the reached pieces are sampled
onto a grid, scipy's exact Euclidean distance transform gives every cell its distance to
the nearest reached street, and marching squares (contourpy) traces the walk-off line
with interpolation between cells. The traced edge lies within one cell (``resolution_m``,
about 8 m for a quarter hour) of the exact buffer's edge; docs/access.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import contourpy
import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon

from gis_service.access.graph import F, I, WalkGraph

#: the grid's longer side, in cells, when no resolution is asked for
TARGET_CELLS = 256
MIN_RESOLUTION_M = 1.0


@dataclass
class Contour:
    minutes: float
    distance_m: float
    polygon: MultiPolygon  # projected
    method: str
    resolution_m: float


def sample_pieces(graph: WalkGraph, edge: I, f0: F, f1: F, step: float) -> tuple[F, F]:
    """Points every ``step`` metres (projected) along the given parts of streets."""
    total = graph.proj_length[edge]
    start, end = f0 * total, f1 * total
    count = np.maximum(1, np.ceil((end - start) / step).astype(np.int64)) + 1
    piece = np.repeat(np.arange(len(edge)), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    s = start[piece] + (end - start)[piece] * (j / (count[piece] - 1))
    k = edge[piece]
    # the segment holding each sample: start at the edge's first vertex and step on while
    # the next vertex is still behind the sample (most streets have a handful of vertices)
    idx = graph.offset[k].copy()
    last = graph.offset[k + 1] - 2
    todo = np.nonzero(idx < last)[0]
    while len(todo):
        ahead = graph.along[idx[todo] + 1] < s[todo]
        todo = todo[ahead]
        idx[todo] += 1
        todo = todo[idx[todo] < last[todo]]
    a0 = graph.along[idx]
    seg = graph.along[idx + 1] - a0
    t = np.where(seg > 0, (s - a0) / np.where(seg > 0, seg, 1), 0.0)
    t = np.clip(t, 0, 1)
    p0, p1 = graph.coords[idx], graph.coords[idx + 1]
    return p0[:, 0] + (p1[:, 0] - p0[:, 0]) * t, p0[:, 1] + (p1[:, 1] - p0[:, 1]) * t


def band_polygon(
    x: F, y: F, walk_off: float, resolution: float | None = None
) -> tuple[MultiPolygon, float]:
    """The ground within ``walk_off`` of the sampled points, with its holes."""
    pad = walk_off + 0.0
    x0, y0 = x.min() - pad, y.min() - pad
    x1, y1 = x.max() + pad, y.max() + pad
    if resolution is None:
        resolution = max(MIN_RESOLUTION_M, max(x1 - x0, y1 - y0) / TARGET_CELLS)
    c = resolution
    # one empty cell all round, so every contour closes inside the grid
    x0, y0 = x0 - 2 * c, y0 - 2 * c
    nx_ = int(np.ceil((x1 + 2 * c - x0) / c)) + 1
    ny_ = int(np.ceil((y1 + 2 * c - y0) / c)) + 1
    free = np.ones((ny_, nx_), dtype=bool)
    free[((y - y0) / c).astype(np.int64), ((x - x0) / c).astype(np.int64)] = False
    dist = ndimage.distance_transform_edt(free) * c
    gen = contourpy.contour_generator(
        x=x0 + (np.arange(nx_) + 0.5) * c,
        y=y0 + (np.arange(ny_) + 0.5) * c,
        z=dist,
        fill_type=contourpy.FillType.OuterOffset,
        name="serial",
    )
    points, offsets = gen.filled(-1.0, walk_off)
    polys = []
    for pts, off in zip(points, offsets, strict=True):
        rings = [pts[off[i] : off[i + 1]] for i in range(len(off) - 1)]
        polys.append(Polygon(rings[0], rings[1:]))
    return MultiPolygon(polys), c


def circle(x: float, y: float, radius: float) -> MultiPolygon:
    return MultiPolygon([shapely.Point(x, y).buffer(radius, quad_segs=32)])
