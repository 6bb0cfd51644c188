"""Vector tiles decoded: features and attributes, clipping and seams at tile edges,
aggregation that says so, jurisdiction, ETags and invalidation, the seeded basemap."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from gis_service.cases.workflow import OPEN_STATUSES
from gis_service.db.engine import get_engine
from gis_service.stats import rollup
from gis_service.tiles.basemap import lonlat_to_tile
from tests.conftest import ADMIN_AUTH, make_user


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees."""
    n = 2**z

    def lat(t: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def _rows(settings, sql: str, **params) -> list:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).all()


def _busiest_tile(settings, z: int) -> tuple[int, int, int]:
    lon, lat = _rows(settings, "SELECT avg(ST_X(geom)), avg(ST_Y(geom)) FROM cases")[0]
    x, y = lonlat_to_tile(lon, lat, z)
    return z, x, y


def test_units_tile_has_units_with_their_figures(demo_client, demo_settings):
    z, x, y = _busiest_tile(demo_settings, 13)
    r = demo_client.get(f"/tiles/units/{z}/{x}/{y}.pbf", headers=ADMIN_AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["units"]
    assert layer["extent"] == 4096
    feats = layer["features"]
    assert feats and all(f["properties"]["level"] == "community" for f in feats)
    with_cases = [f for f in feats if f["properties"].get("reported")]
    assert with_cases
    p = with_cases[0]["properties"]
    assert 0 <= p["resolution_rate"] <= 1 and p["closed"] <= p["accepted"] <= p["reported"]
    # clipped to the tile plus its 256-unit buffer, never beyond
    for f in feats:
        for ring in _rings(f["geometry"]):
            for px, py in ring:
                assert -256 <= px <= 4352 and -256 <= py <= 4352


def _rings(geom: dict):
    if geom["type"] == "Polygon":
        yield from geom["coordinates"]
    elif geom["type"] == "MultiPolygon":
        for poly in geom["coordinates"]:
            yield from poly
    else:
        yield [geom["coordinates"]]


def test_a_point_just_outside_the_tile_is_in_its_buffer(demo_client, demo_settings):
    """No seams: a feature within the buffer of a neighbouring tile is drawn by both."""
    z, x, y = 15, *lonlat_to_tile(113.68, 34.78, 15)
    west, south, east, north = tile_bounds(z, x, y)
    lon = east + (east - west) * 0.02  # 2 % of a tile east of this tile's edge
    lat = (south + north) / 2
    with get_engine(demo_settings).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO service_point (external_id, kind, categories, name, geom) VALUES "
                "('edge-test', 'health_station', '{health}', '边界站', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"lon": lon, "lat": lat},
        )
    try:
        here = decode(demo_client.get(f"/tiles/service_points/{z}/{x}/{y}.pbf").content)
        there = decode(demo_client.get(f"/tiles/service_points/{z}/{x + 1}/{y}.pbf").content)
        mine = [
            f for f in here["service_points"]["features"] if f["properties"]["name"] == "边界站"
        ]
        theirs = [
            f for f in there["service_points"]["features"] if f["properties"]["name"] == "边界站"
        ]
        assert len(mine) == len(theirs) == 1
        px, _ = mine[0]["geometry"]["coordinates"]
        assert 4096 < px < 4096 + 256  # in this tile's buffer, right of its edge
        assert 0 <= theirs[0]["geometry"]["coordinates"][0] < 256
    finally:
        with get_engine(demo_settings).begin() as conn:
            conn.execute(text("DELETE FROM service_point WHERE external_id = 'edge-test'"))


def _cases_in(settings, z, x, y, scope: str = "") -> list[int]:
    """The cases a case tile shows there: reported in the recent window or still open
    (older settled ones are counted by the daily roll-up, stats/rollup.py)."""
    west, south, east, north = tile_bounds(z, x, y)
    return [
        r[0]
        for r in _rows(
            settings,
            """
        SELECT id FROM cases WHERE status <> 'duplicate' AND unit_code LIKE :scope
          AND ST_X(geom) >= :w AND ST_X(geom) < :e AND ST_Y(geom) > :s AND ST_Y(geom) <= :n
          AND (reported_at >= CAST(:since AS date)::timestamp AT TIME ZONE :tz
               OR status = ANY(:open))
        """,
            scope=scope + "%",
            w=west,
            e=east,
            s=south,
            n=north,
            since=rollup.boundary(settings),
            tz=settings.timezone,
            open=[str(s) for s in OPEN_STATUSES],
        )
    ]


def test_a_crowded_tile_aggregates_and_says_so(demo_client, demo_settings):
    z, x, y = _busiest_tile(demo_settings, 12)
    tile = decode(demo_client.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers=ADMIN_AUTH).content)
    feats = tile["cases"]["features"]
    assert feats and all(f["properties"]["aggregated"] for f in feats)
    meta = tile["meta"]["features"][0]["properties"]
    assert meta["aggregated"] is True
    # every case of the tile is counted: none dropped
    all_cases = _rows(demo_settings, "SELECT count(*) FROM cases WHERE status <> 'duplicate'")
    inside = [
        f
        for f in feats
        if 0 <= f["geometry"]["coordinates"][0] < 4096
        and 0 <= f["geometry"]["coordinates"][1] < 4096
    ]
    expected = len(_cases_in(demo_settings, z, x, y))
    assert meta["cases"] == pytest.approx(expected, abs=2)  # ± cases on the tile's edge
    assert sum(f["properties"]["count"] for f in inside) == pytest.approx(expected, rel=0.05)
    assert expected < all_cases[0][0]


def test_a_close_tile_has_each_case_with_its_id(demo_client, demo_settings):
    z, x, y = _busiest_tile(demo_settings, 16)
    tile = decode(demo_client.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers=ADMIN_AUTH).content)
    feats = tile.get("cases", {}).get("features", [])
    ids = {
        f["properties"]["case_id"]
        for f in feats
        if 0 <= f["geometry"]["coordinates"][0] < 4096
        and 0 <= f["geometry"]["coordinates"][1] < 4096
    }
    expected = set(_cases_in(demo_settings, z, x, y))
    assert expected and ids == expected
    assert all(not f["properties"].get("aggregated") for f in feats)
    assert {"case_id", "status", "category", "overdue"} <= set(feats[0]["properties"])


def test_cases_tiles_follow_the_viewers_jurisdiction(demo_client, demo_settings):
    sub = _rows(
        demo_settings,
        "SELECT code FROM admin_unit WHERE level = 'subdistrict' "
        "AND code LIKE '410105%' ORDER BY code LIMIT 1",
    )[0][0]
    sup = make_user(demo_settings, "supervisor", scopes=[sub], username=f"tiles-{sub}")
    z, x, y = _busiest_tile(demo_settings, 16)
    for dx in range(-2, 3):
        tile = decode(demo_client.get(f"/tiles/cases/{z}/{x + dx}/{y}.pbf", headers=sup).content)
        ids = [f["properties"]["case_id"] for f in tile.get("cases", {}).get("features", [])]
        if ids:
            units = {
                r[0]
                for r in _rows(
                    demo_settings, "SELECT unit_code FROM cases WHERE id = ANY(:ids)", ids=ids
                )
            }
            assert all(u.startswith(sub) for u in units)
    assert demo_client.get(f"/tiles/cases/{z}/{x}/{y}.pbf").status_code == 401
    assert demo_client.get(f"/tiles/units/{z}/{x}/{y}.pbf").status_code == 401


def test_etag_answers_304_and_a_new_case_changes_the_tile(demo_client, demo_settings):
    lon, lat = _rows(demo_settings, "SELECT ST_X(geom), ST_Y(geom) FROM cases ORDER BY id LIMIT 1")[
        0
    ]
    z = 17
    x, y = lonlat_to_tile(lon, lat, z)
    url = f"/tiles/cases/{z}/{x}/{y}.pbf"
    first = demo_client.get(url, headers=ADMIN_AUTH)
    etag = first.headers["etag"]
    assert "max-age=0" in first.headers["cache-control"]
    again = demo_client.get(url, headers={**ADMIN_AUTH, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    before = len(decode(first.content).get("cases", {}).get("features", []))
    admin = make_user(demo_settings, "admin", username="tiles-etag-admin")
    r = demo_client.post(
        "/api/v1/cases",
        headers=admin,
        json={
            "lon": lon,
            "lat": lat,
            "category": "environment.garbage",
            "description": "瓦片测试：新问题",
        },
    )
    assert r.status_code == 201, r.text
    later = demo_client.get(url, headers={**ADMIN_AUTH, "If-None-Match": etag})
    assert later.status_code == 200 and later.headers["etag"] != etag
    assert len(decode(later.content)["cases"]["features"]) == before + 1
    # the tile of the older cases version is gone from the cache, not left to the LRU bound
    cache = demo_client.app.state.services.tiles
    held = [k for k in cache._data if k.startswith(f"cases/{z}/{x}/{y}/")]
    assert len(held) == 1, held


def test_a_new_generation_drops_its_familys_older_tiles():
    """tiles/cache.py: tiles keyed by an older data version are dropped when a newer one
    is cut, family by family; the LRU bound still holds, and forgets what it evicts."""
    from gis_service.tiles.cache import TileCache

    cache = TileCache(capacity=3)
    for i in range(3):
        cache.get(f"cases/{i}/v1", lambda i=i: b"c" * (i + 1), "cases", "v1")
    cache.get("units/0/u1", lambda: b"u", "units", "u1")  # evicts cases/0 (LRU)
    assert list(cache._data) == ["cases/1/v1", "cases/2/v1", "units/0/u1"]
    cache.get("cases/0/v2", lambda: b"new", "cases", "v2")  # the cases moved on
    assert list(cache._data) == ["units/0/u1", "cases/0/v2"]
    assert cache.bytes == 4 and len(cache) == 2
    assert cache.get("cases/0/v2", lambda: b"never made", "cases", "v2") == b"new"
    assert cache._generations["cases"] == ("v2", {"cases/0/v2"})


def test_basemap_has_streets_and_boundaries_and_is_public(demo_client):
    z, x, y = 15, *lonlat_to_tile(113.68, 34.78, 15)
    r = demo_client.get(f"/tiles/basemap/{z}/{x}/{y}.pbf")
    assert r.status_code == 200 and "public" in r.headers["cache-control"]
    tile = decode(r.content)
    assert tile["streets"]["features"]
    assert {f["properties"]["kind"] for f in tile["streets"]["features"]}
    style = demo_client.get("/tiles/style.json").json()
    assert set(style["layers"]) == {"streets", "boundaries", "buildings"}


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/tiles/castles/12/1/1.pbf", "layer"),
        ("/tiles/basemap/30/1/1.pbf", "zoom"),
        ("/tiles/basemap/3/9/1.pbf", "does not exist"),
    ],
)
def test_bad_tile_requests_name_the_problem(demo_client, url, field):
    r = demo_client.get(url, headers=ADMIN_AUTH)
    assert r.status_code == 422 and field in r.json()["detail"]


def test_pick_finds_the_case_under_a_click_or_says_none(demo_client, demo_settings):
    case_id, lon, lat = _rows(
        demo_settings,
        "SELECT id, ST_X(geom), ST_Y(geom) FROM cases WHERE status = 'closed' ORDER BY id LIMIT 1",
    )[0]
    hit = demo_client.get(
        "/tiles/cases/pick", headers=ADMIN_AUTH, params={"lon": lon, "lat": lat, "z": 18}
    ).json()
    near = _rows(
        demo_settings,
        "SELECT id FROM cases WHERE ST_DWithin(geom::geography, "
        "ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, 1)",
        x=lon,
        y=lat,
    )
    assert hit["id"] in {r[0] for r in near} and case_id in {r[0] for r in near}
    empty = demo_client.get(
        "/tiles/cases/pick", headers=ADMIN_AUTH, params={"lon": 100.0, "lat": 20.0, "z": 18}
    )
    assert empty.status_code == 200 and empty.json() == {"id": None}
    assert (
        demo_client.get("/tiles/cases/pick", params={"lon": lon, "lat": lat, "z": 18}).status_code
        == 401
    )
