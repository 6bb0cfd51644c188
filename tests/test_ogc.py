"""OGC API – Features (``/ogc/``) read by the GIS world's own clients against the real
server process on the demo city: GDAL's OAPIF driver (through pyogrio's bundled GDAL) and
OWSLib's ``owslib.ogcapi.features.Features``; then the parameters (bbox, limit, datetime,
paging links, unknown ones) and the scoping by bearer token, each compared with the
database or with the app's own case list; and the TileJSON documents against real tiles.

Oracles are written here from the rules as documented (auth/scope.py's table, OGC
17-069r4), not taken from gis_service/ogc/.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import mapbox_vector_tile
import pyogrio
import pytest
from sqlalchemy import text

from gis_service.app import create_app
from gis_service.auth import sessions
from gis_service.db.engine import get_engine
from gis_service.settings import Settings
from gis_service.units.codes import LEVELS
from tests.faults.stream import served

#: the demo's accounts (gis_service/demo: "e.g. admin admin, … team_member team1")
ACCOUNTS = {
    "admin": "admin",
    "planner": "planner",
    "subdistrict_sup": "sup410105015",
    "grid_worker": "gw41010500100101",
    "team_member": "team1",
}
SUBDISTRICT = "410105015"
IN = SUBDISTRICT + "%"
LIMIT_MAX = 10000  # OGC 17-069r4's example maximum, ours too


@pytest.fixture(scope="module")
def ogc(demo_settings: Settings) -> Iterator[dict[str, Any]]:
    """The real server on the demo city, the demo accounts' bearer headers, and the
    one-kilometre figures computed (the access route computes them on first use)."""
    auth = {}
    with get_engine(demo_settings).connect() as conn:
        for who, username in ACCOUNTS.items():
            user = (
                conn.execute(text("SELECT * FROM app_user WHERE username = :u"), {"u": username})
                .mappings()
                .one()
            )
            grant = sessions.issue_for(demo_settings, dict(user))
            auth[who] = {"Authorization": "Bearer " + grant.access_token}
    with served(demo_settings) as server:
        _compute_gaps(server.base, auth["admin"])
        yield {"base": server.base, "url": server.base + "/ogc/", "auth": auth}


def _compute_gaps(base: str, admin: dict[str, str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        r = httpx.get(base + "/api/v1/access/gaps", headers=admin, timeout=120)
        if r.status_code == 200:
            return
        assert r.status_code == 202, r.text
        time.sleep(1)
    raise AssertionError("the access figures were not computed in 300 s")


def _sql(settings: Settings, sql: str, **params: Any) -> list[Any]:
    with get_engine(settings).connect() as conn:
        return list(conn.execute(text(sql), params).scalars())


def _get(ogc: dict, path: str, who: str | None = None, **params: Any) -> httpx.Response:
    headers = ogc["auth"][who] if who else {}
    return httpx.get(ogc["url"] + path, params=params, headers=headers, timeout=120)


def _all_items(ogc: dict, collection: str, who: str | None = None, **params: Any) -> list[dict]:
    """Every feature of a selection, following the next links to the end."""
    r = _get(ogc, f"collections/{collection}/items", who, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    features = list(body["features"])
    matched = body["numberMatched"]
    headers = ogc["auth"][who] if who else {}
    while nxt := [link["href"] for link in body["links"] if link["rel"] == "next"]:
        body = httpx.get(nxt[0], headers=headers, timeout=120).json()
        features += body["features"]
        assert body["numberMatched"] == matched
    assert len(features) == matched
    return features


@contextlib.contextmanager
def gdal_headers(headers: dict[str, str]) -> Iterator[None]:
    """GDAL's HTTP requests carry these headers inside the block: GDAL_HTTP_HEADER_FILE
    (the OAPIF driver sends its own Accept header, which takes the place of
    GDAL_HTTP_HEADERS; a header file is added to it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("".join(f"{k}: {v}\n" for k, v in headers.items()))
        f.flush()
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": f.name})
        try:
            yield
        finally:
            pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None})


@contextlib.contextmanager
def owslib_client(url: str, headers: dict[str, str] | None = None) -> Iterator[Any]:
    """OWSLib's OGC API – Features client; its constructor updates the module's shared
    REQUEST_HEADERS in place, so they are restored afterwards (no token leaks into the
    next client)."""
    from owslib import ogcapi
    from owslib.ogcapi.features import Features

    saved = dict(ogcapi.REQUEST_HEADERS)
    try:
        yield Features(url, headers=dict(headers or {}))
    finally:
        ogcapi.REQUEST_HEADERS.clear()
        ogcapi.REQUEST_HEADERS.update(saved)


def _public_case_ids(settings: Settings) -> set[int]:
    """The public view, as auth/scope.py's table words it: public categories, neither
    rejected nor duplicate."""
    return set(
        _sql(
            settings,
            "SELECT id FROM cases WHERE category_code IN "
            "(SELECT code FROM case_category WHERE public) "
            "AND status NOT IN ('rejected', 'duplicate')",
        )
    )


# ------------------------------------------------------------------ the clients


def test_gdal_lists_the_collections_and_reads_units_and_cases(ogc, demo_settings):
    layers = {name for name, _ in pyogrio.list_layers("OAPIF:" + ogc["url"])}
    assert layers == {f"units-{lvl.value}" for lvl in LEVELS} | {
        "service-points",
        "cases",
        "gaps",
    }
    for level in ("community", "grid", "building"):
        frame = pyogrio.read_dataframe("OAPIF:" + ogc["url"], layer=f"units-{level}")
        want = _sql(demo_settings, "SELECT code FROM admin_unit WHERE level = :l", l=level)
        assert sorted(frame["code"]) == sorted(want)
        assert frame.crs.to_string() in ("OGC:CRS84", "EPSG:4326")
        assert frame.geometry.is_valid.all()
    # no token: the public view, no description or address
    frame = pyogrio.read_dataframe("OAPIF:" + ogc["url"], layer="cases")
    public = _public_case_ids(demo_settings)
    assert len(frame) == len(public)
    assert frame["description"].isna().all() and frame["address"].isna().all()
    # a subdistrict supervisor's token: the subdistrict's cases, as the case list API counts
    with gdal_headers(ogc["auth"]["subdistrict_sup"]):
        frame = pyogrio.read_dataframe("OAPIF:" + ogc["url"], layer="cases")
    listed = httpx.get(
        ogc["base"] + "/api/v1/cases",
        params={"limit": 1},
        headers=ogc["auth"]["subdistrict_sup"],
    ).json()["numberMatched"]
    inside = _sql(demo_settings, "SELECT count(*) FROM cases WHERE unit_code LIKE :u", u=IN)[0]
    assert len(frame) == listed == inside > 0
    assert frame["unit_code"].str.startswith(SUBDISTRICT).all()
    assert frame["description"].notna().any()


def test_owslib_reads_collections_and_items(ogc, demo_settings):
    with owslib_client(ogc["url"]) as w:
        assert set(w.conformance()["conformsTo"]) >= {
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        }
        ids = [c["id"] for c in w.collections()["collections"]]
        assert "cases" in ids and "units-grid" in ids
        grids = w.collection_items("units-grid", limit=LIMIT_MAX)
        want = _sql(demo_settings, "SELECT count(*) FROM admin_unit WHERE level = 'grid'")[0]
        assert grids["numberMatched"] == grids["numberReturned"] == want
        anonymous = w.collection_items("cases", limit=5)
        assert anonymous["numberMatched"] == len(_public_case_ids(demo_settings))
    with owslib_client(ogc["url"], ogc["auth"]["team_member"]) as w:
        got = w.collection_items("cases", limit=LIMIT_MAX)
    listed = httpx.get(
        ogc["base"] + "/api/v1/cases", params={"limit": 1}, headers=ogc["auth"]["team_member"]
    ).json()["numberMatched"]
    assert got["numberMatched"] == got["numberReturned"] == listed > 0


# ------------------------------------------------------------------ the parameters


def test_next_links_reach_every_feature_once_and_prev_links_walk_back(ogc, demo_settings):
    features = _all_items(ogc, "cases", "subdistrict_sup", limit=97)
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids))
    want = _sql(demo_settings, "SELECT id FROM cases WHERE unit_code LIKE :u", u=IN)
    assert set(ids) == set(want)
    # from the last page back to the first by the prev links
    r = _get(ogc, "collections/cases/items", "subdistrict_sup", limit=97, after=ids[-98])
    body = r.json()
    assert [f["id"] for f in body["features"]] == ids[-97:]
    seen = [f["id"] for f in body["features"]]
    while prev := [link["href"] for link in body["links"] if link["rel"] == "prev"]:
        body = httpx.get(prev[0], headers=ogc["auth"]["subdistrict_sup"]).json()
        page = [f["id"] for f in body["features"]]
        has_prev = any(link["rel"] == "prev" for link in body["links"])
        assert len(page) == 97 or not has_prev  # only the first page may be short
        seen = page + seen
    assert seen[0] == ids[0] and set(seen) == set(ids)
    # links are absolute and the same for the same page
    first = _get(ogc, "collections/units-building/items", limit=100).json()
    again = _get(ogc, "collections/units-building/items", limit=100).json()
    assert [lk["href"] for lk in first["links"]] == [lk["href"] for lk in again["links"]]
    assert all(lk["href"].startswith(ogc["base"] + "/ogc/") for lk in first["links"])
    codes = [f["id"] for f in _all_items(ogc, "units-building", limit=100)]
    assert codes == sorted(
        _sql(demo_settings, "SELECT code FROM admin_unit WHERE level = 'building'")
    )


def test_limit_and_the_page_members(ogc, demo_settings):
    r = _get(ogc, "collections/cases/items", "admin", limit=LIMIT_MAX * 2)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    total = _sql(demo_settings, "SELECT count(*) FROM cases")[0]
    assert body["numberMatched"] == total > LIMIT_MAX
    assert body["numberReturned"] == len(body["features"]) == LIMIT_MAX  # the maximum
    assert body["timeStamp"].endswith("Z")
    body = _get(ogc, "collections/service-points/items").json()
    assert body["numberReturned"] == 10  # the default
    assert {lk["rel"] for lk in body["links"]} >= {"self", "next", "collection"}
    r = _get(ogc, "collections/cases/items", "admin", limit=3, f="json")
    assert r.status_code == 200 and r.json()["numberReturned"] == 3


def test_bbox_selects_what_intersects_it(ogc, demo_settings):
    west, south, east, north = 113.62, 34.74, 113.70, 34.80
    bbox = f"{west},{south},{east},{north}"
    for collection, sql in (
        ("units-grid", "SELECT code FROM admin_unit WHERE level = 'grid' AND "),
        ("cases", "SELECT id FROM cases WHERE "),
    ):
        got = {f["id"] for f in _all_items(ogc, collection, "admin", bbox=bbox, limit=1000)}
        want = set(
            _sql(
                demo_settings,
                sql + "ST_Intersects(geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))",
                w=west,
                s=south,
                e=east,
                n=north,
            )
        )
        assert got == want and len(want) > 0
    # six numbers (with heights) select the same; a box across the antimeridian is valid
    six = _get(ogc, "collections/units-grid/items", bbox=f"{west},{south},0,{east},{north},10")
    four = _get(ogc, "collections/units-grid/items", bbox=bbox)
    assert six.json()["numberMatched"] == four.json()["numberMatched"]
    r = _get(ogc, "collections/units-grid/items", bbox="170,-10,-170,10")
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


def test_datetime_filters_the_report_time(ogc, demo_settings):
    start, end = "2026-03-01T00:00:00Z", "2026-04-15T12:00:00+08:00"
    count = "SELECT count(*) FROM cases WHERE "
    cases = (
        (
            f"{start}/{end}",
            "reported_at >= CAST(:a AS timestamptz) AND reported_at <= CAST(:b AS timestamptz)",
        ),
        (f"../{end}", "reported_at <= CAST(:b AS timestamptz)"),
        (f"{start}/..", "reported_at >= CAST(:a AS timestamptz)"),
        (f"{start}/", "reported_at >= CAST(:a AS timestamptz)"),
        (
            "2026-03-01",
            "reported_at >= CAST(:a AS timestamptz) "
            "AND reported_at < CAST(:a AS timestamptz) + interval '1 day'",
        ),
    )
    for value, where in cases:
        got = _get(ogc, "collections/cases/items", "admin", datetime=value, limit=1).json()
        want = _sql(demo_settings, count + where, a=start, b=end)[0]
        assert got["numberMatched"] == want > 0, value
    at = _sql(demo_settings, "SELECT reported_at FROM cases ORDER BY id LIMIT 1")[0]
    instant = _get(ogc, "collections/cases/items", "admin", datetime=at.isoformat()).json()
    same = _sql(demo_settings, "SELECT id FROM cases WHERE reported_at = :t", t=at)
    assert {f["id"] for f in instant["features"]} == set(same)
    # the time filter is kept in the paging links
    page = _get(ogc, "collections/cases/items", "admin", datetime=f"{start}/{end}", limit=5)
    nxt = next(lk["href"] for lk in page.json()["links"] if lk["rel"] == "next")
    assert (
        "datetime=" in nxt
        and httpx.get(nxt, headers=ogc["auth"]["admin"]).json()["numberMatched"]
        == page.json()["numberMatched"]
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "113,35,114,34"}, "bbox"),
        ({"bbox": "113,34,114,95"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "../.."}, "datetime"),
        ({"datetime": "2026-05-01T00:00:00Z/2026-04-01T00:00:00Z"}, "datetime"),
        ({"datetime": "2026-13-01"}, "datetime"),
        ({"datetime": "2026-03-01T08:00:00"}, "datetime"),
        ({"status": "closed"}, "status"),
        ({"f": "html"}, "f"),
        ({"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}, "crs"),
        ({"after": "abc"}, "after"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(ogc, params, field):
    r = _get(ogc, "collections/cases/items", "admin", **params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_input" and body["field"] == field
    assert field in body["detail"] or field in ("f",)


def test_unknown_parameters_on_the_other_operations(ogc):
    for path in (
        "",
        "conformance",
        "collections",
        "collections/cases",
        "collections/cases/items/1",
    ):
        r = _get(ogc, path, "admin", limit="5")
        assert r.status_code == 400 and r.json()["field"] == "limit", path
        assert _get(ogc, path, "admin", f="json").status_code in (200, 404), path


# ------------------------------------------------------------------ scope


def test_each_token_reads_its_scope_and_no_token_the_public_view(ogc, demo_settings):
    public = _all_items(ogc, "cases", None, limit=LIMIT_MAX)
    assert {f["id"] for f in public} == _public_case_ids(demo_settings)
    assert all(f["properties"]["description"] is None for f in public)
    assert all(f["properties"]["address"] is None for f in public)
    for who in ("subdistrict_sup", "grid_worker", "team_member"):
        got = {f["id"] for f in _all_items(ogc, "cases", who, limit=LIMIT_MAX)}
        listed = httpx.get(
            ogc["base"] + "/api/v1/cases", params={"limit": 1000}, headers=ogc["auth"][who]
        ).json()
        assert len(got) == listed["numberMatched"] > 0, who
        assert {f["id"] for f in listed["features"]} <= got, who
    # a single case: inside the scope 200, outside 404 (not 403: it does not say it exists)
    inside = _sql(demo_settings, "SELECT id FROM cases WHERE unit_code LIKE :u LIMIT 1", u=IN)
    outside = _sql(demo_settings, "SELECT id FROM cases WHERE unit_code NOT LIKE :u LIMIT 1", u=IN)
    r = _get(ogc, f"collections/cases/items/{inside[0]}", "subdistrict_sup")
    assert r.status_code == 200 and r.json()["id"] == inside[0]
    assert {lk["rel"] for lk in r.json()["links"]} == {"self", "collection"}
    assert _get(ogc, f"collections/cases/items/{outside[0]}", "subdistrict_sup").status_code == 404
    # planners read figures, not cases; a bad token is a 401, never the public view
    assert _get(ogc, "collections/cases/items", "planner").status_code == 403
    r = httpx.get(
        ogc["url"] + "collections/cases/items", headers={"Authorization": "Bearer nonsense"}
    )
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_gaps_are_the_access_figures_for_their_readers(ogc):
    for who in ("admin", "subdistrict_sup", "planner"):
        got = {f["id"]: f for f in _all_items(ogc, "gaps", who, limit=1000)}
        figures = httpx.get(
            ogc["base"] + "/api/v1/access/gaps", headers=ogc["auth"][who], timeout=120
        ).json()
        assert set(got) == {f["id"] for f in figures["features"]}, who
        for f in figures["features"]:
            assert got[f["id"]]["properties"]["population"] == f["properties"]["population"]
            assert got[f["id"]]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert _get(ogc, "collections/gaps/items").status_code == 401
    assert _get(ogc, "collections/gaps/items", "grid_worker").status_code == 403


# ------------------------------------------------------------------ the documents


def test_landing_conformance_and_collections(ogc, demo_settings):
    landing = _get(ogc, "").json()
    rels = {lk["rel"]: lk["href"] for lk in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert httpx.get(rels["service-desc"]).json()["paths"]["/ogc/collections"]
    collections = httpx.get(rels["data"]).json()["collections"]
    by_id = {c["id"]: c for c in collections}
    for c in collections:
        assert c["itemType"] == "feature"
        assert c["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        one = _get(ogc, f"collections/{c['id']}").json()
        assert one["id"] == c["id"] and one["extent"] == c["extent"]
    west, south, east, north = by_id["units-grid"]["extent"]["spatial"]["bbox"][0]
    box = _sql(
        demo_settings,
        "SELECT ARRAY[ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)] FROM "
        "(SELECT ST_Extent(geom) e FROM admin_unit WHERE level = 'grid') x",
    )[0]
    assert [west, south, east, north] == pytest.approx(box, abs=1e-6)
    first, last = by_id["cases"]["extent"]["temporal"]["interval"][0]
    times = _sql(demo_settings, "SELECT ARRAY[min(reported_at), max(reported_at)] FROM cases")[0]
    assert [datetime.fromisoformat(first), datetime.fromisoformat(last)] == times
    assert first.endswith("Z") and last.endswith("Z")
    assert _get(ogc, "collections/nowhere").status_code == 404
    assert _get(ogc, "collections/units-grid/items/nowhere").status_code == 404
    code = _sql(demo_settings, "SELECT code FROM admin_unit WHERE level = 'grid' LIMIT 1")[0]
    grid = _get(ogc, f"collections/units-grid/items/{code}")
    assert grid.status_code == 200 and grid.json()["properties"]["code"] == code
    assert grid.headers["content-type"].startswith("application/geo+json")
    # the first page has no prev link; a page past the end is empty, with neither
    first = _get(ogc, "collections/units-grid/items", limit=5).json()
    assert {lk["rel"] for lk in first["links"]} == {"self", "collection", "next"}
    last_code = max(_sql(demo_settings, "SELECT code FROM admin_unit WHERE level = 'grid'"))
    past = _get(ogc, "collections/units-grid/items", after=last_code).json()
    assert past["numberReturned"] == 0 and past["features"] == []
    assert not {lk["rel"] for lk in past["links"]} & {"next", "prev"}


def _decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def test_tilejson_names_every_layer_and_field_the_tiles_carry(ogc, demo_settings):
    landing = _get(ogc, "").json()
    documents = [lk["href"] for lk in landing["links"] if lk["href"].endswith("tilejson.json")]
    assert len(documents) == 4
    # tiles where there is something of every layer: a building, a service point, a case
    places = _sql(
        demo_settings,
        "SELECT ARRAY[ST_X(p), ST_Y(p)] FROM ("
        "(SELECT ST_PointOnSurface(geom) p FROM admin_unit WHERE level = 'building' LIMIT 1)"
        " UNION ALL (SELECT geom FROM service_point LIMIT 1)"
        " UNION ALL (SELECT geom FROM cases LIMIT 1)) x",
    )
    for href in documents:
        doc = httpx.get(href).json()
        assert doc["tilejson"] == "3.0.0"
        west, south, east, north = doc["bounds"]
        fields = {layer["id"]: set(layer["fields"]) for layer in doc["vector_layers"]}
        seen: set[str] = set()
        for (lon, lat), z in itertools.product(places, (10, 13, 15, 16)):
            assert west <= lon <= east and south <= lat <= north
            n = 2**z
            x = int((lon + 180) / 360 * n)
            y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
            url = doc["tiles"][0].format(z=z, x=x, y=y)
            r = httpx.get(url, headers=ogc["auth"]["admin"], timeout=60)
            assert r.status_code == 200, (url, r.text)
            for name, layer in _decode(r.content).items():
                assert name in fields, (href, name)
                seen.add(name)
                for f in layer["features"]:
                    assert set(f["properties"]) <= fields[name], (href, name, f["properties"])
        assert seen == set(fields), href
    assert httpx.get(ogc["base"] + "/tiles/nowhere/tilejson.json").status_code == 404


def test_the_openapi_document_describes_the_ogc_operations(settings):
    spec = create_app(settings).openapi()
    items = spec["paths"]["/ogc/collections/{collectionId}/items"]["get"]
    names = {p["name"] for p in items["parameters"]}
    assert {"bbox", "limit", "datetime", "collectionId"} <= names
    assert set(items["responses"]["200"]["content"]) == {"application/geo+json"}
    assert "400" in items["responses"]
