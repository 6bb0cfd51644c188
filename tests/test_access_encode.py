"""The isochrone answer's fast way (service._written → _band.encode): the outline in degrees
as GeoJSON coordinate text, rounded to the grid's precision, with an exact validity check
standing in for GEOS's. Held against numpy's rounding, GEOS's is_valid and the GEOS way
(isochrone.shaped, service.wgs84_outline, service.geojson_geometry) on real answers."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
import shapely

from gis_service.access import _band, service
from gis_service.access.isochrone import (
    band_polygon,
    band_rings,
    coordinate_decimals,
    ragged,
    rings_area,
    shaped,
    simplified_rings,
)
from gis_service.access.store import EngineCache
from gis_service.db.engine import get_engine


def _encode(geom: shapely.MultiPolygon, decimals: int, lines: bool = False) -> bytes | None:
    coords, ring_at, part_at = ragged(geom)
    return _band.encode(np.ascontiguousarray(coords), ring_at, part_at, decimals, lines)


def _deduped(ring: np.ndarray) -> list[list[float]]:
    keep = np.ones(len(ring), dtype=bool)
    keep[1:] = (ring[1:] != ring[:-1]).any(axis=1)
    return ring[keep].tolist()


def _random_outline(seed: int, scale: float) -> shapely.MultiPolygon:
    """A band round random street-like lines (islands and holes), in degrees near
    Zhengzhou: ``scale`` degrees a metre."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(rng.integers(5, 40)):
        a = rng.uniform(0, 1500, 2)
        b = a + rng.uniform(-400, 400, 2)
        lines.append(a + (b - a) * np.linspace(0, 1, 200)[:, None])
    xy = np.concatenate(lines)
    poly, _ = band_polygon(
        xy[:, 0], xy[:, 1], float(rng.uniform(20, 60)), float(rng.uniform(2, 10))
    )
    return shapely.transform(poly, lambda p: p * scale + [113.6, 34.7])


@pytest.mark.parametrize("seed", range(8))
def test_the_text_is_numpys_rounding_in_geojsons_nesting(seed):
    outline = _random_outline(seed, 1e-5)
    for decimals in (4, 5, 6, 7):
        text = _encode(outline, decimals)
        rounded = shapely.transform(outline, lambda p, d=decimals: np.round(p, d))
        if text is None:  # refused: GEOS finds the rounded outline invalid too, or it is close
            continue
        written = json.loads(text)
        assert len(written) == len(outline.geoms)
        for part, theirs in zip(rounded.geoms, written, strict=True):
            rings = [part.exterior, *part.interiors]
            assert [_deduped(np.asarray(r.coords)) for r in rings] == theirs
        lines = json.loads(_encode(outline, decimals, lines=True))
        assert lines == [ring for part in written for ring in part]
        # no more decimals than asked
        for number in text.replace(b"[", b",").replace(b"]", b",").split(b","):
            if number:
                assert len(number.split(b".")[1]) <= decimals


@pytest.mark.parametrize("seed", range(12))
def test_every_outline_written_is_valid_for_geos(seed):
    """Sound: coarse rounding pinches rings; whatever the check lets through GEOS finds
    valid, and what GEOS finds invalid is refused."""
    outline = _random_outline(seed, 1e-5)
    seen = {"written": 0, "refused": 0}
    for decimals in (3, 4, 5):
        rounded = shapely.transform(outline, lambda p, d=decimals: np.round(p, d))
        text = _encode(outline, decimals)
        if text is None:
            seen["refused"] += 1
            continue
        seen["written"] += 1
        assert shapely.is_valid(rounded), shapely.is_valid_reason(rounded)
        assert shapely.is_valid(
            shapely.from_geojson(
                json.dumps({"type": "MultiPolygon", "coordinates": json.loads(text)})
            )
        )
    assert seen["written"] > 0


SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)]


@pytest.mark.parametrize(
    ("polygons", "valid"),
    [
        ([shapely.Polygon(SQUARE)], True),
        ([shapely.Polygon(SQUARE, [[(2, 2), (2, 8), (8, 8), (8, 2), (2, 2)]])], True),
        # an island inside another's hole
        (
            [
                shapely.Polygon(SQUARE, [[(2, 2), (2, 8), (8, 8), (8, 2), (2, 2)]]),
                shapely.Polygon([(4, 4), (6, 4), (6, 6), (4, 6), (4, 4)]),
            ],
            True,
        ),
        # a bow tie
        ([shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])], False),
        # a spike back along its own edge
        ([shapely.Polygon([(0, 0), (10, 0), (10, 10), (10, 5), (10, 10), (0, 10), (0, 0)])], False),
        # a ring touching itself at a vertex
        (
            [shapely.Polygon([(0, 0), (10, 0), (5, 5), (10, 10), (0, 10), (5, 5), (0, 0)])],
            False,
        ),
        # a hole touching its shell, one outside it, two holes one in the other
        ([shapely.Polygon(SQUARE, [[(0, 2), (5, 8), (5, 2), (0, 2)]])], False),
        ([shapely.Polygon(SQUARE, [[(12, 2), (12, 8), (18, 8), (18, 2), (12, 2)]])], False),
        (
            [
                shapely.Polygon(
                    SQUARE,
                    [
                        [(1, 1), (1, 9), (9, 9), (9, 1), (1, 1)],
                        [(3, 3), (3, 6), (6, 6), (6, 3), (3, 3)],
                    ],
                )
            ],
            False,
        ),
        # two islands overlapping, one inside the other's shell
        ([shapely.Polygon(SQUARE), shapely.Polygon([(5, 5), (15, 5), (15, 15), (5, 5)])], False),
        ([shapely.Polygon(SQUARE), shapely.Polygon([(2, 2), (4, 2), (4, 4), (2, 2)])], False),
        # collapsed by rounding
        ([shapely.Polygon([(0, 0), (0.001, 0), (0.001, 0.001), (0, 0)])], False),
    ],
)
def test_the_check_refuses_what_ogc_calls_invalid(polygons, valid):
    geom = shapely.MultiPolygon(polygons)
    text = _encode(shapely.transform(geom, lambda p: p * 1e-4 + [113.6, 34.7]), 6)
    assert (text is not None) is valid
    if valid:
        assert shapely.is_valid(geom)


def test_rings_area_is_the_area_shapely_gives():
    for seed in range(4):
        outline = _random_outline(seed, 1.0)
        assert rings_area(ragged(outline)) == pytest.approx(outline.area, rel=1e-12)


@pytest.fixture(scope="module", params=["demo", "helsinki"])
def network(request):
    settings = request.getfixturevalue(f"{request.param}_settings")
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    rng = np.random.default_rng(23)
    xy = engine.graph.node_xy[rng.choice(engine.graph.node_count, 8, replace=False)]
    lon, lat = engine.graph.projection.to_lonlat(xy[:, 0], xy[:, 1])
    return engine, list(zip(lon.tolist(), lat.tolist(), strict=True))


@pytest.mark.parametrize("params", [{}, {"generalize": 0.0}, {"polygons": False}])
def test_the_fast_way_answers_what_the_geos_way_answers(network, params):
    """service.isochrone's geometries and areas against the GEOS way on the same traced
    contours: the same rounded vertices (repeats once), the same area."""
    engine, origins = network
    minutes = [5.0, 10.0, 15.0]
    fast = 0
    for lon, lat in origins:
        answer = service.isochrone(engine, lon, lat, minutes, **params)
        contours = engine.isochrones(lon, lat, [service.metres(m, 4.0) for m in minutes], 50.0)
        for feature, c in zip(answer["features"], contours, strict=True):
            outline = shaped(c.polygon, c.resolution_m, params.get("generalize"))
            decimals = coordinate_decimals(c.resolution_m)
            wgs = service.wgs84_outline(engine, outline, decimals)
            if params.get("polygons", True) is False:
                wgs = service.as_lines(wgs)
            geos = service.geojson_geometry(wgs, decimals)
            geometry = feature["geometry"]
            if isinstance(geometry, orjson.Fragment):  # written by _band.encode: JSON text
                fast += 1
            geometry = orjson.loads(orjson.dumps(geometry))
            assert geometry["type"] == geos["type"]
            rings = (
                geometry["coordinates"]
                if geos["type"] == "MultiLineString"
                else [r for p in geometry["coordinates"] for r in p]
            )
            theirs = (
                geos["coordinates"]
                if geos["type"] == "MultiLineString"
                else [r for p in geos["coordinates"] for r in p]
            )
            assert rings == [_deduped(np.asarray(r)) for r in theirs]
            assert feature["properties"]["area_m2"] == pytest.approx(outline.area, abs=0.06)
    assert fast >= len(origins) * 2  # most contours take the fast way


def test_band_rings_is_band_polygon():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 800, (400, 2))
    rings, cell = band_rings(xy[:, 0], xy[:, 1], 30.0, 5.0)
    poly, cell2 = band_polygon(xy[:, 0], xy[:, 1], 30.0, 5.0)
    assert cell == cell2 and rings_area(rings) == pytest.approx(poly.area, rel=1e-12)
    simple, _, area = simplified_rings(rings, 5.0, 25.0)
    assert rings_area(simple) == pytest.approx(poly.area, rel=0.05)
    assert area == pytest.approx(rings_area(simple), rel=1e-12)


@pytest.mark.parametrize(("walk_off", "cell"), [(50.0, 8.2), (50.0, 3.0), (50.0, 1.2)])
def test_the_tracer_is_exact_with_either_row_pass(walk_off, cell):
    """_band.c's row pass: a window of min passes up to 30 cells of band (the defaults: 8
    and 18), the envelope of parabolas beyond (42 here): both trace what contourpy traces
    on scipy's exact distance transform."""
    from tests.test_access_outline import _contourpy_band

    rng = np.random.default_rng(int(cell * 10))
    lines = []
    for _ in range(12):
        a = rng.uniform(0, 600, 2)
        lines.append(a + (rng.uniform(-200, 200, 2)) * np.linspace(0, 1, 300)[:, None])
    xy = np.concatenate(lines)
    ours, _ = band_polygon(xy[:, 0], xy[:, 1], walk_off, cell)
    theirs = _contourpy_band(xy[:, 0], xy[:, 1], walk_off, cell)
    inter = shapely.intersection(ours, theirs).area
    assert inter / shapely.union(ours, theirs).area >= 0.99999
    assert len(ours.geoms) == len(theirs.geoms)


def test_merged_parts_are_numpys_lexsort_and_running_reach():
    """isochrone._merged (_band.merge, an insertion sort) against the lexsort and running
    maximum it replaced, on random stretches — sorted by street but for a few, and not."""
    from gis_service.access.isochrone import _merged

    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(4, 80))
        edge = rng.integers(0, 15, n)
        if trial % 2:
            edge = np.sort(edge)
            edge[-3:] = rng.integers(0, 15, 3)  # the origins' streets, appended
        f0 = rng.uniform(0, 1, n)
        f1 = np.minimum(1.0, f0 + rng.uniform(0, 0.6, n))
        order = np.lexsort((f0, edge))
        e, a, b = edge[order], f0[order], f1[order]
        reach = np.maximum.accumulate(b + 2.0 * e) - 2.0 * e
        start = np.ones(n, dtype=bool)
        start[1:] = (e[1:] != e[:-1]) | (a[1:] > reach[:-1])
        first = np.nonzero(start)[0]
        last = np.append(first[1:], n) - 1
        got = _merged(edge, f0, f1)
        np.testing.assert_array_equal(got[0], e[first])
        np.testing.assert_array_equal(got[1], a[first])
        np.testing.assert_allclose(got[2], reach[last], rtol=0, atol=1e-12)


def _numpy_reached(graph, arcs, from_dist, origins, origin_x, origin_y, budgets, steps):
    """isochrone.reached_samples's rule in numpy, as it was written before _band.reached
    (2026-12-01): the oracle the compiled version is held to, sample for sample."""
    from gis_service.access.graph import MIN_COST
    from gis_service.access.isochrone import _merged

    def ring(start, length, lo, hi):
        a = np.clip((lo - start) / length, 0.0, 1.0)
        b = np.clip((hi - start) / length, 0.0, 1.0)
        return a, b, (start <= hi) & ((b > a) | (start > lo))

    def sample(edge, f0, f1, step):
        xs, ys = [], []
        for k, a, b in zip(edge.tolist(), f0.tolist(), f1.tolist(), strict=True):
            at = graph.along[graph.offset[k] : graph.offset[k + 1]]
            xy = graph.coords[graph.offset[k] : graph.offset[k + 1]]
            s0, span = a * at[-1], b * at[-1] - a * at[-1]
            count = max(1, int(np.ceil(span / step))) + 1
            s = s0 + span * (np.arange(count) / (count - 1))
            xs.append(np.interp(s, at, xy[:, 0]))
            ys.append(np.interp(s, at, xy[:, 1]))
        return np.concatenate(xs or [[]]), np.concatenate(ys or [[]])

    by_edge = np.argsort(graph.arc_edge[arcs], kind="stable")
    arcs, from_dist = arcs[by_edge], from_dist[by_edge]
    edge_of = graph.arc_edge[arcs]
    arc_len = np.maximum(graph.length[edge_of], MIN_COST)
    fwd = graph.arc_forward[arcs]
    k, t, leg = origins.edge, origins.frac, origins.leg
    o_len = np.maximum(graph.length[k], MIN_COST)
    two = ~graph.oneway[k]
    xs, ys, ends, lo = [], [], [], -np.inf
    for hi, step in zip(budgets, steps, strict=True):
        a, b, on = ring(from_dist, arc_len, lo, hi)
        oa, ob, o_on = ring(leg, o_len, lo, hi)
        first = leg > lo
        fa, fb = np.minimum(1.0, t + oa), np.minimum(1.0, t + ob)
        ba, bb = np.maximum(0.0, t - ob), np.maximum(0.0, t - oa)
        ahead = o_on & ((fb > fa) | first)
        back = o_on & two & ((bb > ba) | first)
        edge, g0, g1 = _merged(
            np.concatenate([edge_of[on], k[ahead], k[back]]),
            np.concatenate([np.where(fwd[on], a[on], 1.0 - b[on]), fa[ahead], ba[back]]),
            np.concatenate([np.where(fwd[on], b[on], 1.0 - a[on]), fb[ahead], bb[back]]),
        )
        px, py = sample(edge, g0, g1, step)
        ok = (leg <= hi) & ~(leg <= lo)
        lx, ly = [], []
        for j in np.nonzero(ok)[0]:
            n = max(2, int(np.ceil(leg[j] / step)) + 1)
            u = np.arange(n) / (n - 1)
            lx.append(origin_x[j] + (origins.x[j] - origin_x[j]) * u)
            ly.append(origin_y[j] + (origins.y[j] - origin_y[j]) * u)
        xs += [px, *lx]
        ys += [py, *ly]
        ends.append(sum(map(len, xs)))
        lo = hi
    return np.concatenate(xs), np.concatenate(ys), ends


@pytest.mark.parametrize("network", ["demo", "helsinki"])
def test_reached_samples_follow_the_rule_sample_for_sample(network, request):
    """_band.reached (isochrone.reached_samples) against the same rule in numpy: the same
    samples in the same order, per ring, from single origins (5/10/15 minutes) and from
    forty origins at once (the unions' way)."""
    from gis_service.access.isochrone import SAMPLE_STEP_CELLS, contour_cell, reached_samples
    from gis_service.access.search import nearest_sources, reached_arcs

    settings = request.getfixturevalue(f"{network}_settings")
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    g = engine.graph
    rng = np.random.default_rng(3)
    xy = g.node_xy[rng.choice(g.node_count, 40, replace=False)] + rng.uniform(-60, 60, (40, 2))
    lon, lat = g.projection.to_lonlat(xy[:, 0], xy[:, 1])
    budgets = [1000 / 3, 2000 / 3, 1000.0]
    steps = [SAMPLE_STEP_CELLS * contour_cell(d, 50.0) for d in budgets]
    for i in range(12):
        origin = engine.snap(lon[i], lat[i])
        ox, oy = (np.atleast_1d(v) for v in engine.project(lon[i], lat[i]))
        arcs, from_dist = reached_arcs(g, origin, budgets[-1])
        got = reached_samples(g, arcs, from_dist, origin, ox, oy, budgets, steps)
        want = _numpy_reached(g, arcs, from_dist, origin, ox, oy, budgets, steps)
        assert got[2] == want[2]
        for end, box in zip(got.ends, got.boxes, strict=True):  # each budget's box
            x, y = got.x[:end], got.y[:end]
            assert box == [x.min(), y.min(), x.max(), y.max()]
        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)
    many = engine.snap(lon, lat)
    node_dist, _ = nearest_sources(g, many, toward=False, limit=1000.0)
    arcs = np.nonzero(node_dist[g.arc_from] <= 1000.0)[0]
    ox, oy = engine.project(lon, lat)
    args = (g, arcs, node_dist[g.arc_from[arcs]], many, ox, oy, [1000.0], [5.6])
    got, want = reached_samples(*args), _numpy_reached(*args)
    assert got[2] == want[2] and got[2][0] > 10_000
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("network", ["demo", "helsinki"])
def test_one_point_snaps_as_in_a_batch(network, request):
    """The one-point way of snapping (snap.SegmentIndex._one, every isochrone's origin)
    finds what the batch finds for the same point — edge, fraction, leg and the point on
    the street — on points near the network and far from it (where it hands over to the
    batch's wider search)."""
    settings = request.getfixturevalue(f"{network}_settings")
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    g = engine.graph
    rng = np.random.default_rng(5)
    xy = g.node_xy[rng.choice(g.node_count, 400)] + rng.normal(0, 80, (400, 2))
    xy[:20] += rng.uniform(-3000, 3000, (20, 2))
    batch = engine.segments.nearest(xy[:, 0], xy[:, 1])
    for i in range(len(xy)):
        one = engine.segments.nearest(xy[i : i + 1, 0], xy[i : i + 1, 1])
        for field in ("edge", "frac", "leg", "x", "y"):
            assert getattr(one, field)[0] == getattr(batch, field)[i], (i, field)


@pytest.mark.parametrize("seed", range(6))
def test_simplify_drops_small_rings_with_their_part_and_weighs_what_is_left(seed):
    """_band.simplify at tolerance 0 (nothing moves) and a floor: exactly the islands and
    holes enclosing at least the floor stay, an island's holes go with it, and the area
    it reports is GEOS's area of what it returns."""
    outline = _random_outline(seed, 1.0)
    areas = [shapely.area(shapely.polygons(r)) for p in outline.geoms for r in shapely.get_rings(p)]
    shells = sorted(shapely.Polygon(p.exterior).area for p in outline.geoms)
    assert len(shells) >= 2  # the random lines make several islands
    floor = max(float(np.quantile(areas, 0.4)), shells[0] * 1.0001)  # the smallest goes
    rings, _, area = simplified_rings(ragged(outline), 0.0, floor)
    got = shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON,
        rings[0],
        (rings[1], rings[2], np.array([0, len(rings[2]) - 1])),
    )[0]
    kept = []
    for part in outline.geoms:
        if shapely.Polygon(part.exterior).area >= floor:
            holes = [h for h in part.interiors if shapely.Polygon(h).area >= floor]
            kept.append(shapely.Polygon(part.exterior, holes))
    want = shapely.MultiPolygon(kept)
    assert len(got.geoms) == len(want.geoms) < len(outline.geoms)
    assert shapely.get_num_interior_rings(shapely.get_parts(got)).sum() == sum(
        len(p.interiors) for p in want.geoms
    )
    assert area == pytest.approx(got.area, rel=1e-9)
    assert got.symmetric_difference(want).area <= 1e-6 * want.area


def test_a_hole_douglas_peucker_would_flatten_becomes_a_triangle_of_its_own_vertices():
    """A ring that fits within the tolerance (a small hole of a generalized outline) is
    kept as a triangle of three of its own vertices, every vertex of the ring within the
    tolerance of it — not as its whole trace, nor dropped."""
    rng = np.random.default_rng(8)
    shell = shapely.Polygon([(0, 0), (500, 0), (500, 500), (0, 500)])
    for trial in range(40):
        c = rng.uniform(100, 400, 2)
        t = np.linspace(0, 2 * np.pi, int(rng.integers(8, 40)))[::-1]  # clockwise
        rx, ry = rng.uniform(2, 6, 2)
        hole = np.column_stack([c[0] + rx * np.cos(t), c[1] + ry * np.sin(t)])
        hole[-1] = hole[0]
        outline = shapely.MultiPolygon([shapely.Polygon(shell.exterior, [hole])])
        tolerance = 2.2 * max(rx, ry)  # the whole hole lies within it
        (coords, ring_at, _), collapsed, _ = simplified_rings(ragged(outline), tolerance, 1.0)
        got = coords[ring_at[1] : ring_at[2]]
        assert len(got) == 4 and collapsed == 0, trial
        assert all((hole == v).all(axis=1).any() for v in got)  # its own vertices
        triangle = shapely.LinearRing(got)
        assert shapely.Polygon(triangle).area > 0
        assert max(triangle.distance(shapely.Point(p)) for p in hole) <= tolerance
