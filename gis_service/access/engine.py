"""AccessEngine: one loaded network and the questions asked of it (isochrones, nearest).

Built once per network version and shared by all requests of a process; read-only after
construction, so concurrent requests need no lock.
"""

from __future__ import annotations

import itertools

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon
from shapely.ops import transform

from gis_service.access.graph import F, WalkGraph
from gis_service.access.isochrone import (
    SAMPLE_STEP_CELLS,
    Contour,
    band_polygon,
    band_rings,
    circle,
    contour_cell,
    reached_samples,
)
from gis_service.access.search import LocalSearch, nearest_sources, reached_arcs, search_from
from gis_service.access.snap import SegmentIndex, Snapped

#: how far from the network a location may be and still be walked from it; farther, the
#: answer falls back to straight-line distance and says so (method "euclidean")
MAX_ACCESS_M = 300.0


class AccessEngine:
    def __init__(self, graph: WalkGraph) -> None:
        self.graph = graph
        self.segments = SegmentIndex(graph)

    @property
    def version(self) -> int:
        return self.graph.version

    def project(self, lon: F | float, lat: F | float) -> tuple[F, F]:
        return self.graph.projection.to_xy(lon, lat)

    def snap(self, lon: F | float, lat: F | float) -> Snapped:
        x, y = self.project(lon, lat)
        return self.snap_projected(x, y)

    def snap_projected(self, x: F | float, y: F | float) -> Snapped:
        """``snap`` of points already projected (the engine's metric CRS)."""
        return self.segments.nearest(np.atleast_1d(x), np.atleast_1d(y))

    def to_wgs84(self, geom):
        inv = self.graph.projection.inverse
        return transform(lambda x, y, z=None: inv.transform(x, y), geom)

    def search(self, origin: Snapped, budget: float) -> LocalSearch:
        return search_from(self.graph, origin, budget)

    def isochrones(
        self,
        lon: float,
        lat: float,
        distances: list[float],
        walk_off: float,
        resolution: float | None = None,
        max_access: float = MAX_ACCESS_M,
        origin: Snapped | None = None,
        xy: tuple[F, F] | None = None,
    ) -> list[Contour]:
        """One polygon per budget (projected), in the order of ``distances``, from one
        pass: one search to the largest budget, the reached streets cut and sampled once
        (isochrone.reached_samples), then each contour traced on its own grid. ``origin``,
        ``xy``: (lon, lat) snapped (``snap``) and projected already, when the caller has
        them."""
        x, y = (np.atleast_1d(v) for v in (self.project(lon, lat) if xy is None else xy))
        if origin is None:
            origin = self.snap_projected(x, y)
        if float(origin.leg[0]) > max_access:
            return [
                Contour(0, d, circle(float(x[0]), float(y[0]), d), "euclidean", 0.0)
                for d in distances
            ]
        budgets = sorted(set(distances))
        arcs, from_dist = reached_arcs(self.graph, origin, budgets[-1])
        # a sample at least every 0.7 cell marks every cell a street crosses
        steps = [SAMPLE_STEP_CELLS * contour_cell(d, walk_off, resolution) for d in budgets]
        px, py, ends, boxes = reached_samples(
            self.graph, arcs, from_dist, origin, x, y, budgets, steps
        )
        traced = {}
        for d, end, box in zip(budgets, ends, boxes, strict=True):
            if end == 0:
                traced[d] = Contour(0, d, MultiPolygon(), "network", 0.0)
                continue
            rings, cell = band_rings(px[:end], py[:end], walk_off, resolution, box)
            traced[d] = Contour(0, d, None, "network", cell, rings)
        return [traced[d] for d in distances]

    def union_polygon(
        self,
        lon: F,
        lat: F,
        budget: float,
        walk_off: float,
        resolution: float,
        max_access: float = MAX_ACCESS_M,
    ) -> MultiPolygon:
        """The union of the isochrones of many origins, drawn in one pass: one multi-source
        search, then the reached streets of all of them traced together (the union of
        bands is the band of the union), instead of unioning hundreds of polygons."""
        origins = self.snap(lon, lat)
        x, y = self.project(lon, lat)
        near = origins.leg <= max_access
        parts = []
        if near.any():
            sub = Snapped(
                origins.edge[near],
                origins.frac[near],
                origins.leg[near],
                origins.x[near],
                origins.y[near],
            )
            node_dist, _ = nearest_sources(self.graph, sub, toward=False, limit=budget)
            g = self.graph
            arcs = np.nonzero(node_dist[g.arc_from] <= budget)[0]
            px, py, *_ = reached_samples(
                g,
                arcs,
                node_dist[g.arc_from[arcs]],
                sub,
                np.asarray(x)[near],
                np.asarray(y)[near],
                [budget],
                [SAMPLE_STEP_CELLS * resolution],
            )
            poly, _ = band_polygon(px, py, walk_off, resolution)
            parts.append(poly)
        for cx, cy in zip(np.asarray(x)[~near], np.asarray(y)[~near], strict=True):
            parts.append(circle(float(cx), float(cy), budget))
        if not parts:
            return MultiPolygon()
        merged = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        return (
            merged
            if isinstance(merged, MultiPolygon)
            else MultiPolygon([g for g in shapely.get_parts(merged) if g.geom_type == "Polygon"])
        )

    def path_line(
        self,
        found: LocalSearch,
        target: Snapped,
        i: int,
        start_xy: tuple[float, float],
        end_xy: tuple[float, float],
    ) -> LineString:
        """The walked line from the start to target i (projected)."""
        g = self.graph
        k, f = int(target.edge[i]), float(target.frac[i])
        o_k, o_t = found.origin_edge, found.origin_frac
        origin_pt = g.point_at(o_k, o_t)
        target_pt = (float(target.x[i]), float(target.y[i]))
        length = g.length[k]
        u_d = found._node_dist(np.array([g.u[k]]))[0] + f * length
        v_d = np.inf if g.oneway[k] else found._node_dist(np.array([g.v[k]]))[0] + (1 - f) * length
        parts: list = [start_xy, tuple(origin_pt)]
        direct = np.inf
        if k == o_k and (f >= o_t or not g.oneway[k]):
            direct = found.origin_leg + abs(f - o_t) * length
        if direct <= min(u_d, v_d):
            lo, hi = sorted((o_t, f))
            seg = g.edge_line(k, lo, hi)
            parts.extend(map(tuple, seg if f >= o_t else seg[::-1]))
        else:
            via_u = u_d <= v_d
            end_node = int(g.u[k] if via_u else g.v[k])
            nodes = found.path_nodes(end_node)
            parts.extend(map(tuple, self._origin_leg_line(found, nodes[0])))
            for a, b in itertools.pairwise(nodes):
                parts.extend(map(tuple, self._edge_between(a, b)))
            seg = g.edge_line(k, 0.0, f) if via_u else g.edge_line(k, f, 1.0)[::-1]
            parts.extend(map(tuple, seg))
        parts.extend([target_pt, end_xy])
        return LineString(parts)

    def _origin_leg_line(self, found: LocalSearch, first: int) -> F:
        g, k, t = self.graph, found.origin_edge, found.origin_frac
        if first == g.v[k]:
            return g.edge_line(k, t, 1.0)
        return g.edge_line(k, 0.0, t)[::-1]

    def _edge_between(self, a: int, b: int) -> F:
        g = self.graph
        out = g.arc_order[g.out_ptr[a] : g.out_ptr[a + 1]]
        out = out[g.arc_to[out] == b]
        arc = out[np.argmin(g.arc_cost[out])]
        e = int(g.arc_edge[arc])
        line = g.edge_line(e)
        return line if g.arc_forward[arc] else line[::-1]
