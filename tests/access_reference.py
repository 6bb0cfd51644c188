"""An independent walking-distance computation for the tests: networkx on the edges read
back from PostGIS, with snapping done by shapely on geopandas' own UTM projection.

It shares no code with gis_service.access, so agreement means something.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from shapely.ops import substring
from sqlalchemy import text

from gis_service.db.engine import get_engine
from gis_service.settings import Settings


@dataclass
class Reference:
    edges: gpd.GeoDataFrame  # projected, with source, target, length_m, oneway
    graph: nx.DiGraph
    crs: object
    tree: shapely.STRtree

    @classmethod
    def load(cls, settings: Settings) -> Reference:
        with get_engine(settings).connect() as conn:
            frame = gpd.read_postgis(
                text(
                    "SELECT id, source, target, length_m, reverse_cost < 0 AS oneway, geom "
                    "FROM walk_edge ORDER BY id"
                ),
                conn,
                geom_col="geom",
            )
        crs = frame.estimate_utm_crs()
        frame = frame.to_crs(crs)
        g = nx.DiGraph()
        for r in frame.itertuples():
            for a, b in (
                ((r.source, r.target), (r.target, r.source))
                if not r.oneway
                else ((r.source, r.target),)
            ):
                if not g.has_edge(a, b) or g[a][b]["weight"] > r.length_m:
                    g.add_edge(a, b, weight=r.length_m)
        return cls(frame, g, crs, shapely.STRtree(frame.geometry.values))

    def project(self, lon: float, lat: float) -> shapely.Point:
        return gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(self.crs).iloc[0]

    def snap(self, p: shapely.Point) -> tuple[int, float, float]:
        """(row of the nearest edge, fraction along it, straight leg)."""
        i = int(self.tree.nearest(p))
        line = self.edges.geometry.iloc[i]
        return i, line.project(p) / line.length, line.distance(p)

    def from_point(
        self, lon: float, lat: float, forward: bool = True, cutoff: float | None = None
    ) -> dict:
        """Network distance from (forward) or to a location, for every node."""
        i, f, leg = self.snap(self.project(lon, lat))
        e = self.edges.iloc[i]
        if forward:
            g = self.graph
        else:
            if not hasattr(self, "_reversed"):
                self._reversed = self.graph.reverse(copy=True)
            g = self._reversed
        start = {}
        # forward: leaving the point toward the target end is always allowed
        start[e.target if forward else e.source] = leg + (1 - f if forward else f) * e.length_m
        if not e.oneway:
            other = e.source if forward else e.target
            start[other] = leg + (f if forward else 1 - f) * e.length_m
        g.add_node("origin")
        for n, c in start.items():
            g.add_edge("origin", n, weight=c)
        try:
            dist = nx.single_source_dijkstra_path_length(
                g, "origin", cutoff=cutoff, weight="weight"
            )
        finally:
            g.remove_node("origin")
        dist.pop("origin")
        return {"dist": dist, "edge": i, "frac": f, "leg": leg}

    def distance_to(self, origin: dict, lon: float, lat: float) -> float:
        """Walking distance from the origin to a location (its egress leg included)."""
        j, f, leg = self.snap(self.project(lon, lat))
        e = self.edges.iloc[j]
        d = origin["dist"]
        best = d.get(e.source, np.inf) + f * e.length_m
        if not e.oneway:
            best = min(best, d.get(e.target, np.inf) + (1 - f) * e.length_m)
        if j == origin["edge"]:
            ahead = f - origin["frac"]
            if ahead >= 0 or not e.oneway:
                best = min(best, origin["leg"] + abs(ahead) * e.length_m)
        return best + leg

    def reached_distance(
        self, origin: dict, budget: float, p: shapely.Point, walk_off: float
    ) -> float:
        """Straight distance from p to the nearest street part reachable within budget."""
        d = origin["dist"]
        best = np.inf
        for j in self.tree.query(p.buffer(walk_off * 2)):
            e = self.edges.iloc[int(j)]
            line, length = self.edges.geometry.iloc[int(j)], e.length_m
            parts = []
            du = d.get(e.source, np.inf)
            if du <= budget:
                parts.append((0.0, min(1.0, (budget - du) / length)))
            dv = d.get(e.target, np.inf)
            if dv <= budget and not e.oneway:
                parts.append((max(0.0, 1 - (budget - dv) / length), 1.0))
            if int(j) == origin["edge"] and origin["leg"] <= budget:
                r = (budget - origin["leg"]) / length
                parts.append((origin["frac"], min(1.0, origin["frac"] + r)))
                if not e.oneway:
                    parts.append((max(0.0, origin["frac"] - r), origin["frac"]))
            for a, b in parts:
                piece = substring(line, a, b, normalized=True)
                best = min(best, piece.distance(p))
        return best

    def nearest_of(self, points: list[tuple[float, float]]):
        """A function giving the walking distance from a location to the nearest of the
        points (legs included): networkx multi-source Dijkstra on the reversed graph."""
        snaps = [self.snap(self.project(lon, lat)) for lon, lat in points]
        g = self.graph.reverse(copy=True)
        g.add_node("services")
        for i, f, leg in snaps:
            e = self.edges.iloc[i]
            # a walker reaches the point from the street's start always, from its end only
            # on a two-way street
            ends = [(e.source, leg + f * e.length_m)]
            if not e.oneway:
                ends.append((e.target, leg + (1 - f) * e.length_m))
            for n, c in ends:
                if not g.has_edge("services", n) or g["services"][n]["weight"] > c:
                    g.add_edge("services", n, weight=c)
        dist = nx.single_source_dijkstra_path_length(g, "services", weight="weight")

        def walk(lon: float, lat: float) -> float:
            j, f, leg = self.snap(self.project(lon, lat))
            e = self.edges.iloc[j]
            best = dist.get(e.target, np.inf) + (1 - f) * e.length_m
            if not e.oneway:
                best = min(best, dist.get(e.source, np.inf) + f * e.length_m)
            for i, fs, ls in snaps:
                if i == j and (fs >= f or not e.oneway):
                    best = min(best, ls + abs(fs - f) * e.length_m)
            return best + leg

        return walk


# ------------------------------------------------------------------ the outline as traced
# before issue 17: one contour at a time (kept here, frozen, to pin the definition)


def traced_outline(engine, lon: float, lat: float, distance: float, walk_off: float = 50.0):
    """The isochrone outline (projected, the engine's UTM) exactly as the engine traced it
    before issue 17, one contour at a time: the parts of streets reached within
    ``distance`` and the access leg sampled every 0.7 cell, the cells they fall in marked on
    a grid of 1/256 of their extent, scipy's exact Euclidean distance transform, and
    contourpy's filled contour at ``walk_off``. Uses the engine only for its search."""
    import contourpy
    from scipy import ndimage
    from shapely.geometry import MultiPolygon, Polygon

    g = engine.graph
    origin = engine.snap(lon, lat)
    x, y = (np.atleast_1d(v) for v in engine.project(lon, lat))
    if float(origin.leg[0]) > 300.0:
        return MultiPolygon([shapely.Point(float(x[0]), float(y[0])).buffer(distance, 32)])
    edge, f0, f1 = engine.search(origin, distance).pieces(distance)
    step = 0.7 * max(1.0, (2 * distance + 2 * walk_off) / 256)
    # points every step along each piece, ends included
    xs, ys = [], []
    for k, a, b in zip(edge.tolist(), f0.tolist(), f1.tolist(), strict=True):
        xy = g.coords[g.offset[k] : g.offset[k + 1]]
        al = g.along[g.offset[k] : g.offset[k + 1]]
        s0, s1 = a * al[-1], b * al[-1]
        s = np.linspace(s0, s1, max(1, int(np.ceil((s1 - s0) / step))) + 1)
        xs.append(np.interp(s, al, xy[:, 0]))
        ys.append(np.interp(s, al, xy[:, 1]))
    leg = float(origin.leg[0])
    if leg <= distance:
        t = np.linspace(0, 1, max(2, int(np.ceil(leg / step)) + 1))
        xs.append(x[0] + (origin.x[0] - x[0]) * t)
        ys.append(y[0] + (origin.y[0] - y[0]) * t)
    px, py = np.concatenate(xs), np.concatenate(ys)
    x0, y0 = px.min() - walk_off, py.min() - walk_off
    x1, y1 = px.max() + walk_off, py.max() + walk_off
    c = max(1.0, max(x1 - x0, y1 - y0) / 256)
    x0, y0 = x0 - 2 * c, y0 - 2 * c
    nx_ = int(np.ceil((x1 + 2 * c - x0) / c)) + 1
    ny_ = int(np.ceil((y1 + 2 * c - y0) / c)) + 1
    free = np.ones((ny_, nx_), dtype=bool)
    free[((py - y0) / c).astype(np.int64), ((px - x0) / c).astype(np.int64)] = False
    gen = contourpy.contour_generator(
        x=x0 + (np.arange(nx_) + 0.5) * c,
        y=y0 + (np.arange(ny_) + 0.5) * c,
        z=ndimage.distance_transform_edt(free) * c,
        fill_type=contourpy.FillType.OuterOffset,
        name="serial",
    )
    polys = []
    for pts, off in zip(*gen.filled(-1.0, walk_off), strict=True):
        rings = [pts[off[i] : off[i + 1]] for i in range(len(off) - 1)]
        polys.append(Polygon(rings[0], rings[1:]))
    return MultiPolygon(polys)


def iou(a, b) -> float:
    """Area of the intersection over area of the union (holes count as outside)."""
    a, b = shapely.make_valid(a), shapely.make_valid(b)
    union = shapely.union(a, b).area
    return shapely.intersection(a, b).area / union if union else 1.0
