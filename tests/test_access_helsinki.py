"""Walking distances and isochrones on the real Helsinki extract, checked against an
independent networkx computation (tests/access_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service.access.store import EngineCache
from gis_service.app import create_app
from gis_service.db.engine import get_engine
from tests.access_reference import Reference

# central Helsinki, where the extract's footways are dense
BOX = (24.925, 60.160, 24.955, 60.175)


@pytest.fixture(scope="module")
def reference(helsinki_settings) -> Reference:
    return Reference.load(helsinki_settings)


@pytest.fixture(scope="module")
def engine(helsinki_settings):
    with get_engine(helsinki_settings).connect() as conn:
        return EngineCache().get(conn)


@pytest.fixture(scope="module")
def api(helsinki_settings):
    with TestClient(create_app(helsinki_settings)) as c:
        yield c


def _random_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(BOX[0], BOX[2], n), rng.uniform(BOX[1], BOX[3], n)])


def _near_streets(reference: Reference, seed: int) -> tuple[float, float]:
    """A random point of the box within 100 m of a street (the box holds sea too)."""
    for lon, lat in _random_points(50, seed):
        if reference.snap(reference.project(lon, lat))[2] < 100:
            return float(lon), float(lat)
    raise AssertionError("no point near a street")


def test_the_import_keeps_walkways_and_drops_what_walkers_cannot_use(helsinki_settings):
    with get_engine(helsinki_settings).connect() as conn:
        kinds = dict(
            conn.exec_driver_sql("SELECT kind, count(*) FROM walk_edge GROUP BY kind").all()
        )
        broken = conn.exec_driver_sql(
            "SELECT count(*) FROM walk_edge e JOIN walk_node a ON a.id = e.source "
            "JOIN walk_node b ON b.id = e.target WHERE NOT (ST_StartPoint(e.geom) = a.geom "
            "AND ST_EndPoint(e.geom) = b.geom)"
        ).scalar()
        components = conn.exec_driver_sql(
            "SELECT count(DISTINCT component) FROM pgr_connectedComponents("
            "'SELECT id, source, target, cost, reverse_cost FROM walk_edge')"
        ).scalar()
    assert kinds["footway"] > 1000 and kinds["steps"] > 50
    assert not {"motorway", "trunk", "motorway_link", "construction"} & set(kinds)
    assert broken == 0  # every edge runs from its source node to its target node
    assert components == 1  # the largest connected network only


def test_walking_distances_match_networkx(engine, reference):
    pts = _random_points(40, seed=1)
    for i in range(0, 40, 2):
        (olon, olat), (tlon, tlat) = pts[i], pts[i + 1]
        origin = reference.from_point(olon, olat)
        expected = reference.distance_to(origin, tlon, tlat)
        o = engine.snap(olon, olat)
        t = engine.snap(tlon, tlat)
        found = engine.search(o, expected + 100)
        got = float(found.distance_to(t.edge, t.frac)[0] + t.leg[0])
        assert got == pytest.approx(expected, abs=0.5), (pts[i], pts[i + 1])
        assert float(o.leg[0]) == pytest.approx(origin["leg"], abs=0.05)


def test_nearest_service_by_walking_matches_networkx(api, helsinki_settings, reference):
    pts = _random_points(12, seed=2)
    with get_engine(helsinki_settings).begin() as conn:
        conn.exec_driver_sql("DELETE FROM service_point")
        for i, (lon, lat) in enumerate(pts[2:]):
            conn.exec_driver_sql(
                "INSERT INTO service_point (kind, categories, name, geom) VALUES "
                f"('health_station', '{{health}}', '站{i}', "
                f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))"
            )
    for olon, olat in pts[:2]:
        origin = reference.from_point(olon, olat)
        expected = [reference.distance_to(origin, lon, lat) for lon, lat in pts[2:]]
        r = api.get(
            "/api/v1/access/nearest",
            params={"lon": olon, "lat": olat, "kind": "health_station", "path": "true"},
        )
        assert r.status_code == 200, r.text
        props = r.json()["properties"]
        assert props["method"] == "network"
        assert props["distance_m"] == pytest.approx(min(expected), abs=0.5)
        assert props["name"] == f"站{int(np.argmin(expected))}"
        assert props["distance_m"] >= props["straight_m"]
        path = shapely.geometry.shape(props["path"])
        assert path.coords[0] == pytest.approx((olon, olat), abs=1e-6)
        # the drawn path is as long as the distance reported (legs + streets)
        length = reference.edges.crs and shapely.length(
            __import__("geopandas").GeoSeries([path], crs=4326).to_crs(reference.crs).iloc[0]
        )
        assert length == pytest.approx(props["distance_m"], rel=0.01)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_isochrone_membership_matches_networkx(api, reference, seed):
    olon, olat = _near_streets(reference, seed)
    walk_off, budget = 50.0, 1000.0
    r = api.get("/api/v1/access/isochrone", params={"lon": olon, "lat": olat, "minutes": "5,10,15"})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert [f["properties"]["minutes"] for f in fc["features"]] == [5, 10, 15]
    areas = [f["properties"]["area_m2"] for f in fc["features"]]
    assert areas == sorted(areas) and areas[0] > 0
    feature = fc["features"][2]
    assert feature["properties"]["method"] == "network"
    assert feature["properties"]["distance_m"] == pytest.approx(budget)
    tol = feature["properties"]["resolution_m"] * 1.5
    poly = shapely.geometry.shape(feature["geometry"])
    import geopandas as gpd

    poly_m = gpd.GeoSeries([poly], crs=4326).to_crs(reference.crs).iloc[0]
    origin = reference.from_point(olon, olat)
    rng = np.random.default_rng(seed)
    o = reference.project(olon, olat)
    checked = inside = 0
    for _ in range(400):
        p = shapely.Point(o.x + rng.uniform(-1100, 1100), o.y + rng.uniform(-1100, 1100))
        d = reference.reached_distance(origin, budget, p, walk_off)
        if abs(d - walk_off) <= tol:
            continue  # on the traced edge: within the documented resolution
        expected = d < walk_off
        assert poly_m.contains(p) == expected, (p, d)
        checked += 1
        inside += expected
    assert checked > 300 and 20 < inside < checked - 20


def test_partial_streets_count_at_their_part_way_distance(engine, reference):
    """A street that crosses the budget is reached up to the budget, not dropped."""
    olon, olat = _near_streets(reference, 6)
    budget = 400.0
    found = engine.search(engine.snap(olon, olat), budget)
    edge, f0, f1 = found.pieces(budget)
    partial = (f1 - f0 < 0.999) & (f1 - f0 > 0.001)
    assert partial.sum() > 5
    origin = reference.from_point(olon, olat)
    at_budget = 0
    for k, a, b in list(zip(edge[partial], f0[partial], f1[partial], strict=True))[:20]:
        far = b if a == 0 else a  # the end of the reached part
        lon, lat = engine.graph.projection.to_lonlat(*engine.graph.point_at(int(k), far))
        d = reference.distance_to(origin, float(lon), float(lat))
        assert d <= budget + 0.5  # nothing beyond the budget is drawn as reached
        at_budget += d > budget - 0.5  # ends where the budget runs out (else: the
        # street's other end reaches the same point sooner)
    assert at_budget >= 5


def test_gcj02_input_gives_the_wgs84_answer(api):
    from gis_service.geo.coords import wgs84_to_gcj02

    lon, lat = 24.94, 60.168
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    a = api.get("/api/v1/access/isochrone", params={"lon": lon, "lat": lat}).json()
    b = api.get(
        "/api/v1/access/isochrone", params={"lon": glon, "lat": glat, "coord_sys": "gcj02"}
    ).json()
    # Helsinki is outside China: GCJ-02 there equals WGS-84, and must come back unchanged
    assert a["features"][0]["properties"] == b["features"][0]["properties"]


def test_far_from_every_street_falls_back_to_a_flagged_circle(api):
    r = api.get("/api/v1/access/isochrone", params={"lon": 24.80, "lat": 60.0, "minutes": "15"})
    props = r.json()["features"][0]["properties"]
    assert props["method"] == "euclidean"
    assert props["area_m2"] == pytest.approx(np.pi * 1000**2, rel=0.01)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": 24.94, "lat": 60.17, "minutes": "abc"}, "minutes"),
        ({"lon": 24.94, "lat": 60.17, "minutes": "90"}, "minutes"),
        ({"lon": 240, "lat": 60.17}, "lon"),
        ({"lon": 24.94, "lat": 60.17, "speed_kmh": 0}, "speed_kmh"),
    ],
)
def test_bad_isochrone_input_names_the_field(api, params, field):
    r = api.get("/api/v1/access/isochrone", params=params)
    assert r.status_code == 422
    assert field in r.json()["detail"]
