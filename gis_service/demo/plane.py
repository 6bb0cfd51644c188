"""Geometry on the metric plane for the generator: density, sampling, partitions.

The generator works in the UTM zone of the district (metres), then converts to WGS-84.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPoint, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

Density = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Plane:
    """A metric CRS around a district and the converters to and from WGS-84."""

    crs: CRS
    to_metric: Transformer
    to_wgs84: Transformer

    @classmethod
    def around(cls, lon: float, lat: float) -> Plane:
        zone = int((lon + 180) // 6) + 1
        crs = CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
        return cls(
            crs=crs,
            to_metric=Transformer.from_crs(4326, crs, always_xy=True),
            to_wgs84=Transformer.from_crs(crs, 4326, always_xy=True),
        )

    def metric(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(
            geom, lambda xy: np.column_stack(self.to_metric.transform(xy[:, 0], xy[:, 1]))
        )

    def lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(
            geom, lambda xy: np.column_stack(self.to_wgs84.transform(xy[:, 0], xy[:, 1]))
        )

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.to_metric.transform(lon, lat)
        return float(x), float(y)


def centred_density(centres: list[tuple[float, float, float, float]], floor: float) -> Density:
    """floor + Σ weight·exp(−d/scale) over (x, y, weight, scale_m) centres."""

    def density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(np.shape(x), floor, dtype=float)
        for cx, cy, w, scale in centres:
            out += w * np.exp(-np.hypot(x - cx, y - cy) / scale)
        return out

    return density


def sample_points(
    poly: BaseGeometry, n: int, rng: np.random.Generator, density: Density
) -> np.ndarray:
    """n points inside ``poly``, drawn with probability proportional to ``density``."""
    minx, miny, maxx, maxy = poly.bounds
    probe_x = rng.uniform(minx, maxx, 4096)
    probe_y = rng.uniform(miny, maxy, 4096)
    top = float(density(probe_x, probe_y).max()) * 1.1
    shapely.prepare(poly)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        x = rng.uniform(minx, maxx, 4 * n + 64)
        y = rng.uniform(miny, maxy, 4 * n + 64)
        keep = shapely.contains_xy(poly, x, y) & (rng.uniform(0, top, x.size) < density(x, y))
        pts = np.column_stack([x[keep], y[keep]])
        out.append(pts)
        have += len(pts)
    return np.vstack(out)[:n]


def partition(
    poly: BaseGeometry, n: int, rng: np.random.Generator, density: Density, relax: int = 2
) -> list[tuple[BaseGeometry, BaseGeometry]]:
    """Split ``poly`` into n cells (density-weighted Voronoi, lightly Lloyd-relaxed),
    ordered north-west first so that codes read like a map.

    Returns (cell clipped to ``poly``, the unclipped Voronoi cell): clipping the unclipped
    cells again after conversion to WGS-84 keeps the children an exact partition of the
    parent there too (clipping on the plane and converting leaves sub-metre slivers).
    """
    if n == 1:
        return [(poly, box(*poly.buffer(1000).bounds))]
    seeds = sample_points(poly, n, rng, density)
    frame = box(*poly.buffer(1000).bounds)
    cells: list[BaseGeometry] = []
    raw: list[BaseGeometry] = []
    for step in range(relax + 1):
        diagram = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame, ordered=True)
        raw = list(diagram.geoms)
        cells = [poly.intersection(c) for c in raw]
        if step < relax:
            moved = [c.centroid if not c.is_empty else None for c in cells]
            seeds = np.array(
                [
                    [p.x, p.y] if p is not None and poly.contains(p) else seeds[i]
                    for i, p in enumerate(moved)
                ]
            )
    kept = [i for i, c in enumerate(cells) if not c.is_empty]
    reps = {i: cells[i].representative_point() for i in kept}
    order = sorted(kept, key=lambda i: (-round(reps[i].y, -2), reps[i].x))
    return [(cells[i], raw[i]) for i in order]


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polys)


def allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``total`` into integers ∝ weights, each ≥ minimum (largest remainder)."""
    k = len(weights)
    spare = total - minimum * k
    if spare < 0:
        raise ValueError(f"cannot give {k} parts at least {minimum} from {total}")
    share = weights / weights.sum() * spare
    base = np.floor(share).astype(int)
    rest = spare - int(base.sum())
    base[np.argsort(-(share - base), kind="stable")[:rest]] += 1
    return base + minimum
