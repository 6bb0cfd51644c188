"""Isochrone polygons: the ground within a walk-off distance of the streets reachable in
a budget, part-way streets included, with holes where the network does not reach.

Why a raster: the union of thousands of buffered street pieces is what makes isochrones
slow (80–95 % of the time in networkx and in SQL). Here the reached pieces are sampled
onto a grid, the exact Euclidean distance transform gives every cell its distance to the
nearest reached street, and marching squares traces the walk-off line with interpolation
between cells. The traced edge lies within one cell (``resolution_m``, about 8 m for a
quarter hour) of the exact buffer's edge; docs/access.md says so.

Why compiled (``_band.c``, plain C built by ``pip install -e .``): marking, the distance
transform and the tracing are this product's core and were 55–65 % of an answer's CPU
time through the ``edt`` package and contourpy (3 × 1.2 ms + 3 × 0.9 ms of 13.6 ms for
5/10/15 minutes on the demo, 2026-12-01): the kernel does all three in one pass over
the grid — whole-cell squared distances, only as far as the band reaches, no float
image, uniform runs of the grid skipped eight cells at a time — 15.6 → 3.3 M
instructions a contour (callgrind, the demo), 7.5 → about 1 ms CPU for the three
contours, on the same points and grid, the same outline (area IoU with contourpy's
≥ 0.9999998; tests/test_access_outline.py holds it). The same module samples the reached
streets, runs the bounded search (search.py) and the default simplification (few
vertices within the tolerance, fewer than Douglas–Peucker's: _band.c, farthest_reach).

One pass for every contour (issue 17): the streets are cut and sampled once, ring by ring
(the part reached within the first budget, then what the second adds, …), each sample
tagged with the smallest budget that reaches it; the contour of budget k is traced from
the samples of rings 0..k on its own grid, cropped to those samples plus the band. Each
contour keeps the grid it has alone (1/256 of its own extent), so a contour of a
multi-contour answer is the single-contour answer: a shared coarse grid would move the
small contours' edges by a quarter cell on average (measured: IoU 0.97–0.98 on the demo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import MultiLineString, MultiPolygon

from gis_service.access import _band
from gis_service.access.graph import MIN_COST, F, I, WalkGraph
from gis_service.access.snap import Snapped

#: the grid's longer side, in cells, when no resolution is asked for
TARGET_CELLS = 256
MIN_RESOLUTION_M = 1.0
#: samples along a street, in cells: every cell a street crosses gets at least one
SAMPLE_STEP_CELLS = 0.7
#: up to this many vertices (every single isochrone) GEOS's topology-preserving simplifier
#: takes milliseconds and always has the last word
TOPOLOGY_VERTICES = 50_000
#: the default generalization, in cells of the grid the outline was traced on: the tracing's
#: own tolerance (an edge within about one cell of the exact buffer's)
DEFAULT_TOLERANCE_CELLS = 1.0
#: a generalized outline drops the rings enclosing fewer cells than this
MIN_RING_CELLS = 1.0
#: a ring of up to this many traced vertices that simplifying would spoil keeps them
SHORT_RING_VERTICES = 64
#: metres per degree of latitude (the longest a degree of longitude gets)
M_PER_DEGREE = 111_320.0


#: a MultiPolygon as shapely's ragged arrays: vertices (p, 2), ring offsets into them,
#: part offsets into the rings
Rings = tuple[F, I, I]


@dataclass
class Contour:
    minutes: float
    distance_m: float
    #: projected; None: built from ``rings`` when first asked for (``polygon``)
    shape: MultiPolygon | None
    method: str
    resolution_m: float
    #: the traced polygon as ragged arrays (the tracer's own output), when traced
    rings: Rings | None = None

    @property
    def polygon(self) -> MultiPolygon:
        """The contour as a shapely MultiPolygon, projected (the answer's fast way reads
        ``rings`` and never builds it)."""
        if self.shape is None:
            self.shape = multipolygon(self.rings) if self.rings is not None else MultiPolygon()
        return self.shape


def contour_cell(distance: float, walk_off: float, resolution: float | None = None) -> float:
    """The sampling cell of a contour before its extent is known: the asked resolution,
    else 1/256 of the widest it can be (2 × (distance + walk_off))."""
    return resolution or max(MIN_RESOLUTION_M, (2 * distance + 2 * walk_off) / TARGET_CELLS)


class Samples(NamedTuple):
    """reached_samples' answer: points x, y (projected); per budget, how many leading
    points it reaches and their box (min x, min y, max x, max y)."""

    x: F
    y: F
    ends: list[int]
    boxes: list[list[float]]


def reached_samples(
    graph: WalkGraph,
    arcs: I,
    from_dist: F,
    origins: Snapped,
    origin_x: F,
    origin_y: F,
    budgets: list[float],
    steps: list[float],
) -> Samples:
    """The ground reached within each of ``budgets`` (ascending), sampled once: points on
    the parts of streets and on the access legs, ring by ring. Returns x, y and, per
    budget k, how many leading samples are reached within it (rings 0..k) and their box;
    ring k is sampled every ``steps[k]`` metres (at most; evenly along each part, both
    ends included).

    Ring k of a street walked from a point reached at distance s, over L metres, is the
    stretch from (lo − s)/L to (hi − s)/L of it (clipped to 0..1; lo, hi the budgets
    before and of the ring), present when s ≤ hi and it is not empty or s > lo (the point
    where the walk first arrives counts). The parts of streets are those of
    search.reached_pieces: every arc whose start is reached (s its start distance), as far
    along as the rest of the budget goes, and the origins' own streets both ways (one way
    on a one-way street) from where they stand (s the leg). A ring's parts of one street
    that overlap are merged, so a street reached from both ends is sampled once. A leg —
    the straight line from the origin to where it meets the network — is drawn whole from
    the first budget that covers it.

    Compiled (_band.reached): the same rule in numpy was about seventy small array
    operations a ring, 0.28 ms of a 5/10/15-minute answer on the demo (2026-12-01)."""
    # by street, so each ring's stretches reach the merge sorted but for the origins' own
    by_edge = np.argsort(graph.arc_edge[arcs], kind="stable")
    arcs, from_dist = arcs[by_edge], from_dist[by_edge]
    edge_of = graph.arc_edge[arcs]
    k = origins.edge

    def f64(v) -> np.ndarray:
        return np.ascontiguousarray(v, dtype=np.float64)

    def flags(v) -> np.ndarray:
        return np.ascontiguousarray(v, dtype=np.uint8)

    x, y, ends, boxes = _band.reached(
        np.ascontiguousarray(edge_of, dtype=np.int64),
        f64(from_dist),
        f64(np.maximum(graph.length[edge_of], MIN_COST)),
        flags(graph.arc_forward[arcs]),
        np.ascontiguousarray(k, dtype=np.int64),
        f64(origins.frac),
        f64(origins.leg),
        f64(np.maximum(graph.length[k], MIN_COST)),
        flags(~graph.oneway[k]),
        f64(np.broadcast_to(origin_x, k.shape)),
        f64(np.broadcast_to(origin_y, k.shape)),
        f64(origins.x),
        f64(origins.y),
        f64(budgets),
        f64(steps),
        np.ascontiguousarray(graph.offset, dtype=np.int64),  # no copy: already so
        f64(graph.along),
        f64(graph.coords),
    )
    return Samples(
        np.frombuffer(x, dtype=np.float64),
        np.frombuffer(y, dtype=np.float64),
        np.frombuffer(ends, dtype=np.int64).tolist(),
        np.frombuffer(boxes, dtype=np.float64).reshape(-1, 4).tolist(),
    )


def _merged(edge: I, f0: F, f1: F) -> tuple[I, F, F]:
    """Overlapping parts of the same street as one, sorted by (street, start): what
    _band.reached does to each ring's parts (its merge_pieces, an insertion sort: the parts
    come sorted by street but for a few), open to the tests."""
    if len(edge) < 2:
        return edge, f0, f1
    e, a, b = _band.merge(
        np.ascontiguousarray(edge, dtype=np.int64),
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(f1, dtype=np.float64),
    )
    return (
        np.frombuffer(e, dtype=np.int64),
        np.frombuffer(a, dtype=np.float64),
        np.frombuffer(b, dtype=np.float64),
    )


def band_rings(
    x: F,
    y: F,
    walk_off: float,
    resolution: float | None = None,
    box: list[float] | None = None,
) -> tuple[Rings, float]:
    """The ground within ``walk_off`` of the sampled points, with its holes, traced on a
    grid cropped to the points plus the band (by default 1/256 of that extent a cell), as
    ragged arrays (no part: nothing traced), and the cell. ``box``: the points' (min x,
    min y, max x, max y) when the caller has it (reached_samples)."""
    pad = walk_off + 0.0
    x_lo, y_lo, x_hi, y_hi = box if box is not None else (x.min(), y.min(), x.max(), y.max())
    x0, y0 = x_lo - pad, y_lo - pad
    x1, y1 = x_hi + pad, y_hi + pad
    if resolution is None:
        resolution = max(MIN_RESOLUTION_M, max(x1 - x0, y1 - y0) / TARGET_CELLS)
    c = float(resolution)  # a Python float: numpy's scalars round() ten times slower
    # one empty cell all round, so every contour closes inside the grid
    x0, y0 = x0 - 2 * c, y0 - 2 * c
    nx_ = int(np.ceil((x1 + 2 * c - x0) / c)) + 1
    ny_ = int(np.ceil((y1 + 2 * c - y0) / c)) + 1
    coords, rings, parts = _band.trace(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        x0,
        y0,
        c,
        nx_,
        ny_,
        walk_off,
    )
    return (
        np.frombuffer(coords, dtype=np.float64).reshape(-1, 2),
        np.frombuffer(rings, dtype=np.int64),
        np.frombuffer(parts, dtype=np.int64),
    ), c


def multipolygon(rings: Rings) -> MultiPolygon:
    """Ragged arrays → a shapely MultiPolygon (empty without parts)."""
    coords, ring_at, part_at = rings
    if len(part_at) < 2:
        return MultiPolygon()
    return shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON,
        coords,
        (ring_at, part_at, np.array([0, len(part_at) - 1])),
    )[0]


def band_polygon(
    x: F, y: F, walk_off: float, resolution: float | None = None
) -> tuple[MultiPolygon, float]:
    """band_rings as a shapely MultiPolygon."""
    rings, c = band_rings(x, y, walk_off, resolution)
    return multipolygon(rings), c


def circle(x: float, y: float, radius: float) -> MultiPolygon:
    return MultiPolygon([shapely.Point(x, y).buffer(radius, quad_segs=32)])


# ------------------------------------------------------------------ the outline as answered


def coordinate_decimals(cell_m: float) -> int:
    """Decimals of a degree written for an outline traced on ``cell_m`` cells: the fewest
    whose unit (≤ 111 m × 10⁻ᵈ⁺³) is at most a quarter cell, so rounding moves a vertex by
    at most an eighth of a cell — less than the tracing's own error (about a quarter cell
    on average). 8 m cells: 5 decimals (≤ 0.56 m); 1–4 m cells: 6 (≤ 0.06 m)."""
    cell = max(cell_m, MIN_RESOLUTION_M)
    return min(7, max(4, math.ceil(math.log10(4 * M_PER_DEGREE / cell))))


def ragged(poly: MultiPolygon) -> tuple[F, I, I]:
    """A MultiPolygon's vertices (p, 2), its rings' offsets into them and its parts'
    offsets into the rings (shapely's ragged-array layout), from four vectorized GEOS
    calls: ``shapely.to_ragged_array`` takes 0.18 ms of Python for the same."""
    parts = shapely.get_parts(poly)
    rings = shapely.get_rings(parts)
    ring_at = np.zeros(len(rings) + 1, dtype=np.int64)
    np.cumsum(shapely.get_num_coordinates(rings), out=ring_at[1:])
    part_at = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(shapely.get_num_interior_rings(parts) + 1, out=part_at[1:])
    return shapely.get_coordinates(rings), ring_at, part_at


def denoised(poly: MultiPolygon, denoise: float) -> MultiPolygon:
    """Valhalla's ``denoise``: every ring — island or hole — whose area is less than
    ``denoise`` × the area of the largest outer ring is dropped (a dropped hole is filled).
    0 keeps every ring; 1 keeps only the largest island, without holes."""
    if denoise <= 0 or poly.is_empty:
        return poly
    parts = shapely.get_parts(poly)
    shells = shapely.polygons(shapely.get_exterior_ring(parts))
    areas = shapely.area(shells)
    floor = denoise * areas.max()
    kept = []
    for part, area in zip(parts, areas, strict=True):
        if area < floor or (denoise >= 1 and area < areas.max()):
            continue
        holes = [h for h in part.interiors if shapely.area(shapely.Polygon(h)) >= floor]
        kept.append(shapely.Polygon(part.exterior, holes))
    return MultiPolygon(kept[:1] if denoise >= 1 else kept)


def default_tolerance(cell: float) -> float:
    """The generalization an answer gets unless one is asked for: ``DEFAULT_TOLERANCE_CELLS``
    of the grid cell the outline was traced on, the tracing's own tolerance."""
    return DEFAULT_TOLERANCE_CELLS * cell


def simplified_rings(rings: Rings, tolerance: float, min_area: float) -> tuple[Rings, int, float]:
    """_band.simplify on an outline's ragged arrays: (the outline with every ring simplified
    and those enclosing less than ``min_area`` dropped — an island with its holes —, how
    many rings of more than SHORT_RING_VERTICES kept their trace because they would
    collapse, the area the simplified outline encloses). Not checked for validity: the
    caller does (generalized: GEOS; the answer's fast way: _band.encode after rounding)."""
    coords, ring_at, part_at = rings
    xy, ring_end, part_end, collapsed, area = _band.simplify(
        np.ascontiguousarray(coords, dtype=np.float64),
        np.ascontiguousarray(ring_at, dtype=np.int64),
        np.ascontiguousarray(part_at, dtype=np.int64),
        tolerance,
        SHORT_RING_VERTICES,
        min_area,
    )
    out = (
        np.frombuffer(xy, dtype=np.float64).reshape(-1, 2),
        np.frombuffer(ring_end, dtype=np.int64),
        np.frombuffer(part_end, dtype=np.int64),
    )
    return out, collapsed, area


def rings_area(rings: Rings) -> float:
    """The area an outline's ragged arrays enclose (shells less their holes), in the
    coordinates' units squared."""
    coords, ring_at, part_at = rings
    if len(part_at) < 2:
        return 0.0
    x, y = coords[:, 0], coords[:, 1]
    twice = np.zeros(len(x))
    np.cumsum(x[:-1] * y[1:] - x[1:] * y[:-1], out=twice[1:])
    each = np.abs(twice[ring_at[1:] - 1] - twice[ring_at[:-1]]) / 2
    shells = each[part_at[:-1]].sum()
    return float(2 * shells - each.sum())


def _simplified(poly: MultiPolygon, tolerance: float, min_area: float) -> tuple[MultiPolygon, int]:
    """simplified_rings on a shapely outline."""
    out, collapsed, _ = simplified_rings(ragged(poly), tolerance, min_area)
    return multipolygon(out), collapsed


def generalized(poly: MultiPolygon, tolerance: float, min_area: float = 0.0) -> MultiPolygon:
    """Simplified within ``tolerance`` metres (no vertex moves farther), topology preserved
    (rings neither cross nor vanish); rings enclosing less than ``min_area`` m² are
    dropped first (a dropped hole is filled). The usual case is _band.simplify's farthest
    reach; where it would make a ring collapse or cross, GEOS's Douglas–Peucker
    (TopologyPreservingSimplifier) has the last word."""
    if tolerance <= 0 or poly.is_empty:
        return poly
    # the usual case in one compiled pass (_band.simplify: farthest reach ring by ring, a
    # short ring that would collapse keeps its trace) and one validity check by
    # GEOS: 0.3 ms where the checks ring by ring below take 1.2 ms. A long ring that
    # collapses, or an invalid result, takes the way below.
    quick, collapsed = _simplified(poly, tolerance, min_area)
    if not collapsed and shapely.is_valid(quick):
        return quick
    if min_area > 0:  # the tiny rings go whatever way the rest takes
        poly, _ = _simplified(poly, 0.0, min_area)
        if poly.is_empty:
            return poly
    # plain Douglas–Peucker, ring by ring, each ring a closed line from its first vertex
    # (so no vertex moves farther than the tolerance), is ten times faster than GEOS's
    # topology-preserving variant, which takes over where a ring would collapse, cross
    # itself or meet another. A large trace contourpy already left flawed (rings meeting
    # at a saddle of a union) would take it seconds: there those rings keep their trace.
    parts = shapely.get_parts(poly)
    rings, part = shapely.get_rings(parts, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    lines = shapely.linestrings(xy, indices=ring)
    simple = shapely.simplify(lines, tolerance, preserve_topology=False)
    small = len(xy) <= TOPOLOGY_VERTICES
    # a short ring (a small hole) simplification would spoil keeps its trace: a few bytes
    short = shapely.get_num_coordinates(lines) <= SHORT_RING_VERTICES
    spoilt = (shapely.get_num_coordinates(simple) < 4) | ~shapely.is_simple(simple)
    simple[spoilt & short] = lines[spoilt & short]
    for _ in range(3):
        bad = (shapely.get_num_coordinates(simple) < 4) | ~shapely.is_simple(simple)
        i, j = shapely.STRtree(simple).query(simple, predicate="intersects")
        clash = i != j
        if not (bad.any() or clash.any()):
            break
        if small or shapely.is_valid(poly):
            return _polygons(shapely.simplify(poly, tolerance, preserve_topology=True))
        bad[i[clash]] = bad[j[clash]] = True
        simple[bad] = lines[bad]
    coords = shapely.get_coordinates(simple)
    ring_end = np.cumsum(shapely.get_num_coordinates(simple))
    part_end = np.cumsum(np.bincount(part, minlength=len(parts)))
    out = shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON,
        coords,
        (np.append(0, ring_end), np.append(0, part_end), np.array([0, len(parts)])),
    )[0]
    if small and not shapely.is_valid(out):
        out = _polygons(shapely.simplify(poly, tolerance, preserve_topology=True))
    return out


def _polygons(geom: shapely.Geometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    return MultiPolygon([p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"])


def shaped(
    poly: MultiPolygon, cell: float, generalize: float | None = None, denoise: float = 0.0
) -> MultiPolygon:
    """The traced outline as answered: small rings dropped (``denoise``), then generalized
    within ``generalize`` metres (default: default_tolerance, one ``cell`` of the grid the
    outline was traced on, the tracing's own tolerance; 0: the trace as it is). A
    generalized outline also loses the rings enclosing less than one cell (cell²): below
    what the grid resolves, and the rings that rounding to degrees would collapse."""
    tolerance = default_tolerance(cell) if generalize is None else generalize
    floor = MIN_RING_CELLS * cell * cell if tolerance > 0 else 0.0
    return generalized(denoised(poly, denoise), tolerance, floor)


def as_lines(poly: MultiPolygon) -> MultiLineString:
    """The outline as lines (Valhalla's ``polygons=false``): every ring, outer or hole."""
    rings = []
    for part in shapely.get_parts(poly):
        rings.append(part.exterior)
        rings.extend(part.interiors)
    return MultiLineString(rings)
