"""The walking network in memory: numpy arrays in a metric projection, ready for searches.

Why in memory: an isochrone must answer in milliseconds and the reach of every building in
one pass; both are array work on a graph that changes only when a network is imported.
PostGIS stays the store (walk_node / walk_edge, pgRouting's layout); this is its read copy.

Costs are metres along the street, from ``walk_edge.length_m`` (measured on the spheroid).
Coordinates are projected to the UTM zone of the network, used only for snapping, for
cutting streets part-way and for drawing polygons; positions along a street are fractions
of its length, so the projection never changes a distance that is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from scipy.sparse import csr_matrix

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741

#: Zero-cost arcs vanish from a sparse matrix; the smallest cost we give any arc.
MIN_COST = 1e-6


def utm_crs(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@dataclass
class Projection:
    """WGS-84 ⇄ the network's UTM zone."""

    crs: CRS
    forward: Transformer = field(init=False)
    inverse: Transformer = field(init=False)

    def __post_init__(self) -> None:
        self.forward = Transformer.from_crs(4326, self.crs, always_xy=True)
        self.inverse = Transformer.from_crs(self.crs, 4326, always_xy=True)

    def to_xy(self, lon: F | float, lat: F | float) -> tuple[F, F]:
        x, y = self.forward.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x, float), np.asarray(y, float)

    def to_lonlat(self, x: F, y: F) -> tuple[F, F]:
        lon, lat = self.inverse.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon, float), np.asarray(lat, float)


@dataclass
class WalkGraph:
    """Nodes 0..n-1, edges 0..m-1 (an edge may be one-way: only u → v).

    Edge k's shape is ``coords[offset[k]:offset[k+1]]`` from u to v, with ``along`` the
    projected distance of each vertex from the edge's start.
    """

    node_id: I  # database ids
    node_xy: F  # (n, 2)
    u: I
    v: I
    length: F  # metres
    oneway: NDArray[np.bool_]
    edge_id: I  # database ids
    coords: F  # (p, 2) projected vertices of all edges, edge after edge
    offset: I  # (m + 1,)
    along: F  # (p,) projected distance from the edge's first vertex
    projection: Projection
    version: int = 0
    #: arcs, both directions where allowed: from, to, cost, edge, direction (+1 u→v, -1 v→u)
    arc_from: I = field(init=False)
    arc_to: I = field(init=False)
    arc_cost: F = field(init=False)
    arc_edge: I = field(init=False)
    arc_forward: NDArray[np.bool_] = field(init=False)
    #: the same arcs as a CSR matrix with one arc (the cheapest) per node pair
    matrix: csr_matrix = field(init=False)
    #: CSR adjacency over arcs: out-arcs of node i are arc_order[out_ptr[i]:out_ptr[i+1]]
    out_ptr: I = field(init=False)
    arc_order: I = field(init=False)

    def __post_init__(self) -> None:
        back = ~self.oneway
        self.arc_from = np.concatenate([self.u, self.v[back]])
        self.arc_to = np.concatenate([self.v, self.u[back]])
        self.arc_cost = np.maximum(np.concatenate([self.length, self.length[back]]), MIN_COST)
        self.arc_edge = np.concatenate([np.arange(self.edge_count), np.nonzero(back)[0]])
        self.arc_forward = np.arange(len(self.arc_from)) < self.edge_count
        self.matrix = arcs_matrix(self.arc_from, self.arc_to, self.arc_cost, self.node_count)
        order = np.argsort(self.arc_from, kind="stable")
        self.arc_order = order
        self.out_ptr = np.searchsorted(self.arc_from[order], np.arange(self.node_count + 1))

    @property
    def node_count(self) -> int:
        return len(self.node_id)

    @property
    def edge_count(self) -> int:
        return len(self.u)

    @property
    def proj_length(self) -> F:
        """Projected length of each edge (cached: the searches ask for it every time)."""
        cached = self.__dict__.get("_proj_length")
        if cached is None:
            cached = self.along[self.offset[1:] - 1]
            self.__dict__["_proj_length"] = cached
        return cached

    def matrix_with_sources(self, frm: I, to: I, cost: F, reverse: bool) -> csr_matrix:
        """The arc matrix (reversed if asked) plus rows for virtual source nodes n, n+1, …

        Concatenated onto the cached CSR arrays instead of rebuilt from two million arcs:
        a multi-source search then costs the search, not the matrix."""
        base = self.__dict__.get("_reverse_matrix") if reverse else self.matrix
        if base is None:
            base = self.matrix.T.tocsr()
            base.sort_indices()
            self.__dict__["_reverse_matrix"] = base
        n = self.node_count
        s = int(frm.max()) - n + 1 if len(frm) else 0
        extra = arcs_matrix(frm - n, to, cost, max(n, s))[:s]
        indptr = np.concatenate([base.indptr, base.indptr[-1] + extra.indptr[1:]])
        return csr_matrix(
            (
                np.concatenate([base.data, extra.data]),
                np.concatenate([base.indices, extra.indices]),
                indptr,
            ),
            shape=(n + s, n + s),
        )

    def edge_line(self, k: int, f0: float = 0.0, f1: float = 1.0) -> F:
        """The part of edge k between fractions f0 < f1 of its length, projected."""
        xy = self.coords[self.offset[k] : self.offset[k + 1]]
        al = self.along[self.offset[k] : self.offset[k + 1]]
        total = al[-1]
        a, b = f0 * total, f1 * total
        inner = (al > a) & (al < b)
        start = _interp(xy, al, a)
        end = _interp(xy, al, b)
        return np.vstack([start, xy[inner], end])

    def point_at(self, k: int, f: float) -> F:
        xy = self.coords[self.offset[k] : self.offset[k + 1]]
        al = self.along[self.offset[k] : self.offset[k + 1]]
        return _interp(xy, al, f * al[-1])


def _interp(xy: F, al: F, s: float) -> F:
    return np.array([np.interp(s, al, xy[:, 0]), np.interp(s, al, xy[:, 1])])


def arcs_matrix(frm: I, to: I, cost: F, size: int) -> csr_matrix:
    """CSR matrix keeping the cheapest of parallel arcs (scipy would add them up)."""
    key = frm * size + to
    order = np.lexsort((cost, key))
    key_sorted = key[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    keep = order[first]
    return csr_matrix((cost[keep], (frm[keep], to[keep])), shape=(size, size))


def build_graph(
    node_id: I,
    node_lon: F,
    node_lat: F,
    edge_id: I,
    source: I,
    target: I,
    length: F,
    oneway: NDArray[np.bool_],
    lines: NDArray[np.object_],
    version: int = 0,
) -> WalkGraph:
    """Arrays from the store → a WalkGraph. ``lines`` are shapely LineStrings in WGS-84."""
    if len(node_id) == 0:
        raise ValueError("the walking network is empty")
    lon0, lat0 = float(np.median(node_lon)), float(np.median(node_lat))
    proj = Projection(utm_crs(lon0, lat0))
    order = np.argsort(node_id)
    node_id = np.asarray(node_id, np.int64)[order]
    nx_, ny_ = proj.to_xy(np.asarray(node_lon)[order], np.asarray(node_lat)[order])
    u = np.searchsorted(node_id, source)
    v = np.searchsorted(node_id, target)
    if len(u) and (node_id[np.minimum(u, len(node_id) - 1)] != source).any():
        raise ValueError("an edge names a node that does not exist")
    lonlat, index = shapely.get_coordinates(lines, return_index=True)
    x, y = proj.to_xy(lonlat[:, 0], lonlat[:, 1])
    coords = np.column_stack([x, y])
    counts = np.bincount(index, minlength=len(lines))
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    step = np.zeros(len(coords))
    step[1:] = np.hypot(np.diff(x), np.diff(y))
    step[offset[:-1]] = 0.0  # each edge starts at zero
    cum = np.cumsum(step)
    along = cum - np.repeat(cum[offset[:-1]], counts)
    return WalkGraph(
        node_id=node_id,
        node_xy=np.column_stack([nx_, ny_]),
        u=u.astype(np.int64),
        v=v.astype(np.int64),
        length=np.asarray(length, float),
        oneway=np.asarray(oneway, bool),
        edge_id=np.asarray(edge_id, np.int64),
        coords=coords,
        offset=offset,
        along=along,
        projection=proj,
        version=version,
    )
