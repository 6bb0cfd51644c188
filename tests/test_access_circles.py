"""Quarter-hour service circles on the Helsinki extract: cached, redrawn only when stale,
united per category and kind, and computed as a job when it takes long."""

from __future__ import annotations

import time

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.network.imports import import_network
from tests.conftest import TEST_DB, _fresh_database, osm_extract

POINTS = [  # (kind, categories, lon, lat)
    ("health_station", "{health}", 24.9385, 60.1690),
    ("health_station", "{health}", 24.9500, 60.1650),
    ("red_home", "{government,culture_education,public_welfare}", 24.9300, 60.1720),
    ("party_org", "{government}", 24.9450, 60.1730),
]


@pytest.fixture(scope="module")
def city():
    settings = _fresh_database(f"{TEST_DB}_circles")
    import_network(osm_extract("Helsinki.osm.pbf"), settings=settings)
    with get_engine(settings).begin() as conn:
        for i, (kind, cats, lon, lat) in enumerate(POINTS):
            conn.execute(
                text(
                    "INSERT INTO service_point (external_id, kind, categories, name, geom) "
                    "VALUES (:e, :k, CAST(:c AS text[]), :n, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                {"e": f"p{i}", "k": kind, "c": cats, "n": f"点{i}", "x": lon, "y": lat},
            )
    with TestClient(create_app(settings)) as client:
        yield settings, client


def _shape(feature) -> shapely.Geometry:
    geom = shapely.geometry.shape(feature["geometry"])
    return gpd.GeoSeries([geom], crs=4326).to_crs(32635).iloc[0]


def _computed_at(settings) -> dict[str, object]:
    with get_engine(settings).connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT p.external_id, c.computed_at FROM service_circle c "
                    "JOIN service_point p ON p.id = c.point_id"
                )
            ).all()
        )


def test_each_circle_is_the_points_quarter_hour_isochrone(city):
    _settings, client = city
    r = client.get("/api/v1/access/circles")
    assert r.status_code == 200, r.text
    fc = r.json()
    assert len(fc["features"]) == len(POINTS)
    for f, (_, _, lon, lat) in zip(fc["features"], POINTS, strict=True):
        assert f["properties"]["method"] == "network"
        iso = client.get(
            "/api/v1/access/isochrone", params={"lon": lon, "lat": lat, "minutes": 15}
        ).json()
        a, b = _shape(f), _shape(iso["features"][0])
        # stored on an 8 m grid and simplified within 4 m; the same ground
        assert a.symmetric_difference(b).area < 0.03 * b.area
    only = client.get("/api/v1/access/circles", params={"kind": "health_station"}).json()
    assert len(only["features"]) == 2


def test_unions_cover_their_circles_and_no_more(city):
    _, client = city
    circles = client.get("/api/v1/access/circles", params={"category": "government"}).json()
    union = client.get(
        "/api/v1/access/circles", params={"category": "government", "union": "true"}
    ).json()
    assert [f["id"] for f in union["features"]] == ["category:government"]
    u = _shape(union["features"][0])
    parts = [_shape(f) for f in circles["features"]]
    assert len(parts) == 2
    assert u.area == pytest.approx(shapely.union_all(parts).area, rel=0.02)
    for p in parts:
        assert p.difference(u).area < 0.02 * p.area
    every = client.get("/api/v1/access/circles", params={"union": "true"}).json()
    keys = {f["id"] for f in every["features"]}
    assert {"kind:health_station", "kind:red_home", "category:health"} <= keys


def test_moving_one_point_redraws_only_its_circle(city):
    settings, client = city
    client.get("/api/v1/access/circles")
    before = _computed_at(settings)
    with get_engine(settings).begin() as conn:
        conn.execute(
            text(
                "UPDATE service_point SET geom = ST_Translate(geom, 0.002, 0) "
                "WHERE external_id = 'p1'"
            )
        )
    client.get("/api/v1/access/circles")
    after = _computed_at(settings)
    assert after["p1"] > before["p1"]
    assert all(after[k] == before[k] for k in before if k != "p1")
    with get_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM service_point WHERE external_id = 'p1'"))
    fc = client.get("/api/v1/access/circles").json()
    assert len(fc["features"]) == len(POINTS) - 1


def test_a_new_network_makes_every_circle_stale_and_a_slow_refresh_is_a_job(city):
    settings, _ = city
    import_network(osm_extract("Helsinki.osm.pbf"), settings=settings)
    slow = settings.model_copy(update={"import_wait_seconds": 0.0})
    with TestClient(create_app(slow)) as client:
        r = client.get("/api/v1/access/circles")
        assert r.status_code == 202
        status_url = r.headers["Location"]
        assert status_url == r.json()["status_url"] == "/api/v1/access/jobs/circles"
        for _ in range(300):
            job = client.get(status_url).json()
            if job["status"] != "running":
                break
            time.sleep(0.1)
        assert job["status"] == "done", job
        assert "circles drawn" in job["summary"]
        assert client.get("/api/v1/access/circles").status_code == 200
    assert len(_computed_at(settings)) == len(POINTS) - 1


def test_unknown_kind_is_a_clear_error(city):
    _, client = city
    r = client.get("/api/v1/access/circles", params={"kind": "castle"})
    assert r.status_code == 422 and "castle" in r.json()["detail"]
    assert client.get("/api/v1/access/jobs/nothing").status_code == 404
