"""The hard places of walking distance, on a small OpenStreetMap file written here:
a one-way footway, a river with one bridge, a dead end, a place far from every street,
and coordinates given in GCJ-02.

    y=80   S2 ─────────────────────────────────────────┐ (bridge at x=1000)
           ~~~~~~~~~~~~~~~~~ river ~~~~~~~~~~~~~~~~~~~~~│
    y=0    S1 ──────────A(300)──────D(700)──E(500)─────┘
                        │ one-way ↓  │       │ dead end
    y=-200              │            │       ● (500,-200)
    y=-300              B───────────C
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.db.engine import get_engine
from gis_service.geo.coords import wgs84_to_gcj02
from gis_service.network.imports import import_network
from tests.access_reference import Reference
from tests.conftest import TEST_DB, _fresh_database

LON0, LAT0 = 113.0, 34.0
M_PER_DEG_LAT = 110_900.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def lonlat(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def _osm_xml(ways: list[tuple[list[tuple[float, float]], dict[str, str]]]) -> str:
    ids: dict[tuple[float, float], int] = {}
    nodes, way_xml = [], []
    for i, (pts, tags) in enumerate(ways, 1):
        refs = []
        for p in pts:
            if p not in ids:
                ids[p] = len(ids) + 1
                lon, lat = lonlat(*p)
                nodes.append(f'<node id="{ids[p]}" version="1" lat="{lat:.8f}" lon="{lon:.8f}"/>')
            refs.append(f'<nd ref="{ids[p]}"/>')
        tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        way_xml.append(f'<way id="{i}" version="1">{"".join(refs)}{tag_xml}</way>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">'
        + "".join(nodes)
        + "".join(way_xml)
        + "</osm>"
    )


def _line(x0, y0, x1, y1, step=100.0) -> list[tuple[float, float]]:
    n = max(1, round(math.hypot(x1 - x0, y1 - y0) / step))
    return [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]


WAYS = [
    (_line(0, 0, 1000, 0), {"highway": "residential", "name": "S1"}),
    (_line(0, 80, 1000, 80), {"highway": "residential", "name": "S2"}),
    (_line(1000, 0, 1000, 80), {"highway": "residential", "bridge": "yes"}),
    ([(300, 0), (300, -150), (300, -300)], {"highway": "footway", "oneway": "yes"}),
    (_line(300, -300, 700, -300) + _line(700, -300, 700, 0)[1:], {"highway": "footway"}),
    (_line(500, 0, 500, -200), {"highway": "footway", "name": "dead end"}),
    # never walkable: a motorway and a private service road
    (_line(0, -500, 1000, -500), {"highway": "motorway"}),
    (_line(0, -600, 1000, -600), {"highway": "service", "access": "private"}),
]


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    settings = _fresh_database(f"{TEST_DB}_edges")
    path = Path(tmp_path_factory.mktemp("osm")) / "town.osm"
    path.write_text(_osm_xml(WAYS), encoding="utf-8")
    done = import_network(path, settings=settings, keep_all=True)
    assert done.oneway_edges == 1
    with TestClient(create_app(settings)) as client:
        yield settings, client, Reference.load(settings)


def _nearest(client, at, service, **params):
    settings = client.app.state.services.settings
    lon, lat = lonlat(*service)
    with get_engine(settings).begin() as conn:
        conn.exec_driver_sql("DELETE FROM service_point")
        conn.exec_driver_sql(
            "INSERT INTO service_point (kind, categories, name, geom) VALUES ('party_org', "
            f"'{{government}}', '党支部', ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))"
        )
    olon, olat = lonlat(*at)
    r = client.get(
        "/api/v1/access/nearest", params={"lon": olon, "lat": olat, "kind": "party_org", **params}
    )
    return r


def _inside(client, at, minutes, points) -> list[bool]:
    olon, olat = lonlat(*at)
    fc = client.get(
        "/api/v1/access/isochrone", params={"lon": olon, "lat": olat, "minutes": minutes}
    ).json()
    poly = shapely.geometry.shape(fc["features"][0]["geometry"])
    return [poly.contains(shapely.Point(*lonlat(*p))) for p in points]


def test_motorways_and_private_roads_are_not_imported(town):
    settings, _, _ = town
    with get_engine(settings).connect() as conn:
        kinds = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT kind FROM walk_edge")}
    assert kinds == {"residential", "footway"}


def test_a_one_way_footway_is_walked_only_its_way(town):
    _, client, ref = town
    # from the middle of the one-way footway to just behind the start, on the same path
    at, target = (300, -150), (305, -10)
    r = _nearest(client, at, target)
    assert r.status_code == 200
    d = r.json()["properties"]["distance_m"]
    expected = ref.distance_to(ref.from_point(*lonlat(*at)), *lonlat(*target))
    assert d == pytest.approx(expected, abs=0.5)
    # the long way round: B, C, D, back along S1 to A, then down the footway
    assert d == pytest.approx(150 + 400 + 300 + 400 + 10 + 5, rel=0.01)
    # the other way, with the footway's direction: a short walk
    back = _nearest(client, target, at).json()["properties"]["distance_m"]
    assert back == pytest.approx(5 + 140, rel=0.01)
    # five minutes (333 m) go down to B and along to C, never back up
    assert _inside(client, at, "5", [(300, -290), (450, -300), (300, -40)]) == [True, True, False]


def test_a_river_without_a_bridge_is_walked_round(town):
    _, client, ref = town
    at, other_bank = (100, 0), (100, 80)
    d = _nearest(client, at, other_bank).json()["properties"]["distance_m"]
    assert d == pytest.approx(900 + 80 + 900, rel=0.01)
    assert d == pytest.approx(
        ref.distance_to(ref.from_point(*lonlat(*at)), *lonlat(*other_bank)), abs=0.5
    )
    # a quarter hour reaches the river bank (walk-off 50 m) but not the far street
    assert _inside(client, at, "15", [(100, 30), (100, 70), (100, 80)]) == [True, False, False]


def test_a_dead_end_is_a_start_like_any_other(town):
    _, client, _ = town
    at = (500, -200)
    r = _nearest(client, at, (650, 0)).json()["properties"]
    assert r["distance_m"] == pytest.approx(200 + 150, rel=0.01)
    # 5 minutes: 200 m up the dead end, then 133 m each way along S1 (+ 50 m walk-off;
    # the walk-off's very edge is traced and generalized within a cell or two: 40 m past
    # the dead end's end is well inside)
    assert _inside(client, at, "5", [(620, 0), (660, 0), (700, 0), (500, -240)]) == [
        True,
        True,
        False,
        True,
    ]


def test_far_from_every_street_the_answer_is_straight_and_flagged(town):
    _, client, _ = town
    at, service = (3000, 3000), (3000, 3400)
    r = _nearest(client, at, service).json()["properties"]
    assert r["method"] == "euclidean"
    assert r["distance_m"] == pytest.approx(400, rel=0.01)
    olon, olat = lonlat(*at)
    fc = client.get("/api/v1/access/isochrone", params={"lon": olon, "lat": olat}).json()
    assert fc["features"][0]["properties"]["method"] == "euclidean"


def test_gcj02_coordinates_are_converted_before_walking(town):
    _, client, _ = town
    at = (100, 0)
    wlon, wlat = lonlat(*at)
    glon, glat = (float(v) for v in wgs84_to_gcj02(wlon, wlat))
    assert abs(glon - wlon) > 1e-3  # inside China the offset is hundreds of metres
    a = client.get("/api/v1/access/isochrone", params={"lon": wlon, "lat": wlat}).json()
    b = client.get(
        "/api/v1/access/isochrone", params={"lon": glon, "lat": glat, "coord_sys": "gcj02"}
    ).json()
    pa = a["features"][0]["properties"]
    pb = b["features"][0]["properties"]
    assert pa["method"] == pb["method"] == "network"
    assert pb["area_m2"] == pytest.approx(pa["area_m2"], rel=0.01)
    # taken as WGS-84, the same numbers land hundreds of metres away: another answer
    c = client.get("/api/v1/access/isochrone", params={"lon": glon, "lat": glat}).json()
    assert c["features"][0]["properties"]["method"] == "euclidean" or not np.isclose(
        c["features"][0]["properties"]["area_m2"], pa["area_m2"], rtol=0.01
    )


def test_a_line_layer_imports_like_osm(town, tmp_path):
    """The same town as a GeoJSON line layer (crossings noded by the importer)."""
    import geopandas as gpd

    _settings, _, ref = town
    # S1 and S2 as single straight lines: the paths meeting them must be noded onto them
    rows = [
        {
            "kind": t["highway"],
            "name": t.get("name"),
            "oneway": t.get("oneway"),
            "geometry": shapely.LineString(
                [lonlat(*p) for p in ((pts[0], pts[-1]) if i < 2 else pts)]
            ),
        }
        for i, (pts, t) in enumerate(WAYS[:6])
    ]
    path = tmp_path / "town.geojson"
    gpd.GeoDataFrame(rows, crs=4326).to_file(path)
    other = _fresh_database(f"{TEST_DB}_edges_layer")
    done = import_network(path, settings=other)
    assert done.oneway_edges >= 1
    assert done.length_km == pytest.approx(ref.edges.length_m.sum() / 1000, rel=0.001)
    with TestClient(create_app(other)) as client:
        d = _nearest(client, (100, 0), (100, 80)).json()["properties"]["distance_m"]
    assert d == pytest.approx(1880, rel=0.01)


def _own_town(tmp_path: Path, name: str) -> tuple:
    """The town in a database of its own (a test that changes it or breaks its
    connections): (settings, the .osm file, the query of a 10-minute isochrone from A)."""
    settings = _fresh_database(f"{TEST_DB}_edges_{name}")
    path = tmp_path / "town.osm"
    path.write_text(_osm_xml(WAYS), encoding="utf-8")
    import_network(path, settings=settings, keep_all=True)
    lon, lat = lonlat(300, 0)
    return settings, path, f"lon={lon!r}&lat={lat!r}&minutes=10"


def test_the_plain_isochrone_route_answers_from_the_network_of_now(tmp_path):
    """GET /api/v1/access/isochrone's plain route (access/fast.py) computes with the engine
    it built last while it reads the network's version, and keeps that answer only if the
    version is still the engine's: after a new network is imported, the next answer is
    the new network's — its version, and the street the import added."""
    from gis_service.access.fast import PATH, FastIsochrone

    settings, path, query = _own_town(tmp_path, "now")
    match, _ = FastIsochrone().matches(
        {"type": "http", "path": PATH, "method": "GET", "query_string": query.encode()}
    )
    assert match.name == "FULL"  # the plain route answers it
    with TestClient(create_app(settings)) as client:
        before = client.get(f"{PATH}?{query}").json()
        # a street across the one-way footway south of A (a node shared at (300, -150))
        path.write_text(
            _osm_xml([*WAYS, (_line(0, -150, 600, -150), {"highway": "residential"})]),
            encoding="utf-8",
        )
        import_network(path, settings=settings, keep_all=True)
        after = client.get(f"{PATH}?{query}").json()
    assert after["network_version"] > before["network_version"]
    area = [f["features"][0]["properties"]["area_m2"] for f in (before, after)]
    assert area[1] > area[0] * 1.1, area


def test_the_plain_isochrone_route_answers_503_when_its_connection_breaks(tmp_path):
    """The connection that reads the network's version for the plain route (db/ask.py)
    ended by the server, as a restart ends it: that request is answered 503
    database_unavailable with Retry-After, like every database fault, and the next one
    connects again and is answered."""
    from gis_service.access.fast import ASK_NAME, PATH

    settings, _, query = _own_town(tmp_path, "ask")
    url = f"{PATH}?{query}"
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get(url).status_code == 200
        with get_engine(settings).connect() as conn:
            ended = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE application_name = '{ASK_NAME}' AND datname = current_database()"
            ).scalar()
        assert ended == 1
        broken = client.get(url)
        assert broken.status_code == 503, broken.text
        assert broken.json()["error"] == "database_unavailable"
        assert broken.headers["Retry-After"]
        assert client.get(url).status_code == 200
